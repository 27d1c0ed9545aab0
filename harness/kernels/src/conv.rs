//! u8 x i8 -> i32 convolution as an implicit GEMM: `out[o][pixel] = W[o][k] . X[pixel][k]`.
//!
//! The weights (the A side, broadcast by the microkernel) are packed once into
//! [`PackedConvWeights`] with the reduction index reordered to `k = (ky * kw + kx) * cin_g + ci`.
//! The input is copied once per call into a padded buffer (border = `pad_value`), and each task
//! builds, for `NR` output pixels at a time, the im2col panel (the B side) in L1 with SIMD loads
//! (stride 1), then runs the microkernel for every weight panel of the group. The tile is
//! `out_channels x pixels`, which is exactly the NCHW output layout, so full tiles are stored in
//! place. Pixels of a panel may span output rows and images.

use crate::ConvGeometry;
use crate::dispatch::Int8Isa;
use crate::gemm::{Elem, Kernel, PanelData, pack_panels, shape};
use crate::threads::{SendPtr, max_threads, run_tasks};

/// Bytes of slack before and after the padded input, so that 16-byte loads of a panel's pixel
/// segments never leave the buffer.
const SLACK: usize = 64;

/// i8 convolution weights (`[O][C/groups][kh][kw]`) packed once for [`conv2d_u8i8_packed`].
#[derive(Clone, Debug)]
pub struct PackedConvWeights {
    out_channels: usize,
    cin_g: usize,
    kernel_h: usize,
    kernel_w: usize,
    groups: usize,
    isa: Int8Isa,
    /// Per group, `cout_g.div_ceil(MR)` A panels over all k-groups, groups concatenated.
    data: PanelData,
}

impl PackedConvWeights {
    /// Pack `weights` for the geometry `g` (only its channel counts, kernel size and groups are
    /// used) for the best ISA of this CPU.
    pub fn new(weights: &[i8], g: &ConvGeometry) -> Self {
        Self::new_for(crate::dispatch::int8_isa(), weights, g)
    }

    /// Pack for a given ISA (for tests and benchmarks). Panics if the CPU lacks it.
    pub fn new_for(isa: Int8Isa, weights: &[i8], g: &ConvGeometry) -> Self {
        assert!(isa.available(), "{isa:?} is not available on this CPU");
        assert!(g.groups > 0 && g.in_channels % g.groups == 0 && g.out_channels % g.groups == 0);
        let cin_g = g.in_channels / g.groups;
        let cout_g = g.out_channels / g.groups;
        let (kh, kw) = (g.kernel_h, g.kernel_w);
        let kk = kh * kw * cin_g;
        assert!(weights.len() >= g.out_channels * kk, "weights slice too short");
        let s = shape(isa);
        let kgroups = kk.div_ceil(s.kg);
        let per_group = cout_g.div_ceil(s.mr) * kgroups * s.mr * s.kg;
        let get = |grp: usize, o: usize, k: usize| {
            let (tap, ci) = (k / cin_g, k % cin_g);
            weights[(((grp * cout_g + o) * cin_g + ci) * kh + tap / kw) * kw + tap % kw]
        };
        fn fill<E: Elem>(
            len: usize,
            groups: usize,
            cout_g: usize,
            kk: usize,
            s: crate::gemm::Shape,
            get: impl Fn(usize, usize, usize) -> i8,
        ) -> Vec<E> {
            let mut v = vec![E::default(); len * groups];
            for (grp, chunk) in v.chunks_mut(len.max(1)).enumerate().take(groups) {
                pack_panels(chunk, cout_g, kk, s.mr, s.kg, (0, kk.div_ceil(s.kg)), |o, k| {
                    E::from_i8(get(grp, o, k))
                });
            }
            v
        }
        let data = match isa {
            Int8Isa::Scalar | Int8Isa::Avx2 => {
                PanelData::Pairs(fill(per_group, g.groups, cout_g, kk, s, get))
            }
            Int8Isa::Avx512Vnni => PanelData::Quads(fill(per_group, g.groups, cout_g, kk, s, get)),
        };
        PackedConvWeights {
            out_channels: g.out_channels,
            cin_g,
            kernel_h: kh,
            kernel_w: kw,
            groups: g.groups,
            isa,
            data,
        }
    }

    /// The ISA whose layout this packing uses.
    pub fn isa(&self) -> Int8Isa {
        self.isa
    }

    fn check(&self, g: &ConvGeometry) {
        assert!(
            g.out_channels == self.out_channels
                && g.in_channels == self.cin_g * self.groups
                && g.kernel_h == self.kernel_h
                && g.kernel_w == self.kernel_w
                && g.groups == self.groups,
            "geometry does not match the packed weights"
        );
    }
}

/// Convolution with pre-packed weights; equal bit for bit to [`crate::reference::conv2d_u8i8`].
pub fn conv2d_u8i8_packed(
    input: &[u8],
    weights: &PackedConvWeights,
    out: &mut [i32],
    g: &ConvGeometry,
    pad_value: u8,
) {
    weights.check(g);
    assert!(g.stride > 0 && g.kernel_h > 0 && g.kernel_w > 0);
    assert!(g.in_h + 2 * g.pad >= g.kernel_h && g.in_w + 2 * g.pad >= g.kernel_w);
    let (oh, ow) = (g.out_h(), g.out_w());
    assert!(input.len() >= g.batch * g.in_channels * g.in_h * g.in_w, "input too short");
    assert!(out.len() >= g.batch * g.out_channels * oh * ow, "output too short");
    if g.batch == 0 || g.out_channels == 0 || oh == 0 || ow == 0 {
        return;
    }
    match (&weights.data, weights.isa) {
        (PanelData::Pairs(d), Int8Isa::Scalar) => {
            drive(crate::gemm::scalar::kernel, Int8Isa::Scalar, input, d, out, g, pad_value)
        }
        #[cfg(target_arch = "x86_64")]
        (PanelData::Pairs(d), Int8Isa::Avx2) => {
            drive(crate::gemm::avx2::kernel, Int8Isa::Avx2, input, d, out, g, pad_value)
        }
        #[cfg(target_arch = "x86_64")]
        (PanelData::Quads(d), Int8Isa::Avx512Vnni) => drive(
            crate::gemm::vnni::kernel::<false>,
            Int8Isa::Avx512Vnni,
            input,
            d,
            out,
            g,
            pad_value,
        ),
        _ => unreachable!("packed layout does not match its ISA"),
    }
}

/// [`crate::conv2d_u8i8`] on an explicit ISA (packs the weights on every call). Panics if the CPU
/// lacks the ISA. For tests and benchmarks of each SIMD path.
pub fn conv2d_u8i8_with(
    isa: Int8Isa,
    input: &[u8],
    weights: &[i8],
    out: &mut [i32],
    g: &ConvGeometry,
    pad_value: u8,
) {
    let p = PackedConvWeights::new_for(isa, weights, g);
    conv2d_u8i8_packed(input, &p, out, g, pad_value);
}

/// Copy the input into `buf` as `[N][C][H + 2 pad][W + 2 pad]` bordered by `pad_value`, with
/// `SLACK` bytes before and after; planes are copied in parallel on `threads` threads.
fn pad_input(buf: &mut Vec<u8>, input: &[u8], g: &ConvGeometry, pad_value: u8, threads: usize) {
    let (hp, wp) = (g.in_h + 2 * g.pad, g.in_w + 2 * g.pad);
    let planes = g.batch * g.in_channels;
    let len = planes * hp * wp + 2 * SLACK;
    buf.clear();
    buf.resize(len, pad_value);
    let plane_len = hp * wp;
    let body = &mut buf[SLACK..SLACK + planes * plane_len];
    let copy_plane = |pl: usize, dst: &mut [u8]| {
        for y in 0..g.in_h {
            let src = &input[(pl * g.in_h + y) * g.in_w..][..g.in_w];
            let d = (y + g.pad) * wp + g.pad;
            copy_row(&mut dst[d..d + g.in_w], src);
        }
    };
    if threads <= 1 || planes * plane_len < (1 << 16) {
        for (pl, dst) in body.chunks_mut(plane_len).enumerate() {
            copy_plane(pl, dst);
        }
    } else {
        use rayon::prelude::*;
        body.par_chunks_mut(plane_len)
            .with_min_len(8)
            .enumerate()
            .for_each(|(pl, dst)| copy_plane(pl, dst));
    }
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the short rows of small images.
#[inline]
fn copy_row(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n >= 8 && n <= 64 {
        let mut i = 0;
        while i + 8 <= n {
            dst[i..i + 8].copy_from_slice(&src[i..i + 8]);
            i += 8;
        }
        if i < n {
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
    } else {
        dst.copy_from_slice(src);
    }
}

thread_local! {
    /// Reused padded-input buffer of the calling thread (avoids page faults on every call).
    static PADDED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Where a panel's pixels live in the padded input.
struct PanelCols {
    /// Per column: offset of its tap-(0,0) byte of channel 0 (relative to the buffer start
    /// after `SLACK`).
    off: Vec<isize>,
    /// Runs of consecutive offsets: (first column, offset of column 0 for this run).
    segs: Vec<(usize, isize)>,
}

#[allow(clippy::too_many_arguments)]
fn panel_cols(j0: usize, nr: usize, total: usize, g: &ConvGeometry, cols: &mut PanelCols) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (hp, wp) = (g.in_h + 2 * g.pad, g.in_w + 2 * g.pad);
    cols.off.clear();
    cols.segs.clear();
    let (n, p) = (j0 / (oh * ow), j0 % (oh * ow));
    let (mut y, mut x) = (p / ow, p % ow);
    let img = (g.in_channels * hp * wp) as isize;
    let mut img_off = n as isize * img;
    for c in 0..nr {
        let o = if j0 + c < total {
            let o = img_off + ((y * g.stride) * wp + x * g.stride) as isize;
            x += 1;
            if x == ow {
                x = 0;
                y += 1;
                if y == oh {
                    y = 0;
                    img_off += img;
                }
            }
            o
        } else {
            // Garbage columns past the end: continue the last run (reads stay in the slack).
            cols.off[c - 1] + 1
        };
        if c == 0 || o != cols.off[c - 1] + 1 {
            cols.segs.push((c, o - c as isize));
        }
        cols.off.push(o);
    }
}

fn drive<E: Elem>(
    kernel: Kernel<E>,
    isa: Int8Isa,
    input: &[u8],
    wp: &[E],
    out: &mut [i32],
    g: &ConvGeometry,
    pad_value: u8,
) {
    let s = shape(isa);
    let (oh, ow) = (g.out_h(), g.out_w());
    let plane = oh * ow;
    let total = g.batch * plane;
    let cin_g = g.in_channels / g.groups;
    let cout_g = g.out_channels / g.groups;
    let kk = g.kernel_h * g.kernel_w * cin_g;
    let kgroups = kk.div_ceil(s.kg);
    let a_panels = cout_g.div_ceil(s.mr);
    let group_len = a_panels * kgroups * s.mr * s.kg;
    let threads = max_threads();
    let mut padded = PADDED.with(|b| std::mem::take(&mut *b.borrow_mut()));
    pad_input(&mut padded, input, g, pad_value, threads);
    let padded_ref = &padded;
    let (hp, wpad) = (g.in_h + 2 * g.pad, g.in_w + 2 * g.pad);
    // Offset of every reduction row k = tap * cin_g + ci (group 0), relative to a column offset.
    let row_off: Vec<isize> = (0..kk)
        .map(|k| {
            let (tap, ci) = (k / cin_g, k % cin_g);
            ((ci * hp + tap / g.kernel_w) * wpad + tap % g.kernel_w) as isize
        })
        .collect();
    let n_panels = total.div_ceil(s.nr);
    let chunks = if threads <= 1 {
        1
    } else {
        (4 * threads).div_ceil(g.groups).min(n_panels)
    };
    let optr = SendPtr(out.as_mut_ptr());
    let simd = cfg!(target_arch = "x86_64") && isa == Int8Isa::Avx2 && g.stride == 1;
    run_tasks(g.groups * chunks, threads, |t| {
        let optr = optr;
        let (grp, ch) = (t / chunks, t % chunks);
        let (p0, p1) = (ch * n_panels / chunks, (ch + 1) * n_panels / chunks);
        let base = SLACK as isize + (grp * cin_g * hp * wpad) as isize;
        let mut bbuf = vec![E::default(); kgroups * s.nr * s.kg];
        let mut tile = vec![0i32; s.mr * s.nr];
        let mut cols = PanelCols {
            off: Vec::with_capacity(s.nr),
            segs: Vec::with_capacity(s.nr),
        };
        let wgrp = &wp[grp * group_len..(grp + 1) * group_len];
        for p in p0..p1 {
            let j0 = p * s.nr;
            panel_cols(j0, s.nr, total, g, &mut cols);
            let mut done = false;
            #[cfg(target_arch = "x86_64")]
            if simd && cols.segs.len() <= 4 {
                // SAFETY: E is i16 for AVX2 (checked); offsets stay inside the padded buffer.
                unsafe {
                    assert_eq!(std::mem::size_of::<E>(), 2);
                    let dst = std::slice::from_raw_parts_mut(
                        bbuf.as_mut_ptr() as *mut i16,
                        bbuf.len(),
                    );
                    crate::gemm::avx2::pack_b_conv(dst, padded_ref, base, &cols.segs, &row_off);
                }
                done = true;
            }
            if !done {
                for kg in 0..kgroups {
                    for c in 0..s.nr {
                        for jj in 0..s.kg {
                            let k = kg * s.kg + jj;
                            bbuf[(kg * s.nr + c) * s.kg + jj] = if k < kk {
                                E::from_u8(padded_ref[(base + cols.off[c] + row_off[k]) as usize])
                            } else {
                                E::default()
                            };
                        }
                    }
                }
            }
            let cols_valid = s.nr.min(total - j0);
            let (n0, px0) = (j0 / plane, j0 % plane);
            let direct_cols = cols_valid == s.nr && px0 + s.nr <= plane;
            for ap in 0..a_panels {
                let o0 = ap * s.mr;
                let rows = s.mr.min(cout_g - o0);
                let aptr = wgrp[ap * kgroups * s.mr * s.kg..].as_ptr();
                // SAFETY: panels hold `kgroups` groups; tasks write disjoint (group, pixel) tiles.
                unsafe {
                    if direct_cols && rows == s.mr {
                        let dst = optr.0.add((n0 * g.out_channels + grp * cout_g + o0) * plane + px0);
                        kernel(kgroups, aptr, bbuf.as_ptr(), dst, plane, false);
                    } else {
                        kernel(kgroups, aptr, bbuf.as_ptr(), tile.as_mut_ptr(), s.nr, false);
                        // Copy each row in runs of pixels that share an image.
                        let mut c0 = 0;
                        while c0 < cols_valid {
                            let (n, px) = ((j0 + c0) / plane, (j0 + c0) % plane);
                            let run = (plane - px).min(cols_valid - c0);
                            for r in 0..rows {
                                let o = grp * cout_g + o0 + r;
                                let dst = std::slice::from_raw_parts_mut(
                                    optr.0.add((n * g.out_channels + o) * plane + px),
                                    run,
                                );
                                dst.copy_from_slice(&tile[r * s.nr + c0..r * s.nr + c0 + run]);
                            }
                            c0 += run;
                        }
                    }
                }
            }
        }
    });
    PADDED.with(|b| *b.borrow_mut() = padded);
}
