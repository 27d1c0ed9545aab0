//! Records the compiler version for run manifests, and the hash of the source code that decides
//! a cell's numbers, which keys the cell store and the method cache.

use std::path::Path;

/// Source trees (relative to the workspace root) whose code computes a cell's numbers: data
/// loading, float models and methods, the engine and its kernels, plus the locked dependency
/// versions (candle's arithmetic, for one).
const NUMERICS_SOURCES: &[&str] = &[
    "datasets/src",
    "methods/src",
    "harness/engine/src",
    "harness/kernels/src",
    "Cargo.lock",
];

/// The part of those that trains and evaluates a float model (the float model cache's key).
const FLOAT_SOURCES: &[&str] = &[
    "datasets/src",
    "methods/src/model",
    "methods/src/train.rs",
    "methods/src/optim.rs",
    "methods/src/data.rs",
    "methods/src/checkpoint.rs",
    "Cargo.lock",
];

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=QBENCH_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    println!(
        "cargo:rustc-env=QBENCH_NUMERICS_SOURCE={}",
        tree_hash(&root, NUMERICS_SOURCES)
    );
    println!(
        "cargo:rustc-env=QBENCH_FLOAT_SOURCE={}",
        tree_hash(&root, FLOAT_SOURCES)
    );
}

/// [`qbench_io::tree_hash`], telling cargo to rerun when any of `sources` changes.
fn tree_hash(root: &Path, sources: &[&str]) -> String {
    qbench_io::tree_hash(root, sources, |p| {
        println!("cargo:rerun-if-changed={}", p.display());
    })
}
