//! The LaTeX tables compile with pdflatex and booktabs.
//!
//! Needs `pdflatex` (Debian: texlive-latex-base, texlive-latex-recommended for booktabs). Without
//! it the test prints a notice and passes, unless `QBENCH_REQUIRE_LATEX=1`, which makes a missing
//! pdflatex a failure (set it where TeX is installed, e.g. in CI).

mod common;

use std::process::Command;

use qbench_figures::render;

#[test]
fn latex_tables_compile_with_booktabs() {
    if Command::new("pdflatex").arg("--version").output().is_err() {
        let msg = "pdflatex not found: install the Debian packages texlive-latex-base and \
                   texlive-latex-recommended";
        assert!(std::env::var_os("QBENCH_REQUIRE_LATEX").is_none(), "{msg}");
        eprintln!("skipping: {msg}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    render(&common::input(), dir.path()).unwrap();
    // The tables are `table*` floats: check them against a two-column conference page, whose
    // full text width is 7.16 in (IEEEtran).
    let doc = "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\
               \\setlength{\\textwidth}{7.16in}\n\
               \\begin{document}\n\\input{methods.tex}\n\\input{hw_units.tex}\n\
               See Tables~\\ref{tab:methods} and~\\ref{tab:hw-units}.\n\\end{document}\n";
    std::fs::write(dir.path().join("doc.tex"), doc).unwrap();
    let out = Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "-halt-on-error", "doc.tex"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("doc.log")).unwrap_or_default();
    assert!(out.status.success(), "pdflatex failed:\n{log}");
    assert!(dir.path().join("doc.pdf").is_file());
    let overfull: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Overfull \\hbox"))
        .collect();
    assert!(
        overfull.is_empty(),
        "a table is wider than the page: {overfull:?}"
    );
}
