// Power-of-two requantizer (DJQ `Requant::Shift`), one operation per clock.
//   y = clamp(shift_round(acc, s) + zp, lo, hi)
//   shift_round(acc, s) = (acc >>> s) + bit (s-1) of acc   (round half up; s = 0 passes acc)
// matching qbench_engine::requant::{shift_round, offset_clamp} bit for bit, computed without
// overflow. Registered inputs and output: input regs -> combinational datapath -> output reg.
// The shift is a run-time input `s` (per-channel shifts from a parameter memory).
// `zp`, `lo`, `hi` and `y` are OW-bit two's-complement (9 bits hold both u8 and i8 ranges).
module shift_requant_var #(
    parameter ACCW = 32,
    parameter OW = 9
) (
    input  wire                   clk,
    input  wire signed [ACCW-1:0] acc,
    input  wire        [4:0]      s,
    input  wire signed [OW-1:0]   zp,
    input  wire signed [OW-1:0]   lo,
    input  wire signed [OW-1:0]   hi,
    output reg  signed [OW-1:0]   y
);
    reg signed [ACCW-1:0] acc_r;
    reg        [4:0]      s_r;
    reg signed [OW-1:0]   zp_r, lo_r, hi_r;
    always @(posedge clk) begin
        acc_r <= acc; s_r <= s; zp_r <= zp; lo_r <= lo; hi_r <= hi;
    end

    wire signed [ACCW-1:0] q    = acc_r >>> s_r;
    wire signed [ACCW:0]   dbl  = {acc_r, 1'b0};
    wire signed [ACCW:0]   dsh  = dbl >>> s_r;
    wire                   half = dsh[0];           // bit s-1 of acc, 0 when s = 0
    // q + half + zp in ACCW+2 bits cannot overflow.
    wire signed [ACCW+1:0] v    = q + $signed({1'b0, half}) + zp_r;
    wire signed [ACCW+1:0] c    = (v < lo_r) ? lo_r : ((v > hi_r) ? hi_r : v);
    always @(posedge clk) y <= c[OW-1:0];
endmodule

// Power-of-two requantizer with the shift a constant parameter S (a deployed layer's shift):
// the same arithmetic as shift_requant_var, with the shifter reduced to wiring.
module shift_requant_const #(
    parameter ACCW = 32,
    parameter OW = 9,
    parameter S = 8
) (
    input  wire                   clk,
    input  wire signed [ACCW-1:0] acc,
    input  wire signed [OW-1:0]   zp,
    input  wire signed [OW-1:0]   lo,
    input  wire signed [OW-1:0]   hi,
    output reg  signed [OW-1:0]   y
);
    reg signed [ACCW-1:0] acc_r;
    reg signed [OW-1:0]   zp_r, lo_r, hi_r;
    always @(posedge clk) begin
        acc_r <= acc; zp_r <= zp; lo_r <= lo; hi_r <= hi;
    end

    wire signed [ACCW-1:0] q    = acc_r >>> S;
    wire                   half = (S == 0) ? 1'b0 : acc_r[(S == 0) ? 0 : S - 1];
    wire signed [ACCW+1:0] v    = q + $signed({1'b0, half}) + zp_r;
    wire signed [ACCW+1:0] c    = (v < lo_r) ? lo_r : ((v > hi_r) ? hi_r : v);
    always @(posedge clk) y <= c[OW-1:0];
endmodule
