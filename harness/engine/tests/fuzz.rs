//! Fuzzing of the graph file (issue 15): valid files built with `GraphBuilder` (a small CNN, a
//! residual block with both add alignments, a binary network, a depthwise convolution with
//! `groups == channels`), mutated at the byte level (bit flips, truncation) and in the JSON header
//! (fields deleted, duplicated, given other types or huge numbers, array entries dropped or
//! repeated). Loading must return an error, or a valid graph that then runs on a tiny input, in
//! bounded time and memory, without a panic.
//!
//! Memory: a counting global allocator tracks the bytes live in this test binary. Each case may
//! raise the peak by at most [`MEMORY_LIMIT`] (256 MiB); an allocation that would cross it fails
//! (the process aborts with "memory allocation of N bytes failed" rather than trying to allocate
//! what a graph claiming 2^40 channels asks for). The seeds need well under 1 MiB to load and run,
//! and a valid mutant differs from its seed only where validation allows (the declared output
//! types must still match), so 256 MiB leaves a wide margin for honest work while catching any
//! allocation sized by a claimed number rather than by the file.
//!
//! Cases: `QBENCH_FUZZ_CASES` (default 256) per test; CI runs the default in a few seconds in
//! release, a long run sets e.g. `QBENCH_FUZZ_CASES=100000`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use qbench_engine::exec::{fast, reference};
use qbench_engine::format::METADATA_KEY;
use qbench_engine::*;
use safetensors::SafeTensors;
use serde_json::{Value, json};

/// Most bytes one case may allocate on top of what was live before it.
const MEMORY_LIMIT: usize = 256 << 20;
/// Longest one case may take (load, validate, run both executors, save, reload).
const TIME_LIMIT: Duration = Duration::from_secs(5);

/// The system allocator, counting live bytes and their peak, refusing to go past `cap`.
struct Counting {
    live: AtomicUsize,
    peak: AtomicUsize,
    cap: AtomicUsize,
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        let live = self.live.fetch_add(size, Ordering::SeqCst) + size;
        if live > self.cap.load(Ordering::SeqCst) {
            self.live.fetch_sub(size, Ordering::SeqCst);
            return std::ptr::null_mut();
        }
        self.peak.fetch_max(live, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            self.live.fetch_sub(size, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        self.live.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting {
    live: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
    cap: AtomicUsize::new(usize::MAX),
};

/// The tests share the allocator's counters, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` with at most [`MEMORY_LIMIT`] more bytes than are live now; returns its result and
/// the peak it reached above that baseline.
fn bounded<T>(f: impl FnOnce() -> T) -> (T, usize) {
    /// Lifts the cap again even when `f` panics.
    struct Uncap;
    impl Drop for Uncap {
        fn drop(&mut self) {
            ALLOC.cap.store(usize::MAX, Ordering::SeqCst);
        }
    }
    let base = ALLOC.live.load(Ordering::SeqCst);
    ALLOC.peak.store(base, Ordering::SeqCst);
    ALLOC.cap.store(base + MEMORY_LIMIT, Ordering::SeqCst);
    let uncap = Uncap;
    let out = f();
    drop(uncap);
    let peak = ALLOC.peak.load(Ordering::SeqCst).saturating_sub(base);
    (out, peak)
}

fn cases() -> u32 {
    std::env::var("QBENCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn int8() -> WeightKind {
    WeightKind::Int { bits: 8 }
}

/// Deterministic weights in the declared kind.
fn weights(n: usize, kind: WeightKind) -> Vec<i8> {
    (0..n)
        .map(|i| match kind {
            WeightKind::Binary => [1, -1][i % 2],
            WeightKind::Ternary => (i % 3) as i8 - 1,
            WeightKind::Int { .. } => ((i * 37 % 15) as i8) - 7,
        })
        .collect()
}

fn fixed_point(channels: usize, out: DType) -> Requant {
    Requant::FixedPoint {
        multiplier: (0..channels).map(|c| (1 << 30) + c as i32 * 977).collect(),
        shift: (0..channels).map(|c| -6 - c as i32 % 3).collect(),
        zero_point: out.min_value() as i32 + 1,
        min: out.min_value() as i32,
        max: out.max_value() as i32,
    }
}

fn conv(cin: usize, cout: usize, k: usize, pad: usize, groups: usize) -> Conv2d {
    Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel_h: k,
        kernel_w: k,
        stride: 1,
        pad,
        groups,
        weight_kind: int8(),
        input_zero_point: 3,
        weights: weights(cout * cin / groups * k * k, int8()),
        bias: Some((0..cout as i32).map(|o| o * 11 - 20).collect()),
    }
}

fn dense(f: usize, out: usize) -> Dense {
    Dense {
        in_features: f,
        out_features: out,
        weight_kind: WeightKind::Int { bits: 4 },
        input_zero_point: 0,
        weights: weights(f * out, WeightKind::Int { bits: 4 }),
        bias: None,
    }
}

const POOL: Pool = Pool {
    kernel_h: 2,
    kernel_w: 2,
    stride: 2,
    pad: 0,
};

/// conv + shift requant + max pool + dense + fixed-point requant + dense.
fn cnn() -> QGraph {
    let mut b = GraphBuilder::new(&[2, 6, 6]);
    let x = b.conv2d("conv", 0, conv(2, 4, 3, 1, 1)).unwrap();
    let shift = Requant::Shift {
        shift: vec![5, 6, 7, 8],
        zero_point: 0,
        min: 0,
        max: 255,
    };
    let x = b.requant("rq", x, DType::U8, shift).unwrap();
    let x = b.max_pool("pool", x, POOL).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let x = b.dense("fc1", x, dense(36, 5)).unwrap();
    let x = b
        .requant("fp", x, DType::U8, fixed_point(5, DType::U8))
        .unwrap();
    let x = b.dense("fc2", x, dense(5, 3)).unwrap();
    b.finish(x).unwrap()
}

/// A residual block: x + requant(conv(x)) with a fixed-point add, then a power-of-two add.
fn residual() -> QGraph {
    let s8 = DType::Signed { bits: 8 };
    let mut b = GraphBuilder::new(&[3, 4, 4]);
    let y = b.conv2d("conv", 0, conv(3, 3, 3, 1, 1)).unwrap();
    let y = b.requant("rq", y, s8, fixed_point(3, s8)).unwrap();
    let fp = AddAlign::FixedPoint {
        left_shift: 20,
        multiplier_a: 1 << 30,
        shift_a: -1,
        multiplier_b: 1_500_000_000,
        shift_b: -2,
    };
    let add = |zero_point_a, zero_point_b, align| Add {
        zero_point_a,
        zero_point_b,
        align,
    };
    let s = b.add("add", 0, y, add(128, -1, fp)).unwrap();
    let s = b
        .requant("rq2", s, DType::U8, fixed_point(1, DType::U8))
        .unwrap();
    let r = b.relu("relu", s, 1).unwrap();
    let p2 = AddAlign::PowerOfTwo {
        shift_a: 1,
        shift_b: 0,
    };
    let s = b.add("add2", r, s, add(0, 0, p2)).unwrap();
    let x = b.avg_pool("avg", s, POOL).unwrap();
    let x = b.global_avg_pool("gap", x).unwrap();
    b.finish(x).unwrap()
}

/// threshold -> binary conv -> threshold -> max pool -> flatten -> binary dense.
fn binary() -> QGraph {
    let mut b = GraphBuilder::new(&[3, 5, 5]);
    let sign = |t: Vec<i32>| Requant::Threshold {
        flip: t.iter().map(|&v| v < 0).collect(),
        thresholds: t,
    };
    let x = b
        .requant("sign", 0, DType::Binary, sign(vec![100, -50, 128]))
        .unwrap();
    let bc = BinaryConv2d {
        in_channels: 3,
        out_channels: 70,
        kernel_h: 3,
        kernel_w: 3,
        stride: 2,
        pad: 1,
        groups: 1,
        weights: weights(70 * 27, WeightKind::Binary),
        bias: Some(vec![1; 70]),
    };
    let x = b.binary_conv2d("bconv", x, bc).unwrap();
    let x = b.requant("sign2", x, DType::Binary, sign(vec![0])).unwrap();
    let x = b.max_pool("pool", x, POOL).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let bd = BinaryDense {
        in_features: 70,
        out_features: 4,
        weights: weights(280, WeightKind::Binary),
        bias: None,
    };
    let x = b.binary_dense("fc", x, bd).unwrap();
    b.finish(x).unwrap()
}

/// conv -> depthwise conv (groups = channels) -> multi-threshold -> dense.
fn depthwise() -> QGraph {
    let mut b = GraphBuilder::new(&[1, 5, 5]);
    let x = b.conv2d("conv", 0, conv(1, 4, 1, 0, 1)).unwrap();
    let x = b
        .requant("rq", x, DType::U8, fixed_point(4, DType::U8))
        .unwrap();
    let dw = Conv2d {
        weight_kind: WeightKind::Ternary,
        weights: weights(4 * 9, WeightKind::Ternary),
        ..conv(4, 4, 3, 1, 4)
    };
    let x = b.conv2d("dw", x, dw).unwrap();
    let mt = Requant::MultiThreshold {
        thresholds: vec![-10, 0, 10],
        flip: vec![false],
    };
    let x = b.requant("mt", x, DType::Unsigned { bits: 2 }, mt).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let x = b.dense("fc", x, dense(100, 3)).unwrap();
    b.finish(x).unwrap()
}

fn seeds() -> Vec<Vec<u8>> {
    [cnn(), residual(), binary(), depthwise()]
        .iter()
        .map(|g| g.to_bytes().unwrap())
        .collect()
}

/// Loads `bytes`; a valid graph is run by both executors on one tiny image (and must agree),
/// counted, saved and reloaded. Returns the error message, if any.
fn exercise(bytes: &[u8]) -> Result<(), String> {
    let graph = QGraph::from_bytes(bytes).map_err(|e| e.to_string())?;
    let input: Vec<u8> = (0..graph.input_len())
        .map(|i| (i * 31 % 256) as u8)
        .collect();
    let want = reference::run(&graph, &input, 1).expect("a valid graph runs");
    let got = fast::run(&graph, &input, 1).expect("a valid graph runs");
    assert_eq!(want, got, "the executors disagree on a loaded graph");
    count_ops(&graph);
    let again = graph.to_bytes().expect("a loaded graph saves");
    assert_eq!(QGraph::from_bytes(&again).expect("and reloads"), graph);
    Ok(())
}

/// Runs `exercise` on every mutant of a strategy, bounded in time and memory.
fn fuzz(name: &str, strategy: impl Strategy<Value = Vec<u8>>) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let errors = std::cell::Cell::new(0u32);
    let result = runner.run(&strategy, |bytes| {
        let start = Instant::now();
        let (result, peak) = bounded(|| exercise(&bytes));
        let elapsed = start.elapsed();
        prop_assert!(peak <= MEMORY_LIMIT, "{peak} bytes");
        prop_assert!(elapsed < TIME_LIMIT, "{elapsed:?}");
        if let Err(e) = result {
            errors.set(errors.get() + 1);
            prop_assert!(
                e.starts_with("graph file: ") || e.starts_with("node ") || e.starts_with("graph: "),
                "unclear error: {e}"
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    assert!(errors.get() > 0, "{name}: no mutant was rejected");
}

fn header(bytes: &[u8]) -> Value {
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    serde_json::from_str(&meta.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap()
}

/// Replaces the JSON header of a graph file by `json`, keeping its tensors.
fn with_header(bytes: &[u8], json: String) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let meta = std::collections::HashMap::from([(METADATA_KEY.to_string(), json)]);
    safetensors::serialize(st.tensors(), Some(meta)).unwrap()
}

/// Every path to a value in `v` (object keys and array indices), `v` itself first.
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    let children: Vec<(String, &Value)> = match v {
        Value::Object(o) => o.iter().map(|(k, x)| (k.clone(), x)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| (i.to_string(), x))
            .collect(),
        _ => vec![],
    };
    for (k, x) in children {
        at.push(k);
        paths(x, at, out);
        at.pop();
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        other => &mut other[k.as_str()],
    })
}

/// Huge, negative, fractional and mistyped replacements for any value.
fn wild_values() -> Vec<Value> {
    vec![
        json!(0),
        json!(-1),
        json!(1u64 << 40),
        json!(1_000_000_000),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1u64 << 31),
        json!(1u64 << 32),
        json!(1.5),
        json!(1e300),
        json!(null),
        json!("x"),
        json!([]),
        json!({}),
        json!([1u64 << 40, 1u64 << 40, 1u64 << 40]),
        json!({"kind": "unsigned", "bits": 200}),
    ]
}

/// One edit of the JSON tree (or of its text, for a duplicated key).
#[derive(Clone, Debug)]
enum Edit {
    /// Remove the value at the path from its object or array.
    Delete,
    /// Write an object's key a second time (with this replacement value), or repeat an array entry.
    Duplicate(usize),
    /// Replace the value at the path.
    Replace(usize),
}

/// Writes `v` as JSON text; at `dup` (a path to an object member) the member is written twice,
/// the second time with `with`: JSON text with a duplicate key, which a `Value` cannot hold.
fn write_dup(v: &Value, at: &mut Vec<String>, dup: &[String], with: &Value, out: &mut String) {
    match v {
        Value::Object(o) => {
            out.push('{');
            let mut first = true;
            for (k, x) in o {
                at.push(k.clone());
                let mut member = |x: &Value, at: &mut Vec<String>, out: &mut String| {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    write_dup(x, at, dup, with, out);
                };
                member(x, at, out);
                if at.as_slice() == dup {
                    member(with, at, out);
                }
                at.pop();
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                at.push(i.to_string());
                write_dup(x, at, dup, with, out);
                at.pop();
            }
            out.push(']');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

/// Applies `edits` (path index and edit, each index taken modulo the paths of the current tree)
/// to the header of `bytes`.
fn edit_header(bytes: &[u8], edits: &[(usize, Edit)]) -> Vec<u8> {
    let mut h = header(bytes);
    let wild = wild_values();
    let mut text = None;
    for (pick, edit) in edits {
        let mut all = Vec::new();
        paths(&h, &mut Vec::new(), &mut all);
        let path = &all[pick % all.len()];
        let Some((last, parent)) = path.split_last() else {
            continue; // the root itself
        };
        match edit {
            Edit::Replace(w) => *get_mut(&mut h, path) = wild[w % wild.len()].clone(),
            Edit::Delete => match get_mut(&mut h, parent) {
                Value::Object(o) => {
                    o.remove(last);
                }
                Value::Array(a) => {
                    a.remove(last.parse::<usize>().unwrap());
                }
                _ => unreachable!(),
            },
            Edit::Duplicate(w) => match get_mut(&mut h, parent) {
                Value::Array(a) => {
                    let i = last.parse::<usize>().unwrap();
                    a.insert(i, a[i].clone());
                }
                _ => {
                    // The duplicate key is written last (serde_json then sees it second).
                    let same = get_mut(&mut h, path).clone();
                    let with = if w % 2 == 0 {
                        same
                    } else {
                        wild[w % wild.len()].clone()
                    };
                    let mut out = String::new();
                    write_dup(&h, &mut Vec::new(), path, &with, &mut out);
                    text = Some(out);
                    break;
                }
            },
        }
    }
    with_header(bytes, text.unwrap_or_else(|| h.to_string()))
}

fn seed() -> impl Strategy<Value = Vec<u8>> {
    proptest::sample::select(seeds())
}

fn edit() -> impl Strategy<Value = (usize, Edit)> {
    (
        any::<usize>(),
        prop_oneof![
            Just(Edit::Delete),
            any::<usize>().prop_map(Edit::Duplicate),
            any::<usize>().prop_map(Edit::Replace),
        ],
    )
}

#[test]
fn seeds_are_valid_and_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for bytes in seeds() {
        let (result, peak) = bounded(|| exercise(&bytes));
        result.unwrap();
        assert!(peak < 1 << 20, "a seed needs {peak} bytes");
    }
}

#[test]
fn bit_flips_never_panic() {
    let flips = proptest::collection::vec((any::<usize>(), 0..8u8), 1..8);
    fuzz(
        "bit flips",
        (seed(), flips).prop_map(|(mut bytes, flips)| {
            // Half the flips land in the first 8 + header bytes, where the structure is.
            let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            for (i, (at, bit)) in flips.into_iter().enumerate() {
                let span = if i % 2 == 0 { header_end } else { bytes.len() };
                bytes[at % span] ^= 1 << bit;
            }
            bytes
        }),
    );
}

#[test]
fn truncation_and_junk_never_panic() {
    fuzz(
        "truncation",
        (
            seed(),
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..4),
        )
            .prop_map(|(bytes, cut, junk)| {
                let mut out = bytes[..cut % (bytes.len() + 1)].to_vec();
                out.extend(junk);
                out
            }),
    );
}

#[test]
fn json_edits_never_panic() {
    fuzz(
        "json edits",
        (seed(), proptest::collection::vec(edit(), 1..4))
            .prop_map(|(bytes, edits)| edit_header(&bytes, &edits)),
    );
}

/// Every numeric value of every seed's header replaced by each huge or edge number in turn
/// (exhaustive, not sampled): 2^40 channels, a 10^9 kernel, 2^32 strides are all rejected before
/// anything of their size is allocated.
#[test]
fn huge_numbers_are_rejected_before_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let numbers = [
        json!(1u64 << 40),
        json!(1_000_000_000),
        json!(1u64 << 32),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(-1),
    ];
    let mut valid_huge = Vec::new();
    for bytes in seeds() {
        let h = header(&bytes);
        let mut all = Vec::new();
        paths(&h, &mut Vec::new(), &mut all);
        for path in all
            .iter()
            .filter(|p| h.pointer(&pointer(p)).is_some_and(Value::is_number))
        {
            for n in &numbers {
                let mut m = h.clone();
                *get_mut(&mut m, path) = n.clone();
                let mutant = with_header(&bytes, m.to_string());
                let start = Instant::now();
                let (result, peak) = bounded(|| exercise(&mutant));
                assert!(peak <= MEMORY_LIMIT, "{path:?} = {n}: {peak} bytes");
                assert!(start.elapsed() < TIME_LIMIT, "{path:?} = {n}");
                // A stride past the input is defined (one window per row), and any stride
                // >= 1 keeps the output within the input's size.
                let stride = path.last().is_some_and(|k| k == "stride");
                if result.is_ok() && *n != json!(-1) && !stride {
                    valid_huge.push(format!("{path:?} = {n}"));
                }
            }
        }
    }
    // -1 is a valid signed zero point, clamp bound or exponent; no field but a stride takes a
    // huge number.
    assert!(valid_huge.is_empty(), "{valid_huge:?}");
}

fn pointer(path: &[String]) -> String {
    path.iter().map(|k| format!("/{k}")).collect()
}
