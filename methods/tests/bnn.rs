//! `bnn`: conformance on the shared fixture, the binary lowering, exact BN + sign threshold
//! folding (every accumulator value, gamma < 0 and a layer bias included), and config errors.

mod common;

use common::config::{error_of, label_of};

use proptest::prelude::*;
use qbench_engine::{Op, Requant, count_ops};
use qbench_methods::method::bnn::{Bnn, BnnOptions};
use qbench_methods::method::lowbit::TrainOptions;
use qbench_methods::method::lowbit::quant::ActQuant;
use qbench_methods::method::lowbit::thresholds::BnFold;
use qbench_methods::method::{QuantMethod, conformance};
use qbench_methods::train::Quiet;

fn small_training() -> TrainOptions {
    TrainOptions {
        epochs: 1,
        images: 1500,
        batch_size: 50,
        lr: 5e-3,
    }
}

#[test]
fn bnn_from_the_float_cnn_conforms_and_runs_on_xnor_popcount() {
    let f = common::fixture();
    let method = Bnn::new(BnnOptions {
        train: small_training(),
        ..BnnOptions::default()
    })
    .expect("valid options");
    let report = conformance::check(&method, &f.input(), &f.test).expect("runs");
    eprintln!("{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.int_accuracy > 0.5, "{report:?}");

    let q = method.quantize(&f.input(), &mut Quiet).expect("quantizes");
    let counts = count_ops(&q.graph);
    // First layer: +-1 weights over u8 pixels; the hidden conv and the score layer: xnor-popcount.
    assert!(
        counts.macs_by_kind.get("wbin_au8").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    assert_eq!(
        counts.binary_macs,
        counts.total_macs - counts.macs_by_kind["wbin_au8"]
    );
    let ops: Vec<&str> = q.graph.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(
        ops.iter()
            .filter(|o| **o == "binary_conv2d" || **o == "binary_dense")
            .count(),
        2,
        "{ops:?}"
    );
    assert!(q.graph.nodes.iter().all(|n| match &n.op {
        Op::Requant(r) => matches!(r.requant, Requant::Threshold { .. }),
        _ => true,
    }));
    assert_eq!(
        counts.requant_by_kind.keys().collect::<Vec<_>>(),
        ["threshold"]
    );
}

#[test]
fn bnn_own_mlp_from_scratch_conforms() {
    let f = common::fixture();
    let method = Bnn::new(BnnOptions {
        model: "mlp".into(),
        train: small_training(),
    })
    .expect("valid options");
    let report = conformance::check(&method, &f.input(), &f.test).expect("runs");
    eprintln!("{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.int_accuracy > 0.5, "{report:?}");
}

/// Sign of batch norm written independently of `BnFold`: `gamma (v - mean) / sqrt(var + eps) + beta`.
fn reference_sign(acc: i64, s: f64, b: f64, bn: [f64; 4]) -> (f64, i32) {
    let [gamma, beta, mean, var] = bn;
    let v = acc as f64 * s + b;
    let y = gamma * (v - mean) / (var + 1e-5).sqrt() + beta;
    (y, if y >= 0.0 { 1 } else { -1 })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// For every accumulator in the channel's range, the engine's threshold gives the same sign as
    /// batch norm evaluated in real units, for either sign of gamma, gamma = 0, and any bias.
    #[test]
    fn sign_thresholds_are_exact_on_every_accumulator(
        s in 1e-3f64..4.0,
        b in -50f64..50.0,
        gamma in prop_oneof![Just(0.0), -3f64..3.0],
        beta in -2f64..2.0,
        mean in -50f64..50.0,
        var in 1e-3f64..400.0,
        lo in -600i64..0,
        width in 0i64..1200,
    ) {
        let hi = lo + width;
        let fold = BnFold::new(vec![s], vec![b], &[gamma], &[beta], &[mean], &[var]).unwrap();
        let rq = fold.requant(ActQuant::Sign, &[(lo, hi)]).unwrap();
        let Requant::Threshold { flip, .. } = &rq else { panic!("sign folds to a threshold") };
        prop_assert_eq!(flip[0], gamma < 0.0);
        for acc in lo..=hi {
            let engine = rq.apply(acc as i32, 0);
            prop_assert_eq!(engine, ActQuant::Sign.of_real(fold.real(acc, 0)), "acc {}", acc);
            let (y, sign) = reference_sign(acc, s, b, [gamma, beta, mean, var]);
            // The independent formula rounds differently; it must agree away from the boundary.
            if y.abs() > 1e-9 {
                prop_assert_eq!(engine, sign, "acc {} y {}", acc, y);
            }
        }
    }
}

#[test]
fn bad_configs_name_the_key() {
    let e = error_of("method: bnn\nmodel: resnet7\n");
    assert!(e.contains("`model`") && e.contains("resnet7"), "{e}");
    let e = error_of("method: bnn\nweight_bits: 2\n");
    assert!(e.contains("weight_bits"), "{e}");
    let e = error_of("method: bnn\ntrain: {epochs: 0}\n");
    assert!(e.contains("`train.epochs`"), "{e}");
    let e = error_of("method: bnn\ntrain: {lr: 2}\n");
    assert!(e.contains("`train.lr`"), "{e}");
    let e = error_of("method: bnn\ntrain: {batch: 64}\n");
    assert!(e.contains("batch"), "{e}");
    assert_eq!(label_of("method: bnn\nmodel: mlp\n"), "BNN mlp");
}

#[test]
fn unsupported_architectures_are_errors_naming_the_layer() {
    let f = common::fixture();
    let method = Bnn::new(BnnOptions {
        model: "resnet20".into(),
        train: small_training(),
    })
    .expect("valid options");
    let err = method
        .quantize(&f.input(), &mut Quiet)
        .err()
        .expect("resnet is refused");
    assert!(err.to_string().contains("residual"), "{err}");
}
