//! Sealed JSON records: a record carries the sha256 of its own content, so that an edit by hand
//! (or a damaged file) is found on every read instead of being published.
//!
//! The seal is the field [`SEAL_FIELD`] of the record's top-level object: the sha256 of the
//! compact JSON of the object without that field. Writer and reader both hash the
//! `serde_json::Value` form, so the seal does not depend on the file's whitespace. It detects
//! accidental and careless edits; it is not a signature (whoever edits a value can recompute the
//! seal).

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sha256_hex;

/// The field holding a record's seal.
pub const SEAL_FIELD: &str = "content_sha256";

/// Why a sealed record could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The value does not serialise to a JSON object, or the file is not JSON of the record.
    #[error("{path}: {detail}")]
    Format {
        /// The record's file (empty when writing).
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The file has no seal: written by an older qbench, or by hand.
    #[error(
        "{path} has no `{SEAL_FIELD}`: it was written by an older qbench or by hand, so its \
         figures cannot be trusted; delete it to recompute"
    )]
    Unsealed {
        /// The record's file.
        path: String,
    },
    /// The content does not match the seal: the file was edited or damaged.
    #[error(
        "{path} was edited or damaged: its content hashes to {actual}, but its `{SEAL_FIELD}` \
         says {stored}; delete it to recompute (or restore it)"
    )]
    Mismatch {
        /// The record's file.
        path: String,
        /// The seal the file carries.
        stored: String,
        /// The hash of its content.
        actual: String,
    },
}

fn content_hash(object: &serde_json::Map<String, serde_json::Value>) -> String {
    // A `Value` serialises without failing (its keys are strings).
    let text = serde_json::to_string(object).unwrap_or_default();
    sha256_hex(text.as_bytes())
}

/// `value` as pretty JSON text (ending in a newline) with its seal; any seal field the value
/// already has is replaced.
///
/// # Errors
/// [`SealError::Format`] when `value` does not serialise to a JSON object.
pub fn seal_json(value: &impl Serialize) -> Result<String, SealError> {
    let format = |detail: String| SealError::Format {
        path: String::new(),
        detail,
    };
    let serde_json::Value::Object(mut object) =
        serde_json::to_value(value).map_err(|e| format(e.to_string()))?
    else {
        return Err(format("a sealed record must be a JSON object".into()));
    };
    object.remove(SEAL_FIELD);
    let seal = content_hash(&object);
    object.insert(SEAL_FIELD.into(), serde_json::Value::String(seal));
    let mut text = serde_json::to_string_pretty(&object).map_err(|e| format(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Parses sealed JSON `text` read from `path`, checking its seal first.
///
/// # Errors
/// [`SealError::Unsealed`] or [`SealError::Mismatch`] when the seal is missing or does not match,
/// [`SealError::Format`] when the text is not JSON of a `T`; each names `path`.
pub fn open_sealed<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, SealError> {
    let name = path.display().to_string();
    let format = |detail: String| SealError::Format {
        path: name.clone(),
        detail,
    };
    let serde_json::Value::Object(mut object) =
        serde_json::from_str(text).map_err(|e| format(format!("not JSON: {e}")))?
    else {
        return Err(format("not a JSON object".into()));
    };
    let stored = match object.remove(SEAL_FIELD) {
        Some(serde_json::Value::String(s)) => s,
        _ => return Err(SealError::Unsealed { path: name }),
    };
    let actual = content_hash(&object);
    if actual != stored {
        return Err(SealError::Mismatch {
            path: name,
            stored,
            actual,
        });
    }
    serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| format(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Record {
        name: String,
        accuracy: f64,
        counts: Vec<u64>,
    }

    fn record() -> Record {
        Record {
            name: "int8 W8A8".into(),
            // Values whose shortest decimal form must parse back to the same f64.
            accuracy: 0.776_600_000_000_000_1,
            counts: vec![1, 2, 3],
        }
    }

    #[test]
    fn a_sealed_record_reads_back_whatever_its_whitespace() {
        let text = seal_json(&record()).unwrap();
        let back: Record = open_sealed(&text, Path::new("r.json")).unwrap();
        assert_eq!(back, record());
        let compact: serde_json::Value = serde_json::from_str(&text).unwrap();
        let again: Record = open_sealed(&compact.to_string(), Path::new("r.json")).unwrap();
        assert_eq!(again, record());
    }

    #[test]
    fn an_edited_value_or_a_missing_seal_is_an_error_naming_the_file() {
        let text = seal_json(&record()).unwrap();
        let edited = text.replace("0.7766", "0.9766");
        assert_ne!(edited, text);
        let err = open_sealed::<Record>(&edited, Path::new("cells/abc.json")).unwrap_err();
        assert!(matches!(err, SealError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("cells/abc.json"), "{err}");

        let unsealed = serde_json::to_string(&record()).unwrap();
        let err = open_sealed::<Record>(&unsealed, Path::new("m.json")).unwrap_err();
        assert!(matches!(err, SealError::Unsealed { .. }), "{err}");

        let other_seal = text.replace("\"content_sha256\": \"", "\"content_sha256\": \"0");
        assert!(open_sealed::<Record>(&other_seal, Path::new("m.json")).is_err());
    }
}
