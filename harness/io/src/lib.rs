//! The bottom layer of qbench: atomic file writes, sha256 hashing and sealed (self-hashed) JSON
//! records, written once.
//!
//! Every crate of the workspace writes results, caches and figures atomically and identifies
//! files by their sha256; this crate is the one definition of both, so a file written by any of
//! them has the same mode (0644) and a hash computed by any of them the same form (64 lowercase
//! hex digits). It knows nothing of any other qbench crate.

mod atomic;
mod error;
mod hash;
mod seal;
mod tree;

pub use atomic::{AtomicFile, write_atomic};
pub use error::IoError;
pub use hash::{Sha256, is_sha256_hex, sha256_file, sha256_hex};
pub use seal::{SEAL_FIELD, SealError, open_sealed, seal_json};
pub use tree::tree_hash;
