//! SHA-256 of files, streamed, as lowercase hex: what the registry records and
//! what other crates store for provenance.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{DatasetError, Result};

/// The SHA-256 of the file at `path` as 64 lowercase hex digits.
///
/// Reads the file in 1 MiB chunks, so any size works in constant memory.
/// Other crates use it to record the provenance of datasets, weights and results.
pub fn sha256_file(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let mut file = std::fs::File::open(path).map_err(|e| DatasetError::io(path, "open", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DatasetError::io(path, "read", e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// True when `s` looks like a SHA-256 in the form this crate writes:
/// exactly 64 lowercase hex digits.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // SHA-256 of "abc" from FIPS 180-2.
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_bytes(b"abc"), want);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), want);
        assert!(is_sha256_hex(want));
        assert!(!is_sha256_hex(&want.to_uppercase()));
    }

    #[test]
    fn missing_file_names_path() {
        let err = sha256_file("/nonexistent/qbench/file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/qbench/file"), "{err}");
        assert!(err.contains("cannot open"), "{err}");
    }
}
