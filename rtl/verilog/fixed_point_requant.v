// gemmlowp/TFLite fixed-point requantizer (`Requant::FixedPoint`), one operation per clock:
//   y = clamp(MultiplyByQuantizedMultiplier(acc, m, sh) + zp, lo, hi)
// exactly as qbench_engine::requant::{multiply_by_quantized_multiplier, offset_clamp}:
//   x  = acc << max(sh, 0)                        (wrapping, 32 bits)
//   h  = SaturatingRoundingDoublingHighMul(x, m)   (32x32 multiply, nudge, truncate toward zero,
//                                                   MIN*MIN saturates to MAX)
//   r  = RoundingDivideByPOT(h, max(-sh, 0))       (round half away from zero)
// `m` is the Q31 multiplier M0, `sh` the TFLite exponent in -31..=30 (6-bit two's complement).
// ACCW < 32 with LSHIFT = 0 builds the requantizer of the ternary x 8-bit TNT path: narrow
// accumulators and multipliers below 1 (sh <= 0: alpha * S_in / S_out < 1), so `acc` is only
// sign-extended, never shifted left, and synthesis keeps an ACCW x 32 multiplier. Its result equals
// the engine's for every acc that fits ACCW bits and every sh <= 0.
module fixed_point_requant #(
    parameter ACCW = 32,
    parameter OW = 9,
    parameter LSHIFT = 1
) (
    input  wire                   clk,
    input  wire signed [ACCW-1:0] acc,
    input  wire signed [31:0]     m,
    input  wire signed [5:0]      sh,
    input  wire signed [OW-1:0]   zp,
    input  wire signed [OW-1:0]   lo,
    input  wire signed [OW-1:0]   hi,
    output reg  signed [OW-1:0]   y
);
    reg signed [ACCW-1:0] acc_r;
    reg signed [31:0]     m_r;
    reg signed [5:0]      sh_r;
    reg signed [OW-1:0]   zp_r, lo_r, hi_r;
    always @(posedge clk) begin
        acc_r <= acc; m_r <= m; sh_r <= sh; zp_r <= zp; lo_r <= lo; hi_r <= hi;
    end

    wire        [4:0]  left  = (sh_r[5] || LSHIFT == 0) ? 5'd0 : sh_r[4:0];
    wire        [5:0]  nsh   = -sh_r;
    wire        [4:0]  right = sh_r[5] ? nsh[4:0] : 5'd0;   // sh >= -31, so -sh fits 5 bits
    wire signed [31:0] acc32 = acc_r;                        // sign extension
    wire signed [31:0] x     = acc32 << left;

    // SaturatingRoundingDoublingHighMul(x, m).
    wire signed [63:0] ab    = x * m_r;
    wire signed [63:0] nudge = ab[63] ? 64'sd1 - 64'sd1073741824 : 64'sd1073741824;
    wire signed [63:0] sum   = ab + nudge;
    // Division by 2^31 truncating toward zero: bias negative values by 2^31 - 1 first.
    wire signed [63:0] bias  = sum[63] ? 64'sd2147483647 : 64'sd0;
    wire signed [63:0] quo   = (sum + bias) >>> 31;
    wire               sat   = (x == 32'sh80000000) && (m_r == 32'sh80000000);
    wire signed [31:0] h     = sat ? 32'sh7fffffff : quo[31:0];

    // RoundingDivideByPOT(h, right).
    wire        [31:0] mask  = (32'd1 << right) - 32'd1;
    wire        [31:0] rem   = h & mask;
    wire        [31:0] thr   = (mask >> 1) + {31'd0, h[31]};
    wire signed [31:0] r     = (h >>> right) + $signed({31'd0, rem > thr});

    wire signed [33:0] v     = r + zp_r;
    wire signed [33:0] c     = (v < lo_r) ? lo_r : ((v > hi_r) ? hi_r : v);
    always @(posedge clk) y <= c[OW-1:0];
endmodule
