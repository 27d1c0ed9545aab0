//! Renders the tables and figures of a run from a JSON `FigureInput`.
//!
//! ```text
//! cargo run --release -p qbench-figures --example demo -- INPUT.json OUT_DIR [CLAIMS.yaml]
//! ```
//! Without a claims file the shipped `paper-figures/claims.yaml` is used; the input's own
//! `claims` are replaced by the reproduction of those claims.

use std::path::PathBuf;
use std::process::ExitCode;

use qbench_figures::{FigureInput, claims, render};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, out) = match args.as_slice() {
        [input, out] | [input, out, _] => (PathBuf::from(input), PathBuf::from(out)),
        _ => {
            eprintln!("usage: demo INPUT.json OUT_DIR [CLAIMS.yaml]");
            return ExitCode::from(2);
        }
    };
    let run = || -> qbench_figures::Result<qbench_figures::Rendered> {
        let mut fig = FigureInput::from_json_file(&input)?;
        let specs = match args.get(2) {
            Some(path) => claims::load(path.as_ref())?,
            None => claims::shipped()?,
        };
        fig.claims = claims::reproduce(&specs, &fig);
        render(&fig, &out)
    };
    match run() {
        Ok(r) => {
            println!("wrote {}", r.index.display());
            for (stem, why) in &r.not_drawn {
                println!("not drawn: {stem}: {}", why.join("; "));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
