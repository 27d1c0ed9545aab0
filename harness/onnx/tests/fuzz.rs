//! Malformed models: an exported model with bytes flipped, truncated or with fields out of range
//! is a clean error (or, where the damage is harmless, a valid graph), never a panic.

mod common;

use qbench_onnx::proto::data_type;
use qbench_onnx::{Provenance, export, from_bytes, import, to_bytes};

fn cases() -> usize {
    std::env::var("QBENCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[test]
fn mutated_models_never_panic_the_importer() {
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let graphs = common::graphs();
    let mut outcomes = [0usize; 3];
    for case in 0..cases() {
        let (label, graph, _) = &graphs[case % graphs.len()];
        let mut bytes = to_bytes(&export(graph, "", &Provenance::default()).expect("exports"));
        match case % 3 {
            0 => {
                for _ in 0..1 + next() % 8 {
                    let i = next() % bytes.len();
                    bytes[i] ^= 1 << (next() % 8);
                }
            }
            1 => bytes.truncate(next() % bytes.len()),
            _ => {
                // Structurally valid, semantically damaged: a tensor's dims or type changed.
                let mut model = from_bytes(&bytes).expect("decodes");
                let g = model.graph.as_mut().expect("graph");
                let k = next() % g.initializer.len();
                let t = &mut g.initializer[k];
                match next() % 3 {
                    0 => t.dims = vec![(next() % 7) as i64 - 1; 1 + next() % 4],
                    1 => t.data_type = [data_type::FLOAT, data_type::INT64, 4, 99][next() % 4],
                    _ => t.raw_data.truncate(t.raw_data.len() / 2),
                }
                bytes = to_bytes(&model);
            }
        }
        let result = std::panic::catch_unwind(|| from_bytes(&bytes).and_then(|m| import(&m)));
        match result {
            Err(_) => panic!("{label}, case {case}: the importer panicked"),
            Ok(Ok(_)) => outcomes[0] += 1,
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty());
                outcomes[if e.to_string().contains("ONNX") { 1 } else { 2 }] += 1;
            }
        }
    }
    eprintln!(
        "{} cases: {} imported, {} ONNX errors, {} other errors",
        cases(),
        outcomes[0],
        outcomes[1],
        outcomes[2]
    );
}
