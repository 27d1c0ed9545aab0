//! Model architectures as data: a small layer IR that training, quantization and lowering to the
//! integer engine all walk. Every layer kind here has an integer-engine counterpart.

use serde::{Deserialize, Serialize};

/// One layer of a float model. Parameterised layers carry the name under which their tensors are
/// stored (`{name}.weight`, `{name}.bias`, and for batch norm `{name}.running_mean` and
/// `{name}.running_var`), which is also the name used in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layer {
    /// 2-D convolution over NCHW (square kernel, equal stride and padding on both axes).
    Conv {
        /// Parameter name prefix.
        name: String,
        /// Channels, kernel, stride and padding (the same keys in the JSON form).
        #[serde(flatten)]
        shape: ConvShape,
        /// Whether the layer has a bias (false when a batch norm follows).
        bias: bool,
    },
    /// Fully connected layer on a flat feature vector.
    Dense {
        /// Parameter name prefix.
        name: String,
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
        /// Whether the layer has a bias.
        bias: bool,
    },
    /// Batch normalisation over channels (NCHW) or features (NF).
    BatchNorm {
        /// Parameter name prefix.
        name: String,
        /// Channels or features normalised.
        channels: usize,
    },
    /// Rectified linear unit.
    Relu,
    /// Max pooling with a square window; padded positions never win (they are ignored).
    MaxPool {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding on each side (must be smaller than the window).
        pad: usize,
    },
    /// Average pooling with a square window.
    AvgPool {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// Average over the whole spatial extent, giving NC11.
    GlobalAvgPool,
    /// NCHW to N(C*H*W).
    Flatten,
    /// `relu(body(x) + shortcut(x))`, the ResNet basic block's join; an empty shortcut is identity.
    Residual {
        /// The main branch.
        body: Vec<Layer>,
        /// The projection branch (1x1 conv + batch norm), or empty for identity.
        shortcut: Vec<Layer>,
    },
}

/// A whole model: input geometry, layers in order, the number of classes and what its output
/// means ([`Head`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Registry name of the architecture (e.g. `cnn`).
    pub name: String,
    /// Input channels, height, width.
    pub input: [usize; 3],
    /// Layers in execution order.
    pub layers: Vec<Layer>,
    /// Output classes (a detector's object classes).
    pub num_classes: usize,
    /// What the output features are: class logits (left out of the JSON form, so classifiers
    /// keep their hashes) or a detector's maps.
    #[serde(default, skip_serializing_if = "Head::is_classifier")]
    pub head: Head,
}

/// What a model's flat output means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Head {
    /// `num_classes` class logits.
    #[default]
    Classifier,
    /// A single-stage, CenterNet-style detector: the last convolution's map of
    /// `num_classes + 4` channels on a grid of `input / stride` cells, flattened in C,H,W order.
    /// Channels `0..num_classes` are per-class centre-heatmap logits; the last four are the box
    /// of an object centred in the cell, in cell units: centre offset x and y from the cell's
    /// centre, and the natural logarithms of width and height.
    Detector {
        /// Input pixels per grid cell (the backbone's total downsampling).
        stride: usize,
    },
}

impl Head {
    /// True for [`Head::Classifier`].
    pub fn is_classifier(&self) -> bool {
        matches!(self, Head::Classifier)
    }
}

/// The geometry of a detector's output maps (see [`Head::Detector`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorGrid {
    /// Object classes (heatmap channels).
    pub classes: usize,
    /// Input pixels per cell.
    pub stride: usize,
    /// Grid rows.
    pub rows: usize,
    /// Grid columns.
    pub cols: usize,
}

/// Box channels after the heatmaps: offset x, offset y, log width, log height.
pub const BOX_CHANNELS: usize = 4;

impl DetectorGrid {
    /// Channels of the output map: heatmaps then box channels.
    pub fn channels(&self) -> usize {
        self.classes + BOX_CHANNELS
    }

    /// Cells per map.
    pub fn cells(&self) -> usize {
        self.rows * self.cols
    }

    /// Output features: the flattened map.
    pub fn outputs(&self) -> usize {
        self.channels() * self.cells()
    }
}

/// Shape of an activation between layers (without the batch dimension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Channels, height, width.
    Spatial(usize, usize, usize),
    /// Flat features.
    Flat(usize),
}

/// Why an architecture is not consistent.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("architecture {arch}: layer {index} ({layer}): {reason}")]
pub struct ArchError {
    /// Architecture name.
    pub arch: String,
    /// Index of the offending layer at its nesting level.
    pub index: usize,
    /// Short description of the layer.
    pub layer: String,
    /// What is wrong.
    pub reason: String,
}

/// The geometry of a 2-D convolution, carried whole from the architecture through folding to the
/// integer lowering, so a new convolution parameter is added here once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvShape {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
    /// Channel groups: input and output channels split into `groups` independent convolutions
    /// (`groups == in_channels == out_channels` is MobileNet's depthwise convolution). 1 when
    /// absent from the JSON form, and left out of it then.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub groups: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl ConvShape {
    /// Output height and width for an `h x w` input (the input must fit the kernel).
    pub fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        (
            (h + 2 * self.pad - self.kernel) / self.stride + 1,
            (w + 2 * self.pad - self.kernel) / self.stride + 1,
        )
    }

    /// Input channels each output channel reads (`C / groups`).
    pub fn group_in_channels(&self) -> usize {
        self.in_channels / self.groups
    }

    /// Weights per output channel.
    pub fn fan_in(&self) -> usize {
        self.group_in_channels() * self.kernel * self.kernel
    }

    /// The input channel that weight `j` of output channel `o`'s row (`[C/groups][k][k]`) reads.
    pub fn input_channel(&self, o: usize, j: usize) -> usize {
        let group = o / (self.out_channels / self.groups);
        group * self.group_in_channels() + j / (self.kernel * self.kernel)
    }

    /// Shape of the weight tensor, `[O, C/groups, k, k]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.group_in_channels(),
            self.kernel,
            self.kernel,
        ]
    }

    /// `[C, H, W] -> [O, OH, OW]`, or why the input does not fit.
    pub fn output(&self, c: usize, h: usize, w: usize) -> Result<(usize, usize, usize), String> {
        let ConvShape {
            in_channels,
            out_channels,
            kernel,
            stride,
            pad,
            groups,
        } = *self;
        if c != in_channels {
            return Err(format!("expects {in_channels} input channels, gets {c}"));
        }
        if groups == 0
            || !in_channels.is_multiple_of(groups)
            || !out_channels.is_multiple_of(groups)
        {
            return Err(format!(
                "{groups} groups do not divide {in_channels} input and {out_channels} output channels"
            ));
        }
        if h + 2 * pad < kernel || w + 2 * pad < kernel || stride == 0 {
            return Err(format!("kernel {kernel} does not fit a {h}x{w} input"));
        }
        let (oh, ow) = self.out_hw(h, w);
        Ok((out_channels, oh, ow))
    }

    /// Short description (`3->8 k3 s1 p1`, with ` g4` for 4 groups).
    pub fn describe(&self) -> String {
        let groups = if self.groups == 1 {
            String::new()
        } else {
            format!(" g{}", self.groups)
        };
        format!(
            "{}->{} k{} s{} p{}{groups}",
            self.in_channels, self.out_channels, self.kernel, self.stride, self.pad
        )
    }
}

impl Layer {
    /// Short human-readable description, used in errors and summaries.
    pub fn describe(&self) -> String {
        match self {
            Layer::Conv { name, shape, .. } => format!("conv {name} {}", shape.describe()),
            Layer::Dense {
                name,
                in_features,
                out_features,
                ..
            } => {
                format!("dense {name} {in_features}->{out_features}")
            }
            Layer::BatchNorm { name, channels } => format!("batchnorm {name} ({channels})"),
            Layer::Relu => "relu".into(),
            Layer::MaxPool {
                kernel,
                stride,
                pad,
            } => format!("maxpool k{kernel} s{stride} p{pad}"),
            Layer::AvgPool { kernel, stride } => format!("avgpool k{kernel} s{stride}"),
            Layer::GlobalAvgPool => "global avgpool".into(),
            Layer::Flatten => "flatten".into(),
            Layer::Residual { .. } => "residual block".into(),
        }
    }

    /// Output shape for the given input shape, or why the layer cannot take it.
    pub fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        use Shape::*;
        match (self, input) {
            (Layer::Conv { shape, .. }, Spatial(c, h, w)) => {
                let (o, oh, ow) = shape.output(c, h, w)?;
                Ok(Spatial(o, oh, ow))
            }
            (
                Layer::Dense {
                    in_features,
                    out_features,
                    ..
                },
                Flat(f),
            ) => {
                if f != *in_features {
                    return Err(format!("expects {in_features} input features, gets {f}"));
                }
                Ok(Flat(*out_features))
            }
            (Layer::BatchNorm { channels, .. }, s) => {
                let c = match s {
                    Spatial(c, _, _) => c,
                    Flat(f) => f,
                };
                if c != *channels {
                    return Err(format!("normalises {channels} channels, gets {c}"));
                }
                Ok(s)
            }
            (Layer::Relu, s) => Ok(s),
            (
                Layer::MaxPool {
                    kernel,
                    stride,
                    pad,
                },
                Spatial(c, h, w),
            ) => pooled(c, h, w, *kernel, *stride, *pad),
            (Layer::AvgPool { kernel, stride }, Spatial(c, h, w)) => {
                pooled(c, h, w, *kernel, *stride, 0)
            }
            (Layer::GlobalAvgPool, Spatial(c, _, _)) => Ok(Spatial(c, 1, 1)),
            (Layer::Flatten, Spatial(c, h, w)) => Ok(Flat(c * h * w)),
            (Layer::Flatten, Flat(f)) => Ok(Flat(f)),
            (Layer::Residual { body, shortcut }, s) => {
                let out = chain_shape(body, s)?;
                let short = chain_shape(shortcut, s)?;
                if out != short {
                    return Err(format!("body gives {out:?} but shortcut gives {short:?}"));
                }
                Ok(out)
            }
            (l, s) => Err(format!("{} cannot take a {s:?} input", l.describe())),
        }
    }
}

fn pooled(
    c: usize,
    h: usize,
    w: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
) -> Result<Shape, String> {
    if h + 2 * pad < kernel || w + 2 * pad < kernel || stride == 0 || pad >= kernel {
        return Err(format!(
            "window {kernel} (pad {pad}) does not fit a {h}x{w} input"
        ));
    }
    Ok(Shape::Spatial(
        c,
        (h + 2 * pad - kernel) / stride + 1,
        (w + 2 * pad - kernel) / stride + 1,
    ))
}

fn chain_shape(layers: &[Layer], mut shape: Shape) -> Result<Shape, String> {
    for (i, l) in layers.iter().enumerate() {
        shape = l
            .output_shape(shape)
            .map_err(|e| format!("inner layer {i} ({}): {e}", l.describe()))?;
    }
    Ok(shape)
}

impl Architecture {
    /// A detector's output grid, `None` for a classifier.
    pub fn detector_grid(&self) -> Option<DetectorGrid> {
        match self.head {
            Head::Classifier => None,
            Head::Detector { stride } => Some(DetectorGrid {
                classes: self.num_classes,
                stride,
                rows: self.input[1] / stride.max(1),
                cols: self.input[2] / stride.max(1),
            }),
        }
    }

    /// Features of the flat output: `num_classes` logits, or a detector's flattened maps.
    pub fn outputs(&self) -> usize {
        self.detector_grid()
            .map_or(self.num_classes, |g| g.outputs())
    }

    /// Checks that every layer accepts its input and the model ends in [`Self::outputs`]
    /// features (a detector: in its `num_classes + 4` maps on the grid, then a flatten).
    pub fn validate(&self) -> Result<(), ArchError> {
        let [c, h, w] = self.input;
        let mut shape = Shape::Spatial(c, h, w);
        let mut before_last = shape;
        for (index, layer) in self.layers.iter().enumerate() {
            before_last = shape;
            shape = layer.output_shape(shape).map_err(|reason| ArchError {
                arch: self.name.clone(),
                index,
                layer: layer.describe(),
                reason,
            })?;
        }
        let at_output = |reason: String| ArchError {
            arch: self.name.clone(),
            index: self.layers.len().saturating_sub(1),
            layer: "output".into(),
            reason,
        };
        if let Some(g) = self.detector_grid() {
            let maps = Shape::Spatial(g.channels(), g.rows, g.cols);
            let flattened = matches!(self.layers.last(), Some(Layer::Flatten));
            if g.stride == 0 || h % g.stride != 0 || w % g.stride != 0 {
                return Err(at_output(format!(
                    "detector stride {} does not divide the {h}x{w} input",
                    g.stride
                )));
            }
            if !flattened || before_last != maps {
                return Err(at_output(format!(
                    "a detector ends in its maps {maps:?} and a flatten; this one ends in \
                     {before_last:?} then {shape:?}"
                )));
            }
        } else if shape != Shape::Flat(self.num_classes) {
            return Err(at_output(format!(
                "model ends in {shape:?}, expected {} classes",
                self.num_classes
            )));
        }
        Ok(())
    }

    /// Every parameterised layer, depth first, in execution order (body before shortcut).
    pub fn param_layers(&self) -> Vec<&Layer> {
        fn walk<'a>(layers: &'a [Layer], out: &mut Vec<&'a Layer>) {
            for l in layers {
                match l {
                    Layer::Conv { .. } | Layer::Dense { .. } | Layer::BatchNorm { .. } => {
                        out.push(l)
                    }
                    Layer::Residual { body, shortcut } => {
                        walk(body, out);
                        walk(shortcut, out);
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.layers, &mut out);
        out
    }
}
