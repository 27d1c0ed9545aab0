//! Operation counts on a graph whose numbers are worked out by hand, and `evaluate`.

mod common;

use std::cell::RefCell;

use common::{random_case, small_cnn};
use qbench_engine::exec::reference;
use qbench_engine::*;

#[test]
fn small_cnn_counts_by_hand() {
    let g = small_cnn(1, 32, 64);
    let c = count_ops(&g);
    let conv1 = 32 * 28 * 28 * 9;
    let conv2 = 64 * 14 * 14 * 32 * 9;
    let fc = 3136 * 10;
    assert_eq!(c.total_macs, (conv1 + conv2 + fc) as u64);
    assert_eq!(c.total_macs, 3_869_824);
    assert_eq!(c.macs_by_kind["wint8_au8"], c.total_macs);
    assert_eq!(c.binary_macs, 0);
    assert_eq!(
        c.requant_by_kind["shift"],
        (32 * 28 * 28 + 64 * 14 * 14) as u64
    );
    assert_eq!(c.total_requant_ops, 37_632);
    assert_eq!(c.weight_bits, (288 + 18_432 + 31_360) * 8);
    assert_eq!(c.param_bits, (32 + 64) * 32 + 2 * 8);
    assert_eq!(
        c.other_ops["max_pool_compare"],
        (32 * 14 * 14 + 64 * 7 * 7) * 3
    );
    // Peak: conv1's i32 accumulators and rq1's u8 output alive together.
    assert_eq!(c.peak_activation_bits, 32 * 28 * 28 * 32 + 32 * 28 * 28 * 8);
    assert_eq!(c.nodes.len(), g.nodes.len());
    assert_eq!(
        c.nodes[1].mac_kind.as_ref().map(|k| k.key()),
        Some("wint8_au8")
    );
    assert_eq!(c.nodes[1].activation_bits, 32 * 28 * 28 * 32);
    // Serializable for the result store.
    let json = serde_json::to_string(&c).unwrap();
    let back: OpCounts = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
}

#[test]
fn counts_key_weight_kinds_and_binary_macs() {
    for seed in 0..200 {
        let case = random_case(seed);
        let c = count_ops(&case.graph);
        let sum: u64 = c.macs_by_kind.values().sum();
        assert_eq!(sum, c.total_macs);
        assert_eq!(
            c.macs_by_kind.get("wbin_abin").copied().unwrap_or(0),
            c.binary_macs
        );
        let rq: u64 = c.requant_by_kind.values().sum();
        assert_eq!(rq, c.total_requant_ops);
        assert!(c.peak_activation_bits <= c.activation_bits_total);
        for (node, row) in case.graph.nodes.iter().zip(&c.nodes) {
            if let Op::Conv2d(conv) = &node.op {
                let kind = row.mac_kind.as_ref().expect("a conv counts MACs");
                assert_eq!(kind.weights(), conv.weight_kind);
                assert_eq!(kind.acts(), case.graph.nodes[node.inputs[0]].output.dtype);
                assert_eq!(
                    row.weight_bits,
                    conv.weights.len() as u64 * conv.weight_kind.storage_bits()
                );
            }
        }
    }
}

#[test]
fn evaluate_reports_accuracy_progress_and_counts() {
    let g = small_cnn(9, 4, 8);
    let n = 50;
    let images: Vec<u8> = (0..n * 784).map(|i| (i * 31 % 253) as u8).collect();
    let preds = reference::run(&g, &images, n).unwrap().argmax();
    let labels: Vec<u16> = preds.iter().map(|&p| p as u16).collect();
    let seen = RefCell::new(Vec::new());
    let r = evaluate(&g, &images, &labels, 16, |d| seen.borrow_mut().push(d)).unwrap();
    assert_eq!(r.images, n);
    assert_eq!(r.top1, 1.0);
    assert_eq!(r.top5, None, "10 classes: no top-5");
    assert_eq!(*seen.borrow(), vec![16, 32, 48, 50]);
    assert_eq!(r.counts, count_ops(&g));
    assert!(r.images_per_second > 0.0);

    // Half the labels wrong.
    let wrong: Vec<u16> = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| if i % 2 == 0 { (l + 1) % 10 } else { l })
        .collect();
    let r = evaluate(&g, &images, &wrong, 7, |_| {}).unwrap();
    assert_eq!(r.top1, 0.5);

    assert!(matches!(
        evaluate(&g, &images, &[10; 50], 8, |_| {}),
        Err(EngineError::Input(_))
    ));
    assert!(matches!(
        evaluate(&g, &images, &labels[..49], 8, |_| {}),
        Err(EngineError::Input(_))
    ));
    assert!(evaluate(&g, &images, &labels, 0, |_| {}).is_err());
}

#[test]
fn evaluate_reports_top5_above_ten_classes() {
    // 12 classes: a dense layer over 12 raw pixels with the identity as weights, so logit i is pixel
    // i and the ranking is known.
    let mut b = GraphBuilder::new(&[12]);
    let mut w = vec![0i8; 144];
    for i in 0..12 {
        w[i * 12 + i] = 1;
    }
    let d = b
        .dense(
            "d",
            0,
            Dense {
                in_features: 12,
                out_features: 12,
                weight_kind: WeightKind::Int { bits: 2 },
                input_zero_point: 0,
                weights: w,
                bias: None,
            },
        )
        .unwrap();
    let g = b.finish(d).unwrap();
    // Image 0 ranks 11 > 10 > ... ; image 1 ranks 0 > 1 > ...
    let mut images: Vec<u8> = (0..12).collect();
    images.extend((0..12).rev());
    // Image 0 label 7 (4th best): top-5 only. Image 1 label 0: top-1.
    let r = evaluate(&g, &images, &[7, 0], 2, |_| {}).unwrap();
    assert_eq!(r.top1, 0.5);
    assert_eq!(r.top5, Some(1.0));
}

#[test]
fn predictions_accuracy_and_agreement_are_counted_one_way() {
    let g = small_cnn(9, 4, 8);
    let n = 37;
    let images: Vec<u8> = (0..n * 784).map(|i| (i * 17 % 251) as u8).collect();
    let reference = reference::run(&g, &images, n).unwrap();
    // Any batch size gives the reference executor's arg-max, row by row.
    for batch in [1, 5, 256] {
        assert_eq!(predict(&g, &images, batch).unwrap(), reference.argmax());
    }
    assert_eq!(
        argmax_rows(&reference.values, g.classes()),
        reference.argmax()
    );
    assert!(matches!(
        predict(&g, &images[..100], 4),
        Err(EngineError::Input(_))
    ));
    assert!(predict(&g, &images, 0).is_err());
    // Ties go to the lowest index, for integer and f64 logits alike.
    assert_eq!(argmax_rows(&[3, 7, 7, 1, 2, 2], 3), [1, 1]);
    assert_eq!(argmax_rows(&[0.5, 0.5, -1.0, 2.0], 2), [0, 1]);
    assert_eq!(accuracy(&[1, 2, 3, 4], &[1, 0, 3, 0]), 0.5);
    assert_eq!(agreement(&[1, 2, 3, 4], &[1, 2, 0, 0]), 0.5);
    assert_eq!(accuracy(&[], &[]), 0.0);
}
