//! Depthwise u8 x i8 -> i32 convolution: one input and one output channel per group
//! (`groups == in_channels == out_channels`).
//!
//! The implicit-GEMM convolution ([`crate::conv`]) handles any `groups`, but a depthwise layer
//! gives its microkernel one output channel and one input channel per group, so most of every
//! register tile multiplies padding (the 56 x 56 x 128 3x3 layer of `qbench bench kernels` runs
//! at about 3% of the int8 peak there). This kernel works on one (image, channel) plane at a time
//! instead, with the padding rule of the GEMM path and the reference: taps outside the input read
//! `pad_value`.
//!
//! AVX2 (`avx2.rs`, also used on AVX-512 VNNI CPUs; strides 1 and 2; 3x3 stride-1 pad-1 layers
//! with rows of 16 inputs or more read the planes in place, see `avx2::Direct3x3`): each
//! `vpmaddwd` applies two horizontal taps `(w[kx], w[kx + 1])` of one kernel row to 8 consecutive outputs, the input
//! pairs being built in registers from u8 rows by a byte shuffle (stride 1) or a zero extension
//! (stride 2); each 8-wide column of outputs is swept top to bottom keeping the last `kh` rows'
//! pair vectors in registers. See that module for the layout. Products of u8 and i8 values and
//! their pair sums are exact in 32 bits (`2 * 255 * 128 < 2^31`) and the i32 accumulation wraps
//! (`vpaddd`) like the reference's `wrapping_add`, so the result equals
//! [`crate::reference::conv2d_u8i8`] bit for bit. Other strides and the portable ISA run the
//! scalar code (`scalar.rs`).
//!
//! Work is split over (image, channel) planes on the calling rayon pool, capped by
//! [`crate::threads::max_threads`].

#[cfg(target_arch = "x86_64")]
mod avx2;
mod scalar;

use crate::ConvGeometry;
use crate::dispatch::Int8Isa;
use crate::threads::max_threads;

/// Whether `g` is a depthwise convolution this module computes: `groups == in_channels ==
/// out_channels` and more than one group (a single-channel layer stays on the GEMM path).
pub fn is_depthwise(g: &ConvGeometry) -> bool {
    g.groups > 1 && g.in_channels == g.groups && g.out_channels == g.groups
}

/// Depthwise weights (`[C][1][kh][kw]` i8) prepared once for [`depthwise_conv2d_u8i8_packed`].
///
/// Besides the weights themselves it holds, per channel and kernel row, the horizontal weight
/// pairs `(w[kx], w[kx + 1])` as the two i16 halves of a 32-bit word (the `vpmaddwd` operand; a
/// missing last partner is 0), so no call repacks them.
#[derive(Clone, Debug)]
pub struct PackedDepthwiseWeights {
    channels: usize,
    kernel_h: usize,
    kernel_w: usize,
    isa: Int8Isa,
    /// The weights as given, `[C][kh][kw]`.
    raw: Vec<i8>,
    /// `[C][kh][ceil(kw / 2)]` pairs: low i16 = `w[kx]`, high i16 = `w[kx + 1]` (or 0).
    pairs: Vec<u32>,
}

impl PackedDepthwiseWeights {
    /// Prepare `weights` (`[C][1][kh][kw]`) for the depthwise geometry `g` (its channel count and
    /// kernel size are used) and the best ISA of this CPU. Panics if `g` is not depthwise or the
    /// slice is too short.
    pub fn new(weights: &[i8], g: &ConvGeometry) -> Self {
        Self::new_for(crate::dispatch::int8_isa(), weights, g)
    }

    /// Prepare for a given ISA (for tests and benchmarks). Panics if the CPU lacks it.
    /// `Avx512Vnni` runs the AVX2 code (every CPU with AVX-512 VNNI has AVX2).
    pub fn new_for(isa: Int8Isa, weights: &[i8], g: &ConvGeometry) -> Self {
        assert!(isa.available(), "{isa:?} is not available on this CPU");
        assert!(is_depthwise(g), "not a depthwise geometry: {g:?}");
        let (c, kh, kw) = (g.in_channels, g.kernel_h, g.kernel_w);
        assert!(weights.len() >= c * kh * kw, "weights slice too short");
        let raw = weights[..c * kh * kw].to_vec();
        let kwp = kw.div_ceil(2);
        let mut pairs = Vec::with_capacity(c * kh * kwp);
        for row in raw.chunks(kw.max(1)).take(c * kh) {
            for j in 0..kwp {
                let lo = row[2 * j] as i16 as u16;
                let hi = row.get(2 * j + 1).map_or(0, |&w| w as i16 as u16);
                pairs.push(u32::from(lo) | (u32::from(hi) << 16));
            }
        }
        PackedDepthwiseWeights {
            channels: c,
            kernel_h: kh,
            kernel_w: kw,
            isa,
            raw,
            pairs,
        }
    }

    /// The ISA this preparation runs on.
    pub fn isa(&self) -> Int8Isa {
        self.isa
    }

    fn check(&self, g: &ConvGeometry) {
        assert!(
            is_depthwise(g)
                && g.in_channels == self.channels
                && g.kernel_h == self.kernel_h
                && g.kernel_w == self.kernel_w,
            "geometry does not match the depthwise weights"
        );
    }
}

/// One (image, channel) plane's job: the input plane, the channel's weights, the output plane.
pub(crate) struct Plane<'a> {
    /// `in_h * in_w` u8 inputs.
    pub input: &'a [u8],
    /// `kh * kw` weights.
    pub raw: &'a [i8],
    /// `kh * ceil(kw / 2)` weight pairs.
    pub pairs: &'a [u32],
    /// `out_h * out_w` outputs.
    pub out: &'a mut [i32],
    /// Whether the plane computed next on this thread writes the `out_h * out_w` outputs right
    /// after `out` (a kernel may prefetch them while it computes this one).
    pub next_follows: bool,
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// The calling thread's row buffer for the AVX2 path.
    static ROWS: std::cell::RefCell<avx2::RowBuf> = std::cell::RefCell::new(avx2::RowBuf::default());
    /// The calling thread's column shapes for the in-place 3x3 path (the last plane size used).
    static DIRECT: std::cell::RefCell<Option<avx2::Direct3x3>> = const { std::cell::RefCell::new(None) };
}

/// Depthwise convolution with prepared weights; equal bit for bit to
/// [`crate::reference::conv2d_u8i8`] with `groups == in_channels == out_channels`.
///
/// `input` is `[N][C][H][W]` u8, `out` is `[N][C][out_h][out_w]` i32 (overwritten), taps outside
/// the input read `pad_value`. Any kernel size, stride and padding; the AVX2 path covers strides 1
/// and 2, others run the scalar code.
pub fn depthwise_conv2d_u8i8_packed(
    input: &[u8],
    weights: &PackedDepthwiseWeights,
    out: &mut [i32],
    g: &ConvGeometry,
    pad_value: u8,
) {
    weights.check(g);
    assert!(g.stride > 0 && g.kernel_h > 0 && g.kernel_w > 0);
    assert!(g.in_h + 2 * g.pad >= g.kernel_h && g.in_w + 2 * g.pad >= g.kernel_w);
    let (oh, ow) = (g.out_h(), g.out_w());
    let (in_plane, out_plane) = (g.in_h * g.in_w, oh * ow);
    let planes = g.batch * g.in_channels;
    assert!(input.len() >= planes * in_plane, "input too short");
    assert!(out.len() >= planes * out_plane, "output too short");
    if planes == 0 || out_plane == 0 {
        return;
    }
    let (kh, kw) = (g.kernel_h, g.kernel_w);
    let kwp = kw.div_ceil(2);
    let isa = weights.isa;
    // Plane p's input and its channel's weights (raw and pairs).
    let parts = |p: usize| {
        let c = p % g.in_channels;
        (
            &input[p * in_plane..(p + 1) * in_plane],
            &weights.raw[c * kh * kw..(c + 1) * kh * kw],
            &weights.pairs[c * kh * kwp..(c + 1) * kh * kwp],
        )
    };
    let run_plane = |p: usize, out: &mut [i32], next_follows: bool| {
        let (input, raw, pairs) = parts(p);
        let plane = Plane {
            input,
            raw,
            pairs,
            out,
            next_follows,
        };
        match isa {
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx2 | Int8Isa::Avx512Vnni if g.stride <= 2 => {
                // SAFETY: the ISA was checked available when the weights were prepared, and
                // every CPU with AVX-512 VNNI has AVX2.
                ROWS.with(|b| unsafe { avx2::plane(plane, g, pad_value, &mut b.borrow_mut()) })
            }
            _ => scalar::plane(plane, g, pad_value),
        }
    };
    let out = &mut out[..planes * out_plane];
    let threads = max_threads();
    // Planes per task: enough tasks to balance the threads, few enough that a task's
    // bookkeeping stays small next to its work (a 56 x 56 3x3 plane is about a microsecond).
    let per_task = planes.div_ceil(threads * 8).max(1);
    #[cfg(target_arch = "x86_64")]
    let direct = matches!(isa, Int8Isa::Avx2 | Int8Isa::Avx512Vnni) && avx2::direct3x3_applies(g);
    let task = |t: usize, chunk: &mut [i32]| {
        let n = chunk.len() / out_plane;
        #[cfg(target_arch = "x86_64")]
        if direct {
            DIRECT.with(|cell| {
                let mut slot = cell.borrow_mut();
                let shift = (chunk.as_ptr() as usize) % 32 == 16;
                if !slot.as_ref().is_some_and(|d| d.fits(g.in_h, g.in_w, shift)) {
                    // SAFETY: the ISA was checked available when the weights were prepared
                    // (every CPU with AVX-512 VNNI has AVX2).
                    *slot = Some(unsafe { avx2::Direct3x3::new(g.in_h, g.in_w, shift) });
                }
                let d = slot.as_ref().expect("just set");
                for (i, out) in chunk.chunks_mut(out_plane).enumerate() {
                    let (input, raw, pairs) = parts(t * per_task + i);
                    let next_follows = i + 1 < n;
                    let plane = Plane {
                        input,
                        raw,
                        pairs,
                        out,
                        next_follows,
                    };
                    // SAFETY: AVX2 as above; `d` was built for in_h x in_w planes, and each
                    // plane holds in_h * in_w inputs and as many outputs (stride 1, 3x3, pad 1).
                    unsafe { d.plane(plane, pad_value) };
                }
            });
            return;
        }
        for (i, o) in chunk.chunks_mut(out_plane).enumerate() {
            run_plane(t * per_task + i, o, i + 1 < n);
        }
    };
    if threads <= 1 || planes <= 1 {
        task(0, out);
    } else {
        use rayon::prelude::*;
        out.par_chunks_mut(per_task * out_plane)
            .with_max_len(1)
            .enumerate()
            .for_each(|(t, chunk)| task(t, chunk));
    }
}

/// Depthwise convolution on an explicit ISA (prepares the weights on every call). Panics if the
/// CPU lacks the ISA or `g` is not depthwise. For tests and benchmarks of each path.
pub fn depthwise_conv2d_u8i8_with(
    isa: Int8Isa,
    input: &[u8],
    weights: &[i8],
    out: &mut [i32],
    g: &ConvGeometry,
    pad_value: u8,
) {
    let p = PackedDepthwiseWeights::new_for(isa, weights, g);
    depthwise_conv2d_u8i8_packed(input, &p, out, g, pad_value);
}

/// Depthwise convolution on this CPU's best ISA (prepares the weights on every call); see
/// [`depthwise_conv2d_u8i8_packed`].
pub fn depthwise_conv2d_u8i8(
    input: &[u8],
    weights: &[i8],
    out: &mut [i32],
    g: &ConvGeometry,
    pad_value: u8,
) {
    depthwise_conv2d_u8i8_with(
        crate::dispatch::int8_isa(),
        input,
        weights,
        out,
        g,
        pad_value,
    )
}
