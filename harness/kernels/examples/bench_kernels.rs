//! `cargo run --release -p qbench-kernels --example bench_kernels -- [--json PATH] [--quick]`
//!
//! Runs [`qbench_kernels::bench::run`] and prints the table; with `--json PATH` also writes the
//! report as JSON (`-` for stdout, the table then goes to stderr).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = qbench_kernels::bench::BenchConfig::default();
    let mut json = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--json" => {
                json = args.get(i + 1).cloned();
                i += 1;
            }
            "--quick" => {
                cfg.budget_per_case = std::time::Duration::from_millis(300);
                cfg.peak_budget = std::time::Duration::from_millis(100);
            }
            other => {
                eprintln!("unknown argument {other}; usage: bench_kernels [--json PATH] [--quick]");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    let report = qbench_kernels::bench::run(&cfg);
    match json.as_deref() {
        Some("-") => {
            eprintln!("{report}");
            println!("{}", report.to_json());
        }
        Some(path) => {
            println!("{report}");
            std::fs::write(path, report.to_json()).expect("write JSON report");
        }
        None => println!("{report}"),
    }
}
