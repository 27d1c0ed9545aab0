//! Reading KITTI label files (`label_2/NNNNNN.txt`): one object per line, 15 fields (16 with a
//! detection score).
//!
//! Minimal version for the loader; replaced by the kitti-eval branch.

use std::path::Path;

use crate::error::{DatasetError, Result};
use crate::kitti::object::{Object, ObjectType};

/// The fields of a label line, in order (the 16th, `score`, only in result files).
const FIELDS: [&str; 16] = [
    "type",
    "truncated",
    "occluded",
    "alpha",
    "bbox left",
    "bbox top",
    "bbox right",
    "bbox bottom",
    "height",
    "width",
    "length",
    "x",
    "y",
    "z",
    "rotation_y",
    "score",
];

/// Parses the text of a label (or result) file; `file` names it in errors. Blank lines are
/// skipped; any other line must have 15 or 16 whitespace-separated fields, a known type and
/// finite numbers, else the error names the file, the line and the field.
pub fn parse_labels(text: &str, file: &Path) -> Result<Vec<Object>> {
    let mut objects = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |message: String| DatasetError::BadLine {
            path: file.to_path_buf(),
            line: i + 1,
            message,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 15 && fields.len() != 16 {
            return Err(bad(format!(
                "expected 15 fields (16 with a score), found {}",
                fields.len()
            )));
        }
        let kind = ObjectType::from_name(fields[0]).ok_or_else(|| {
            bad(format!(
                "field 1 (type): unknown object type `{}`",
                fields[0]
            ))
        })?;
        let num = |k: usize| -> Result<f32> {
            match fields[k].parse::<f32>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(bad(format!(
                    "field {} ({}): `{}` is not a finite number",
                    k + 1,
                    FIELDS[k],
                    fields[k]
                ))),
            }
        };
        let occluded = fields[2].parse::<i8>().map_err(|_| {
            bad(format!(
                "field 3 (occluded): `{}` is not an integer",
                fields[2]
            ))
        })?;
        objects.push(Object {
            kind,
            truncated: num(1)?,
            occluded,
            alpha: num(3)?,
            bbox: [num(4)?, num(5)?, num(6)?, num(7)?],
            dimensions: [num(8)?, num(9)?, num(10)?],
            location: [num(11)?, num(12)?, num(13)?],
            rotation_y: num(14)?,
            score: if fields.len() == 16 {
                Some(num(15)?)
            } else {
                None
            },
        });
    }
    Ok(objects)
}

/// Reads and parses the label file at `path` (see [`parse_labels`]).
pub fn read_labels(path: &Path) -> Result<Vec<Object>> {
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, "read", e))?;
    parse_labels(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let path = Path::new("label_2/000042.txt");
        for (text, line, needle) in [
            (
                "Car 0.00 0 1.5 1 2 3 4 1.5 1.6 3.9 1 1 1 0\nCar 0.00 0 1.5 1 2 x 4 1.5 1.6 3.9 1 1 1 0\n",
                2,
                "field 7 (bbox right): `x`",
            ),
            ("\nTruck 0 0 0 1 2 3 4\n", 2, "expected 15 fields"),
            (
                "Bus 0 0 0 1 2 3 4 1 1 1 1 1 1 0\n",
                1,
                "unknown object type `Bus`",
            ),
            (
                "Car 0 0.5 0 1 2 3 4 1 1 1 1 1 1 0\n",
                1,
                "field 3 (occluded)",
            ),
            (
                "Car 0 0 0 1 2 3 4 1 1 1 1 1 1 0 NaN\n",
                1,
                "field 16 (score)",
            ),
        ] {
            let e = parse_labels(text, path).unwrap_err();
            assert!(
                matches!(&e, DatasetError::BadLine { line: l, path: p, .. } if *l == line && p == path),
                "{e}"
            );
            let msg = e.to_string();
            assert!(msg.contains(&format!("000042.txt:{line}:")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
        let objs = parse_labels(
            "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n\n\
             Car 0.00 0 1.5 1 2 3 4 1.5 1.6 3.9 1 1 1 0 0.93\n",
            path,
        )
        .unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!((objs[0].kind, objs[0].occluded), (ObjectType::DontCare, -1));
        assert_eq!(objs[1].score, Some(0.93));
    }
}
