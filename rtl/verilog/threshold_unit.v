// BNN sign requantizer (`Requant::Threshold`), one operation per clock:
//   y = 1 (+1) if acc >= t (flip: acc <= t), else 0 (-1)
// exactly qbench_engine::requant::threshold, bit 1 = +1 as in the engine's packed binary tensors.
// The channel's threshold `t` and direction `flip` are run-time inputs (read from a per-channel
// parameter memory alongside the accumulator), so one unit serves every channel and layer.
module threshold_unit #(
    parameter ACCW = 32
) (
    input  wire                   clk,
    input  wire signed [ACCW-1:0] acc,
    input  wire signed [ACCW-1:0] t,
    input  wire                   flip,
    output reg                    y
);
    reg signed [ACCW-1:0] acc_r, t_r;
    reg                   flip_r;
    always @(posedge clk) begin
        acc_r <= acc; t_r <= t; flip_r <= flip;
    end
    wire pass = flip_r ? (acc_r <= t_r) : (acc_r >= t_r);
    always @(posedge clk) y <= pass;
endmodule
