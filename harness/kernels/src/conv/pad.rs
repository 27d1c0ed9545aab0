//! The pair-interleaved padded input: `[image][group][cp][H + 2 pad][W + 2 pad][2]`.

use super::SLACK;
use crate::ConvGeometry;

/// Geometry of the pair-interleaved padded input.
#[derive(Clone, Copy)]
pub(super) struct PadLayout {
    /// Channel pairs per group.
    pub cp: usize,
    /// Padded height.
    pub hp: usize,
    /// Padded width.
    pub wp: usize,
    /// Bytes per image: `groups * cp * hp * wp * 2`.
    pub img: usize,
}

impl PadLayout {
    pub(super) fn new(g: &ConvGeometry) -> Self {
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
pub(super) struct PadBuf {
    pub buf: Vec<u8>,
    /// (images, groups, channel pairs, padded height, padded width, pad value) of the last fill:
    /// the borders sit where this layout puts them.
    key: Option<(usize, usize, usize, usize, usize, u8)>,
}

thread_local! {
    /// Reused padded-input buffer of the calling thread (avoids page faults on every call); it
    /// keeps the size of the largest padded input padded on this thread.
    pub(super) static PADDED: std::cell::RefCell<PadBuf> = std::cell::RefCell::new(PadBuf::default());
}

/// Pad all images into `pb.buf` (`SLACK` bytes before and after), channel pairs in parallel on
/// `threads` threads. Borders are only rewritten when the layout or pad value changed.
pub(super) fn pad_all(
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
pub(super) fn pad_image(
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
pub(super) fn prefetch_image(input: &[u8], g: &ConvGeometry, n: usize) {
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
