use qbench_kernels::*;
#[test]
fn conv_small() {
    for isa in Int8Isa::all_available() {
        for (c, o, h, w, k, s, p, gr) in [(3, 5, 7, 9, 3, 1, 1, 1), (4, 4, 5, 5, 3, 2, 1, 2), (64, 64, 8, 8, 3, 1, 1, 1), (6, 6, 9, 7, 3, 1, 2, 6), (5, 3, 4, 21, 1, 1, 0, 1)] {
            let g = ConvGeometry { batch: 3, in_channels: c, in_h: h, in_w: w, out_channels: o, kernel_h: k, kernel_w: k, stride: s, pad: p, groups: gr };
            let inp: Vec<u8> = (0..3 * c * h * w).map(|i| (i * 37 % 256) as u8).collect();
            let wt: Vec<i8> = (0..o * c / gr * k * k).map(|i| (i * 91 % 256) as u8 as i8).collect();
            let n = 3 * o * g.out_h() * g.out_w();
            let mut r = vec![0; n];
            let mut f = vec![1; n];
            reference::conv2d_u8i8(&inp, &wt, &mut r, &g, 7);
            conv2d_u8i8_with(isa, &inp, &wt, &mut f, &g, 7);
            assert_eq!(r, f, "{isa:?} {g:?}");
        }
    }
}
