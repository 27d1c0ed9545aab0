//! `qbench models`: the built-in architectures.

use qbench_methods::model::zoo::ARCHITECTURES;

/// Prints every built-in architecture with its one-line description.
pub fn run() -> anyhow::Result<()> {
    for (name, about) in ARCHITECTURES {
        println!("{name:<10} {about}");
    }
    Ok(())
}
