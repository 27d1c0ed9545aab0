//! u8 x i8 -> i32 convolution as an implicit GEMM: `out[o][pixel] = W[o][k] . X[pixel][k]`.
//!
//! The weights (the A side, broadcast by the microkernel) are packed once into
//! [`PackedConvWeights`] with the reduction index reordered to
//! `k = ((ky * kw + kx) * CP + cp) * 2 + j`, i.e. input channel `ci = 2 cp + j` of each group
//! taken in pairs (`CP = ceil(cin_g / 2)`; a missing odd channel has weight 0).
//!
//! The input is copied into a padded buffer (border = `pad_value`) whose channels are interleaved
//! in those pairs: `[image][group][cp][H + 2 pad][W + 2 pad][2]`. Then the 16 pixels x 1 k-pair
//! block the AVX2 kernel multiplies is 32 consecutive bytes whenever the 16 output pixels lie in
//! one output row (stride 1): the kernel reads them straight from the padded input through a
//! table of per-k-pair offsets, with no im2col copy. Other stride-1 panels (spanning output rows
//! or images) and stride-2 panels are gathered into a small panel first (per k-pair one 32-byte
//! load per run of pixels, or 64 bytes with every other byte pair kept for stride 2). Other
//! ISAs and strides use a generic gather. The tile is `out_channels x pixels`, which is the NCHW
//! output layout, so tiles are stored in place; one AVX2 call runs every weight panel of a group
//! against a pixel panel.
//!
//! With several small images (at most 64 KiB padded), each task pads the (at most two) images its
//! current pixel panel reads into a small buffer of its own, which stays in cache; otherwise all
//! images are padded once, in parallel, into a per-thread buffer reused across calls.

use crate::ConvGeometry;
use crate::dispatch::Int8Isa;
use crate::gemm::{Elem, Kernel, PanelData, pack_panels, shape};
use crate::threads::{SendPtr, max_threads, run_tasks};

/// Bytes of slack before and after the padded input, so that the 32-byte loads of a panel's pixel
/// runs never leave the buffer.
const SLACK: usize = 128;

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
        assert!(
            weights.len() >= g.out_channels * kh * kw * cin_g,
            "weights slice too short"
        );
        let cp2 = 2 * cin_g.div_ceil(2);
        let kk = kh * kw * cp2;
        let s = shape(isa);
        let kgroups = kk.div_ceil(s.kg);
        let per_group = cout_g.div_ceil(s.mr) * kgroups * s.mr * s.kg;
        let get = |grp: usize, o: usize, k: usize| {
            let (tap, ci) = (k / cp2, k % cp2);
            if ci < cin_g {
                weights[(((grp * cout_g + o) * cin_g + ci) * kh + tap / kw) * kw + tap % kw]
            } else {
                0
            }
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
    if g.in_channels == 0 {
        // An empty reduction: every output is 0.
        out[..g.batch * g.out_channels * oh * ow].fill(0);
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

/// Geometry of the pair-interleaved padded input.
#[derive(Clone, Copy)]
struct PadLayout {
    /// Channel pairs per group.
    cp: usize,
    hp: usize,
    wp: usize,
    /// Bytes per image: `groups * cp * hp * wp * 2`.
    img: usize,
}

impl PadLayout {
    fn new(g: &ConvGeometry) -> Self {
        let cp = (g.in_channels / g.groups).div_ceil(2);
        let (hp, wp) = (g.in_h + 2 * g.pad, g.in_w + 2 * g.pad);
        PadLayout {
            cp,
            hp,
            wp,
            img: g.groups * cp * hp * wp * 2,
        }
    }
}

/// The calling thread's padded-input buffer, and the layout whose borders it already holds.
#[derive(Default)]
struct PadBuf {
    buf: Vec<u8>,
    /// (images, groups, channel pairs, padded height, padded width, pad value) of the last fill:
    /// the borders sit where this layout puts them.
    key: Option<(usize, usize, usize, usize, usize, u8)>,
}

thread_local! {
    /// Reused padded-input buffer of the calling thread (avoids page faults on every call).
    static PADDED: std::cell::RefCell<PadBuf> = std::cell::RefCell::new(PadBuf::default());
}

/// Pad all images into `pb.buf` (`SLACK` bytes before and after), channel pairs in parallel on
/// `threads` threads. Borders are only rewritten when the layout or pad value changed.
fn pad_all(
    pb: &mut PadBuf,
    input: &[u8],
    g: &ConvGeometry,
    pl: PadLayout,
    pad_value: u8,
    threads: usize,
) {
    let key = (g.batch, g.groups, pl.cp, pl.hp, pl.wp, pad_value);
    if pb.key != Some(key) {
        pb.buf.clear();
        pb.buf.resize(g.batch * pl.img + 2 * SLACK, pad_value);
        pb.key = Some(key);
    }
    let pair_len = pl.hp * pl.wp * 2;
    let body = &mut pb.buf[SLACK..SLACK + g.batch * pl.img];
    let fill = |i: usize, dst: &mut [u8]| {
        // Pair i of all images: image n, group grp, pair cp.
        let per_img = g.groups * pl.cp;
        let (n, rest) = (i / per_img, i % per_img);
        pad_pair(dst, input, g, n, rest / pl.cp, rest % pl.cp, pad_value);
    };
    if threads <= 1 || body.len() < (1 << 16) {
        body.chunks_mut(pair_len)
            .enumerate()
            .for_each(|(i, d)| fill(i, d));
    } else {
        use rayon::prelude::*;
        body.par_chunks_mut(pair_len)
            .with_min_len(4)
            .enumerate()
            .for_each(|(i, d)| fill(i, d));
    }
}

/// Pad image `n` into `dst` (one image of the layout, borders already `pad_value`).
fn pad_image(
    dst: &mut [u8],
    input: &[u8],
    g: &ConvGeometry,
    pl: PadLayout,
    n: usize,
    pad_value: u8,
) {
    for (i, d) in dst.chunks_mut(pl.hp * pl.wp * 2).enumerate() {
        pad_pair(d, input, g, n, i / pl.cp, i % pl.cp, pad_value);
    }
}

/// Ask for image `n`'s input (if small) to be brought into cache while this image is processed.
fn prefetch_image(input: &[u8], g: &ConvGeometry, n: usize) {
    let len = g.in_channels * g.in_h * g.in_w;
    if n >= g.batch || len > (64 << 10) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    for off in (n * len..(n + 1) * len).step_by(64) {
        use std::arch::x86_64::*;
        // SAFETY: a prefetch of an in-bounds address; SSE is baseline on x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(input.as_ptr().add(off) as *const i8) };
    }
}

/// Write channels `2 cp` and `2 cp + 1` of group `grp`, image `n`, interleaved byte by byte, into
/// the interior of the padded pair plane `dst` (`[hp][wp][2]`), whose borders hold `pad_value`
/// and keep it. A missing second channel (odd `cin_g`) is left as it is: its weights are 0.
fn pad_pair(
    dst: &mut [u8],
    input: &[u8],
    g: &ConvGeometry,
    n: usize,
    grp: usize,
    cp: usize,
    pad_value: u8,
) {
    let cin_g = g.in_channels / g.groups;
    let (w, wp) = (g.in_w, g.in_w + 2 * g.pad);
    let plane = g.in_h * w;
    let ca = (n * g.in_channels + grp * cin_g + 2 * cp) * plane;
    let cb = (2 * cp + 1 < cin_g).then_some(ca + plane);
    for y in 0..g.in_h {
        let (sa, sb) = (ca + y * w, cb.map(|c| c + y * w));
        let d = ((y + g.pad) * wp + g.pad) * 2;
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            let fits = |s: usize| s + 16 <= input.len();
            // SAFETY: every 16-byte load and 32-byte store below is bounds-checked first; SSE2 is
            // baseline on x86_64.
            unsafe {
                let ld = |s: usize| _mm_loadu_si128(input.as_ptr().add(s) as *const __m128i);
                let pair = |x: usize| {
                    let va = ld(sa + x);
                    let vb = sb.map_or(_mm_setzero_si128(), |sb| ld(sb + x));
                    (_mm_unpacklo_epi8(va, vb), _mm_unpackhi_epi8(va, vb))
                };
                let out = dst.as_mut_ptr().add(d) as *mut __m128i;
                if w >= 16 {
                    // Whole chunks, then one overlapping chunk for the tail.
                    let mut x = 0;
                    while x < w {
                        let xx = x.min(w - 16);
                        let (lo, hi) = pair(xx);
                        let o = dst.as_mut_ptr().add(d + 2 * xx) as *mut __m128i;
                        _mm_storeu_si128(o, lo);
                        _mm_storeu_si128(o.add(1), hi);
                        x += 16;
                    }
                    continue;
                }
                if d + 32 <= dst.len() && fits(sa) && sb.is_none_or(fits) {
                    // One 32-byte store; the bytes past the row get pad_value. They are this
                    // row's right border and the next row's left border, or bytes of the next row
                    // that its own copy overwrites, or the bottom border.
                    let (lo, hi) = pair(0);
                    let idx = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                    let padv = _mm_set1_epi8(pad_value as i8);
                    let keep = |v: __m128i, first: i32| {
                        let lim = _mm_set1_epi8((2 * w as i32 - first).clamp(-1, 16) as i8);
                        let m = _mm_cmplt_epi8(idx, lim);
                        _mm_or_si128(_mm_and_si128(m, v), _mm_andnot_si128(m, padv))
                    };
                    _mm_storeu_si128(out, keep(lo, 0));
                    _mm_storeu_si128(out.add(1), keep(hi, 16));
                    continue;
                }
            }
        }
        for x in 0..w {
            dst[d + 2 * x] = input[sa + x];
            if let Some(sb) = sb {
                dst[d + 2 * x + 1] = input[sb + x];
            }
        }
    }
}

/// Where a panel's pixels live in the padded input (byte offsets of channel pair 0, tap (0, 0),
/// relative to the group's base).
struct PanelCols {
    /// Per column. Left empty when `segs` (stride 1, at most 4 runs) suffices.
    off: Vec<isize>,
    /// Runs of consecutive pixels: (first column, offset of a virtual column 0 of this run), so
    /// column `c` of the run is at `offset + 2 c`.
    segs: Vec<(usize, isize)>,
}

/// Column offsets and runs of the panel starting at pixel column `j0`; image `n` starts at
/// `img_base(n)` in the padded buffer.
#[allow(clippy::too_many_arguments)]
fn panel_cols(
    j0: usize,
    nr: usize,
    total: usize,
    g: &ConvGeometry,
    wp: usize,
    img_base: impl Fn(usize) -> isize,
    need_off: bool,
    cols: &mut PanelCols,
) {
    let (oh, ow) = (g.out_h(), g.out_w());
    cols.off.clear();
    cols.segs.clear();
    let (mut n, p) = (j0 / (oh * ow), j0 % (oh * ow));
    let (mut y, mut x) = (p / ow, p % ow);
    if !need_off {
        // Runs directly: one per output row (and image) the panel touches; column c of a run
        // is `2 * stride * c` bytes after its virtual column 0.
        let step = 2 * g.stride;
        let mut c = 0;
        while c < nr && j0 + c < total {
            let run = (ow - x).min(nr - c).min(total - j0 - c);
            let o = img_base(n) + (((y * g.stride) * wp + x * g.stride) * 2) as isize;
            cols.segs.push((c, o - (step * c) as isize));
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
            let o = img_off + (((y * g.stride) * wp + x * g.stride) * 2) as isize;
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
            cols.off[c - 1] + 2
        };
        if c == 0 || o != cols.off[c - 1] + 2 {
            cols.segs.push((c, o - 2 * c as isize));
        }
        cols.off.push(o);
    }
}

#[allow(clippy::too_many_arguments)]
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
    let cout_g = g.out_channels / g.groups;
    let pl = PadLayout::new(g);
    let taps = g.kernel_h * g.kernel_w;
    let kk = taps * 2 * pl.cp;
    let kgroups = kk.div_ceil(s.kg);
    let a_panels = cout_g.div_ceil(s.mr);
    let group_len = a_panels * kgroups * s.mr * s.kg;
    let threads = max_threads();
    let local = g.batch > 1 && plane >= s.nr && pl.img <= (64 << 10);
    let mut padded = PADDED.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if !local {
        pad_all(&mut padded, input, g, pl, pad_value, threads);
    }
    let padded_ref = &padded.buf;
    // Byte offset of every reduction row k = (tap * CP + cp) * 2 + j, and of every k-pair.
    let row_off: Vec<isize> = (0..kk)
        .map(|k| {
            let (pair, j) = (k / 2, k % 2);
            let (tap, cp) = (pair / pl.cp, pair % pl.cp);
            (((cp * pl.hp + tap / g.kernel_w) * pl.wp + tap % g.kernel_w) * 2 + j) as isize
        })
        .collect();
    let pair_off: Vec<isize> = row_off.iter().step_by(2).copied().collect();
    // Offsets of the k-pairs in a packed B panel (32 bytes each).
    let lin_off: Vec<isize> = (0..pair_off.len()).map(|t| 32 * t as isize).collect();
    let grp_len = pl.cp * pl.hp * pl.wp * 2;
    let n_panels = total.div_ceil(s.nr);
    let chunks = if threads <= 1 {
        1
    } else {
        (4 * threads).div_ceil(g.groups).min(n_panels)
    };
    let optr = SendPtr::new(out.as_mut_ptr());
    // AVX2 gathers stride-1 and stride-2 panels; other ISAs and strides use the generic gather.
    let simd = cfg!(target_arch = "x86_64") && isa == Int8Isa::Avx2 && g.stride <= 2;
    run_tasks(g.groups * chunks, threads, |t| {
        let (grp, ch) = (t / chunks, t % chunks);
        let (p0, p1) = (ch * n_panels / chunks, (ch + 1) * n_panels / chunks);
        let base = SLACK as isize + (grp * grp_len) as isize;
        let mut bbuf = vec![0u8; kgroups * s.nr * s.kg];
        let mut tile = vec![0i32; s.mr * s.nr];
        let mut cols = PanelCols {
            off: Vec::with_capacity(s.nr),
            segs: Vec::with_capacity(s.nr),
        };
        let wgrp = &wp[grp * group_len..(grp + 1) * group_len];
        let mut lbuf = if local {
            vec![pad_value; 2 * pl.img + 2 * SLACK]
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
                        let dst = &mut lbuf[SLACK + (n % 2) * pl.img..][..pl.img];
                        pad_image(dst, input, g, pl, n, pad_value);
                        loaded[n % 2] = n;
                        prefetch_image(input, g, n + 1);
                    }
                }
                let img_base = |n: usize| ((n % 2) * pl.img) as isize;
                panel_cols(j0, s.nr, total, g, pl.wp, img_base, !simd, &mut cols);
            } else {
                let img_base = |n: usize| (n * pl.img) as isize;
                panel_cols(j0, s.nr, total, g, pl.wp, img_base, !simd, &mut cols);
            }
            let buf: &[u8] = if local { &lbuf } else { padded_ref };
            // Where the kernel reads B: straight from the padded input (one run) or `bbuf`.
            let mut direct: Option<*const u8> = None;
            let mut packed = false;
            #[cfg(target_arch = "x86_64")]
            if simd && cols.off.is_empty() {
                if cols.segs.len() == 1 && g.stride == 1 {
                    let at = base + cols.segs[0].1;
                    // SAFETY: `at` + the pair offsets + 32 stays inside the buffer (SLACK).
                    direct = Some(unsafe { buf.as_ptr().offset(at) });
                } else {
                    // SAFETY: AVX2 present; the runs' loads stay inside the buffer (SLACK).
                    unsafe {
                        crate::gemm::avx2::pack_b_conv(
                            &mut bbuf, buf, base, &cols.segs, &pair_off, g.stride,
                        )
                    };
                }
                packed = true;
            }
            if !packed {
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
            // A full panel across one image boundary: AVX2 stores it in two parts.
            let split = (simd && cols_valid == s.nr && !direct_cols && plane >= s.nr)
                .then_some(plane - px0);
            #[cfg(target_arch = "x86_64")]
            if simd && direct_cols && cout_g.is_multiple_of(s.mr) {
                // Every weight panel of the group against this pixel panel, in one call.
                let (b, offs) = match direct {
                    Some(b) => (b, &pair_off),
                    None => (bbuf.as_ptr(), &lin_off),
                };
                // SAFETY: AVX2 present; the group's A panels hold `kgroups` pairs each; B reads
                // stay in the padded buffer / `bbuf`; the output block is this task's.
                unsafe {
                    let c = optr
                        .get()
                        .add((n0 * g.out_channels + grp * cout_g) * plane + px0);
                    crate::gemm::avx2::kernel_rows_multi(
                        a_panels,
                        kgroups,
                        wgrp.as_ptr() as *const i16,
                        b,
                        offs,
                        c,
                        plane,
                    );
                }
                continue;
            }
            for ap in 0..a_panels {
                let o0 = ap * s.mr;
                let rows = s.mr.min(cout_g - o0);
                let aptr = wgrp[ap * kgroups * s.mr * s.kg..].as_ptr();
                let o = grp * cout_g + o0;
                let run = |dst: *mut i32, ldc: usize| {
                    // SAFETY: panels hold `kgroups` groups; `dst` is a tile of the output owned
                    // by this task, or `tile`.
                    unsafe {
                        match direct {
                            #[cfg(target_arch = "x86_64")]
                            Some(b) => crate::gemm::avx2::kernel_rows(
                                kgroups,
                                aptr as *const i16,
                                b,
                                &pair_off,
                                dst,
                                ldc,
                            ),
                            _ => kernel(kgroups, aptr, bbuf.as_ptr(), dst, ldc, false),
                        }
                    }
                };
                // SAFETY: tasks write disjoint (group, pixel) tiles of the output.
                unsafe {
                    if direct_cols && rows == s.mr {
                        run(
                            optr.get().add((n0 * g.out_channels + o) * plane + px0),
                            plane,
                        );
                    } else if let (Some(split), true) = (split, rows == s.mr) {
                        run(tile.as_mut_ptr(), s.nr);
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
                        run(tile.as_mut_ptr(), s.nr);
                        // Copy each row in runs of pixels that share an image.
                        let mut c0 = 0;
                        while c0 < cols_valid {
                            let (n, px) = ((j0 + c0) / plane, (j0 + c0) % plane);
                            let len = (plane - px).min(cols_valid - c0);
                            for r in 0..rows {
                                let dst = std::slice::from_raw_parts_mut(
                                    optr.get().add((n * g.out_channels + o + r) * plane + px),
                                    len,
                                );
                                dst.copy_from_slice(&tile[r * s.nr + c0..r * s.nr + c0 + len]);
                            }
                            c0 += len;
                        }
                    }
                }
            }
        }
    });
    PADDED.with(|b| *b.borrow_mut() = padded);
}
