//! `linear` passes the conformance suite at 8 and 4 bits, and bad configs are errors naming the key.

mod common;

use qbench_methods::method::config::RawMethodConfig;
use qbench_methods::method::conformance;
use qbench_methods::method::linear::{Linear, LinearOptions};
use qbench_methods::method::registry;

fn conforms(bits: u8) {
    let f = common::fixture();
    let method = Linear::new(LinearOptions {
        bits,
        calibration_images: 500,
    })
    .expect("valid options");
    let report = conformance::check(&method, &f.input(), &f.test).expect("runs");
    eprintln!("{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.int_accuracy > 0.5, "{report:?}");
}

#[test]
fn linear_8_bits_conforms() {
    conforms(8);
}

#[test]
fn linear_4_bits_conforms() {
    conforms(4);
}

fn error_of(yaml: &str) -> String {
    let raw = RawMethodConfig::from_yaml(yaml, "test.yaml").expect("parses");
    match registry::build(&raw) {
        Ok(_) => panic!("{yaml} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_configs_name_the_key() {
    let e = error_of("method: linear\nbits: 9\n");
    assert!(e.contains("`bits`") && e.contains("2..=8"), "{e}");
    let e = error_of("method: linear\nbits: 1\n");
    assert!(e.contains("`bits`"), "{e}");
    let e = error_of("method: linear\nbitz: 4\n");
    assert!(e.contains("bitz"), "{e}");
    let e = error_of("method: linear\nbits: eight\n");
    assert!(e.contains("bits"), "{e}");
    let e = error_of("method: linear\ncalibration_images: 0\n");
    assert!(e.contains("`calibration_images`"), "{e}");
    let ok = RawMethodConfig::from_yaml("method: linear\nbits: 4\n", "ok.yaml").unwrap();
    assert_eq!(registry::build(&ok).expect("valid").label(), "linear W4A4");
}
