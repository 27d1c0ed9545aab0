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
        assert!(
            g.groups > 0
                && g.in_channels.is_multiple_of(g.groups)
                && g.out_channels.is_multiple_of(g.groups)
        );
        let cin_g = g.in_channels / g.groups;
        let cout_g = g.out_channels / g.groups;
        let (kh, kw) = (g.kernel_h, g.kernel_w);
        let kk = kh * kw * cin_g;
        assert!(
            weights.len() >= g.out_channels * kk,
            "weights slice too short"
        );
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
                pack_panels(
                    chunk,
                    cout_g,
                    kk,
                    s.mr,
                    s.kg,
                    (0, kk.div_ceil(s.kg)),
                    |o, k| E::from_i8(get(grp, o, k)),
                );
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
    assert!(
        input.len() >= g.batch * g.in_channels * g.in_h * g.in_w,
        "input too short"
    );
    assert!(
        out.len() >= g.batch * g.out_channels * oh * ow,
        "output too short"
    );
    if g.batch == 0 || g.out_channels == 0 || oh == 0 || ow == 0 {
        return;
    }
    match (&weights.data, weights.isa) {
        (PanelData::Pairs(d), Int8Isa::Scalar) => drive(
            crate::gemm::scalar::kernel::<false>,
            Int8Isa::Scalar,
            input,
            d,
            out,
            g,
            pad_value,
        ),
        #[cfg(target_arch = "x86_64")]
        (PanelData::Pairs(d), Int8Isa::Avx2) => drive(
            crate::gemm::avx2::kernel::<false>,
            Int8Isa::Avx2,
            input,
            d,
            out,
            g,
            pad_value,
        ),
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

/// The calling thread's padded-input buffer, and the layout whose borders it already holds.
#[derive(Default)]
struct PadBuf {
    buf: Vec<u8>,
    /// (planes, padded height, padded width, pad value) of the last fill.
    key: Option<(usize, usize, usize, u8)>,
}

/// Copy the input into `pb.buf` as `[N][C][H + 2 pad][W + 2 pad]` bordered by `pad_value`, with
/// `SLACK` bytes before and after; planes are copied in parallel on `threads` threads. Borders are
/// only rewritten when the layout or pad value changed since the last call on this thread.
fn pad_input(pb: &mut PadBuf, input: &[u8], g: &ConvGeometry, pad_value: u8, threads: usize) {
    let (hp, wp) = (g.in_h + 2 * g.pad, g.in_w + 2 * g.pad);
    let planes = g.batch * g.in_channels;
    let len = planes * hp * wp + 2 * SLACK;
    let key = (planes, hp, wp, pad_value);
    if pb.key != Some(key) {
        pb.buf.clear();
        pb.buf.resize(len, pad_value);
        pb.key = Some(key);
    }
    let plane_len = hp * wp;
    let body = &mut pb.buf[SLACK..SLACK + planes * plane_len];
    let copy_plane = |pl: usize, dst: &mut [u8]| pad_plane(dst, input, pl, g, pad_value);
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

/// Copy input plane `pl` (image-major plane index) into the interior of the padded plane `dst`,
/// whose borders already hold `pad_value` (and keep it).
fn pad_plane(dst: &mut [u8], input: &[u8], pl: usize, g: &ConvGeometry, pad_value: u8) {
    let wp = g.in_w + 2 * g.pad;
    for y in 0..g.in_h {
        let s0 = (pl * g.in_h + y) * g.in_w;
        let d = (y + g.pad) * wp + g.pad;
        #[cfg(target_arch = "x86_64")]
        if g.in_w < 16 && d + 16 <= dst.len() && s0 + 16 <= input.len() {
            // One 16-byte store: the row, then pad_value over the bytes past it. Those are this
            // row's right border and the next row's left border, or bytes of the next row that
            // its own copy overwrites, or the bottom border.
            use std::arch::x86_64::*;
            // SAFETY: both 16-byte ranges are in bounds (checked above); SSE2 is baseline.
            unsafe {
                let v = _mm_loadu_si128(input.as_ptr().add(s0) as *const __m128i);
                let idx = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                let keep = _mm_cmplt_epi8(idx, _mm_set1_epi8(g.in_w as i8));
                let padv = _mm_set1_epi8(pad_value as i8);
                let out = _mm_or_si128(_mm_and_si128(keep, v), _mm_andnot_si128(keep, padv));
                _mm_storeu_si128(dst.as_mut_ptr().add(d) as *mut __m128i, out);
            }
            continue;
        }
        copy_row(&mut dst[d..d + g.in_w], &input[s0..s0 + g.in_w]);
    }
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the short rows of small images.
#[inline]
fn copy_row(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if (8..=64).contains(&n) {
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
    static PADDED: std::cell::RefCell<PadBuf> = std::cell::RefCell::new(PadBuf::default());
}

/// Where a panel's pixels live in the padded input.
struct PanelCols {
    /// Per column: offset of its tap-(0,0) byte of channel 0 (relative to the buffer start
    /// after `SLACK`). Left empty when `segs` (stride 1, at most 4 runs) suffices.
    off: Vec<isize>,
    /// Runs of consecutive offsets: (first column, offset of column 0 for this run).
    segs: Vec<(usize, isize)>,
}

/// Column offsets and runs of the panel starting at pixel column `j0`; image `n` starts at
/// `img_base(n)` in the padded buffer.
fn panel_cols(
    j0: usize,
    nr: usize,
    total: usize,
    g: &ConvGeometry,
    img_base: impl Fn(usize) -> isize,
    need_off: bool,
    cols: &mut PanelCols,
) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (hp, wp) = (g.in_h + 2 * g.pad, g.in_w + 2 * g.pad);
    cols.off.clear();
    cols.segs.clear();
    let _ = hp;
    let (mut n, p) = (j0 / (oh * ow), j0 % (oh * ow));
    let (mut y, mut x) = (p / ow, p % ow);
    if g.stride == 1 && !need_off {
        // Runs directly: one per output row (and image) the panel touches; the per-column
        // offsets are only needed by the generic gather.
        let mut c = 0;
        while c < nr && j0 + c < total {
            let run = (ow - x).min(nr - c).min(total - j0 - c);
            cols.segs
                .push((c, img_base(n) + (y * wp + x) as isize - c as isize));
            c += run;
            x = 0;
            y += 1;
            if y == oh {
                y = 0;
                n += 1;
            }
        }
        if cols.segs.len() <= 4 {
            return;
        }
        cols.segs.clear();
        (n, y, x) = (j0 / (oh * ow), p / ow, p % ow);
    }
    let mut img_off = img_base(n);
    for c in 0..nr {
        let o = if j0 + c < total {
            let o = img_off + ((y * g.stride) * wp + x * g.stride) as isize;
            x += 1;
            if x == ow {
                x = 0;
                y += 1;
                if y == oh {
                    y = 0;
                    n += 1;
                    img_off = img_base(n);
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
    let (hp, wpad) = (g.in_h + 2 * g.pad, g.in_w + 2 * g.pad);
    let img_len = g.in_channels * hp * wpad;
    // With several images, each task pads the (at most two) images its current panel reads into
    // a small buffer of its own, which stays in cache; one image is padded once, up front.
    let local = g.batch > 1 && plane >= s.nr;
    let mut padded = PADDED.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if !local {
        pad_input(&mut padded, input, g, pad_value, threads);
    }
    let padded_ref = &padded.buf;
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
    let optr = SendPtr::new(out.as_mut_ptr());
    let simd = cfg!(target_arch = "x86_64") && isa == Int8Isa::Avx2 && g.stride == 1;
    run_tasks(g.groups * chunks, threads, |t| {
        let (grp, ch) = (t / chunks, t % chunks);
        let (p0, p1) = (ch * n_panels / chunks, (ch + 1) * n_panels / chunks);
        let base = SLACK as isize + (grp * cin_g * hp * wpad) as isize;
        let mut bbuf = vec![0u8; kgroups * s.nr * s.kg];
        let mut tile = vec![0i32; s.mr * s.nr];
        let mut cols = PanelCols {
            off: Vec::with_capacity(s.nr),
            segs: Vec::with_capacity(s.nr),
        };
        let wgrp = &wp[grp * group_len..(grp + 1) * group_len];
        let mut lbuf = if local {
            vec![pad_value; 2 * img_len + 2 * SLACK]
        } else {
            Vec::new()
        };
        let mut loaded = [usize::MAX; 2];
        for p in p0..p1 {
            let j0 = p * s.nr;
            if local {
                let n_first = j0 / plane;
                let n_last = ((j0 + s.nr).min(total) - 1) / plane;
                for n in n_first..=n_last {
                    if loaded[n % 2] != n {
                        let dst = &mut lbuf[SLACK + (n % 2) * img_len..][..img_len];
                        for (ci, pl) in dst.chunks_mut(hp * wpad).enumerate() {
                            pad_plane(pl, input, n * g.in_channels + ci, g, pad_value);
                        }
                        loaded[n % 2] = n;
                    }
                }
                let base = |n: usize| ((n % 2) * img_len) as isize;
                panel_cols(j0, s.nr, total, g, base, !simd, &mut cols);
            } else {
                let base = |n: usize| (n * img_len) as isize;
                panel_cols(j0, s.nr, total, g, base, !simd, &mut cols);
            }
            let buf: &[u8] = if local { &lbuf } else { padded_ref };
            let mut done = false;
            #[cfg(target_arch = "x86_64")]
            if simd && cols.off.is_empty() {
                // SAFETY: AVX2 is present (the ISA was checked when packing the weights); the
                // runs' 16-byte loads stay inside the padded buffer (SLACK on both ends).
                unsafe {
                    crate::gemm::avx2::pack_b_conv(&mut bbuf, buf, base, &cols.segs, &row_off);
                }
                done = true;
            }
            if !done {
                for kg in 0..kgroups {
                    for c in 0..s.nr {
                        for jj in 0..s.kg {
                            let k = kg * s.kg + jj;
                            bbuf[(kg * s.nr + c) * s.kg + jj] = if k < kk {
                                buf[(base + cols.off[c] + row_off[k]) as usize]
                            } else {
                                0
                            };
                        }
                    }
                }
            }
            let cols_valid = s.nr.min(total - j0);
            let (n0, px0) = (j0 / plane, j0 % plane);
            let direct_cols = cols_valid == s.nr && px0 + s.nr <= plane;
            // A full panel across one image boundary: AVX2 stores it with two masked stores.
            let split = (simd && cols_valid == s.nr && !direct_cols && plane >= s.nr)
                .then_some(plane - px0);
            for ap in 0..a_panels {
                let o0 = ap * s.mr;
                let rows = s.mr.min(cout_g - o0);
                let aptr = wgrp[ap * kgroups * s.mr * s.kg..].as_ptr();
                // SAFETY: panels hold `kgroups` groups; tasks write disjoint (group, pixel) tiles.
                unsafe {
                    if direct_cols && rows == s.mr {
                        let dst = optr
                            .get()
                            .add((n0 * g.out_channels + grp * cout_g + o0) * plane + px0);
                        kernel(kgroups, aptr, bbuf.as_ptr(), dst, plane, false);
                    } else if let (Some(split), true) = (split, rows == s.mr) {
                        kernel(kgroups, aptr, bbuf.as_ptr(), tile.as_mut_ptr(), s.nr, false);
                        let o = grp * cout_g + o0;
                        let d0 = optr.get().add((n0 * g.out_channels + o) * plane + px0);
                        // Column c >= split goes to pixel c - split of image n0 + 1.
                        let d1 = optr
                            .get()
                            .add(((n0 + 1) * g.out_channels + o) * plane)
                            .wrapping_sub(split);
                        #[cfg(target_arch = "x86_64")]
                        crate::gemm::avx2::store_split(&tile, d0, d1, plane, split);
                        #[cfg(not(target_arch = "x86_64"))]
                        unreachable!("split stores are AVX2 only ({d0:?}, {d1:?})");
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
                                    optr.get().add((n * g.out_channels + o) * plane + px),
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
