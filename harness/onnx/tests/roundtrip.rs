//! Round trip: every built-in method's graph, exported to ONNX and imported again, is the same
//! graph file byte for byte; a model edited into something else is rejected with the node named.

mod common;

use qbench_onnx::{Provenance, export, from_bytes, import, to_bytes};

#[test]
fn every_method_round_trips_to_a_byte_identical_graph_file() {
    for (label, graph, _) in common::graphs() {
        let bytes = graph.to_bytes().expect("serializes");
        let sha = qbench_io::sha256_hex(&bytes);
        let model = export(
            graph,
            &sha,
            &Provenance {
                source: Some(format!("{label}.qgraph")),
            },
        )
        .unwrap_or_else(|e| panic!("{label}: {e}"));
        let onnx = to_bytes(&model);
        let back =
            import(&from_bytes(&onnx).expect("decodes")).unwrap_or_else(|e| panic!("{label}: {e}"));
        let again = back.to_bytes().expect("serializes");
        assert!(
            again == bytes,
            "{label}: the re-imported graph file differs"
        );
        let meta = |k: &str| {
            model
                .metadata_props
                .iter()
                .find(|p| p.key == k)
                .map(|p| p.value.clone())
        };
        assert_eq!(meta("qbench.graph_sha256").as_deref(), Some(sha.as_str()));
        eprintln!(
            "{label}: {} graph bytes, {} ONNX bytes, round trip identical",
            bytes.len(),
            onnx.len()
        );
    }
}

#[test]
fn an_edited_exported_model_is_rejected_naming_the_node() {
    let (_, graph, _) = &common::graphs()[0];
    let mut model = export(graph, "", &Provenance::default()).expect("exports");
    let g = model.graph.as_mut().expect("graph");
    // Change one ONNX node's operator: the group no longer computes its engine node.
    let k = g
        .node
        .iter()
        .position(|n| n.op_type == "Clip")
        .expect("a requantizer's Clip");
    g.node[k].op_type = "Max".into();
    let err = import(&model).expect_err("rejected").to_string();
    assert!(err.contains("differs from what qbench writes"), "{err}");
    assert!(err.contains(&format!("node {k}")), "{err}");
}
