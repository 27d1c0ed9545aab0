//! glibc malloc settings for training.
//!
//! candle allocates a fresh buffer for every tensor op. With glibc's defaults, large buffers are
//! mmap'ed and unmapped each time and the heap top is trimmed eagerly, so the kernel zeroes new
//! pages over and over (a quarter of training time in profiles here). Raising the mmap threshold
//! to its maximum and disabling trimming keeps freed memory for reuse. (mimalloc was measured too:
//! slower than tuned glibc on this workload.)

/// Keeps freed memory in the process instead of returning it to the kernel after every op.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
    unsafe {
        // 32 MiB is glibc's maximum mmap threshold on 64-bit targets.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
