//! The convolution driver: pixel panels, their B data, and the tasks over groups and pixels.

use super::SLACK;
use super::pad::{PADDED, PadLayout, pad_all, pad_image, prefetch_image};
use crate::ConvGeometry;
use crate::dispatch::Int8Isa;
use crate::gemm::{Elem, Kernel, shape};
use crate::threads::{SendPtr, max_threads, run_tasks};

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

/// Where the driver puts its results.
pub(super) enum Out<'a> {
    /// The `[N][O][OH][OW]` i32 tensor, tiles stored in place.
    Tensor(&'a mut [i32]),
    /// A sink that gets, per pixel panel and group, all the group's channels.
    Sink(&'a dyn super::ConvSink),
}

#[allow(clippy::too_many_arguments)]
pub(super) fn drive<E: Elem>(
    kernel: Kernel<E>,
    isa: Int8Isa,
    input: &[u8],
    wp: &[E],
    out: Out<'_>,
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
    let (optr, sink) = match out {
        Out::Tensor(out) => (SendPtr::new(out.as_mut_ptr()), None),
        // Never written through: every store below is behind `sink.is_none()`.
        Out::Sink(sink) => (SendPtr::new(std::ptr::null_mut()), Some(sink)),
    };
    // AVX2 gathers stride-1 and stride-2 panels; other ISAs and strides use the generic gather.
    let simd = cfg!(target_arch = "x86_64") && isa == Int8Isa::Avx2 && g.stride <= 2;
    run_tasks(g.groups * chunks, threads, |t| {
        let (grp, ch) = (t / chunks, t % chunks);
        let (p0, p1) = (ch * n_panels / chunks, (ch + 1) * n_panels / chunks);
        let base = SLACK as isize + (grp * grp_len) as isize;
        let mut bbuf = vec![0u8; kgroups * s.nr * s.kg];
        let mut tile = vec![0i32; s.mr * s.nr];
        // With a sink: all the group's weight panels against one pixel panel (ld = NR).
        let mut block = vec![
            0i32;
            if sink.is_some() {
                a_panels * s.mr * s.nr
            } else {
                0
            }
        ];
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
                        super::avx2::pack_b_conv(
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
            if let Some(sink) = sink {
                let (b, offs) = match direct {
                    Some(b) => (b, &pair_off),
                    None => (bbuf.as_ptr(), &lin_off),
                };
                let _ = (b, offs);
                #[cfg(target_arch = "x86_64")]
                if simd {
                    // SAFETY: AVX2 present; the group's A panels hold `kgroups` pairs each; B
                    // reads stay in the padded buffer / `bbuf`; `block` holds `a_panels` tiles.
                    unsafe {
                        crate::gemm::avx2::kernel_rows_multi::<false>(
                            a_panels,
                            kgroups,
                            wgrp.as_ptr() as *const i16,
                            b,
                            offs,
                            block.as_mut_ptr(),
                            s.nr,
                            false,
                        );
                    }
                }
                if !simd {
                    for ap in 0..a_panels {
                        let aptr = wgrp[ap * kgroups * s.mr * s.kg..].as_ptr();
                        let dst = block[ap * s.mr * s.nr..].as_mut_ptr();
                        // SAFETY: panels hold `kgroups` groups; `dst` is tile `ap` of `block`.
                        unsafe { kernel(kgroups, aptr, bbuf.as_ptr(), dst, s.nr, false) };
                    }
                }
                // Runs of pixels that share an image.
                let mut c0 = 0;
                while c0 < cols_valid {
                    let (n, px) = ((j0 + c0) / plane, (j0 + c0) % plane);
                    let len = (plane - px).min(cols_valid - c0);
                    sink.put(n, grp * cout_g, cout_g, px, len, &block[c0..], s.nr);
                    c0 += len;
                }
                continue;
            }
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
                    crate::gemm::avx2::kernel_rows_multi::<false>(
                        a_panels,
                        kgroups,
                        wgrp.as_ptr() as *const i16,
                        b,
                        offs,
                        c,
                        plane,
                        false,
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
                        super::avx2::store_split(&tile, d0, d1, plane, split);
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
