//! KITTI's label format: one object per line of a `label_2/<image>.txt` file, 15 fields, or 16
//! in a result file, whose last field is the detection score.
//!
//! ```text
//! type truncated occluded alpha left top right bottom height width length x y z rotation_y [score]
//! Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59
//! ```
//!
//! Every field is parsed and checked; a bad line is a [`DatasetError::BadLabel`] naming the file,
//! the 1-based line and the field. Blank lines (a trailing newline, an empty file for an image
//! without objects) are skipped.

use std::f32::consts::PI;
use std::path::Path;

use super::object::{Object, ObjectType};
use crate::error::{DatasetError, Result};

/// Field names of a label line, in order (the 16th, `score`, only in result files).
const FIELDS: [&str; 16] = [
    "type",
    "truncated",
    "occluded",
    "alpha",
    "left",
    "top",
    "right",
    "bottom",
    "height",
    "width",
    "length",
    "x",
    "y",
    "z",
    "rotation_y",
    "score",
];

/// Slack on the angle range `[-pi, pi]`: KITTI writes angles with two decimals.
const ANGLE_EPS: f32 = 0.01;

/// The `alpha` KITTI writes when the observation angle is unknown (and the devkit reads as
/// "no orientation given").
const UNKNOWN_ALPHA: f32 = -10.0;

/// Parses the text of a label or result file; `file` only names it in errors.
///
/// Accepted values: a known type (compared ignoring ASCII case, as the devkit does);
/// `truncated` in 0..=1 or -1 (`DontCare`, and detectors that do not estimate it); `occluded` an
/// integer in 0..=3 or -1; `alpha` in `[-pi, pi]` (0.01 of slack) or -10 (unknown);
/// a finite box with `left <= right` and `top <= bottom`; finite dimensions, each >= 0 or -1
/// (`DontCare`); a finite location (-1000 for `DontCare` included); `rotation_y` in `[-pi, pi]`
/// (0.01 of slack) or -10; a finite score when there is a 16th field.
pub fn parse_labels(text: &str, file: &Path) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        out.push(parse_line(raw, file, i + 1)?);
    }
    Ok(out)
}

/// Reads and parses one label or result file (see [`parse_labels`]).
pub fn read_labels(path: &Path) -> Result<Vec<Object>> {
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, "read", e))?;
    parse_labels(&text, path)
}

/// One object as a line of a result file (no trailing newline): the 15 label fields, then the
/// score when there is one. Numbers are written in Rust's shortest exact form, so
/// [`parse_labels`] gives back the same object bit for bit.
pub fn format_result_line(o: &Object) -> String {
    let [left, top, right, bottom] = o.bbox;
    let [h, w, l] = o.dimensions;
    let [x, y, z] = o.location;
    let mut line = format!(
        "{} {} {} {} {left} {top} {right} {bottom} {h} {w} {l} {x} {y} {z} {}",
        o.kind.name(),
        o.truncated,
        o.occluded,
        o.alpha,
        o.rotation_y
    );
    if let Some(score) = o.score {
        line.push_str(&format!(" {score}"));
    }
    line
}

/// Writes `objects` as a result file at `path` (one [`format_result_line`] per line, each ending
/// in a newline; an empty file for no objects), atomically.
pub fn write_results(path: &Path, objects: &[Object]) -> Result<()> {
    let mut text = String::new();
    for o in objects {
        text.push_str(&format_result_line(o));
        text.push('\n');
    }
    qbench_io::write_atomic(path, text)?;
    Ok(())
}

/// Parses one non-blank line (`line_no` is 1-based).
fn parse_line(raw: &str, file: &Path, line_no: usize) -> Result<Object> {
    let bad = |field: &'static str, reason: String| DatasetError::BadLabel {
        path: file.to_path_buf(),
        line: line_no,
        field,
        reason,
    };
    let tokens: Vec<&str> = raw.split_whitespace().collect();
    if tokens.len() != 15 && tokens.len() != 16 {
        return Err(bad(
            "fields",
            format!(
                "expected 15 fields (16 with a score), found {}: `{}`",
                tokens.len(),
                raw.trim()
            ),
        ));
    }
    let kind = ObjectType::ALL
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(tokens[0]))
        .ok_or_else(|| {
            let known: Vec<&str> = ObjectType::ALL.iter().map(|t| t.name()).collect();
            bad(
                "type",
                format!(
                    "unknown type `{}`; expected one of {}",
                    tokens[0],
                    known.join(", ")
                ),
            )
        })?;
    let number = |i: usize| -> Result<f32> {
        let v: f32 = tokens[i]
            .parse()
            .map_err(|_| bad(FIELDS[i], format!("`{}` is not a number", tokens[i])))?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(bad(FIELDS[i], format!("`{}` is not finite", tokens[i])))
        }
    };
    let angle = |i: usize| -> Result<f32> {
        let v = number(i)?;
        if v == UNKNOWN_ALPHA || v.abs() <= PI + ANGLE_EPS {
            Ok(v)
        } else {
            Err(bad(
                FIELDS[i],
                format!("{v} is outside [-pi, pi] (and not -10, unknown)"),
            ))
        }
    };

    let truncated = number(1)?;
    if !((0.0..=1.0).contains(&truncated) || truncated == -1.0) {
        return Err(bad(
            "truncated",
            format!("{truncated} is outside 0..=1 (and not -1, unknown)"),
        ));
    }
    let occluded = number(2)?;
    if occluded.fract() != 0.0 || !(-1.0..=3.0).contains(&occluded) {
        return Err(bad(
            "occluded",
            format!(
                "`{}` is not an integer in 0..=3 (or -1, unknown)",
                tokens[2]
            ),
        ));
    }
    let occluded = occluded as i8;
    let alpha = angle(3)?;
    let bbox = [number(4)?, number(5)?, number(6)?, number(7)?];
    if bbox[0] > bbox[2] {
        return Err(bad(
            "right",
            format!("right {} is left of left {}", bbox[2], bbox[0]),
        ));
    }
    if bbox[1] > bbox[3] {
        return Err(bad(
            "bottom",
            format!("bottom {} is above top {}", bbox[3], bbox[1]),
        ));
    }
    let dimensions = [number(8)?, number(9)?, number(10)?];
    for (k, &d) in dimensions.iter().enumerate() {
        if d < 0.0 && d != -1.0 {
            return Err(bad(
                FIELDS[8 + k],
                format!("{d} is negative (and not -1, unknown)"),
            ));
        }
    }
    let location = [number(11)?, number(12)?, number(13)?];
    let rotation_y = angle(14)?;
    let score = if tokens.len() == 16 {
        Some(number(15)?)
    } else {
        None
    };
    Ok(Object {
        kind,
        truncated,
        occluded,
        alpha,
        bbox,
        dimensions,
        location,
        rotation_y,
        score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const CAR: &str =
        "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59";
    const DONT_CARE: &str =
        "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10";

    fn file() -> PathBuf {
        PathBuf::from("label_2/000042.txt")
    }

    /// The error of parsing `text`, which must be a `BadLabel` at `line` about `field`.
    fn expect_bad(text: &str, line: usize, field: &str) -> String {
        let e = parse_labels(text, &file()).expect_err(text);
        match &e {
            DatasetError::BadLabel {
                path,
                line: l,
                field: f,
                ..
            } => {
                assert_eq!(path, &file(), "{e}");
                assert_eq!(*l, line, "{e}");
                assert_eq!(*f, field, "{e}");
            }
            other => panic!("expected BadLabel, got {other}"),
        }
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("label_2/000042.txt:{line}: ")),
            "{msg}"
        );
        assert!(msg.contains(field), "{msg}");
        msg
    }

    #[test]
    fn parses_every_field() {
        let objects = parse_labels(&format!("{CAR}\n{DONT_CARE}\n"), &file()).unwrap();
        assert_eq!(objects.len(), 2);
        let car = &objects[0];
        assert_eq!(car.kind, ObjectType::Car);
        assert_eq!(car.truncated, 0.0);
        assert_eq!(car.occluded, 0);
        assert_eq!(car.alpha, -1.58);
        assert_eq!(car.bbox, [587.01, 173.33, 614.12, 200.12]);
        assert_eq!(car.dimensions, [1.65, 1.67, 3.64]);
        assert_eq!(car.location, [-0.65, 1.71, 46.70]);
        assert_eq!(car.rotation_y, -1.59);
        assert_eq!(car.score, None);
        let dc = &objects[1];
        assert_eq!(dc.kind, ObjectType::DontCare);
        assert_eq!((dc.truncated, dc.occluded, dc.alpha), (-1.0, -1, -10.0));
        assert_eq!(dc.dimensions, [-1.0; 3]);
        assert_eq!(dc.location, [-1000.0; 3]);
        assert_eq!(dc.rotation_y, -10.0);
    }

    #[test]
    fn every_type_name_parses_and_blank_lines_are_skipped() {
        let mut text = String::from("\n  \n");
        for t in ObjectType::ALL {
            text.push_str(&format!(
                "{} 0.5 3 3.14 0 0 10 20 1 1 1 0 0 10 -3.14\r\n",
                t.name()
            ));
        }
        text.push_str("\n\n");
        let objects = parse_labels(&text, &file()).unwrap();
        let kinds: Vec<ObjectType> = objects.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, ObjectType::ALL);
        assert!(parse_labels("", &file()).unwrap().is_empty());
        // The devkit compares type names ignoring case.
        let lower = parse_labels(&CAR.replace("Car", "car"), &file()).unwrap();
        assert_eq!(lower[0].kind, ObjectType::Car);
    }

    #[test]
    fn result_line_with_score() {
        let objects = parse_labels(&format!("{CAR} 0.875\n"), &file()).unwrap();
        assert_eq!(objects[0].score, Some(0.875));
        assert_eq!(objects[0].bbox, [587.01, 173.33, 614.12, 200.12]);
        // Detectors write -1 for truncation and occlusion they do not estimate.
        let det = "Pedestrian -1 -1 -10 10 20 30 80 -1 -1 -1 -1000 -1000 -1000 -10 -2.5";
        let objects = parse_labels(det, &file()).unwrap();
        assert_eq!(objects[0].score, Some(-2.5));
        assert_eq!(objects[0].occluded, -1);
    }

    #[test]
    fn result_file_round_trips() {
        let text = format!(
            "{CAR} 0.875\n{DONT_CARE}\nCyclist 0.1 2 0.3 1.5 2.25 3.125 4 1 2 3 4 5 6 0.7 1e-3\n"
        );
        let objects = parse_labels(&text, &file()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000042.txt");
        write_results(&path, &objects).unwrap();
        let back = read_labels(&path).unwrap();
        assert_eq!(back, objects);
        assert_eq!(
            format_result_line(&objects[2]),
            "Cyclist 0.1 2 0.3 1.5 2.25 3.125 4 1 2 3 4 5 6 0.7 0.001"
        );
        write_results(&path, &[]).unwrap();
        assert!(read_labels(&path).unwrap().is_empty());
    }

    #[test]
    fn wrong_field_count_names_file_and_line() {
        let msg = expect_bad(&format!("{CAR}\n\nCar 0 0 0 1 2 3 4\n"), 3, "fields");
        assert!(msg.contains("found 8"), "{msg}");
        expect_bad(&format!("{CAR} 0.5 0.5\n"), 1, "fields");
    }

    #[test]
    fn non_numbers_are_errors() {
        expect_bad(&CAR.replace("587.01", "5x7"), 1, "left");
        expect_bad(&CAR.replace("46.70", "nan"), 1, "z");
        expect_bad(&CAR.replace("1.65", "inf"), 1, "height");
        expect_bad(&format!("{CAR}\n{CAR} high\n"), 2, "score");
    }

    #[test]
    fn unknown_type_is_an_error() {
        let msg = expect_bad(
            &format!("{DONT_CARE}\n{}", CAR.replace("Car", "Bus")),
            2,
            "type",
        );
        assert!(
            msg.contains("`Bus`") && msg.contains("Person_sitting"),
            "{msg}"
        );
    }

    #[test]
    fn out_of_range_values_are_errors() {
        // left > right, top > bottom.
        expect_bad(&CAR.replace("614.12", "500"), 1, "right");
        expect_bad(&CAR.replace("200.12", "100"), 1, "bottom");
        // Occlusion 5, a fractional occlusion.
        expect_bad(&CAR.replace("0.00 0 ", "0.00 5 "), 1, "occluded");
        expect_bad(&CAR.replace("0.00 0 ", "0.00 1.5 "), 1, "occluded");
        // Truncation above 1, or negative other than -1.
        expect_bad(&CAR.replace("0.00 0 ", "1.2 0 "), 1, "truncated");
        expect_bad(&CAR.replace("0.00 0 ", "-0.5 0 "), 1, "truncated");
        // Angles beyond pi (-10 is accepted, unknown).
        expect_bad(&CAR.replace("-1.58", "3.2"), 1, "alpha");
        expect_bad(&CAR.replace("-1.59", "-4"), 1, "rotation_y");
        // A negative dimension other than -1.
        expect_bad(&CAR.replace("3.64", "-3.64"), 1, "length");
    }

    #[test]
    fn read_labels_names_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.txt");
        let e = read_labels(&path).unwrap_err();
        assert!(e.to_string().contains("missing.txt"), "{e}");
    }
}
