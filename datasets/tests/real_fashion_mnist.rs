//! Loads the real Fashion-MNIST that Debian's `dataset-fashion-mnist`
//! installs in /usr/share/datasets/fashion-mnist, when it is there.
//!
//! Without it the test prints a skip message (straight to the terminal, past
//! the test harness's capture) saying how to install it. Set
//! `QBENCH_REQUIRE_FASHION_MNIST=1` to make its absence a failure instead.

use std::io::Write;
use std::path::Path;

use qbench_datasets::{DEFAULT_DATASET, Registry, Split, load, load_from, verify_in};
use qbench_io::sha256_hex;

const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// True when the data is present; otherwise reports the skip (or fails when
/// the data is required).
fn present() -> bool {
    if Path::new(SYSTEM_DIR)
        .join("train-images-idx3-ubyte.gz")
        .is_file()
    {
        return true;
    }
    let msg = format!(
        "SKIPPED: real Fashion-MNIST test: {SYSTEM_DIR} not found; \
         install it with `apt-get install dataset-fashion-mnist`"
    );
    if std::env::var_os("QBENCH_REQUIRE_FASHION_MNIST").is_some_and(|v| v == "1") {
        panic!("{msg} (required by QBENCH_REQUIRE_FASHION_MNIST=1)");
    }
    // Written to the process's stderr directly so that it is shown even
    // though the test passes.
    let _ = writeln!(std::io::stderr(), "{msg}");
    false
}

#[test]
fn real_fashion_mnist_loads_and_verifies() {
    if !present() {
        return;
    }
    let entry = Registry::embedded().get(DEFAULT_DATASET).unwrap();
    let dir = Path::new(SYSTEM_DIR);

    // The Debian copies are recompressed: accepted as known copies.
    let checks = verify_in(entry, dir).unwrap();
    assert_eq!(checks.len(), 4);
    for c in &checks {
        assert!(c.is_ok(), "{c}");
    }

    let train = load_from(entry, dir, Split::Train).unwrap();
    assert_eq!(train.len(), 60000);
    assert_eq!((train.channels, train.height, train.width), (1, 28, 28));
    assert_eq!(train.num_classes, 10);
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(&train.labels[..10], &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    // SHA-256 of the decompressed pixel bytes, computed independently (Python gzip).
    assert_eq!(
        sha256_hex(&train.images),
        "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012"
    );
    assert_eq!(
        train.image(0).iter().map(|&p| u32::from(p)).sum::<u32>(),
        76247
    );

    // Through the registry and `locate` (falls back to the system folder).
    let test = load(DEFAULT_DATASET, Split::Test).unwrap();
    assert_eq!(test.len(), 10000);
    assert_eq!(
        (test.channels, test.height, test.width, test.num_classes),
        (1, 28, 28, 10)
    );
    assert_eq!(test.class_counts(), vec![1000; 10]);
    assert_eq!(&test.labels[..10], &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert!(test.check().is_ok());

    let x = test.to_f32_normalized(0..2);
    assert_eq!(x.len(), 2 * 784);
    assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
}
