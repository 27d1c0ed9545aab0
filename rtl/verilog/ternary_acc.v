// Ternary-weight processing element (TNT weights over 8-bit activations), one step per clock:
//   acc <= (clr ? bias : acc) + (a - za) * w,  w in {-1, 0, +1}
// realised without a multiplier: add (w = +1), subtract (w = -1) or skip (w = 0). `w` is the 2-bit
// two's-complement weight (2'b01 = +1, 2'b11 = -1, 2'b00 = 0; 2'b10 never occurs in a valid graph).
// Same arithmetic as the engine's Conv2d/Dense with WeightKind::Ternary.
module ternary_acc #(
    parameter AW = 8,
    parameter ACCW = 32
) (
    input  wire                   clk,
    input  wire                   clr,
    input  wire signed [ACCW-1:0] bias,
    input  wire        [AW-1:0]   a,
    input  wire        [AW-1:0]   za,
    input  wire        [1:0]      w,
    output reg  signed [ACCW-1:0] y
);
    reg                   clr_r;
    reg signed [ACCW-1:0] bias_r;
    reg        [AW-1:0]   a_r, za_r;
    reg        [1:0]      w_r;
    always @(posedge clk) begin
        clr_r <= clr; bias_r <= bias; a_r <= a; za_r <= za; w_r <= w;
    end
    wire signed [AW:0]     d    = $signed({1'b0, a_r}) - $signed({1'b0, za_r});
    wire signed [ACCW-1:0] base = clr_r ? bias_r : y;
    wire signed [ACCW-1:0] dx   = d;
    wire signed [ACCW-1:0] term = w_r[1] ? -dx : (w_r[0] ? dx : {ACCW{1'b0}});
    always @(posedge clk) y <= base + term;
endmodule
