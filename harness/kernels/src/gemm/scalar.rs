//! Portable microkernel on the i16 pair layout (any CPU).

/// Rows of A per tile.
pub(crate) const MR: usize = 4;
/// Columns (B rows) per tile.
pub(crate) const NR: usize = 16;

/// `C[MR][NR] (+)= A x B` over `groups` pairs; see [`super::Kernel`]. The B bytes are i8 when
/// `B_SIGNED`, else u8.
///
/// # Safety
/// `a` holds `groups * MR * 2` i16 and `b` `groups * NR * 2` bytes; `c` is an `MR x NR` tile
/// with row stride `ldc`.
pub(crate) unsafe fn kernel<const B_SIGNED: bool>(
    groups: usize,
    a: *const i16,
    b: *const u8,
    c: *mut i32,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: lengths as documented.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, groups * MR * 2),
            std::slice::from_raw_parts(b, groups * NR * 2),
        )
    };
    let wide = |v: u8| {
        if B_SIGNED {
            i32::from(v as i8)
        } else {
            i32::from(v)
        }
    };
    let mut acc = [[0i32; NR]; MR];
    for g in 0..groups {
        let bg = &b[g * NR * 2..(g + 1) * NR * 2];
        for (r, row) in acc.iter_mut().enumerate() {
            let a0 = i32::from(a[(g * MR + r) * 2]);
            let a1 = i32::from(a[(g * MR + r) * 2 + 1]);
            for (j, v) in row.iter_mut().enumerate() {
                // Each pair sum of two 8-bit products fits i32 exactly.
                let s = a0 * wide(bg[2 * j]) + a1 * wide(bg[2 * j + 1]);
                *v = v.wrapping_add(s);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            // SAFETY: inside the tile.
            unsafe {
                let p = c.add(r * ldc + j);
                *p = if accumulate {
                    (*p).wrapping_add(*v)
                } else {
                    *v
                };
            }
        }
    }
}
