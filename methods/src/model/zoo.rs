//! The built-in architectures, by name. Parameter names follow torchvision where a torchvision
//! model exists (ResNet-18), so its pretrained weights import without renaming.

use super::arch::{Architecture, BOX_CHANNELS, ConvShape, Head, Layer};

/// Names of the built-in architectures, with one line each for `--help` and `qbench models`.
pub const ARCHITECTURES: &[(&str, &str)] = &[
    (
        "cnn",
        "default: conv 1->16, BN, ReLU, pool, conv 16->32, BN, ReLU, pool, dense (28x28 input)",
    ),
    (
        "vgg7",
        "deeper default: six 3x3 convs (8-16-16-32-32-64, BN, ReLU, pool after the 1st, 3rd and 5th), dense (28x28 input)",
    ),
    (
        "lenet5",
        "LeNet-5 style: 5x5 convs 6 and 16 channels, dense 120, 84 (28x28 input)",
    ),
    ("mlp", "MLP 784-256-256-10 with batch norm (28x28 input)"),
    (
        "bnn-mlp",
        "the BNN paper's MNIST MLP: 3 x 4096 hidden units with batch norm",
    ),
    (
        "bnn-vgg",
        "the BNN paper's CIFAR-10 net: 2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-1024FC-1024FC-10FC",
    ),
    (
        "mobilenet_small",
        "MobileNet-style: conv 3x3 16, three depthwise-separable blocks (dw 3x3 + BN + ReLU, pw 1x1 + BN + ReLU) to 32/64/64 channels, dense (28x28 input)",
    ),
    (
        "resnet20",
        "ResNet-20 for 32x32 inputs (16/32/64 channels, projection shortcuts)",
    ),
    (
        "detnet",
        "single-stage detector: five 3x3 convs (8-16-32-32-32, BN, ReLU, pool after the first three), a 1x1 head of classes + 4 box maps at stride 8 (KITTI-style inputs, e.g. 64x192)",
    ),
    (
        "resnet18",
        "ResNet-18 for 224x224 ImageNet inputs, torchvision parameter names",
    ),
];

/// Builds a named architecture for an input of `input = [c, h, w]` and `num_classes` outputs.
/// Returns `None` for an unknown name (see [`ARCHITECTURES`]).
pub fn build(name: &str, input: [usize; 3], num_classes: usize) -> Option<Architecture> {
    let head = match name {
        "detnet" => Head::Detector {
            stride: DETNET_STRIDE,
        },
        _ => Head::Classifier,
    };
    let layers = match name {
        "detnet" => detnet(input, num_classes),
        "cnn" => small_cnn(input, 16, 32, num_classes),
        "vgg7" => vgg7(input, num_classes),
        "lenet5" => lenet5(input, num_classes),
        "mlp" => mlp(input, &[256, 256], num_classes),
        "bnn-mlp" => mlp(input, &[4096, 4096, 4096], num_classes),
        "bnn-vgg" => bnn_vgg(input, num_classes),
        "mobilenet_small" => mobilenet_small(input, num_classes),
        "resnet20" => resnet20(input, num_classes),
        "resnet18" => resnet18(input, num_classes),
        _ => return None,
    };
    Some(Architecture {
        name: name.to_string(),
        input,
        layers,
        num_classes,
        head,
    })
}

fn conv(name: &str, cin: usize, cout: usize, kernel: usize, stride: usize, pad: usize) -> Layer {
    Layer::Conv {
        name: name.into(),
        shape: ConvShape {
            in_channels: cin,
            out_channels: cout,
            kernel,
            stride,
            pad,
            groups: 1,
        },
        bias: false,
    }
}

/// A 3x3 depthwise convolution: one filter per channel (`groups == channels`).
fn depthwise(name: &str, channels: usize, stride: usize) -> Layer {
    Layer::Conv {
        name: name.into(),
        shape: ConvShape {
            in_channels: channels,
            out_channels: channels,
            kernel: 3,
            stride,
            pad: 1,
            groups: channels,
        },
        bias: false,
    }
}

fn bn(name: &str, channels: usize) -> Layer {
    Layer::BatchNorm {
        name: name.into(),
        channels,
    }
}

fn dense(name: &str, fin: usize, fout: usize, bias: bool) -> Layer {
    Layer::Dense {
        name: name.into(),
        in_features: fin,
        out_features: fout,
        bias,
    }
}

fn pool2() -> Layer {
    Layer::MaxPool {
        kernel: 2,
        stride: 2,
        pad: 0,
    }
}

fn small_cnn([c, h, w]: [usize; 3], c1: usize, c2: usize, classes: usize) -> Vec<Layer> {
    vec![
        conv("conv1", c, c1, 3, 1, 1),
        bn("bn1", c1),
        Layer::Relu,
        pool2(),
        conv("conv2", c1, c2, 3, 1, 1),
        bn("bn2", c2),
        Layer::Relu,
        pool2(),
        Layer::Flatten,
        dense("fc", c2 * (h / 4) * (w / 4), classes, true),
    ]
}

/// The deeper model beside `cnn`: six conv + BN + ReLU modules (a 2x2 max pool after the first,
/// third and fifth) and a dense layer, so seven MAC layers where `cnn` has three. Widths stay
/// small (8 to 64) and the first pool comes early: 1.58 M MACs per image, 1.5 times the `cnn`'s,
/// so three seeds of it fit the paper suite's time budget.
fn vgg7([c, h, w]: [usize; 3], classes: usize) -> Vec<Layer> {
    let mut layers = Vec::new();
    let (mut cin, mut side) = (c, (h, w));
    for (i, cout) in [8, 16, 16, 32, 32, 64].into_iter().enumerate() {
        let n = i + 1;
        layers.extend([
            conv(&format!("conv{n}"), cin, cout, 3, 1, 1),
            bn(&format!("bn{n}"), cout),
            Layer::Relu,
        ]);
        if n % 2 == 1 {
            layers.push(pool2());
            side = (side.0 / 2, side.1 / 2);
        }
        cin = cout;
    }
    layers.extend([
        Layer::Flatten,
        dense("fc", cin * side.0 * side.1, classes, true),
    ]);
    layers
}

/// Input pixels per output cell of `detnet`: three 2x2 max pools.
pub const DETNET_STRIDE: usize = 8;

/// A small single-stage detector in the shape of CenterNet: a plain conv + BN + ReLU backbone
/// (so DJQ's unified modules apply to every layer but the head), three 2x2 max pools to stride
/// 8, two more 3x3 layers to widen the receptive field to 54 pixels, and a 1x1 convolution with
/// bias giving `classes` centre heatmaps and 4 box maps (see [`Head::Detector`]), flattened.
/// About 11.5 M MACs per 64x192 image.
fn detnet([c, _, _]: [usize; 3], classes: usize) -> Vec<Layer> {
    let mut layers = Vec::new();
    let mut cin = c;
    for (i, cout) in [8, 16, 32, 32, 32].into_iter().enumerate() {
        let n = i + 1;
        layers.extend([
            conv(&format!("conv{n}"), cin, cout, 3, 1, 1),
            bn(&format!("bn{n}"), cout),
            Layer::Relu,
        ]);
        if n <= 3 {
            layers.push(pool2());
        }
        cin = cout;
    }
    let mut head = conv("head", cin, classes + BOX_CHANNELS, 1, 1, 0);
    if let Layer::Conv { bias, .. } = &mut head {
        *bias = true;
    }
    layers.extend([head, Layer::Flatten]);
    layers
}

fn lenet5([c, h, w]: [usize; 3], classes: usize) -> Vec<Layer> {
    let (h2, w2) = ((h / 2 - 4) / 2, (w / 2 - 4) / 2);
    vec![
        conv("conv1", c, 6, 5, 1, 2),
        bn("bn1", 6),
        Layer::Relu,
        pool2(),
        conv("conv2", 6, 16, 5, 1, 0),
        bn("bn2", 16),
        Layer::Relu,
        pool2(),
        Layer::Flatten,
        dense("fc1", 16 * h2 * w2, 120, false),
        bn("bn3", 120),
        Layer::Relu,
        dense("fc2", 120, 84, false),
        bn("bn4", 84),
        Layer::Relu,
        dense("fc3", 84, classes, true),
    ]
}

fn mlp([c, h, w]: [usize; 3], hidden: &[usize], classes: usize) -> Vec<Layer> {
    let mut layers = vec![Layer::Flatten];
    let mut fin = c * h * w;
    for (i, &width) in hidden.iter().enumerate() {
        layers.push(dense(&format!("fc{}", i + 1), fin, width, false));
        layers.push(bn(&format!("bn{}", i + 1), width));
        layers.push(Layer::Relu);
        fin = width;
    }
    layers.push(dense(
        &format!("fc{}", hidden.len() + 1),
        fin,
        classes,
        true,
    ));
    layers
}

fn bnn_vgg([c, h, w]: [usize; 3], classes: usize) -> Vec<Layer> {
    let mut layers = Vec::new();
    let mut cin = c;
    let mut idx = 0;
    for (stage, &width) in [128usize, 256, 512].iter().enumerate() {
        for j in 0..2 {
            idx += 1;
            layers.push(conv(&format!("conv{idx}"), cin, width, 3, 1, 1));
            if j == 1 {
                layers.push(pool2());
            }
            layers.push(bn(&format!("bn{idx}"), width));
            layers.push(Layer::Relu);
            cin = width;
        }
        let _ = stage;
    }
    layers.push(Layer::Flatten);
    let fin = 512 * (h / 8) * (w / 8);
    layers.extend([
        dense("fc1", fin, 1024, false),
        bn("bn7", 1024),
        Layer::Relu,
        dense("fc2", 1024, 1024, false),
        bn("bn8", 1024),
        Layer::Relu,
        dense("fc3", 1024, classes, true),
    ]);
    layers
}

/// A ResNet basic block named like torchvision (`{prefix}.conv1`, `{prefix}.bn1`, ...,
/// `{prefix}.downsample.0` / `.1` for the projection shortcut).
fn basic_block(prefix: &str, cin: usize, cout: usize, stride: usize) -> Layer {
    let body = vec![
        conv(&format!("{prefix}.conv1"), cin, cout, 3, stride, 1),
        bn(&format!("{prefix}.bn1"), cout),
        Layer::Relu,
        conv(&format!("{prefix}.conv2"), cout, cout, 3, 1, 1),
        bn(&format!("{prefix}.bn2"), cout),
    ];
    let shortcut = if stride != 1 || cin != cout {
        vec![
            conv(&format!("{prefix}.downsample.0"), cin, cout, 1, stride, 0),
            bn(&format!("{prefix}.downsample.1"), cout),
        ]
    } else {
        Vec::new()
    };
    Layer::Residual { body, shortcut }
}

fn resnet_stages(
    layers: &mut Vec<Layer>,
    mut cin: usize,
    widths: &[usize],
    blocks: usize,
) -> usize {
    for (s, &width) in widths.iter().enumerate() {
        for b in 0..blocks {
            let stride = if s > 0 && b == 0 { 2 } else { 1 };
            layers.push(basic_block(
                &format!("layer{}.{b}", s + 1),
                cin,
                width,
                stride,
            ));
            cin = width;
        }
    }
    cin
}

fn resnet20([c, _, _]: [usize; 3], classes: usize) -> Vec<Layer> {
    let mut layers = vec![conv("conv1", c, 16, 3, 1, 1), bn("bn1", 16), Layer::Relu];
    let cout = resnet_stages(&mut layers, 16, &[16, 32, 64], 3);
    layers.extend([
        Layer::GlobalAvgPool,
        Layer::Flatten,
        dense("fc", cout, classes, true),
    ]);
    layers
}

/// A small MobileNet (Howard et al. 2017, the networks of Jacob et al. 2018's main results): a 3x3
/// convolution, then depthwise-separable blocks, each a 3x3 depthwise convolution and a 1x1
/// pointwise convolution, both with batch norm and ReLU (MobileNet's ReLU6 is a ReLU here: every
/// method's integer activations clamp at their own range anyway). The head is flatten + dense
/// instead of MobileNet's global average pool, so BNN and QNN, whose threshold lowering has no
/// average pools, run it too.
fn mobilenet_small([c, h, w]: [usize; 3], classes: usize) -> Vec<Layer> {
    let mut layers = vec![conv("conv1", c, 16, 3, 1, 1), bn("bn1", 16), Layer::Relu];
    let (mut cin, mut side) = (16, (h, w));
    for (i, (cout, stride)) in [(32, 2), (64, 2), (64, 1)].into_iter().enumerate() {
        let block = format!("block{}", i + 1);
        layers.extend([
            depthwise(&format!("{block}.dw"), cin, stride),
            bn(&format!("{block}.dw_bn"), cin),
            Layer::Relu,
            conv(&format!("{block}.pw"), cin, cout, 1, 1, 0),
            bn(&format!("{block}.pw_bn"), cout),
            Layer::Relu,
        ]);
        side = (side.0.div_ceil(stride), side.1.div_ceil(stride));
        cin = cout;
    }
    layers.extend([
        Layer::Flatten,
        dense("fc", cin * side.0 * side.1, classes, true),
    ]);
    layers
}

fn resnet18([c, _, _]: [usize; 3], classes: usize) -> Vec<Layer> {
    let mut layers = vec![
        conv("conv1", c, 64, 7, 2, 3),
        bn("bn1", 64),
        Layer::Relu,
        Layer::MaxPool {
            kernel: 3,
            stride: 2,
            pad: 1,
        },
    ];
    let cout = resnet_stages(&mut layers, 64, &[64, 128, 256, 512], 2);
    layers.extend([
        Layer::GlobalAvgPool,
        Layer::Flatten,
        dense("fc", cout, classes, true),
    ]);
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_architecture_is_consistent() {
        for (name, _) in ARCHITECTURES {
            let input = match *name {
                "bnn-vgg" | "resnet20" => [3, 32, 32],
                "resnet18" => [3, 224, 224],
                "detnet" => [1, 64, 192],
                _ => [1, 28, 28],
            };
            let arch = build(name, input, 10).expect("built-in name");
            arch.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn resnet18_uses_torchvision_parameter_names() {
        let arch = build("resnet18", [3, 224, 224], 1000).unwrap();
        let names: Vec<String> = arch
            .param_layers()
            .iter()
            .map(|l| match l {
                Layer::Conv { name, .. }
                | Layer::Dense { name, .. }
                | Layer::BatchNorm { name, .. } => name.clone(),
                _ => unreachable!(),
            })
            .collect();
        for expected in [
            "conv1",
            "bn1",
            "layer1.0.conv1",
            "layer2.0.downsample.0",
            "layer4.1.bn2",
            "fc",
        ] {
            assert!(names.iter().any(|n| n == expected), "missing {expected}");
        }
        assert_eq!(
            names.iter().filter(|n| n.contains("downsample.0")).count(),
            3
        );
    }

    #[test]
    fn inconsistent_architecture_is_reported_with_its_layer() {
        let mut arch = build("cnn", [1, 28, 28], 10).unwrap();
        arch.layers[4] = conv("conv2", 8, 32, 3, 1, 1);
        let err = arch.validate().unwrap_err();
        assert_eq!(err.index, 4);
        assert!(err.reason.contains("expects 8 input channels"), "{err}");
    }
}
