//! Tables as typed columns, and the two tables of a run: methods and hardware units.
//!
//! One [`Table`] feeds every format: CSV and Parquet carry all columns as machine-readable values
//! (missing = empty / null); Markdown and LaTeX carry the paper subset, formatted, with `n/a` and a
//! footnote for each column that has a missing value.

pub mod csv;
pub mod latex;
pub mod markdown;
pub mod parquet;

use crate::input::{ENERGY_CATEGORIES, FigureInput};

/// Type of a column's values (decides Parquet physical type and display format).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// UTF-8 text.
    Text,
    /// Unsigned integer.
    Int,
    /// Floating point, shown with this many decimals in paper tables.
    Float(usize),
    /// Boolean, shown as yes/no.
    Bool,
}

/// One cell value; `Missing` means "not measured in this run".
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text cell.
    Text(String),
    /// Integer cell.
    Int(u64),
    /// Float cell.
    Float(f64),
    /// Boolean cell.
    Bool(bool),
    /// No value; rendered `n/a` with the column's footnote.
    Missing,
}

/// A column: machine name, paper header (with unit), type and paper visibility.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Name in CSV and Parquet (snake_case, unit suffix).
    pub name: String,
    /// Header in paper tables, with unit.
    pub header: String,
    /// Value type.
    pub kind: Kind,
    /// Whether Markdown and LaTeX show the column.
    pub in_paper: bool,
    /// Name of a column whose value paper tables append as `± value` (e.g. the standard deviation).
    pub plus_minus: Option<String>,
    /// Footnote explaining a missing value in this column.
    pub missing_note: String,
}

/// A table: caption, columns and rows of values (one value per column).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// File stem, e.g. `methods`.
    pub name: String,
    /// Caption for paper tables.
    pub caption: String,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Rows; each has exactly `columns.len()` values.
    pub rows: Vec<Vec<Value>>,
}

/// A footnote attached to a column with missing values in the paper subset.
#[derive(Debug, Clone, PartialEq)]
pub struct Footnote {
    /// Marker letter: `a`, `b`, ...
    pub mark: String,
    /// Footnote text.
    pub text: String,
}

impl Table {
    /// Index of the column named `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Paper columns in order, with their index.
    pub fn paper_columns(&self) -> impl Iterator<Item = (usize, &Column)> {
        self.columns.iter().enumerate().filter(|(_, c)| c.in_paper)
    }

    /// Footnote per paper column that has at least one missing value (`None` elsewhere).
    pub fn footnotes(&self) -> Vec<Option<Footnote>> {
        let mut next = 0u8;
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let missing = self.rows.iter().any(|r| r[i] == Value::Missing);
                (c.in_paper && missing).then(|| {
                    let mark = char::from(b'a' + next % 26).to_string();
                    next += 1;
                    Footnote {
                        mark,
                        text: c.missing_note.clone(),
                    }
                })
            })
            .collect()
    }

    /// The paper columns' header and rows as cells of one markup: text through `escape`, a
    /// missing value as `n/a` followed by `mark(letter)` where its column has a footnote.
    pub fn paper_cells(
        &self,
        escape: fn(&str) -> String,
        mark: fn(&str) -> String,
    ) -> (Vec<String>, Vec<Vec<String>>) {
        let notes = self.footnotes();
        let cols: Vec<usize> = self.paper_columns().map(|(i, _)| i).collect();
        let header = cols
            .iter()
            .map(|&i| escape(&self.columns[i].header))
            .collect();
        let rows = self
            .rows
            .iter()
            .map(|row| {
                cols.iter()
                    .map(|&i| match (self.paper_text(row, i), &notes[i]) {
                        (Some(text), _) => escape(&text),
                        (None, Some(n)) => format!("n/a{}", mark(&n.mark)),
                        (None, None) => "n/a".to_string(),
                    })
                    .collect()
            })
            .collect();
        (header, rows)
    }

    /// Formats a paper cell without markup: numbers with the column's decimals, `± std` appended
    /// where configured; `None` for a missing value (the caller adds `n/a` and the footnote mark).
    pub fn paper_text(&self, row: &[Value], col: usize) -> Option<String> {
        let c = &self.columns[col];
        let main = match (&row[col], c.kind) {
            (Value::Missing, _) => return None,
            (Value::Text(s), _) => s.clone(),
            (Value::Int(v), _) => group_thousands(*v),
            (Value::Float(v), Kind::Float(0)) if (0.0..1e15).contains(v) => {
                group_thousands(v.round() as u64)
            }
            (Value::Float(v), Kind::Float(d)) => format!("{v:.d$}"),
            (Value::Float(v), _) => format!("{v}"),
            (Value::Bool(b), _) => if *b { "yes" } else { "no" }.to_string(),
        };
        let pm = c
            .plus_minus
            .as_deref()
            .and_then(|n| self.column_index(n))
            .map(|j| (&row[j], self.columns[j].kind));
        Some(match (pm, c.kind) {
            (Some((Value::Float(s), _)), Kind::Float(d)) => format!("{main} ± {s:.d$}"),
            _ => main,
        })
    }
}

/// `1234567` -> `1,234,567`: large operation and bit counts stay readable.
fn group_thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn col(name: &str, header: &str, kind: Kind, in_paper: bool, missing_note: &str) -> Column {
    Column {
        name: name.to_string(),
        header: header.to_string(),
        kind,
        in_paper,
        plus_minus: None,
        missing_note: missing_note.to_string(),
    }
}

fn opt_f(v: Option<f64>) -> Value {
    v.map_or(Value::Missing, Value::Float)
}

/// The per-method table: accuracy (integer engine), quantization operations, weight bits,
/// energy per inference with its compute, requantization and memory parts, and area.
pub fn methods_table(input: &FigureInput) -> Table {
    let kinds: Vec<&str> = ENERGY_CATEGORIES
        .into_iter()
        .filter(|k| {
            input
                .methods
                .iter()
                .any(|m| m.energy_breakdown_nj.contains_key(*k))
        })
        .collect();
    let metric = input.metric.short();
    let mut accuracy = col(
        "accuracy_mean_pct",
        &format!("{metric} (%)"),
        Kind::Float(2),
        true,
        "",
    );
    accuracy.plus_minus = Some("accuracy_std_pct".to_string());
    let mut columns = vec![
        col("label", "Method", Kind::Text, true, ""),
        col("method", "Family", Kind::Text, false, ""),
        col("model", "Model", Kind::Text, false, ""),
        col("weight_bits", "W", Kind::Int, true, ""),
        col("activation_bits", "A", Kind::Int, true, ""),
        col(
            "variant",
            "Variant",
            Kind::Text,
            false,
            "the method has no structural variants",
        ),
        col("finetuned", "Fine-tuned", Kind::Bool, false, ""),
        col("seeds", "Seeds", Kind::Int, true, ""),
        col(
            "float_accuracy_pct",
            &format!("Float {} (%)", metric.to_lowercase()),
            Kind::Float(2),
            false,
            "float accuracy not recorded",
        ),
        accuracy,
        col("accuracy_std_pct", "Std (pp)", Kind::Float(2), false, ""),
        col(
            "fake_accuracy_pct",
            &format!("Fake-quant {} (%)", metric.to_lowercase()),
            Kind::Float(2),
            false,
            "",
        ),
        col("agreement", "Agreement", Kind::Float(4), false, ""),
        col(
            "onnxruntime_agreement",
            "onnxruntime agreement",
            Kind::Float(4),
            false,
            "not cross-checked: no Python environment when the cell ran",
        ),
        col(
            "onnxruntime_max_logit_diff",
            "onnxruntime max diff.",
            Kind::Int,
            false,
            "not cross-checked: no Python environment when the cell ran",
        ),
        col("quant_ops", "Quant. ops", Kind::Int, true, ""),
        col("weight_bits_total", "Weight bits", Kind::Int, true, ""),
        col(
            "energy_per_inference_nj",
            "Energy (nJ)",
            Kind::Float(2),
            true,
            "no energy estimate in this run (hardware flow not run for this method)",
        ),
        col(
            "area_um2",
            "Area (µm²)",
            Kind::Float(0),
            true,
            "no synthesised units for this method in this run",
        ),
    ];
    for k in &kinds {
        columns.push(col(
            &format!("energy_{k}_nj"),
            &format!("E {k} (nJ)"),
            Kind::Float(2),
            true,
            "no energy estimate in this run (hardware flow not run for this method)",
        ));
    }
    let rows = input
        .methods
        .iter()
        .map(|m| {
            let mut row = vec![
                Value::Text(m.label.clone()),
                Value::Text(m.method.clone()),
                Value::Text(m.model.clone()),
                Value::Int(m.weight_bits.into()),
                Value::Int(m.activation_bits.into()),
                m.variant.clone().map_or(Value::Missing, Value::Text),
                Value::Bool(m.finetuned),
                Value::Int(m.seeds.into()),
                opt_f(m.float_accuracy),
                Value::Float(m.accuracy_mean),
                Value::Float(m.accuracy_std),
                Value::Float(m.fake_accuracy),
                Value::Float(m.agreement),
                opt_f(m.runtime_agreement),
                m.runtime_max_logit_diff
                    .map_or(Value::Missing, |d| Value::Int(d.unsigned_abs())),
                Value::Int(m.quant_ops),
                Value::Int(m.weight_bits_total),
                opt_f(m.energy_per_inference_nj),
                opt_f(m.area_um2),
            ];
            row.extend(
                kinds
                    .iter()
                    .map(|k| opt_f(m.energy_breakdown_nj.get(*k).copied())),
            );
            row
        })
        .collect();
    let mut caption = format!(
        "{}: {} on {} (integer engine, mean ± std over seeds), W/A bit widths, \
         quantization operations per inference, total weight bits, energy per inference (split \
         into compute, requantization and memory) and hardware area (requantizer + PE units) per \
         method.",
        input.title,
        input.metric.described(),
        input.dataset
    );
    if let Some(note) = &input.energy_note {
        caption.push(' ');
        caption.push_str(note);
    }
    Table {
        name: "methods".to_string(),
        caption,
        columns,
        rows,
    }
}

/// The hardware table: one row per synthesised unit.
pub fn hw_table(input: &FigureInput) -> Table {
    let energy_note = "energy not estimated for this unit in this run";
    let columns = vec![
        col("unit", "Unit", Kind::Text, true, ""),
        col("role", "Role", Kind::Text, true, ""),
        col("cells", "Cells", Kind::Int, true, ""),
        col("area_um2", "Area (µm²)", Kind::Float(1), true, ""),
        col(
            "critical_path_ns",
            "Crit. path (ns)",
            Kind::Float(3),
            true,
            "",
        ),
        col(
            "energy_per_op_pj_sim",
            "E/op random ops (pJ)",
            Kind::Float(4),
            true,
            energy_note,
        ),
        col(
            "energy_per_op_pj_vectorless",
            "E/op vectorless (pJ)",
            Kind::Float(4),
            true,
            energy_note,
        ),
        col(
            "energy_per_op_pj_same_stream",
            "E/op same graph (pJ)",
            Kind::Float(4),
            false,
            "not simulated on the shared accumulators of one graph",
        ),
    ];
    let rows = input
        .hw_units
        .iter()
        .map(|u| {
            vec![
                Value::Text(u.unit.clone()),
                Value::Text(u.role.name().to_string()),
                Value::Int(u.cells),
                Value::Float(u.area_um2),
                Value::Float(u.critical_path_ns),
                opt_f(u.energy_per_op_pj_sim),
                opt_f(u.energy_per_op_pj_vectorless),
                opt_f(u.energy_per_op_pj_same_stream),
            ]
        })
        .collect();
    Table {
        name: "hw_units".to_string(),
        caption: format!(
            "{}: synthesised hardware units (cells, area, critical path, energy per operation).",
            input.title
        ),
        columns,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::group_thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1234567), "1,234,567");
    }
}
