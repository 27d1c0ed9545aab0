//! Parquet through the `parquet` crate (arrow-rs, no Arrow, no codecs): one row group, one
//! nullable column per table column (UTF-8 text, unsigned 64-bit integer, double, boolean);
//! a missing value is null. Uncompressed: the tables are a few kilobytes.

use std::sync::Arc;

use parquet::basic::{LogicalType, Repetition, Type as Physical};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::{Kind, Table, Value};
use crate::error::{Error, Result};

/// Renders `table` as Parquet bytes.
pub fn render(table: &Table) -> Result<Vec<u8>> {
    let enc = |e: parquet::errors::ParquetError| Error::Encode {
        what: format!("{}.parquet", table.name),
        reason: e.to_string(),
    };
    let fields = table
        .columns
        .iter()
        .map(|c| {
            let (physical, logical) = match c.kind {
                Kind::Text => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
                Kind::Int => (Physical::INT64, Some(LogicalType::integer(64, false))),
                Kind::Float(_) => (Physical::DOUBLE, None),
                Kind::Bool => (Physical::BOOLEAN, None),
            };
            Type::primitive_type_builder(&c.name, physical)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(enc)?;
    let schema = Type::group_type_builder(&table.name)
        .with_fields(fields)
        .build()
        .map_err(enc)?;
    let props = WriterProperties::builder()
        .set_created_by(format!("qbench-figures {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut out = Vec::new();
    let mut writer =
        SerializedFileWriter::new(&mut out, Arc::new(schema), Arc::new(props)).map_err(enc)?;
    let mut group = writer.next_row_group().map_err(enc)?;
    let mut index = 0;
    while let Some(mut column) = group.next_column().map_err(enc)? {
        let cells: Vec<&Value> = table.rows.iter().map(|r| &r[index]).collect();
        // Definition level 1 = present, 0 = null; values hold only the present cells.
        let levels: Vec<i16> = cells
            .iter()
            .map(|v| i16::from(**v != Value::Missing))
            .collect();
        match column.untyped() {
            ColumnWriter::ByteArrayColumnWriter(w) => {
                let values: Vec<ByteArray> = cells
                    .iter()
                    .filter_map(|v| match v {
                        Value::Text(s) => Some(ByteArray::from(s.as_str())),
                        _ => None,
                    })
                    .collect();
                w.write_batch(&values, Some(&levels), None).map_err(enc)?;
            }
            ColumnWriter::Int64ColumnWriter(w) => {
                // Parquet stores UINT_64 in INT64 with the same bits.
                let values: Vec<i64> = cells
                    .iter()
                    .filter_map(|v| match v {
                        Value::Int(x) => Some(*x as i64),
                        _ => None,
                    })
                    .collect();
                w.write_batch(&values, Some(&levels), None).map_err(enc)?;
            }
            ColumnWriter::DoubleColumnWriter(w) => {
                let values: Vec<f64> = cells
                    .iter()
                    .filter_map(|v| match v {
                        Value::Float(x) => Some(*x),
                        _ => None,
                    })
                    .collect();
                w.write_batch(&values, Some(&levels), None).map_err(enc)?;
            }
            ColumnWriter::BoolColumnWriter(w) => {
                let values: Vec<bool> = cells
                    .iter()
                    .filter_map(|v| match v {
                        Value::Bool(x) => Some(*x),
                        _ => None,
                    })
                    .collect();
                w.write_batch(&values, Some(&levels), None).map_err(enc)?;
            }
            _ => unreachable!("the schema above only declares these four physical types"),
        }
        column.close().map_err(enc)?;
        index += 1;
    }
    group.close().map_err(enc)?;
    writer.close().map_err(enc)?;
    Ok(out)
}
