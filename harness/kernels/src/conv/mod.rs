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
//! [`conv2d_u8i8_packed_sink`] runs the same driver but hands each pixel panel's results (all
//! channels of a group) to a [`ConvSink`] instead of storing them, so a consumer can requantize
//! them while they are in cache.
//!
//! With several small images (at most 64 KiB padded), each task pads the (at most two) images its
//! current pixel panel reads into a small buffer of its own, which stays in cache; otherwise all
//! images are padded once, in parallel, into a per-thread buffer reused across calls.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod drive;
mod pad;

use crate::ConvGeometry;
use crate::dispatch::Int8Isa;
use crate::gemm::{Elem, PanelData, pack_panels, shape};
use drive::drive;

/// Bytes of slack before and after the padded input, so that the 32/64-byte loads of a panel's
/// pixel runs never leave the buffer.
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
    let (oh, ow) = check_call(input, weights, g);
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
    run_packed(input, weights, g, pad_value, drive::Out::Tensor(out));
}

/// Receives a convolution's i32 results block by block instead of an output tensor, so that a
/// consumer (e.g. a requantizer) can process them while they are in cache and the i32 tensor is
/// never written to memory.
pub trait ConvSink: Sync {
    /// Results of output channels `o0 .. o0 + rows` (all the channels of one group) at pixels
    /// `px0 .. px0 + cols` (row-major within the output plane) of image `n`: channel `o0 + r`,
    /// pixel `px0 + c` is `block[r * ld + c]`. Every (image, channel, pixel) of the output is
    /// delivered exactly once; calls may come from several threads at once, for disjoint
    /// outputs.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        n: usize,
        o0: usize,
        rows: usize,
        px0: usize,
        cols: usize,
        block: &[i32],
        ld: usize,
    );
}

/// [`conv2d_u8i8_packed`] delivering its results to `sink` (see [`ConvSink`]) instead of
/// writing an output tensor; the same values bit for bit.
pub fn conv2d_u8i8_packed_sink(
    input: &[u8],
    weights: &PackedConvWeights,
    g: &ConvGeometry,
    pad_value: u8,
    sink: &dyn ConvSink,
) {
    let (oh, ow) = check_call(input, weights, g);
    if g.batch == 0 || g.out_channels == 0 || oh == 0 || ow == 0 {
        return;
    }
    if g.in_channels == 0 {
        // An empty reduction: every output is 0.
        let cout_g = g.out_channels / g.groups;
        let zeros = vec![0i32; cout_g * oh * ow];
        for n in 0..g.batch {
            for grp in 0..g.groups {
                sink.put(n, grp * cout_g, cout_g, 0, oh * ow, &zeros, oh * ow);
            }
        }
        return;
    }
    run_packed(input, weights, g, pad_value, drive::Out::Sink(sink));
}

/// Checks the arguments of a packed convolution (panics naming what is wrong); returns the
/// output height and width.
fn check_call(input: &[u8], weights: &PackedConvWeights, g: &ConvGeometry) -> (usize, usize) {
    weights.check(g);
    assert!(g.stride > 0 && g.kernel_h > 0 && g.kernel_w > 0);
    assert!(g.in_h + 2 * g.pad >= g.kernel_h && g.in_w + 2 * g.pad >= g.kernel_w);
    assert!(
        input.len() >= g.batch * g.in_channels * g.in_h * g.in_w,
        "input too short"
    );
    (g.out_h(), g.out_w())
}

/// Runs the packed convolution with the kernel of the weights' ISA, into `out`.
fn run_packed(
    input: &[u8],
    weights: &PackedConvWeights,
    g: &ConvGeometry,
    pad_value: u8,
    out: drive::Out<'_>,
) {
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
