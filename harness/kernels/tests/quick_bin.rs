use qbench_kernels::*;
#[test]
fn bin_small() {
    for isa in BinaryIsa::all_available() {
        for (c, o, h, w, k, s, p) in [(64, 64, 7, 9, 3, 1, 1), (70, 5, 5, 5, 3, 2, 1), (130, 9, 6, 4, 3, 1, 2), (3, 3, 4, 21, 1, 1, 0)] {
            let g = ConvGeometry { batch: 2, in_channels: c, in_h: h, in_w: w, out_channels: o, kernel_h: k, kernel_w: k, stride: s, pad: p, groups: 1 };
            let words = words_for_bits(c);
            let mask = if c % 64 == 0 { !0u64 } else { (1u64 << (c % 64)) - 1 };
            let fix = |v: &mut Vec<u64>| for (i, x) in v.iter_mut().enumerate() { if i % words == words - 1 { *x &= mask; } };
            let mut inp: Vec<u64> = (0..2 * h * w * words).map(|i| (i as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15)).collect();
            let mut wt: Vec<u64> = (0..o * k * k * words).map(|i| (i as u64 + 7).wrapping_mul(0xD1B54A32D192ED03)).collect();
            fix(&mut inp); fix(&mut wt);
            let n = 2 * o * g.out_h() * g.out_w();
            let mut r = vec![0; n];
            let mut f = vec![1; n];
            reference::binary_conv2d(&inp, &wt, &mut r, &g);
            binary_conv2d_with(isa, &inp, &wt, &mut f, &g);
            assert_eq!(r, f, "{isa:?} {g:?}");
            let (m2, n2) = (2 * h * w, o);
            let mut r = vec![0; m2 * n2];
            let mut f = vec![1; m2 * n2];
            let wt2 = &wt[..o * words];
            reference::binary_gemm(&inp, wt2, &mut r, m2, n2, c);
            binary_gemm_with(isa, &inp, wt2, &mut f, m2, n2, c);
            assert_eq!(r, f, "gemm {isa:?} {g:?}");
        }
    }
}
