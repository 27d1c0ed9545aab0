//! Hashes the sources that shape the hardware flow's cached figures (`QBENCH_HW_SOURCE`): the
//! units' Verilog, the EDA scripts, this crate's code (synthesis, simulation, timing and power
//! parsing, energy) and the engine whose arithmetic every unit is checked against. The flow's cache
//! key includes it, so an edit to any of them can never serve a stale cached number.

/// Source trees, relative to the workspace root.
const HW_SOURCES: &[&str] = &[
    "rtl/verilog",
    "rtl/scripts",
    "rtl/src",
    "harness/engine/src",
    "Cargo.lock",
];

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let hash = qbench_io::tree_hash(&root, HW_SOURCES, |p| {
        println!("cargo:rerun-if-changed={}", p.display());
    });
    println!("cargo:rustc-env=QBENCH_HW_SOURCE={hash}");
}
