//! Thread-count control for the parallel kernels.
//!
//! The kernels run on the rayon pool they are called from (use `ThreadPool::install` to pick a
//! pool) and use at most [`max_threads`] of its threads; 1 means the kernel runs on the calling
//! thread with no rayon involvement.

use std::sync::atomic::{AtomicUsize, Ordering};

static LIMIT: AtomicUsize = AtomicUsize::new(0);

/// Cap the number of threads every kernel uses (0 = no cap: the current rayon pool's size).
pub fn set_max_threads(n: usize) {
    LIMIT.store(n, Ordering::Relaxed);
}

/// Threads a kernel called now would use: the current rayon pool's size, capped by
/// [`set_max_threads`].
pub fn max_threads() -> usize {
    let pool = rayon::current_num_threads().max(1);
    match LIMIT.load(Ordering::Relaxed) {
        0 => pool,
        n => n.min(pool),
    }
}

/// Run `f(task)` for every task in `0..tasks`, in parallel on up to `threads` rayon threads.
pub(crate) fn run_tasks(tasks: usize, threads: usize, f: impl Fn(usize) + Sync + Send) {
    if threads <= 1 || tasks <= 1 {
        (0..tasks).for_each(f);
    } else {
        use rayon::prelude::*;
        (0..tasks).into_par_iter().with_max_len(1).for_each(f);
    }
}

/// A raw pointer that may cross threads; users guarantee disjoint writes.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(*mut T);

impl<T> SendPtr<T> {
    pub(crate) fn new(p: *mut T) -> Self {
        SendPtr(p)
    }
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}
// SAFETY: only used to hand disjoint output regions to parallel tasks.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}
