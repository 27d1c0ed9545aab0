//! Model parameters: seeded initialisation, trainable variables, batch-norm running statistics,
//! and safetensors checkpoints with their sha256.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::arch::{Architecture, Layer};
use crate::error::{MethodError, Result};

/// Every tensor of a model by name: trainable variables and batch-norm running statistics.
#[derive(Clone)]
pub struct Params {
    /// Trainable tensors (`{layer}.weight`, `{layer}.bias`).
    pub vars: BTreeMap<String, Var>,
    /// Batch-norm running statistics (`{layer}.running_mean`, `{layer}.running_var`), updated in
    /// training mode, not by the optimiser.
    pub buffers: BTreeMap<String, Tensor>,
}

/// Batch-norm epsilon, as in PyTorch.
pub const BN_EPS: f64 = 1e-5;
/// Batch-norm running-statistics momentum, as in PyTorch.
pub const BN_MOMENTUM: f64 = 0.1;

impl Params {
    /// Initialises every parameter deterministically from `seed`: Kaiming-uniform weights (as
    /// PyTorch's default for conv and linear layers), zero biases, unit batch-norm scales.
    pub fn init(arch: &Architecture, seed: u64) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut vars = BTreeMap::new();
        let mut buffers = BTreeMap::new();
        let dev = Device::Cpu;
        for layer in arch.param_layers() {
            match layer {
                Layer::Conv { name, shape, bias } => {
                    let fan_in = shape.fan_in();
                    vars.insert(
                        format!("{name}.weight"),
                        uniform_var(&mut rng, &shape.weight_shape(), fan_in)?,
                    );
                    if *bias {
                        vars.insert(
                            format!("{name}.bias"),
                            uniform_var(&mut rng, &[shape.out_channels], fan_in)?,
                        );
                    }
                }
                Layer::Dense {
                    name,
                    in_features,
                    out_features,
                    bias,
                } => {
                    let shape = [*out_features, *in_features];
                    vars.insert(
                        format!("{name}.weight"),
                        uniform_var(&mut rng, &shape, *in_features)?,
                    );
                    if *bias {
                        vars.insert(
                            format!("{name}.bias"),
                            uniform_var(&mut rng, &[*out_features], *in_features)?,
                        );
                    }
                }
                Layer::BatchNorm { name, channels } => {
                    let c = *channels;
                    vars.insert(format!("{name}.weight"), Var::ones(c, DType::F32, &dev)?);
                    vars.insert(format!("{name}.bias"), Var::zeros(c, DType::F32, &dev)?);
                    buffers.insert(
                        format!("{name}.running_mean"),
                        Tensor::zeros(c, DType::F32, &dev)?,
                    );
                    buffers.insert(
                        format!("{name}.running_var"),
                        Tensor::ones(c, DType::F32, &dev)?,
                    );
                }
                _ => {}
            }
        }
        Ok(Params { vars, buffers })
    }

    /// The tensor stored under `name`, trainable or buffer.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        if let Some(v) = self.vars.get(name) {
            return Ok(v.as_tensor().clone());
        }
        self.buffers
            .get(name)
            .cloned()
            .ok_or_else(|| MethodError::MissingParameter(name.to_string()))
    }

    /// All tensors by name (variables and buffers), for saving.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        let mut all: BTreeMap<String, Tensor> = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        all.extend(self.buffers.iter().map(|(k, v)| (k.clone(), v.clone())));
        all
    }

    /// Replaces every tensor from `tensors`, which must hold exactly this model's names and shapes.
    /// `source` names where they came from, for errors.
    pub fn assign(&mut self, tensors: &BTreeMap<String, Tensor>, source: &str) -> Result<()> {
        for (name, var) in &self.vars {
            let t = take(tensors, name, var.as_tensor(), source)?;
            var.set(&t)?;
        }
        for (name, buf) in self.buffers.iter_mut() {
            *buf = take(tensors, name, buf, source)?;
        }
        let known = |k: &String| self.vars.contains_key(k) || self.buffers.contains_key(k);
        if let Some(extra) = tensors.keys().find(|k| !known(k)) {
            return Err(MethodError::Checkpoint {
                path: source.to_string(),
                reason: format!("tensor `{extra}` does not belong to this model"),
            });
        }
        Ok(())
    }

    /// Saves all tensors as safetensors (atomically) and returns the file's sha256.
    pub fn save(&self, path: &Path) -> Result<String> {
        let map: std::collections::HashMap<String, Tensor> = self.tensors().into_iter().collect();
        crate::checkpoint::save_tensors(&map, path)
    }

    /// Loads this model's tensors from a safetensors file saved by [`Params::save`] and returns
    /// the file's sha256.
    pub fn load(&mut self, path: &Path) -> Result<String> {
        let (tensors, sha) = crate::checkpoint::load_tensors(path)?;
        self.assign(&tensors, &path.display().to_string())?;
        Ok(sha)
    }
}

fn take(
    tensors: &BTreeMap<String, Tensor>,
    name: &str,
    like: &Tensor,
    source: &str,
) -> Result<Tensor> {
    let t = tensors.get(name).ok_or_else(|| MethodError::Checkpoint {
        path: source.to_string(),
        reason: format!("tensor `{name}` is missing"),
    })?;
    if t.dims() != like.dims() {
        return Err(MethodError::Checkpoint {
            path: source.to_string(),
            reason: format!(
                "tensor `{name}` has shape {:?}, the model expects {:?}",
                t.dims(),
                like.dims()
            ),
        });
    }
    Ok(t.to_dtype(DType::F32)?)
}

fn uniform_var(rng: &mut ChaCha8Rng, shape: &[usize], fan_in: usize) -> Result<Var> {
    // PyTorch's default: kaiming_uniform(a = sqrt(5)) gives bound 1/sqrt(fan_in).
    let bound = 1.0 / (fan_in as f32).sqrt();
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(
        data,
        shape,
        &Device::Cpu,
    )?)?)
}
