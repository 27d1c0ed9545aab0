// Integer multiply-accumulate processing element, one MAC per clock:
//   acc <= (clr ? bias : acc) + (a - za) * w          (wrapping ACCW-bit two's complement)
// the engine's Conv2d/Dense inner step `acc = acc.wrapping_add((x - z) * w)` with the bias as the
// accumulator's initial value. `a` is an AW-bit unsigned activation (signed activations reach the
// engine's kernels with a +128 offset on both x and z, which leaves x - z unchanged), `za` the
// layer's input zero point, `w` a WW-bit two's-complement weight. `y` is the accumulator register.
module mac #(
    parameter AW = 8,
    parameter WW = 8,
    parameter ACCW = 32
) (
    input  wire                   clk,
    input  wire                   clr,
    input  wire signed [ACCW-1:0] bias,
    input  wire        [AW-1:0]   a,
    input  wire        [AW-1:0]   za,
    input  wire signed [WW-1:0]   w,
    output reg  signed [ACCW-1:0] y
);
    reg                   clr_r;
    reg signed [ACCW-1:0] bias_r;
    reg        [AW-1:0]   a_r, za_r;
    reg signed [WW-1:0]   w_r;
    always @(posedge clk) begin
        clr_r <= clr; bias_r <= bias; a_r <= a; za_r <= za; w_r <= w;
    end
    wire signed [AW:0]      d    = $signed({1'b0, a_r}) - $signed({1'b0, za_r});
    wire signed [AW+WW:0]   p    = d * w_r;
    wire signed [ACCW-1:0]  base = clr_r ? bias_r : y;
    always @(posedge clk) y <= base + p;
endmodule
