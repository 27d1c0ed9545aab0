//! GitHub-flavoured Markdown: a pipe table, `n/a[^a]` for missing values and footnotes below.

use super::Table;

/// Escapes the characters that would break a pipe table cell.
pub fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', " ")
}

/// Renders the paper columns of `table` with its caption as a heading line.
pub fn render(table: &Table) -> String {
    let notes = table.footnotes();
    let cols: Vec<usize> = table.paper_columns().map(|(i, _)| i).collect();
    let mut out = format!("**{}**\n\n", escape(&table.caption));
    let (header, rows) = table.paper_cells(escape, |m| format!("[^{m}]"));
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    let align: Vec<&str> = cols
        .iter()
        .map(|&i| match table.columns[i].kind {
            super::Kind::Text => ":--",
            _ => "--:",
        })
        .collect();
    out.push_str(&format!("|{}|\n", align.join("|")));
    for cells in rows {
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    let used: Vec<_> = notes.iter().flatten().collect();
    if !used.is_empty() {
        out.push('\n');
        for n in used {
            out.push_str(&format!("[^{}]: n/a: {}\n", n.mark, escape(&n.text)));
        }
    }
    out
}
