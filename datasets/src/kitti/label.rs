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
