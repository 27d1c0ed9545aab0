//! The layer chain a BNN/QNN trains and lowers: each block is one conv or dense layer with the
//! max pools, batch norm and activation that follow it, read from an [`Architecture`].
//!
//! A hidden block is `mac [max_pool]* batch_norm relu [max_pool]*`: the ReLU of the float
//! architecture marks where the quantized activation (sign or k-bit levels) goes. The last block
//! is a dense layer alone, producing the scores. Anything else (average pools, residual blocks, a
//! hidden layer without batch norm) is an error naming the layer: its batch norm is what the
//! integer thresholds are folded from.

use crate::error::{MethodError, Result};
use crate::method::fold::{MacGeometry, PoolSpec, mac_of};
use crate::model::arch::{Architecture, Layer};

/// One conv/dense layer with what follows it up to the next one.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Parameter prefix of the conv/dense layer.
    pub name: String,
    /// Geometry of the layer.
    pub geometry: MacGeometry,
    /// Whether the layer has its own bias.
    pub bias: bool,
    /// Whether the input is flattened before the layer.
    pub flatten_before: bool,
    /// Max pools between the layer and its batch norm (run on the accumulators).
    pub pre_pools: Vec<PoolSpec>,
    /// The batch norm's parameter prefix (`None` only for the last block).
    pub batch_norm: Option<String>,
    /// Max pools after the activation (run on the quantized activations).
    pub post_pools: Vec<PoolSpec>,
}

/// An architecture as a chain of [`Block`]s.
#[derive(Clone, Debug, PartialEq)]
pub struct Net {
    /// Input channels, height, width.
    pub input: [usize; 3],
    /// Output classes.
    pub classes: usize,
    /// Blocks in order; the last one produces the scores.
    pub blocks: Vec<Block>,
    /// Whether the scores are a detector's maps, flattened after the last layer (a 1x1 conv).
    pub flatten_after: bool,
}

fn unsupported(arch: &str, layer: &Layer, why: &str) -> MethodError {
    MethodError::Config(format!("architecture {arch}: {}: {why}", layer.describe()))
}

fn pool_spec(kernel: usize, stride: usize, pad: usize) -> PoolSpec {
    PoolSpec {
        kernel,
        stride,
        pad,
    }
}

/// Where the parser is inside the current block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Mac,
    BatchNorm,
    Activation,
}

impl Net {
    /// Reads the block chain of `arch` (see the module docs for what is accepted).
    pub fn from_arch(arch: &Architecture) -> Result<Self> {
        arch.validate()?;
        let name = arch.name.as_str();
        let mut blocks: Vec<Block> = Vec::new();
        let mut stage = Stage::Activation;
        let mut flatten = false;
        let mut flatten_after = false;
        for layer in &arch.layers {
            match layer {
                Layer::Conv { .. } | Layer::Dense { .. } => {
                    if stage != Stage::Activation && !blocks.is_empty() {
                        return Err(unsupported(
                            name,
                            layer,
                            "the previous layer needs batch norm and ReLU before it",
                        ));
                    }
                    let (n, geometry, bias) = mac_of(layer).expect("a conv or dense layer");
                    blocks.push(Block {
                        name: n.clone(),
                        geometry,
                        bias,
                        flatten_before: std::mem::take(&mut flatten),
                        pre_pools: Vec::new(),
                        batch_norm: None,
                        post_pools: Vec::new(),
                    });
                    stage = Stage::Mac;
                }
                Layer::MaxPool {
                    kernel,
                    stride,
                    pad,
                } => {
                    let p = pool_spec(*kernel, *stride, *pad);
                    match (stage, blocks.last_mut()) {
                        (Stage::Mac, Some(b)) => b.pre_pools.push(p),
                        (Stage::Activation, Some(b)) => b.post_pools.push(p),
                        _ => {
                            return Err(unsupported(
                                name,
                                layer,
                                "a max pool must follow a layer or its activation",
                            ));
                        }
                    }
                }
                Layer::BatchNorm { name: n, .. } => match (stage, blocks.last_mut()) {
                    (Stage::Mac, Some(b)) => {
                        b.batch_norm = Some(n.clone());
                        stage = Stage::BatchNorm;
                    }
                    _ => {
                        return Err(unsupported(
                            name,
                            layer,
                            "batch norm must directly follow a conv/dense layer (or its max pool)",
                        ));
                    }
                },
                Layer::Relu => {
                    if stage != Stage::BatchNorm {
                        return Err(unsupported(
                            name,
                            layer,
                            "the activation must follow a batch norm",
                        ));
                    }
                    stage = Stage::Activation;
                }
                Layer::Flatten
                    if stage == Stage::Mac
                        && !arch.head.is_classifier()
                        && std::ptr::eq(layer, arch.layers.last().expect("a layer")) =>
                {
                    flatten_after = true;
                }
                Layer::Flatten => {
                    if stage == Stage::Mac || stage == Stage::BatchNorm {
                        return Err(unsupported(
                            name,
                            layer,
                            "a hidden layer needs batch norm and ReLU before the flatten",
                        ));
                    }
                    flatten = true;
                }
                Layer::AvgPool { .. } | Layer::GlobalAvgPool | Layer::Residual { .. } => {
                    return Err(unsupported(
                        name,
                        layer,
                        "BNN/QNN lowering supports chains of conv/dense, max pool, batch norm and ReLU only",
                    ));
                }
            }
        }
        let Some(last) = blocks.last() else {
            return Err(MethodError::Config(format!(
                "architecture {name} has no conv or dense layer"
            )));
        };
        if stage != Stage::Mac
            || !last.pre_pools.is_empty()
            || !(flatten_after || matches!(last.geometry, MacGeometry::Dense { .. }))
        {
            return Err(MethodError::Config(format!(
                "architecture {name}: the last layer must be a dense layer producing the scores \
                 (or a detector's conv producing its maps), with no batch norm, activation or \
                 pool after it (layer {})",
                last.name
            )));
        }
        Ok(Net {
            input: arch.input,
            classes: arch.num_classes,
            blocks,
            flatten_after,
        })
    }
}
