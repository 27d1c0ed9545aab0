//! sha256 as 64 lowercase hex digits: of bytes, of a file (streamed) and incrementally.

use std::io::Read;
use std::path::Path;

use sha2::Digest;

use crate::IoError;

/// The sha256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The sha256 of the file at `path` as 64 lowercase hex digits, read in 1 MiB pieces so any size
/// takes constant memory.
///
/// # Errors
/// [`IoError`] naming `path` when it cannot be opened or read.
pub fn sha256_file(path: impl AsRef<Path>) -> Result<String, IoError> {
    let path = path.as_ref();
    let mut file = std::fs::File::open(path).map_err(|e| IoError::new("open", path, e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hash.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IoError::new("read", path, e)),
        }
    }
    Ok(hash.finish())
}

/// True when `s` has the form this crate writes: exactly 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A sha256 over several pieces (a download as it arrives, a key made of parts), finished as
/// 64 lowercase hex digits like [`sha256_hex`].
#[derive(Debug, Clone, Default)]
pub struct Sha256(sha2::Sha256);

impl Sha256 {
    /// An empty hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `bytes`.
    pub fn update(&mut self, bytes: impl AsRef<[u8]>) {
        self.0.update(bytes);
    }

    /// The hash of everything appended, as 64 lowercase hex digits.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sha256 of "abc" from FIPS 180-2.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_vectors() {
        assert_eq!(sha256_hex(b"abc"), ABC);
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut h = Sha256::new();
        h.update("a");
        h.update(b"bc");
        assert_eq!(h.finish(), ABC);
    }

    #[test]
    fn a_file_hashes_like_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        // Several read pieces and a partial last one.
        let bytes: Vec<u8> = (0..(2 << 20) + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for (name, content) in [("empty", &[][..]), ("abc", b"abc"), ("big", &bytes)] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            assert_eq!(sha256_file(&path).unwrap(), sha256_hex(content), "{name}");
        }
        assert_eq!(sha256_file(dir.path().join("abc")).unwrap(), ABC);
    }

    #[test]
    fn a_missing_file_is_named_once() {
        let e = sha256_file("/nonexistent/qbench/file").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot open /nonexistent/qbench/file: "),
            "{msg}"
        );
        assert_eq!(msg.matches("/nonexistent/qbench/file").count(), 1, "{msg}");
        assert_eq!(msg.matches("(os error").count(), 1, "{msg}");
    }

    #[test]
    fn the_hex_form_is_recognised() {
        assert!(is_sha256_hex(ABC));
        assert!(!is_sha256_hex(&ABC.to_uppercase()));
        assert!(!is_sha256_hex(&ABC[1..]));
        assert!(!is_sha256_hex(&format!("{}g", &ABC[1..])));
    }
}
