//! LaTeX `table` with booktabs rules (`\toprule`, `\midrule`, `\bottomrule`); needs
//! `\usepackage{booktabs}`. Missing values are `n/a` with a superscript note under the tabular.

use super::{Kind, Table};

/// Escapes LaTeX special characters in text; `±`, `µ` and `²` become math-mode equivalents.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str(r"\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out.push_str(r"\textasciitilde{}"),
            '^' => out.push_str(r"\textasciicircum{}"),
            '±' => out.push_str(r"$\pm$"),
            'µ' => out.push_str(r"$\mu$"),
            '²' => out.push_str(r"$^2$"),
            '×' => out.push_str(r"$\times$"),
            _ => out.push(ch),
        }
    }
    out
}

/// Renders the paper columns of `table` as a complete `table` float with caption and label.
pub fn render(table: &Table) -> String {
    let notes = table.footnotes();
    let cols: Vec<usize> = table.paper_columns().map(|(i, _)| i).collect();
    let spec: String = cols
        .iter()
        .map(|&i| match table.columns[i].kind {
            Kind::Text => 'l',
            _ => 'r',
        })
        .collect();
    let mut out = String::from(
        "% Requires \\usepackage{booktabs}.\n\\begin{table*}[t]\n\\centering\n\\small\n\\setlength{\\tabcolsep}{4pt}\n",
    );
    out.push_str(&format!("\\caption{{{}}}\n", escape(&table.caption)));
    out.push_str(&format!("\\label{{tab:{}}}\n", label_key(&table.name)));
    out.push_str(&format!("\\begin{{tabular}}{{{spec}}}\n\\toprule\n"));
    let (header, rows) = table.paper_cells(escape, |m| format!("\\textsuperscript{{{m}}}"));
    out.push_str(&format!("{} \\\\\n\\midrule\n", header.join(" & ")));
    for cells in rows {
        out.push_str(&format!("{} \\\\\n", cells.join(" & ")));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n");
    let used: Vec<_> = notes.iter().flatten().collect();
    if !used.is_empty() {
        out.push_str("\n\\smallskip\n{\\footnotesize\n");
        for n in used {
            out.push_str(&format!(
                "\\textsuperscript{{{}}}\\,n/a: {}.\\\\\n",
                n.mark,
                escape(&n.text)
            ));
        }
        out.push_str("}\n");
    }
    out.push_str("\\end{table*}\n");
    out
}

/// A `\label` key: letters and digits kept, anything else `-` (labels are not typeset, so
/// escaping would break them).
fn label_key(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn specials_are_escaped() {
        assert_eq!(escape("a_b 5% R&D"), r"a\_b 5\% R\&D");
        assert_eq!(
            escape("x^2 ~ {y}"),
            r"x\textasciicircum{}2 \textasciitilde{} \{y\}"
        );
        assert_eq!(escape("1 ± 2 µm²"), r"1 $\pm$ 2 $\mu$m$^2$");
    }
}
