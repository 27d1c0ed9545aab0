#!/usr/bin/env python3
"""Exports a small Brevitas network with export_qonnx: 8-bit input quantizer, two 4-bit
QuantConv2d layers with Int32Bias and 4-bit QuantReLU, max pooling, a 4-bit QuantLinear. Seeded
random weights; input p / 255.

    brevitas_qonnx.py OUT.onnx

Prints `SKIPPED: ...` and exits 0 when torch or brevitas cannot be imported (their registry
wheels pull gigabytes of CUDA libraries; CI builds the same shapes with onnx.helper in
qonnx_models.py instead).
"""

import sys

try:
    import torch
    from brevitas import nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.quant import Int32Bias, Uint8ActPerTensorFloat
    import onnxoptimizer  # noqa: F401 - Brevitas' ONNX export needs it
except Exception as e:  # noqa: BLE001 - any import failure means "not installed here"
    print(f"SKIPPED: torch/brevitas/onnxoptimizer not importable ({type(e).__name__}: {e})")
    sys.exit(0)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 16, 3, padding=1, weight_bit_width=4, bias_quant=Int32Bias,
                                  return_quant_tensor=True)
        self.r1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.c2 = qnn.QuantConv2d(16, 32, 3, padding=1, weight_bit_width=4, bias_quant=Int32Bias,
                                  return_quant_tensor=True)
        self.r2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(1568, 10, bias=True, weight_bit_width=4, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.inp(x)
        x = torch.nn.functional.max_pool2d(self.r1(self.c1(x)), 2)
        x = torch.nn.functional.max_pool2d(self.r2(self.c2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def main():
    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net(torch.rand(16, 1, 28, 28))  # initialises the activation scales
    # A dynamic batch: the flatten is exported for any batch, not traced as [1, 1568].
    export_qonnx(
        net,
        torch.rand(1, 1, 28, 28),
        sys.argv[1],
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
    )
    print("wrote", sys.argv[1])


if __name__ == "__main__":
    main()
