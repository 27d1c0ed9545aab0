//! Constant tensors: building ONNX initializers from integers, and reading any initializer back as
//! integers or floats with its size checked before anything is allocated.

use crate::error::{OnnxError, Result};
use crate::proto::{TensorProto, data_type};

/// Most elements qbench reads from one ONNX tensor (2^28, the engine's element limit).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// A tensor of `data_type` with `dims`, its elements little-endian in `raw_data`.
fn raw(name: &str, data_type: i32, dims: &[usize], raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        data_type,
        dims: dims.iter().map(|&d| d as i64).collect(),
        raw_data,
        ..TensorProto::default()
    }
}

/// An int8 initializer.
pub fn i8_tensor(name: &str, dims: &[usize], v: &[i8]) -> TensorProto {
    raw(
        name,
        data_type::INT8,
        dims,
        v.iter().map(|&x| x as u8).collect(),
    )
}

/// A uint8 initializer.
pub fn u8_tensor(name: &str, dims: &[usize], v: &[u8]) -> TensorProto {
    raw(name, data_type::UINT8, dims, v.to_vec())
}

/// An int32 initializer.
pub fn i32_tensor(name: &str, dims: &[usize], v: &[i32]) -> TensorProto {
    raw(
        name,
        data_type::INT32,
        dims,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// An int64 initializer.
pub fn i64_tensor(name: &str, dims: &[usize], v: &[i64]) -> TensorProto {
    raw(
        name,
        data_type::INT64,
        dims,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// A float initializer.
pub fn f32_tensor(name: &str, dims: &[usize], v: &[f32]) -> TensorProto {
    raw(
        name,
        data_type::FLOAT,
        dims,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// A double initializer.
pub fn f64_tensor(name: &str, dims: &[usize], v: &[f64]) -> TensorProto {
    raw(
        name,
        data_type::DOUBLE,
        dims,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

fn err(t: &TensorProto, message: impl Into<String>) -> OnnxError {
    OnnxError::Tensor {
        name: t.name.clone(),
        message: message.into(),
    }
}

/// The tensor's dimensions as sizes, checked non-negative and within [`MAX_ELEMENTS`] in all.
pub fn dims(t: &TensorProto) -> Result<Vec<usize>> {
    let mut n: usize = 1;
    let mut out = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| err(t, format!("negative dimension {d}")))?;
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| err(t, format!("more than {MAX_ELEMENTS} elements")))?;
        out.push(d);
    }
    Ok(out)
}

/// Number of elements (checked as in [`dims`]).
pub fn numel(t: &TensorProto) -> Result<usize> {
    Ok(dims(t)?.iter().product())
}

fn element_size(t: &TensorProto) -> Result<usize> {
    Ok(match t.data_type {
        data_type::UINT8 | data_type::INT8 => 1,
        data_type::INT32 | data_type::FLOAT => 4,
        data_type::INT64 | data_type::DOUBLE => 8,
        other => {
            return Err(err(
                t,
                format!(
                    "data type {} ({other}) is not supported",
                    data_type::name(other)
                ),
            ));
        }
    })
}

/// The elements as f64 (integers exactly), whatever their storage; checks that the stored count
/// matches the dimensions.
pub fn to_f64(t: &TensorProto) -> Result<Vec<f64>> {
    if t.data_location == 1 {
        return Err(err(
            t,
            "external data is not supported (save the model with its data inside)",
        ));
    }
    let n = numel(t)?;
    let size = element_size(t)?;
    if !t.raw_data.is_empty() {
        if t.raw_data.len() != n * size {
            return Err(err(
                t,
                format!(
                    "raw data holds {} bytes, dimensions {:?} of {} need {}",
                    t.raw_data.len(),
                    t.dims,
                    data_type::name(t.data_type),
                    n * size
                ),
            ));
        }
        let b = &t.raw_data;
        return Ok(match t.data_type {
            data_type::UINT8 => b.iter().map(|&x| f64::from(x)).collect(),
            data_type::INT8 => b.iter().map(|&x| f64::from(x as i8)).collect(),
            data_type::INT32 => b
                .chunks_exact(4)
                .map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            data_type::FLOAT => b
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            data_type::INT64 => b
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    i64::from_le_bytes(a) as f64
                })
                .collect(),
            _ => b
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_le_bytes(a)
                })
                .collect(),
        });
    }
    let v: Vec<f64> = match t.data_type {
        data_type::UINT8 | data_type::INT8 | data_type::INT32 => {
            t.int32_data.iter().map(|&x| f64::from(x)).collect()
        }
        data_type::INT64 => t.int64_data.iter().map(|&x| x as f64).collect(),
        data_type::FLOAT => t.float_data.iter().map(|&x| f64::from(x)).collect(),
        _ => t.double_data.clone(),
    };
    if v.len() != n {
        return Err(err(
            t,
            format!(
                "holds {} elements, dimensions {:?} need {n}",
                v.len(),
                t.dims
            ),
        ));
    }
    Ok(v)
}

/// The elements as i64, each required to be an integer (any data type).
pub fn to_i64(t: &TensorProto) -> Result<Vec<i64>> {
    if t.data_type == data_type::INT64 && t.raw_data.is_empty() && t.data_location != 1 {
        let n = numel(t)?;
        if t.int64_data.len() != n {
            return Err(err(
                t,
                format!("holds {} elements, need {n}", t.int64_data.len()),
            ));
        }
        return Ok(t.int64_data.clone());
    }
    if t.data_type == data_type::INT64 && !t.raw_data.is_empty() {
        let n = numel(t)?;
        if t.raw_data.len() != n * 8 {
            return Err(err(
                t,
                format!("raw data holds {} bytes, need {}", t.raw_data.len(), n * 8),
            ));
        }
        return Ok(t
            .raw_data
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            })
            .collect());
    }
    to_f64(t)?
        .into_iter()
        .map(|x| {
            if x.fract() == 0.0 && x.abs() < 9.0e15 {
                Ok(x as i64)
            } else {
                Err(err(t, format!("element {x} is not an integer")))
            }
        })
        .collect()
}
