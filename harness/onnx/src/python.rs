//! The project's Python environment (`.ci/python-env` makes `.venv/`), and running a model in
//! onnxruntime or qonnx through it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{OnnxError, Result};

/// The runner script (`py/run_model.py`), embedded so an installed `qbench` needs no source tree.
pub const RUN_MODEL_PY: &str = include_str!("../py/run_model.py");

/// The repository root this crate was built in.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// The interpreter: `$QBENCH_PYTHON` if set, else `.venv/bin/python` in the current folder (a
/// checkout `qbench` runs in), else in the repository it was built from. The error names
/// `.ci/python-env`, which creates the environment.
pub fn interpreter() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("QBENCH_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let venv = |root: PathBuf| root.join(".venv").join("bin").join("python");
    let built = venv(repo_root());
    [venv(PathBuf::new()), built.clone()]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| {
            OnnxError::Model(format!(
                "no Python environment: run .ci/python-env (creates {}) or set QBENCH_PYTHON to \
                 a python with onnx, onnxruntime, numpy and qonnx",
                built.display()
            ))
        })
}

/// Writes `images` (`n` images of `shape`, u8) as a NumPy `.npy` file of shape `[n, ...shape]`.
pub fn write_npy_u8(path: &Path, images: &[u8], n: usize, shape: &[usize]) -> Result<()> {
    let dims: Vec<String> = std::iter::once(n)
        .chain(shape.iter().copied())
        .map(|d| d.to_string())
        .collect();
    let mut header = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + images.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(images);
    qbench_io::write_atomic(path, bytes)?;
    Ok(())
}

/// What running a model in Python gave.
#[derive(Clone, Debug)]
pub struct PyRun {
    /// The logits, row-major `[images, classes]`.
    pub logits: Vec<i32>,
    /// Images per second, when timed.
    pub images_per_second: Option<f64>,
}

/// Runs the ONNX model at `model` on `n` images of `shape` with `threads` onnxruntime threads
/// (qonnx's executor for QONNX models), `batch` images per call; `time` also measures a second
/// pass. The output must be integral (int32 logits, or floats holding integers).
pub fn run_model(
    model: &Path,
    images: &[u8],
    n: usize,
    shape: &[usize],
    threads: usize,
    batch: usize,
    time: bool,
) -> Result<PyRun> {
    let mut extra = vec![
        "--threads".to_string(),
        threads.to_string(),
        "--batch".to_string(),
        batch.max(1).to_string(),
    ];
    if time {
        extra.push("--time".into());
    }
    let (bytes, stdout) = run(model, images, n, shape, &extra)?;
    let logits = bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let images_per_second = stdout
        .lines()
        .find_map(|l| l.strip_prefix("images_per_second="))
        .and_then(|v| v.trim().parse().ok());
    Ok(PyRun {
        logits,
        images_per_second,
    })
}

/// Runs the model at `model` (a float output, e.g. a QDQ model's dequantized logits) on `n`
/// images in onnxruntime; returns its outputs row-major.
pub fn run_model_float(model: &Path, images: &[u8], n: usize, shape: &[usize]) -> Result<Vec<f32>> {
    let (bytes, _) = run(model, images, n, shape, &["--float".to_string()])?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn run(
    model: &Path,
    images: &[u8],
    n: usize,
    shape: &[usize],
    extra: &[String],
) -> Result<(Vec<u8>, String)> {
    let python = interpreter()?;
    let dir = tempfile::tempdir().map_err(|e| {
        qbench_io::IoError::new("create a temporary folder in", std::env::temp_dir(), e)
    })?;
    let script = dir.path().join("run_model.py");
    qbench_io::write_atomic(&script, RUN_MODEL_PY)?;
    let npy = dir.path().join("images.npy");
    write_npy_u8(&npy, images, n, shape)?;
    let out = dir.path().join("out.bin");
    let result = Command::new(&python)
        .arg(&script)
        .arg(model)
        .arg(&npy)
        .arg(&out)
        .args(extra)
        .output()
        .map_err(|e| qbench_io::IoError::new("run", &python, e))?;
    if !result.status.success() {
        return Err(OnnxError::Model(format!(
            "{} {} failed: {}",
            python.display(),
            model.display(),
            String::from_utf8_lossy(&result.stderr)
        )));
    }
    let bytes = std::fs::read(&out).map_err(|e| qbench_io::IoError::new("read", &out, e))?;
    Ok((bytes, String::from_utf8_lossy(&result.stdout).to_string()))
}
