// k-bit multi-threshold requantizer (QNN/FINN `Requant::MultiThreshold`), one operation per clock:
//   y = number of the 2^K - 1 thresholds t_i with acc >= t_i (flip: acc <= t_i)
// exactly qbench_engine::requant::multi_threshold (a count, so it is exact for any threshold order).
// The channel's thresholds are a run-time input bus, threshold i in bits [ACCW*i +: ACCW], and
// `flip` its direction: one unit serves every channel. All comparators work in parallel.
module multi_threshold_unit #(
    parameter K = 2,
    parameter ACCW = 32
) (
    input  wire                           clk,
    input  wire signed [ACCW-1:0]         acc,
    input  wire [ACCW*((1<<K)-1)-1:0]     t,
    input  wire                           flip,
    output reg  [K-1:0]                   y
);
    localparam N = (1 << K) - 1;
    reg signed [ACCW-1:0]     acc_r;
    reg [ACCW*N-1:0]          t_r;
    reg                       flip_r;
    always @(posedge clk) begin
        acc_r <= acc; t_r <= t; flip_r <= flip;
    end

    reg [K-1:0] count;
    integer i;
    always @* begin
        count = {K{1'b0}};
        for (i = 0; i < N; i = i + 1)
            if (flip_r ? (acc_r <= $signed(t_r[ACCW*i +: ACCW]))
                       : (acc_r >= $signed(t_r[ACCW*i +: ACCW])))
                count = count + 1'b1;
    end
    always @(posedge clk) y <= count;
endmodule
