//! AVX2 depthwise plane (strides 1 and 2).
//!
//! Every `vpmaddwd` multiplies 8 output pixels' input pairs `(x[c], x[c + 1])` (two i16 halves of
//! a 32-bit lane) by the broadcast weight pair `(w[kx], w[kx + 1])` of one kernel row: two taps of
//! 8 consecutive outputs per instruction (a missing last partner of an odd kernel width has weight
//! 0). The pairs are built in registers from the u8 rows of the padded plane (borders hold
//! `pad_value`, as the GEMM path and the reference read them):
//! * stride 1: output `x0 + q` reads `(x[x0 + kx + q], x[x0 + kx + q + 1])`; the 16 bytes from
//!   `x0` on, loaded once into both 128-bit lanes, give the pairs of 4 tap pairs through one byte
//!   shuffle (`vpshufb`) each, which also zero-extends them to i16;
//! * stride 2: output `x0 + q` reads `(x[2 (x0 + q) + kx], x[2 (x0 + q) + kx + 1])`, which is the
//!   16 bytes from `2 x0 + kx` zero-extended in order (`vpmovzxbw`).
//!
//! 3x3 kernels at stride 1 with padding 1 on rows of at least 16 inputs (MobileNet's
//! depthwise layers) read the plane in place instead and pair kernel column 2's taps vertically
//! (5 multiply-adds per 8 outputs instead of 6), see [`Direct3x3`]. Otherwise the plane is
//! first copied into a padded u8 buffer of the thread (input columns 64-byte
//! aligned: misaligned copies cost about twice as much; borders filled once per geometry and pad
//! value). Then each column of 8 outputs (the last one moved back to end at the row's end; planes
//! narrower than 8 go through a scratch block) is swept from the top row to the bottom one,
//! keeping the pair vectors of the last `kh` input rows in registers: each output row builds
//! only the vectors of the `stride` input rows it adds, and the column's inputs and outputs stay
//! in L1. 3x3 kernels unroll the sweep over the rows that share input rows, and when the output
//! rows start 16 bytes past a 32-byte boundary (as large allocations do) they shift the blocks by
//! 4 outputs and cover each row's end and the next row's start with one wrapping block, so that
//! no store straddles a 32-byte boundary.
//!
//! Products of u8 and i8 values and their pair sums are exact in 32 bits and the i32 adds wrap,
//! like the reference's `wrapping_add`.

use super::Plane;
use crate::ConvGeometry;
use std::arch::x86_64::*;

/// Outputs per block (one 256-bit vector of i32).
const BLOCK: usize = 8;

/// Rows per pass of [`Direct3x3`]'s column loop (2 and 3 ran alike, 1 about 7% slower).
const UNROLL: usize = 2;

/// Weight pairs held in a fixed-size local array (larger kernels use a heap vector).
const LOCAL_PAIRS: usize = 16;

/// A thread's padded-plane buffer, reused across planes and calls.
#[derive(Default)]
pub(super) struct RowBuf {
    /// The padded plane: `hp` rows of `row_len` bytes, plus room to align it.
    buf: Vec<u8>,
    /// (row length, rows, lead, pad, input width, pad value) whose borders the buffer holds.
    key: Option<[usize; 6]>,
}

/// Compute one (image, channel) plane; `rb` is the thread's reusable buffer.
///
/// # Safety
/// The CPU must have AVX2, and `g.stride` must be 1 or 2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn plane(p: Plane<'_>, g: &ConvGeometry, pad_value: u8, rb: &mut RowBuf) {
    let (kh, kw, s) = (g.kernel_h, g.kernel_w, g.stride);
    debug_assert!(s == 1 || s == 2);
    let kwp = kw.div_ceil(2);
    let (h, w, pad) = (g.in_h, g.in_w, g.pad);
    let (hp, wp, ow) = (h + 2 * pad, w + 2 * pad, g.out_w());
    // A block at x0 reads bytes below `s * x0 + 2 kwp + 16` of a padded row (see `Build`);
    // x0 <= ow - 8, or 0.
    let x0_max = ow.saturating_sub(BLOCK);
    // Padded column c of a row sits at byte `lead + c`, so that input column 0 (padded column
    // `pad`) starts a 64-byte line.
    let lead = (64 - pad % 64) % 64;
    let row_len = (lead + (s * x0_max + 2 * kwp + 16).max(wp)).next_multiple_of(64);
    let key = [row_len, hp, lead, pad, w, usize::from(pad_value)];
    if rb.key != Some(key) {
        // Borders: copies only ever write the input columns of a row.
        rb.buf = vec![pad_value; hp * row_len + 64];
        rb.key = Some(key);
    }
    let start = rb.buf.as_ptr().align_offset(64).min(63);
    let padded = &mut rb.buf[start..start + hp * row_len];
    for (src, dst) in p
        .input
        .chunks_exact(w)
        .zip(padded.chunks_exact_mut(row_len).skip(pad))
        .take(h)
    {
        // SAFETY: AVX2 (caller); `src` holds w bytes, `dst` row_len >= lead + pad + w.
        unsafe { copy_row(src.as_ptr(), dst.as_mut_ptr().add(lead + pad), w) };
    }

    let sweep = Sweep {
        rows: padded.as_ptr().wrapping_add(lead),
        row_len,
        out: p.out.as_mut_ptr(),
        oh: g.out_h(),
        ow,
        kh,
        kwp,
        pairs: p.pairs,
        build: Build::new(),
    };
    // SAFETY: AVX2 (caller); the padded plane covers every read (`row_len` above).
    unsafe {
        match (s, kh, kwp) {
            (1, 3, 2) => sweep.all::<1, 3, 2>(),
            (2, 3, 2) => sweep.all::<2, 3, 2>(),
            (1, 5, 3) => sweep.all::<1, 5, 3>(),
            (2, 5, 3) => sweep.all::<2, 5, 3>(),
            (1, _, _) => sweep.all::<1, 0, 0>(),
            _ => sweep.all::<2, 0, 0>(),
        }
    }
}

/// Copy input row `src` (`w` bytes) to `dst`.
///
/// # Safety
/// AVX2; `src` readable and `dst` writable for `w` bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn copy_row(src: *const u8, dst: *mut u8, w: usize) {
    // SAFETY: every load and store below stays within the `w` bytes.
    unsafe {
        if w >= 32 {
            // 32-byte pieces, the last one overlapping its predecessor.
            let mut x = 0;
            loop {
                let v = _mm256_loadu_si256(src.add(x) as *const __m256i);
                _mm256_storeu_si256(dst.add(x) as *mut __m256i, v);
                if x + 32 == w {
                    break;
                }
                x = (x + 32).min(w - 32);
            }
        } else if w >= 16 {
            let a = _mm_loadu_si128(src as *const __m128i);
            let b = _mm_loadu_si128(src.add(w - 16) as *const __m128i);
            _mm_storeu_si128(dst as *mut __m128i, a);
            _mm_storeu_si128(dst.add(w - 16) as *mut __m128i, b);
        } else {
            std::ptr::copy_nonoverlapping(src, dst, w);
        }
    }
}

/// Stride 1: the byte shuffles giving tap pair `j % 4` from the 16 bytes at `x0 + 8 (j / 4)`:
/// i16 lane t takes byte `2 (j % 4) + t / 2 + t % 2`, zero-extended (high byte 0x80).
static PAIR_CTL: [[u8; 32]; 4] = {
    let mut c = [[0x80u8; 32]; 4];
    let mut j = 0;
    while j < 4 {
        let mut t = 0;
        while t < 16 {
            c[j][2 * t] = (2 * j + t / 2 + t % 2) as u8;
            t += 1;
        }
        j += 1;
    }
    c
};

/// Stride 1, wrapping blocks: as [`PAIR_CTL`] for tap pairs 0 and 1, but each 128-bit half
/// reads its own 16 bytes from their start (the halves come from different rows).
static WRAP_CTL: [[u8; 32]; 2] = {
    let mut c = [[0x80u8; 32]; 2];
    let mut j = 0;
    while j < 2 {
        let mut t = 0;
        while t < 16 {
            c[j][2 * t] = (2 * j + (t % 8) / 2 + (t % 8) % 2) as u8;
            t += 1;
        }
        j += 1;
    }
    c
};

/// Builds the pair vectors of one padded row for a block.
#[derive(Clone, Copy)]
struct Build {
    /// Stride 1: the byte shuffles giving tap pair `j % 4` from the 16 bytes at `x0 + 8 (j / 4)`.
    ctl: [__m256i; 4],
}

impl Build {
    #[target_feature(enable = "avx2")]
    fn new() -> Self {
        // SAFETY: 32 bytes each.
        let ctl = |j: usize| unsafe { _mm256_loadu_si256(PAIR_CTL[j].as_ptr() as *const __m256i) };
        Build {
            ctl: [ctl(0), ctl(1), ctl(2), ctl(3)],
        }
    }

    /// The pair vector of tap pair `j` for the block at `x0` of the padded row `r`; `bytes` holds
    /// (stride 1) the 16 bytes at `x0 + 8 (j / 4)`, loaded when `j % 4 == 0`.
    ///
    /// # Safety
    /// AVX2; `r` readable for `S x0 + 2 j + 16` bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn pair<const S: usize>(
        &self,
        r: *const u8,
        x0: usize,
        j: usize,
        bytes: &mut __m256i,
    ) -> __m256i {
        // SAFETY: the caller's bound.
        unsafe {
            if S == 1 {
                if j.is_multiple_of(4) {
                    *bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128(
                        r.add(x0 + 2 * j) as *const __m128i
                    ));
                }
                _mm256_shuffle_epi8(*bytes, self.ctl[j % 4])
            } else {
                _mm256_cvtepu8_epi16(_mm_loadu_si128(r.add(2 * x0 + 2 * j) as *const __m128i))
            }
        }
    }
}

/// One plane's sweep: the padded rows, the output, the kernel.
struct Sweep<'a> {
    /// Padded column 0 of padded row 0; row r at `rows + r * row_len`.
    rows: *const u8,
    row_len: usize,
    out: *mut i32,
    oh: usize,
    ow: usize,
    kh: usize,
    kwp: usize,
    /// `kh * kwp` weight pairs (i16 halves of a u32).
    pairs: &'a [u32],
    build: Build,
}

impl Sweep<'_> {
    /// Every column of blocks. `KH`, `KWP` (when not 0) fix the kernel size at compile time so
    /// that the tap loops unroll and the pair vectors and weights stay in registers; else the
    /// run-time kernel size applies.
    ///
    /// # Safety
    /// AVX2; every padded row holds `S max(ow - 8, 0) + 2 kwp + 16` readable bytes from
    /// column 0; `out` writable for `oh * ow` i32.
    #[target_feature(enable = "avx2")]
    unsafe fn all<const S: usize, const KH: usize, const KWP: usize>(&self) {
        // The broadcast weight pairs, in a local array the compiler keeps in registers for the
        // fixed kernel sizes.
        let mut local = [_mm256_setzero_si256(); LOCAL_PAIRS];
        let heap: Vec<__m256i>;
        let wv: &[__m256i] = if self.pairs.len() <= LOCAL_PAIRS {
            for (v, &p) in local.iter_mut().zip(self.pairs) {
                *v = _mm256_set1_epi32(p as i32);
            }
            &local[..self.pairs.len()]
        } else {
            heap = self
                .pairs
                .iter()
                .map(|&p| _mm256_set1_epi32(p as i32))
                .collect();
            &heap
        };
        let ow = self.ow;
        // SAFETY: the caller's bounds; every block's 8 outputs of a row lie in that row (or in
        // the scratch block, or, for the wrapping column, in two consecutive rows).
        unsafe {
            if KH == 3 && KWP == 2 && ow.is_multiple_of(BLOCK) && (self.out as usize) % 32 == 16 {
                // The rows start 16 bytes past a 32-byte boundary (large buffers from the system
                // allocator do): blocks at x0 = 8 k would make every store straddle one. Shift
                // the blocks by 4 outputs instead, and cover the last 4 outputs of a row and the
                // first 4 of the next with one wrapping block (stores beyond the L2 cost about
                // half as much again when misaligned).
                for x0 in (4..ow - 4).step_by(BLOCK) {
                    self.column::<S, KH, KWP>(x0, wv, self.out.add(x0), ow);
                }
                self.wrap3x3::<S>(wv);
            } else if ow >= BLOCK {
                let mut x0 = 0;
                loop {
                    self.column::<S, KH, KWP>(x0, wv, self.out.add(x0), ow);
                    if x0 + BLOCK == ow {
                        break;
                    }
                    x0 = (x0 + BLOCK).min(ow - BLOCK);
                }
            } else {
                let mut tmp = vec![0i32; self.oh * BLOCK];
                self.column::<S, KH, KWP>(0, wv, tmp.as_mut_ptr(), BLOCK);
                for (y, t) in tmp.chunks_exact(BLOCK).enumerate() {
                    std::ptr::copy_nonoverlapping(t.as_ptr(), self.out.add(y * ow), ow);
                }
            }
        }
    }

    /// The blocks of 8 outputs that wrap from one row to the next: the last 4 outputs of output
    /// row y and the first 4 of row y + 1, for y < oh - 1 (their pair vectors combine a 128-bit
    /// half from each row), plus the first 4 outputs of row 0 and the last 4 of the last row,
    /// computed as ordinary blocks (their other outputs are rewritten with the same values).
    ///
    /// # Safety
    /// As for [`Sweep::all`], with a 3x3 kernel and `ow` a multiple of 8; `wv` holds 6 pairs.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn wrap3x3<const S: usize>(&self, wv: &[__m256i]) {
        let w: [__m256i; 6] = std::array::from_fn(|i| wv[i]);
        let (len, ow, oh) = (self.row_len, self.ow, self.oh);
        // Byte offset of the row part's first column.
        let off = S * (ow - 4);
        // SAFETY: the loads stay within the block columns' reads (`row_len`): the row part reads
        // like the block at ow - 8 would, the next-row part like the block at 0; output rows
        // y and y + 1 < oh hold the 8 outputs at y * ow + ow - 4.
        unsafe {
            let ctl = [
                _mm256_loadu_si256(WRAP_CTL[0].as_ptr() as *const __m256i),
                _mm256_loadu_si256(WRAP_CTL[1].as_ptr() as *const __m256i),
            ];
            // The pair vectors of "row" r: padded row r's part and padded row r + S's part.
            let build = |r: *const u8| {
                if S == 1 {
                    let bytes = _mm256_inserti128_si256::<1>(
                        _mm256_castsi128_si256(_mm_loadu_si128(r.add(off) as *const __m128i)),
                        _mm_loadu_si128(r.add(len) as *const __m128i),
                    );
                    [
                        _mm256_shuffle_epi8(bytes, ctl[0]),
                        _mm256_shuffle_epi8(bytes, ctl[1]),
                    ]
                } else {
                    let half = |j: usize| {
                        _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(
                            _mm_loadl_epi64(r.add(off + 2 * j) as *const __m128i),
                            _mm_loadl_epi64(r.add(2 * len + 2 * j) as *const __m128i),
                        ))
                    };
                    [half(0), half(1)]
                }
            };
            let out = |a: [__m256i; 2], b: [__m256i; 2], c: [__m256i; 2]| {
                let ab = _mm256_add_epi32(
                    _mm256_add_epi32(_mm256_madd_epi16(a[0], w[0]), _mm256_madd_epi16(a[1], w[1])),
                    _mm256_add_epi32(_mm256_madd_epi16(b[0], w[2]), _mm256_madd_epi16(b[1], w[3])),
                );
                let c =
                    _mm256_add_epi32(_mm256_madd_epi16(c[0], w[4]), _mm256_madd_epi16(c[1], w[5]));
                _mm256_add_epi32(ab, c)
            };
            let n = oh - 1;
            let mut r = self.rows;
            let mut d = self.out.add(ow - 4);
            let mut y = 0;
            if S == 1 {
                let mut a = build(r);
                let mut b = build(r.add(len));
                while y < n {
                    let c = build(r.add(2 * len));
                    _mm256_storeu_si256(d as *mut __m256i, out(a, b, c));
                    (a, b) = (b, c);
                    r = r.add(len);
                    d = d.add(ow);
                    y += 1;
                }
            } else {
                let mut a = build(r);
                while y < n {
                    let b = build(r.add(len));
                    let c = build(r.add(2 * len));
                    _mm256_storeu_si256(d as *mut __m256i, out(a, b, c));
                    a = c;
                    r = r.add(2 * len);
                    d = d.add(ow);
                    y += 1;
                }
            }
            // The corners: row 0's first block and the last row's last block.
            for (y, x0) in [(0, 0), (oh - 1, ow - BLOCK)] {
                let mut acc = _mm256_setzero_si256();
                for i in 0..3 {
                    let r = self.rows.add((y * S + i) * len);
                    let mut bytes = _mm256_setzero_si256();
                    for j in 0..2 {
                        let v = self.build.pair::<S>(r, x0, j, &mut bytes);
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(v, w[2 * i + j]));
                    }
                }
                _mm256_storeu_si256(self.out.add(y * ow + x0) as *mut __m256i, acc);
            }
        }
    }

    /// [`Sweep::column`] for 3x3 kernels, unrolled over the rows that share input rows (3 at
    /// stride 1, 2 at stride 2) so that the carried pair vectors need no register moves: the loop
    /// body is then little more than the loads, shuffles, multiply-adds and stores themselves.
    ///
    /// # Safety
    /// As for [`Sweep::column`]; `wv` holds 6 pairs.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn column3x3<const S: usize>(
        &self,
        x0: usize,
        wv: &[__m256i],
        dst: *mut i32,
        dst_stride: usize,
    ) {
        let w: [__m256i; 6] = std::array::from_fn(|i| wv[i]);
        let len = self.row_len;
        // SAFETY: the caller's bounds (each row read holds the block's bytes; rows below
        // (oh - 1) S + 3 are never read).
        unsafe {
            let mut r = self.rows;
            let mut d = dst;
            let build = |r: *const u8| {
                let mut bytes = _mm256_setzero_si256();
                [
                    self.build.pair::<S>(r, x0, 0, &mut bytes),
                    self.build.pair::<S>(r, x0, 1, &mut bytes),
                ]
            };
            // Output row from input rows (a, b, c): a tree of adds over the six products.
            let out = |a: [__m256i; 2], b: [__m256i; 2], c: [__m256i; 2]| {
                let ab = _mm256_add_epi32(
                    _mm256_add_epi32(_mm256_madd_epi16(a[0], w[0]), _mm256_madd_epi16(a[1], w[1])),
                    _mm256_add_epi32(_mm256_madd_epi16(b[0], w[2]), _mm256_madd_epi16(b[1], w[3])),
                );
                let c =
                    _mm256_add_epi32(_mm256_madd_epi16(c[0], w[4]), _mm256_madd_epi16(c[1], w[5]));
                _mm256_add_epi32(ab, c)
            };
            let mut y = 0;
            if S == 1 {
                let mut a = build(r);
                let mut b = build(r.add(len));
                while y + 3 <= self.oh {
                    let c = build(r.add(2 * len));
                    _mm256_storeu_si256(d as *mut __m256i, out(a, b, c));
                    let e = build(r.add(3 * len));
                    _mm256_storeu_si256(d.add(dst_stride) as *mut __m256i, out(b, c, e));
                    let f = build(r.add(4 * len));
                    _mm256_storeu_si256(d.add(2 * dst_stride) as *mut __m256i, out(c, e, f));
                    (a, b) = (e, f);
                    r = r.add(3 * len);
                    d = d.add(3 * dst_stride);
                    y += 3;
                }
                while y < self.oh {
                    let c = build(r.add(2 * len));
                    _mm256_storeu_si256(d as *mut __m256i, out(a, b, c));
                    (a, b) = (b, c);
                    r = r.add(len);
                    d = d.add(dst_stride);
                    y += 1;
                }
            } else {
                let mut a = build(r);
                while y + 2 <= self.oh {
                    let b = build(r.add(len));
                    let c = build(r.add(2 * len));
                    _mm256_storeu_si256(d as *mut __m256i, out(a, b, c));
                    let e = build(r.add(3 * len));
                    let f = build(r.add(4 * len));
                    _mm256_storeu_si256(d.add(dst_stride) as *mut __m256i, out(c, e, f));
                    a = f;
                    r = r.add(4 * len);
                    d = d.add(2 * dst_stride);
                    y += 2;
                }
                if y < self.oh {
                    let b = build(r.add(len));
                    let c = build(r.add(2 * len));
                    _mm256_storeu_si256(d as *mut __m256i, out(a, b, c));
                }
            }
        }
    }

    /// The column of blocks at `x0`, top to bottom; output row y's block goes to
    /// `dst + y * dst_stride`.
    ///
    /// # Safety
    /// As for [`Sweep::all`]; `dst + y * dst_stride` writable for 8 i32, `y < oh`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn column<const S: usize, const KH: usize, const KWP: usize>(
        &self,
        x0: usize,
        wv: &[__m256i],
        dst: *mut i32,
        dst_stride: usize,
    ) {
        let row = |r: usize| self.rows.wrapping_add(r * self.row_len);
        // SAFETY: the caller's bounds: output row y reads padded rows y S .. y S + kh.
        unsafe {
            if KH == 3 && KWP == 2 {
                self.column3x3::<S>(x0, wv, dst, dst_stride);
            } else if KH > 0 {
                // The pair vectors of the output row's KH input rows, carried down the column:
                // at output row y, win[i] holds padded row y S + i; the first `carry` come from
                // the previous output row. (Constant bounds: the loops unroll and the window
                // stays in registers.)
                let carry = KH.saturating_sub(S);
                let mut win = [[_mm256_setzero_si256(); KWP]; KH];
                for (i, v) in win.iter_mut().enumerate().take(carry) {
                    let mut bytes = _mm256_setzero_si256();
                    for (j, vj) in v.iter_mut().enumerate() {
                        *vj = self.build.pair::<S>(row(i), x0, j, &mut bytes);
                    }
                }
                for y in 0..self.oh {
                    for (i, v) in win.iter_mut().enumerate().skip(carry) {
                        let r = row(y * S + i);
                        let mut bytes = _mm256_setzero_si256();
                        for (j, vj) in v.iter_mut().enumerate() {
                            *vj = self.build.pair::<S>(r, x0, j, &mut bytes);
                        }
                    }
                    let mut acc = _mm256_setzero_si256();
                    for (i, v) in win.iter().enumerate() {
                        for (j, &vj) in v.iter().enumerate() {
                            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(vj, wv[i * KWP + j]));
                        }
                    }
                    _mm256_storeu_si256(dst.add(y * dst_stride) as *mut __m256i, acc);
                    for i in 0..carry {
                        win[i] = win[i + S];
                    }
                }
            } else {
                for y in 0..self.oh {
                    let mut acc = _mm256_setzero_si256();
                    for i in 0..self.kh {
                        let r = row(y * S + i);
                        let mut bytes = _mm256_setzero_si256();
                        for j in 0..self.kwp {
                            let v = self.build.pair::<S>(r, x0, j, &mut bytes);
                            let m = _mm256_madd_epi16(v, wv[i * self.kwp + j]);
                            acc = _mm256_add_epi32(acc, m);
                        }
                    }
                    _mm256_storeu_si256(dst.add(y * dst_stride) as *mut __m256i, acc);
                }
            }
        }
    }
}

/// Whether [`Direct3x3`] computes `g`: stride 1, 3x3, padding 1, rows of at least 16 inputs.
pub(super) fn direct3x3_applies(g: &ConvGeometry) -> bool {
    g.stride == 1 && g.kernel_h == 3 && g.kernel_w == 3 && g.pad == 1 && g.in_w >= 16
}

/// Stride 1, 3x3, pad 1, rows of at least 16 inputs: planes read in place, without the copy
/// into a padded buffer.
///
/// Each block column loads, per input row, the 16 bytes from an input column `l` of its own
/// (within the row: `0 <= l <= w - 16`) and shuffles out of them the row's horizontal pairs for
/// kernel columns 0 and 1 and its kernel-column-2 inputs, which pair up vertically with the next
/// row's: 5 `vpmaddwd` per block instead of 6 (see [`DirectCol`]). A tap on the padding column
/// left or right of the row gets a zero from the shuffle instead, and the block adds the
/// constant `pad_value * (w[0][kx] + w[1][kx] + w[2][kx])` for each such tap column (wrapping i32
/// sums in another order, so the same bits). The padding rows above and below the plane read 16
/// bytes of `pad_value`. With the output rows 16 bytes past a 32-byte boundary, the blocks are
/// shifted by 4 as in [`Sweep::all`] and the wrapping block (the last 4 outputs of a row, the
/// first 4 of the next) loads the 16 bytes that end one input row and start the next: its low
/// half reads the first 8, its high half the last 8.
///
/// The columns' shuffles and padding masks depend only on the plane size and the layout, so one
/// value serves a thread's run of planes.
pub(super) struct Direct3x3 {
    h: usize,
    w: usize,
    /// The `shift` it was built with.
    shift: bool,
    /// Regular columns: first output x0, load column l, shape.
    cols: Vec<(usize, usize, ColShape)>,
    /// The wrapping column, when the blocks are shifted.
    wrap: Option<ColShape>,
}

impl Direct3x3 {
    /// The columns for `h x w` planes (`w >= 16`, `h >= 1`), with the shifted layout when `w` is
    /// a multiple of 8 and `shift` (the output planes start 16 bytes past a 32-byte boundary;
    /// any layout gives the same results).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn new(h: usize, w: usize, shift: bool) -> Self {
        assert!(w >= 16 && h >= 1);
        let regular = |x0: usize| {
            let l = x0.saturating_sub(4).min(w - 16);
            let shape = ColShape::new(|q, kx| {
                let c = (x0 + q + kx) as isize - 1;
                (c >= 0 && (c as usize) < w).then(|| c as usize - l)
            });
            (x0, l, shape)
        };
        if shift && w.is_multiple_of(BLOCK) {
            let wrap = ColShape::new(|q, kx| {
                if q < 4 {
                    let c = w - 4 + q + kx - 1;
                    (c < w).then(|| c - (w - 8))
                } else {
                    let c = (q - 4 + kx) as isize - 1;
                    (c >= 0).then(|| 8 + c as usize)
                }
            });
            Direct3x3 {
                h,
                w,
                shift,
                cols: (4..w - 4).step_by(BLOCK).map(regular).collect(),
                wrap: Some(wrap),
            }
        } else {
            let mut cols = Vec::new();
            let mut x0 = 0;
            loop {
                cols.push(regular(x0));
                if x0 + BLOCK == w {
                    break;
                }
                x0 = (x0 + BLOCK).min(w - BLOCK);
            }
            Direct3x3 {
                h,
                w,
                shift,
                cols,
                wrap: None,
            }
        }
    }

    /// Whether this is what [`Direct3x3::new`] builds for `h`, `w`, `shift`.
    pub(super) fn fits(&self, h: usize, w: usize, shift: bool) -> bool {
        (self.h, self.w, self.shift) == (h, w, shift)
    }

    /// Compute one plane (`h x w` inputs and outputs).
    ///
    /// # Safety
    /// AVX2; `p.input` holds `h * w` bytes, `p.out` `h * w` i32.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn plane(&self, p: Plane<'_>, pad_value: u8) {
        let (h, w) = (self.h, self.w);
        assert!(p.input.len() >= h * w && p.out.len() >= h * w && p.raw.len() >= 9);
        let input = p.input.as_ptr();
        let out = p.out.as_mut_ptr();
        // The output of the plane computed next, when it follows this one: column k of blocks
        // prefetches its bytes from 32 k h on, 32 a row (the columns together cover about the
        // plane). Only an address for `_mm_prefetch`, never read or written here.
        let next = out.wrapping_add(if p.next_follows { h * w } else { 0 }) as *const i8;
        let prefetch = |k: usize| next.wrapping_add(32 * k * h);
        // (w[0][0], w[0][1]), (w[1][0], w[1][1]), (w[2][0], w[2][1]), (w[0][2], w[1][2]),
        // (w[2][2], 0) as the two i16 halves of each lane.
        let pair = |lo: i8, hi: i8| {
            _mm256_set1_epi32(
                (u32::from(lo as i16 as u16) | (u32::from(hi as i16 as u16) << 16)) as i32,
            )
        };
        let k = p.raw;
        let wv = [
            pair(k[0], k[1]),
            pair(k[3], k[4]),
            pair(k[6], k[7]),
            pair(k[2], k[5]),
            pair(k[8], 0),
        ];
        // What a padding column contributes to an output through kernel column kx.
        let colpad: [__m256i; 3] = std::array::from_fn(|kx| {
            _mm256_set1_epi32((0..3).fold(0i32, |a, ky| {
                a.wrapping_add(i32::from(pad_value) * i32::from(k[3 * ky + kx]))
            }))
        });
        let pad = [pad_value; 16];
        let padp = pad.as_ptr();
        let hi = h as isize;
        // SAFETY (all blocks below): every row pointer handed out is readable for 16 bytes
        // (input rows: `l + 16 <= w`, or the wrapping block's load that ends 8 bytes into the
        // next row, which exists), and every store lies in the output plane (x0 + 8 <= w).
        unsafe {
            for (kcol, &(x0, l, ref shape)) in self.cols.iter().enumerate() {
                let col = shape.with_pad(&colpad);
                let src = |i: isize| {
                    if i < 0 || i >= hi {
                        padp
                    } else {
                        input.wrapping_add(i as usize * w + l)
                    }
                };
                let (dir, dst, pf) = (input.wrapping_add(l), out.add(x0), prefetch(kcol));
                if col.edge {
                    direct_column::<true>(&col, &wv, src, dir, w, h, dst, w, pf)
                } else {
                    direct_column::<false>(&col, &wv, src, dir, w, h, dst, w, pf)
                }
            }
            if let Some(shape) = &self.wrap {
                // The wrapping blocks: output row y's last 4 outputs (low half) and row y + 1's
                // first 4 (high half), for y < h - 1; then row 0's first 4 and the last row's
                // last 4.
                // (Each written by one 16-byte store, which the loads below then forward.)
                let padv = _mm_set1_epi8(pad_value as i8);
                let head = _mm_loadl_epi64(input as *const __m128i);
                let tail = _mm_loadl_epi64(input.add(h * w - 8) as *const __m128i);
                let mut top = [0u8; 16];
                _mm_storeu_si128(
                    top.as_mut_ptr() as *mut __m128i,
                    _mm_unpacklo_epi64(padv, head),
                );
                let mut bot = [0u8; 16];
                _mm_storeu_si128(
                    bot.as_mut_ptr() as *mut __m128i,
                    _mm_unpacklo_epi64(tail, padv),
                );
                let col = shape.with_pad(&colpad);
                let src = |i: isize| {
                    if i == -1 {
                        top.as_ptr()
                    } else if i == hi - 1 {
                        bot.as_ptr()
                    } else if i < -1 || i >= hi {
                        padp
                    } else {
                        input.wrapping_add(i as usize * w + w - 8)
                    }
                };
                let dir = input.wrapping_add(w - 8);
                let pf = prefetch(self.cols.len());
                direct_column::<true>(&col, &wv, src, dir, w, h - 1, out.add(w - 4), w, pf);
                let first = col.block(&wv, [src(-2), src(-1), src(0), src(1)]);
                _mm_storeu_si128(out as *mut __m128i, _mm256_extracti128_si256::<1>(first));
                let last = col.block(&wv, [src(hi - 2), src(hi - 1), src(hi), src(hi + 1)]);
                _mm_storeu_si128(
                    out.add(h * w - 4) as *mut __m128i,
                    _mm256_castsi256_si128(last),
                );
            }
        }
    }
}

/// The shuffles and padding masks of one column of [`Direct3x3`] blocks.
struct ColShape {
    ctl_h: __m256i,
    ctl_z: __m256i,
    /// Per kernel column kx: all ones in the lanes whose tap through kx is a padding column.
    pad_mask: [__m256i; 3],
    /// Whether any tap falls on a padding column.
    edge: bool,
}

impl ColShape {
    /// `map(q, kx)`: the byte (of the 16 loaded) that output `q` of the block reads through
    /// kernel column `kx`, or `None` for a padding column.
    #[target_feature(enable = "avx2")]
    fn new(map: impl Fn(usize, usize) -> Option<usize>) -> Self {
        let mut ctl_h = [0x80u8; 32];
        let mut ctl_z = [0x80u8; 32];
        let mut mask = [[0i32; BLOCK]; 3];
        let mut edge = false;
        for q in 0..BLOCK {
            for (kx, m) in mask.iter_mut().enumerate() {
                match map(q, kx) {
                    Some(b) => {
                        assert!(b < 16, "direct3x3 reads beyond its 16 bytes");
                        if kx < 2 {
                            ctl_h[4 * q + 2 * kx] = b as u8;
                        } else {
                            ctl_z[16 * (q / 4) + 2 * (q % 4)] = b as u8;
                        }
                    }
                    None => {
                        m[q] = -1;
                        edge = true;
                    }
                }
            }
        }
        // SAFETY: 32 bytes each.
        let v = |b: *const i8| unsafe { _mm256_loadu_si256(b as *const __m256i) };
        ColShape {
            ctl_h: v(ctl_h.as_ptr() as *const i8),
            ctl_z: v(ctl_z.as_ptr() as *const i8),
            pad_mask: std::array::from_fn(|kx| v(mask[kx].as_ptr() as *const i8)),
            edge,
        }
    }

    /// The column for a plane whose padding columns add `colpad[kx]` through kernel column kx.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn with_pad(&self, colpad: &[__m256i; 3]) -> DirectCol {
        let part = |kx: usize| _mm256_and_si256(self.pad_mask[kx], colpad[kx]);
        DirectCol {
            ctl_h: self.ctl_h,
            ctl_z: self.ctl_z,
            corr: _mm256_add_epi32(_mm256_add_epi32(part(0), part(1)), part(2)),
            edge: self.edge,
        }
    }
}

/// A column of blocks of [`Direct3x3`] for one plane: the shuffles that give a row's pair vector and its
/// kernel-column-2 words from its 16 loaded bytes, and the constant the padding columns add.
///
/// Output row y (input rows y - 1, y, y + 1 through kernel rows 0, 1, 2) takes 5 `vpmaddwd`:
/// the horizontal pairs `(x[c], x[c + 1])` of its three rows (`H`) with `(w[ky][0], w[ky][1])`,
/// the vertical pair `(x[y - 1][c + 2], x[y][c + 2])` with `(w[0][2], w[1][2])`, and the
/// vertical pair `(x[y + 1][c + 2], x[y + 2][c + 2])` with `(w[2][2], 0)`. A vertical pair
/// vector `V(i)` interleaves (`vpunpcklwd`) the kernel-column-2 words `Z(i)`, `Z(i + 1)` of two
/// rows; each row's `H`, `Z` and `V` are built once and used by the output rows around it.
struct DirectCol {
    /// Pair vector: lane q = bytes of tap columns 0 and 1, zero-extended.
    ctl_h: __m256i,
    /// Column-2 words: 128-bit half l, word t = byte of output 4 l + t's tap column 2.
    ctl_z: __m256i,
    corr: __m256i,
    /// Whether any tap falls on a padding column (`corr` may be nonzero).
    edge: bool,
}

impl DirectCol {
    /// The 16 bytes at `r` in both 128-bit halves.
    ///
    /// # Safety
    /// AVX2; `r` readable for 16 bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn bytes(r: *const u8) -> __m256i {
        // SAFETY: the caller's bound.
        unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(r as *const __m128i)) }
    }

    /// `H` of the row whose 16 bytes start at `r`.
    ///
    /// # Safety
    /// AVX2; `r` readable for 16 bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn h(&self, r: *const u8) -> __m256i {
        // SAFETY: the caller's bound.
        _mm256_shuffle_epi8(unsafe { Self::bytes(r) }, self.ctl_h)
    }

    /// `Z` of the row whose 16 bytes start at `r`.
    ///
    /// # Safety
    /// AVX2; `r` readable for 16 bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn z(&self, r: *const u8) -> __m256i {
        // SAFETY: the caller's bound.
        _mm256_shuffle_epi8(unsafe { Self::bytes(r) }, self.ctl_z)
    }

    /// One block: `h` = `H` of input rows y - 1, y, y + 1, `v0` = `V(y - 1)`, `v2` = `V(y + 1)`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn sum<const EDGE: bool>(
        &self,
        w: &[__m256i; 5],
        h: [__m256i; 3],
        v0: __m256i,
        v2: __m256i,
    ) -> __m256i {
        let a = _mm256_add_epi32(_mm256_madd_epi16(h[0], w[0]), _mm256_madd_epi16(h[1], w[1]));
        let b = _mm256_add_epi32(_mm256_madd_epi16(h[2], w[2]), _mm256_madd_epi16(v0, w[3]));
        let s = _mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_madd_epi16(v2, w[4]));
        if EDGE {
            _mm256_add_epi32(s, self.corr)
        } else {
            s
        }
    }

    /// One block of output row y from the 16 bytes of input rows y - 1 ..= y + 2 at `r`.
    ///
    /// # Safety
    /// AVX2; each pointer readable for 16 bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn block(&self, w: &[__m256i; 5], r: [*const u8; 4]) -> __m256i {
        // SAFETY: the caller's bounds.
        unsafe {
            let z: [__m256i; 4] = std::array::from_fn(|i| self.z(r[i]));
            let h = [self.h(r[0]), self.h(r[1]), self.h(r[2])];
            let v0 = _mm256_unpacklo_epi16(z[0], z[1]);
            let v2 = _mm256_unpacklo_epi16(z[2], z[3]);
            self.sum::<true>(w, h, v0, v2)
        }
    }
}

/// Blocks of output rows `0..n` of one [`Direct3x3`] column, top to bottom: output row y reads
/// the 16 bytes at `src(y - 1)` ..= `src(y + 2)` (the last only through a zero weight) and goes
/// to `dst + y * dst_stride`. `src(i) == dir + i * step` for `0 <= i < n` (the rows the main loop
/// steps through). Step i of the main loop prefetches `prefetch + 32 i` (an address only).
///
/// # Safety
/// AVX2; `src(i)` readable for 16 bytes for `-1 <= i <= n + 1`; `dst + y * dst_stride` writable
/// for 8 i32, `y < n`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn direct_column<const EDGE: bool>(
    col: &DirectCol,
    w: &[__m256i; 5],
    src: impl Fn(isize) -> *const u8,
    dir: *const u8,
    step: usize,
    n: usize,
    dst: *mut i32,
    dst_stride: usize,
    prefetch: *const i8,
) {
    // SAFETY: the caller's bounds; the main loops read rows i < n.
    unsafe {
        // Step i loads input row i once, builds its H and Z, and V(i - 1), and adds their
        // products to the outputs they belong to: H(i) to rows i + 1, i, i - 1 (kernel rows 0, 1,
        // 2), V(i - 1) to rows i (with (w[0][2], w[1][2])) and i - 2 (with (w[2][2], 0)), which
        // is then complete. Entering step i: a, b, c = partial sums of rows i - 2, i - 1, i;
        // zp = Z(i - 1).
        let row = |r: *const u8| {
            let b = DirectCol::bytes(r);
            (
                _mm256_shuffle_epi8(b, col.ctl_h),
                _mm256_shuffle_epi8(b, col.ctl_z),
            )
        };
        let madd = _mm256_madd_epi16;
        let add = _mm256_add_epi32;
        let (h, zm) = row(src(-1));
        let c0 = madd(h, w[0]);
        let (h, z0) = row(src(0));
        let v = _mm256_unpacklo_epi16(zm, z0);
        let b0 = add(c0, add(madd(h, w[1]), madd(v, w[3])));
        let c1 = madd(h, w[0]);
        let (h, z1) = row(src(1));
        let v = _mm256_unpacklo_epi16(z0, z1);
        let mut a = add(b0, madd(h, w[2]));
        let mut b = add(c1, add(madd(h, w[1]), madd(v, w[3])));
        let mut c = madd(h, w[0]);
        let mut zp = z1;
        let step_row = |h: __m256i, z: __m256i, a: __m256i, b: __m256i, c: __m256i, zp: __m256i| {
            let v = _mm256_unpacklo_epi16(zp, z);
            let mut o = add(a, madd(v, w[4]));
            if EDGE {
                o = add(o, col.corr);
            }
            (
                o,
                add(b, madd(h, w[2])),
                add(c, add(madd(h, w[1]), madd(v, w[3]))),
                madd(h, w[0]),
            )
        };
        let mut r = dir.wrapping_add(2 * step);
        let mut d = dst;
        let mut i = 2;
        while i + UNROLL <= n {
            // UNROLL rows per pass (the inner loop unrolls).
            for u in 0..UNROLL {
                let (h, z) = row(r.wrapping_add(u * step));
                let o;
                (o, a, b, c) = step_row(h, z, a, b, c, zp);
                zp = z;
                // Part of the next plane's output, so that its stores find it in the cache.
                _mm_prefetch::<_MM_HINT_T0>(prefetch.wrapping_add(32 * (i + u)));
                _mm256_storeu_si256(d.wrapping_add(u * dst_stride) as *mut __m256i, o);
            }
            r = r.wrapping_add(UNROLL * step);
            d = d.wrapping_add(UNROLL * dst_stride);
            i += UNROLL;
        }
        while i < n {
            let (h, z) = row(r);
            let o;
            (o, a, b, c) = step_row(h, z, a, b, c, zp);
            zp = z;
            _mm_prefetch::<_MM_HINT_T0>(prefetch.wrapping_add(32 * i));
            _mm256_storeu_si256(d as *mut __m256i, o);
            r = r.wrapping_add(step);
            d = d.wrapping_add(dst_stride);
            i += 1;
        }
        // Steps n and n + 1 complete outputs n - 2 and n - 1 (the partial sums of rows n and
        // n + 1 are not needed; row n + 1 only meets the zero half of (w[2][2], 0)).
        if i == n {
            let (h, z) = row(src(n as isize));
            let mut o = add(a, madd(_mm256_unpacklo_epi16(zp, z), w[4]));
            if EDGE {
                o = add(o, col.corr);
            }
            _mm256_storeu_si256(d as *mut __m256i, o);
            a = add(b, madd(h, w[2]));
            zp = z;
            d = d.wrapping_add(dst_stride);
            i += 1;
        }
        if i == n + 1 {
            let mut o = add(a, madd(_mm256_unpacklo_epi16(zp, zp), w[4]));
            if EDGE {
                o = add(o, col.corr);
            }
            _mm256_storeu_si256(d as *mut __m256i, o);
        }
    }
}
