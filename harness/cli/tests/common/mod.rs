//! What the `qbench` binary's end-to-end tests share: the binary, and whether Fashion-MNIST is
//! installed (tests that need it skip without it, unless `QBENCH_REQUIRE_FASHION_MNIST` is set).

use std::path::Path;
use std::process::{Command, Output};

/// The `qbench` binary under test.
pub fn qbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qbench"))
}

/// Whether Fashion-MNIST is available; says `SKIPPED` when it is not, and fails instead when
/// `QBENCH_REQUIRE_FASHION_MNIST` is set (CI).
pub fn fashion_mnist_present() -> bool {
    let present = Path::new("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").exists()
        || std::env::var_os("QBENCH_DATA").is_some();
    if !present {
        assert!(
            std::env::var_os("QBENCH_REQUIRE_FASHION_MNIST").is_none(),
            "Fashion-MNIST is required: apt-get install dataset-fashion-mnist"
        );
        eprintln!("SKIPPED: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
    }
    present
}

/// `out` when the command succeeded; otherwise fails the test showing its stdout and stderr.
#[allow(
    dead_code,
    reason = "each test binary compiles this module; not all of them call it"
)]
pub fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
