// Binary (+-1 x +-1) processing element: one N-wide xnor-popcount accumulate per clock,
//   acc <= (clr ? bias : acc) + (N - 2 * popcount(a ^ w))
// the engine's BinaryConv2d/BinaryDense arithmetic on one packed word (bit 1 = +1): each bit pair
// contributes a * w = +1 when equal, -1 when different. `y` is the accumulator register.
module xnor_popcount #(
    parameter N = 64,
    parameter ACCW = 32
) (
    input  wire                   clk,
    input  wire                   clr,
    input  wire signed [ACCW-1:0] bias,
    input  wire [N-1:0]           a,
    input  wire [N-1:0]           w,
    output reg  signed [ACCW-1:0] y
);
    reg                   clr_r;
    reg signed [ACCW-1:0] bias_r;
    reg [N-1:0]           a_r, w_r;
    always @(posedge clk) begin
        clr_r <= clr; bias_r <= bias; a_r <= a; w_r <= w;
    end
    wire [N-1:0] diff = a_r ^ w_r;
    reg  [$clog2(N+1)-1:0] pop;
    integer i;
    always @* begin
        pop = 0;
        for (i = 0; i < N; i = i + 1)
            pop = pop + diff[i];
    end
    wire signed [ACCW-1:0] dot  = N - 2 * $signed({1'b0, pop});
    wire signed [ACCW-1:0] base = clr_r ? bias_r : y;
    always @(posedge clk) y <= base + dot;
endmodule
