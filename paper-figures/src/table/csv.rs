//! CSV with every column: machine names as headers, full-precision numbers (Rust's shortest
//! round-trip form), `true`/`false`, and an empty field for a missing value.

use super::{Table, Value};
use crate::error::{Error, Result};

/// Renders `table` as CSV bytes.
pub fn render(table: &Table) -> Result<Vec<u8>> {
    let enc = |e: csv::Error| Error::Encode {
        what: format!("{}.csv", table.name),
        reason: e.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(table.columns.iter().map(|c| c.name.as_str()))
        .map_err(enc)?;
    for row in &table.rows {
        w.write_record(row.iter().map(field)).map_err(enc)?;
    }
    w.into_inner().map_err(|e| Error::Encode {
        what: format!("{}.csv", table.name),
        reason: e.to_string(),
    })
}

fn field(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Missing => String::new(),
    }
}
