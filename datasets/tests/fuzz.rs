//! Mutation fuzzing of the readers: valid IDX files (raw and gzipped) and CIFAR-10/100 batches
//! with bits flipped, bytes truncated, deleted or duplicated and header numbers made huge must
//! give a valid set or a clear error naming the file, never a panic, and never cost more memory
//! than [`PEAK_BOUND`] (measured by a counting global allocator).
//!
//! `QBENCH_FUZZ_CASES` sets the cases per reader (default 256, a few seconds in release); a long
//! run sets a big number. There is no KITTI reader in this crate, so no KITTI case.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::{Compression, write::GzEncoder};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use qbench_datasets::{
    CIFAR_IMAGE_BYTES, Cifar100Label, DatasetError, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, ImageSet,
    load_cifar10, load_cifar100, load_idx_pair, read_idx_images, read_idx_labels,
};

/// Counts the bytes live on the heap and their peak.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as if old and new blocks were both live for a moment (a moving realloc).
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most a reader may allocate on any input of this file. The inputs are at most a few KB; a
/// deflate stream inflates at most about 1032:1, so a gzipped input of up to 8 KB yields at most
/// about 8.3 MB, which a reader holds at most twice over (growth by doubling) plus the decoder's
/// 32 KB window and buffers: under 20 MiB. 64 MiB leaves room for that, while a reader that
/// trusted a header (u32 dimensions claim up to 2^96 bytes; one image header alone 4 GiB of
/// labels) would pass it.
const PEAK_BOUND: usize = 64 << 20;

/// Serializes the tests of this binary, so that each one's peak is its own.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` and returns its result and the peak heap growth during it.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let r = f();
    (r, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

fn cases() -> u32 {
    std::env::var("QBENCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// One change to a file's bytes; positions are taken modulo the length.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
    /// A big-endian u32 written at a 4-aligned offset of the first 16 bytes (a header field).
    HeaderNumber(usize, u32),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let huge = prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(0x8000_0000),
        Just(60_000),
        any::<u32>()
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (0usize..4, huge).prop_map(|(k, v)| Mutation::HeaderNumber(k, v)),
        proptest::collection::vec(any::<u8>(), 1..32).prop_map(Mutation::Append),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    let at = |i: usize| if len == 0 { 0 } else { i % len };
    match m {
        Mutation::FlipBit(i, b) if len > 0 => bytes[at(*i)] ^= 1 << b,
        Mutation::Truncate(n) => bytes.truncate(at(*n)),
        Mutation::Delete(i, n) => {
            let s = at(*i);
            bytes.drain(s..(s + n).min(len));
        }
        Mutation::Duplicate(i, n) => {
            let s = at(*i);
            let part = bytes[s..(s + n).min(len)].to_vec();
            bytes.splice(s..s, part);
        }
        Mutation::HeaderNumber(k, v) if len >= 4 * k + 4 => {
            bytes[4 * k..4 * k + 4].copy_from_slice(&v.to_be_bytes());
        }
        Mutation::Append(tail) => bytes.extend_from_slice(tail),
        _ => {}
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A valid IDX pair: `count` images of `rows x cols` pixels and their labels (below 10).
fn idx_pair() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (1u32..5, 1u32..9, 1u32..9)
        .prop_flat_map(|(n, r, c)| {
            (
                Just((n, r, c)),
                proptest::collection::vec(any::<u8>(), (n * r * c) as usize),
                proptest::collection::vec(0u8..10, n as usize),
            )
        })
        .prop_map(|((n, r, c), pixels, labels)| {
            let mut images = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
            for d in [n, r, c] {
                images.extend_from_slice(&d.to_be_bytes());
            }
            images.extend_from_slice(&pixels);
            let mut l = IDX_LABELS_MAGIC.to_be_bytes().to_vec();
            l.extend_from_slice(&n.to_be_bytes());
            l.extend_from_slice(&labels);
            (images, l)
        })
}

/// How a mutated file is stored: raw, gzipped after mutation (a valid stream of bad data) or
/// mutated after gzipping (a corrupt stream).
#[derive(Debug, Clone, Copy)]
enum Storage {
    Raw,
    GzipThenMutate,
    MutateThenGzip,
}

fn storage() -> impl Strategy<Value = Storage> {
    prop_oneof![
        Just(Storage::Raw),
        Just(Storage::GzipThenMutate),
        Just(Storage::MutateThenGzip)
    ]
}

fn store(bytes: &[u8], how: Storage, mutations: &[Mutation]) -> Vec<u8> {
    let mut v = match how {
        Storage::GzipThenMutate => gzip(bytes),
        _ => bytes.to_vec(),
    };
    for m in mutations {
        mutate(&mut v, m);
    }
    match how {
        Storage::MutateThenGzip => gzip(&v),
        _ => v,
    }
}

/// A loaded set must be consistent; an error must name one of `files`.
fn check_outcome(outcome: &Result<ImageSet, DatasetError>, files: &[&Path]) {
    match outcome {
        Ok(set) => {
            assert!(set.check().is_ok(), "inconsistent set");
            assert_eq!(
                set.images.len(),
                set.len() * set.channels * set.height * set.width
            );
            assert!(set.labels.iter().all(|&l| usize::from(l) < set.num_classes));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                files.iter().any(|f| msg.contains(&f.display().to_string())),
                "error names no file: {msg}"
            );
        }
    }
}

#[test]
fn mutated_idx_files_give_a_set_or_a_clear_error_in_bounded_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (ip, lp) = (dir.path().join("images.idx"), dir.path().join("labels.idx"));
    let muts = || proptest::collection::vec(mutation(), 0..4);
    let input = (idx_pair(), storage(), muts(), storage(), muts());
    runner()
        .run(&input, |((images, labels), hi, mi, hl, ml)| {
            std::fs::write(&ip, store(&images, hi, &mi)).unwrap();
            std::fs::write(&lp, store(&labels, hl, &ml)).unwrap();
            let (outcome, peak) = measure(|| load_idx_pair(&ip, &lp, 10));
            check_outcome(&outcome, &[&ip, &lp]);
            prop_assert!(peak < PEAK_BOUND, "peak {peak} bytes");
            // Each reader on its own, and each file read as the other kind.
            let (_, peak) = measure(|| {
                for p in [&ip, &lp] {
                    if let Err(e) = read_idx_images(p) {
                        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
                    }
                    if let Err(e) = read_idx_labels(p) {
                        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
                    }
                }
            });
            prop_assert!(peak < PEAK_BOUND, "peak {peak} bytes");
            Ok(())
        })
        .unwrap();
}

/// A valid CIFAR batch of `n` records with `label_bytes` labels each (first label below
/// `classes[0]`, second below `classes[1]`).
fn cifar_batch(label_bytes: usize) -> impl Strategy<Value = Vec<u8>> {
    (1usize..3).prop_flat_map(move |n| {
        proptest::collection::vec(
            (
                proptest::collection::vec(0u8..10, label_bytes),
                any::<u64>(),
            ),
            n,
        )
        .prop_map(|records| {
            records
                .into_iter()
                .flat_map(|(labels, seed)| {
                    let pixels = (0..CIFAR_IMAGE_BYTES)
                        .map(move |i| (seed.rotate_left(i as u32 % 64) as u8) ^ i as u8);
                    labels.into_iter().chain(pixels)
                })
                .collect()
        })
    })
}

#[test]
fn mutated_cifar_batches_give_a_set_or_a_clear_error_in_bounded_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("data_1.bin"), dir.path().join("data_2.bin"));
    let muts = || proptest::collection::vec(mutation(), 0..4);
    let input = (cifar_batch(1), muts(), cifar_batch(2), muts());
    runner()
        .run(&input, |(ten, m10, hundred, m100)| {
            let mut ten = ten;
            m10.iter().for_each(|m| mutate(&mut ten, m));
            let mut hundred = hundred;
            m100.iter().for_each(|m| mutate(&mut hundred, m));
            std::fs::write(&a, &ten).unwrap();
            std::fs::write(&b, &hundred).unwrap();
            let (outcome, peak) = measure(|| load_cifar10(&[&a, &a]));
            check_outcome(&outcome, &[&a]);
            prop_assert!(peak < PEAK_BOUND, "peak {peak} bytes");
            for label in [Cifar100Label::Fine, Cifar100Label::Coarse] {
                let (outcome, peak) = measure(|| load_cifar100(&[&b], label));
                check_outcome(&outcome, &[&b]);
                prop_assert!(peak < PEAK_BOUND, "peak {peak} bytes");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_gzip_bomb_stops_at_the_size_its_header_implies() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // One 28x28 image promised, 32 MiB of zeros delivered (about 32 KB compressed).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb-images-idx3-ubyte.gz");
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    let mut header = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [1u32, 28, 28] {
        header.extend_from_slice(&d.to_be_bytes());
    }
    enc.write_all(&header).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..32 {
        enc.write_all(&zeros).unwrap();
    }
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    drop(zeros);
    let (outcome, peak) = measure(|| read_idx_images(&path));
    let e = outcome.unwrap_err();
    assert!(
        matches!(&e, DatasetError::Oversized { expected: 800, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("bomb-images-idx3-ubyte.gz"), "{e}");
    // The decoder's state and buffers, not the 32 MiB.
    assert!(peak < 1 << 20, "peak {peak} bytes");
}
