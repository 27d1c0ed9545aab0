//! Scalar xor + popcount microkernel (`popcnt` where the CPU has it).

use super::{Kernel, MR, NR};

#[inline(always)]
fn body(q: usize, a: &[u64], b: &[u64], out: *mut i32, ldo: usize, base: &[i32; NR]) {
    let mut acc = [[0u32; NR]; MR];
    for w in 0..q {
        let bw = &b[w * NR..(w + 1) * NR];
        for (r, row) in acc.iter_mut().enumerate() {
            let x = a[w * MR + r];
            for (v, &y) in row.iter_mut().zip(bw) {
                *v += (x ^ y).count_ones();
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (l, &v) in row.iter().enumerate() {
            // SAFETY: the caller passes an MR x NR tile with row stride `ldo`.
            unsafe { *out.add(r * ldo + l) = base[l].wrapping_sub(2 * v as i32) };
        }
    }
}

/// Portable kernel; see [`Kernel`].
///
/// # Safety
/// `a` holds `q * MR` and `b` `q * NR` words; `out` is an `MR x NR` tile with row stride `ldo`.
unsafe fn kernel_portable(
    q: usize,
    a: *const u64,
    b: *const u64,
    out: *mut i32,
    ldo: usize,
    base: &[i32; NR],
) {
    // SAFETY: lengths as documented.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, q * MR),
            std::slice::from_raw_parts(b, q * NR),
        )
    };
    body(q, a, b, out, ldo, base)
}

/// Same as `kernel_portable`, compiled with the `popcnt` instruction.
///
/// # Safety
/// As `kernel_portable`, and the CPU must have POPCNT.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn kernel_popcnt(
    q: usize,
    a: *const u64,
    b: *const u64,
    out: *mut i32,
    ldo: usize,
    base: &[i32; NR],
) {
    // SAFETY: lengths as documented.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, q * MR),
            std::slice::from_raw_parts(b, q * NR),
        )
    };
    body(q, a, b, out, ldo, base)
}

/// The scalar kernel for this CPU.
pub(crate) fn kernel_dispatch() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("popcnt") {
        return kernel_popcnt;
    }
    kernel_portable
}
