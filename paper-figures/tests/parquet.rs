//! Parquet tables read back with the `parquet` crate's record reader equal the input, nulls
//! included, with the declared types (UTF-8, unsigned 64-bit, double, boolean).

mod common;

use std::collections::BTreeMap;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use qbench_figures::render;

/// Every row of a Parquet file as column name -> field.
fn rows(path: &std::path::Path) -> Vec<BTreeMap<String, Field>> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(name, field)| (name.clone(), field.clone()))
                .collect()
        })
        .collect()
}

fn opt_double(v: Option<f64>) -> Field {
    v.map_or(Field::Null, Field::Double)
}

#[test]
fn parquet_tables_read_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::input();
    render(&input, dir.path()).unwrap();

    let methods = rows(&dir.path().join("methods.parquet"));
    assert_eq!(methods.len(), input.methods.len());
    for (row, m) in methods.iter().zip(&input.methods) {
        assert_eq!(row["label"], Field::Str(m.label.clone()));
        assert_eq!(row["accuracy_mean_pct"], Field::Double(m.accuracy_mean));
        assert_eq!(row["accuracy_std_pct"], Field::Double(m.accuracy_std));
        assert_eq!(row["quant_ops"], Field::ULong(m.quant_ops));
        assert_eq!(row["weight_bits_total"], Field::ULong(m.weight_bits_total));
        assert_eq!(
            row["energy_per_inference_nj"],
            opt_double(m.energy_per_inference_nj)
        );
        assert_eq!(row["area_um2"], opt_double(m.area_um2));
        assert_eq!(
            row["variant"],
            m.variant.clone().map_or(Field::Null, Field::Str)
        );
        for category in qbench_figures::ENERGY_CATEGORIES {
            assert_eq!(
                row[&format!("energy_{category}_nj")],
                opt_double(m.energy_breakdown_nj.get(category).copied()),
                "{category}"
            );
        }
    }

    let hw = rows(&dir.path().join("hw_units.parquet"));
    assert_eq!(hw.len(), input.hw_units.len());
    for (row, u) in hw.iter().zip(&input.hw_units) {
        assert_eq!(row["unit"], Field::Str(u.unit.clone()));
        assert_eq!(row["cells"], Field::ULong(u.cells));
        assert_eq!(row["area_um2"], Field::Double(u.area_um2));
        assert_eq!(
            row["energy_per_op_pj_sim"],
            opt_double(u.energy_per_op_pj_sim)
        );
        assert_eq!(
            row["energy_per_op_pj_vectorless"],
            opt_double(u.energy_per_op_pj_vectorless)
        );
        assert_eq!(
            row["energy_per_op_pj_same_stream"],
            opt_double(u.energy_per_op_pj_same_stream)
        );
    }
}
