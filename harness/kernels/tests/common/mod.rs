//! Strategies and helpers the kernel tests share.

#![allow(dead_code)]

use proptest::prelude::*;

/// Values drawn either uniformly or from the extremes (0/255, -128/127).
pub fn u8s(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), len),
        prop::collection::vec(prop_oneof![Just(0u8), Just(255u8), Just(1u8)], len),
        Just(vec![255u8; len]),
    ]
}

/// Values drawn either uniformly or from the extremes (-128/127, 0).
pub fn i8s(len: usize) -> impl Strategy<Value = Vec<i8>> {
    prop_oneof![
        prop::collection::vec(any::<i8>(), len),
        prop::collection::vec(prop_oneof![Just(-128i8), Just(127i8), Just(0i8)], len),
        Just(vec![-128i8; len]),
    ]
}

/// Runs `f` in a rayon pool of `threads` threads.
pub fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}
