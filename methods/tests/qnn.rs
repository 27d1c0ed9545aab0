//! `qnn`: conformance at W1A2 and W2A2 on the shared fixture, the multi-threshold lowering, exact
//! BN + k-bit quantization folding on every accumulator (gamma < 0 and a bias included), and
//! config errors.

mod common;

use common::config::{error_of, label_of};

use proptest::prelude::*;
use qbench_engine::{Op, Requant, count_ops};
use qbench_methods::method::lowbit::TrainOptions;
use qbench_methods::method::lowbit::quant::ActQuant;
use qbench_methods::method::lowbit::thresholds::BnFold;
use qbench_methods::method::qnn::{Qnn, QnnOptions};
use qbench_methods::method::{QuantMethod, conformance};
use qbench_methods::train::Quiet;

fn qnn(weight_bits: u8, activation_bits: u8) -> Qnn {
    Qnn::new(QnnOptions {
        weight_bits,
        activation_bits,
        model: "float".into(),
        train: TrainOptions {
            epochs: 1,
            images: 1500,
            batch_size: 50,
            lr: 2e-3,
        },
    })
    .expect("valid options")
}

fn conforms(method: &Qnn) -> qbench_methods::method::Quantized {
    let f = common::fixture();
    let report = conformance::check(method, &f.input(), &f.test).expect("runs");
    eprintln!("{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.int_accuracy > 0.5, "{report:?}");
    method.quantize(&f.input(), &mut Quiet).expect("quantizes")
}

#[test]
fn qnn_w1a2_conforms_with_binary_weights_and_multi_thresholds() {
    let q = conforms(&qnn(1, 2));
    let counts = count_ops(&q.graph);
    assert!(counts.macs_by_kind.contains_key("wbin_au8"), "{counts:?}");
    assert!(counts.macs_by_kind.contains_key("wbin_au2"), "{counts:?}");
    assert_eq!(
        counts.binary_macs, 0,
        "2-bit activations are not xnor-popcount"
    );
    for n in &q.graph.nodes {
        if let Op::Requant(r) = &n.op {
            let Requant::MultiThreshold { thresholds, flip } = &r.requant else {
                panic!("{} is not a multi-threshold", n.name)
            };
            assert_eq!(thresholds.len(), 3 * flip.len());
        }
    }
}

#[test]
fn qnn_w2a2_conforms() {
    let q = conforms(&qnn(2, 2));
    let counts = count_ops(&q.graph);
    assert!(counts.macs_by_kind.contains_key("wint2_au2"), "{counts:?}");
}

/// `round(clamp(y, 0, 1) n)` of batch norm written independently of `BnFold`, and the distance
/// of `y n` from the nearest rounding boundary.
fn reference_level(acc: i64, s: f64, b: f64, bn: [f64; 4], n: i32) -> (i32, f64) {
    let [gamma, beta, mean, var] = bn;
    let y = gamma * (acc as f64 * s + b - mean) / (var + 1e-5).sqrt() + beta;
    let t = y.clamp(0.0, 1.0) * f64::from(n);
    let level = (t + 0.5).floor() as i32;
    (level, ((t - t.floor()) - 0.5).abs())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// For every accumulator in range, the engine's multi-threshold gives the level of batch norm
    /// + k-bit quantization in real units, for either sign of gamma, gamma = 0, and any bias.
    #[test]
    fn multi_thresholds_are_exact_on_every_accumulator(
        bits in 1u8..=4,
        s in 1e-3f64..1.0,
        b in -20f64..20.0,
        gamma in prop_oneof![Just(0.0), -3f64..3.0],
        beta in -1f64..2.0,
        mean in -20f64..20.0,
        var in 1e-3f64..100.0,
        lo in -400i64..0,
        width in 0i64..800,
    ) {
        let hi = lo + width;
        let act = ActQuant::Levels { bits };
        let n = act.levels();
        let fold = BnFold::new(vec![s], vec![b], &[gamma], &[beta], &[mean], &[var]).unwrap();
        let rq = fold.requant(act, &[(lo, hi)]).unwrap();
        let Requant::MultiThreshold { thresholds, flip } = &rq else { panic!("levels fold to multi-thresholds") };
        prop_assert_eq!(thresholds.len(), n as usize);
        prop_assert_eq!(flip[0], gamma < 0.0);
        for acc in lo..=hi {
            let engine = rq.apply(acc as i32, 0);
            prop_assert_eq!(engine, act.of_real(fold.real(acc, 0)), "acc {}", acc);
            let (level, margin) = reference_level(acc, s, b, [gamma, beta, mean, var], n);
            if margin > 1e-9 {
                prop_assert_eq!(engine, level, "acc {}", acc);
            }
        }
    }
}

#[test]
fn bad_configs_name_the_key() {
    let e = error_of("method: qnn\nweight_bits: 9\n");
    assert!(e.contains("`weight_bits`") && e.contains("1..=8"), "{e}");
    let e = error_of("method: qnn\nactivation_bits: 0\n");
    assert!(e.contains("`activation_bits`"), "{e}");
    let e = error_of("method: qnn\nactivation_bitz: 2\n");
    assert!(e.contains("activation_bitz"), "{e}");
    let e = error_of("method: qnn\ntrain: {batch_size: 1}\n");
    assert!(e.contains("`train.batch_size`"), "{e}");
    assert_eq!(
        label_of("method: qnn\nweight_bits: 4\nactivation_bits: 4\n"),
        "QNN W4A4"
    );
}
