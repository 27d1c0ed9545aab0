//! The benchmark runs end to end and its report serializes (no timing is asserted).

use qbench_kernels::bench::{BenchConfig, run};
use std::time::Duration;

#[test]
fn bench_report_smoke() {
    let cfg = BenchConfig {
        budget_per_case: Duration::from_millis(1),
        peak_budget: Duration::from_millis(5),
        threads: vec![1, 2],
    };
    let report = run(&cfg);
    assert_eq!(report.cases.len(), 5);
    for c in &report.cases {
        assert_eq!(c.results.len(), 2);
        assert!(c.results.iter().all(|r| r.runs >= 3 && r.ops_per_sec > 0.0));
    }
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["cases"].as_array().unwrap().len(), 5);
    let table = report.to_string();
    assert!(
        table.contains("gemm u8i8 M=N=K=1024")
            && table.contains("depthwise3x3")
            && table.contains("binary conv3x3")
    );
}
