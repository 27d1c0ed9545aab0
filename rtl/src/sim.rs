//! Icarus Verilog co-simulation of a unit (RTL or gate-level netlist) against the engine, and
//! switching activity from gate-level simulation.
//!
//! [`stimulus`] turns a [`VectorSet`] into the clock-by-clock inputs of one unit and the output the
//! engine's own code gives for each clock (requantizers through [`Requant::apply`], processing
//! elements through the reference executor on a one-layer graph). A generated testbench reads the
//! inputs with `$readmemh`, drives one vector per clock and prints the registered output; the
//! comparison is done here, bit for bit, and the first divergence is reported with its operands.

mod vcd;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use qbench_engine::exec::reference;
use qbench_engine::{BinaryDense, DType, Dense, GraphBuilder, Requant, WeightKind};
use qbench_io::{IoError, write_atomic};

use crate::error::{HwError, Result};
use crate::synth::{Netlist, log_tail};
use crate::tools;
use crate::units::{Unit, UnitKind};
use crate::vectors::{Operands, Source, VectorSet};

/// Simulated clock period in the testbench, ns (functional, zero-delay cell models).
pub const SIM_PERIOD_NS: f64 = 10.0;

/// One input port of a unit: name and width in bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Port name in the Verilog module.
    pub name: &'static str,
    /// Width in bits.
    pub width: u32,
}

/// The input ports (in testbench packing order, excluding `clk`) and the output width of a unit.
pub fn ports(kind: UnitKind) -> (Vec<Port>, u32) {
    let p = |name, width| Port { name, width };
    let reqo = [p("zp", 9), p("lo", 9), p("hi", 9)];
    match kind {
        UnitKind::ShiftVar => ([vec![p("acc", 32), p("s", 5)], reqo.to_vec()].concat(), 9),
        UnitKind::ShiftConst { .. } => ([vec![p("acc", 32)], reqo.to_vec()].concat(), 9),
        UnitKind::FixedPoint { acc_bits, .. } => (
            [
                vec![p("acc", acc_bits), p("m", 32), p("sh", 6)],
                reqo.to_vec(),
            ]
            .concat(),
            9,
        ),
        UnitKind::Threshold => (vec![p("acc", 32), p("t", 32), p("flip", 1)], 1),
        UnitKind::MultiThreshold { k } => (
            vec![p("acc", 32), p("t", 32 * ((1 << k) - 1)), p("flip", 1)],
            k,
        ),
        UnitKind::Mac {
            act_bits,
            weight_bits,
        } => (
            vec![
                p("clr", 1),
                p("bias", 32),
                p("a", act_bits),
                p("za", act_bits),
                p("w", weight_bits),
            ],
            32,
        ),
        UnitKind::XnorPopcount { n } => {
            (vec![p("clr", 1), p("bias", 32), p("a", n), p("w", n)], 32)
        }
        UnitKind::TernaryAcc { act_bits } => (
            vec![
                p("clr", 1),
                p("bias", 32),
                p("a", act_bits),
                p("za", act_bits),
                p("w", 2),
            ],
            32,
        ),
    }
}

/// One clock of stimulus: the packed input word (hex, MSB first) and the expected output bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// Index of the vector in the set.
    pub vector: usize,
    /// Step within the vector (MAC rows take one clock per step).
    pub step: usize,
    /// Packed inputs as hex.
    pub hex: String,
    /// Expected output, as the low `out_bits` bits.
    pub expected: u64,
}

/// Packs fields MSB-first into a bit string, rendered as hex.
#[derive(Default)]
struct Packer {
    bits: Vec<bool>,
}

impl Packer {
    /// Appends the low `width` bits of `value` (two's complement), most significant first.
    fn push(&mut self, width: u32, value: i64) {
        for i in (0..width).rev() {
            self.bits.push(i < 64 && (value >> i) & 1 == 1);
        }
    }

    fn hex(&self) -> String {
        let pad = (4 - self.bits.len() % 4) % 4;
        let bits: Vec<bool> = std::iter::repeat_n(false, pad)
            .chain(self.bits.iter().copied())
            .collect();
        bits.chunks(4)
            .map(|c| {
                let v = c.iter().fold(0u32, |a, &b| (a << 1) | u32::from(b));
                char::from_digit(v, 16).unwrap_or('0')
            })
            .collect()
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn fits(v: i32, bits: u32) -> bool {
    bits >= 32 || (-(1i64 << (bits - 1))..(1i64 << (bits - 1))).contains(&i64::from(v))
}

/// Requantizer output of the engine for one operation the unit executes, or `None` when the unit
/// does not execute that kind of operation (or its operands exceed the unit's widths).
fn requant_reference(kind: UnitKind, op: &Operands) -> Option<(Vec<(u32, i64)>, i32)> {
    match (kind, op) {
        (
            UnitKind::ShiftVar | UnitKind::ShiftConst { .. },
            &Operands::Shift {
                acc,
                shift,
                zero_point,
                min,
                max,
            },
        ) => {
            let s = match kind {
                UnitKind::ShiftConst { shift } => shift as u8,
                _ => shift,
            };
            let r = Requant::Shift {
                shift: vec![s],
                zero_point,
                min,
                max,
            };
            let mut f = vec![(32, i64::from(acc))];
            if kind == UnitKind::ShiftVar {
                f.push((5, i64::from(s)));
            }
            f.extend([
                (9, i64::from(zero_point)),
                (9, i64::from(min)),
                (9, i64::from(max)),
            ]);
            Some((f, r.apply(acc, 0)))
        }
        (
            UnitKind::FixedPoint {
                acc_bits,
                left_shift,
            },
            &Operands::FixedPoint {
                acc,
                multiplier,
                shift,
                zero_point,
                min,
                max,
            },
        ) if fits(acc, acc_bits) && (left_shift || shift <= 0) => {
            let r = Requant::FixedPoint {
                multiplier: vec![multiplier],
                shift: vec![shift],
                zero_point,
                min,
                max,
            };
            let f = vec![
                (acc_bits, i64::from(acc)),
                (32, i64::from(multiplier)),
                (6, i64::from(shift)),
                (9, i64::from(zero_point)),
                (9, i64::from(min)),
                (9, i64::from(max)),
            ];
            Some((f, r.apply(acc, 0)))
        }
        (
            UnitKind::Threshold,
            &Operands::Threshold {
                acc,
                threshold,
                flip,
            },
        ) => {
            let r = Requant::Threshold {
                thresholds: vec![threshold],
                flip: vec![flip],
            };
            let f = vec![
                (32, i64::from(acc)),
                (32, i64::from(threshold)),
                (1, i64::from(flip)),
            ];
            // The unit outputs the packed bit: 1 = +1, 0 = -1.
            Some((f, i32::from(r.apply(acc, 0) > 0)))
        }
        (
            UnitKind::MultiThreshold { k },
            Operands::MultiThreshold {
                acc,
                thresholds,
                flip,
            },
        ) if thresholds.len() == (1 << k) - 1 => {
            let r = Requant::MultiThreshold {
                thresholds: thresholds.clone(),
                flip: vec![*flip],
            };
            let mut f = vec![(32, i64::from(*acc))];
            // Threshold i sits in bits [32 i +: 32]: the highest index is packed first.
            f.extend(thresholds.iter().rev().map(|&t| (32, i64::from(t))));
            f.push((1, i64::from(*flip)));
            Some((f, r.apply(*acc, 0)))
        }
        _ => None,
    }
}

/// Whether an integer dot row fits a MAC of the given widths.
fn dot_fits(kind: UnitKind, zero_point: i32, wk: WeightKind, act: &[u8], weights: &[i8]) -> bool {
    let (aw, ternary, ww) = match kind {
        UnitKind::Mac {
            act_bits,
            weight_bits,
        } => (act_bits, false, weight_bits),
        UnitKind::TernaryAcc { act_bits } => (act_bits, true, 2),
        _ => return false,
    };
    // Binary weights over integer activations (a BNN's first layer) are add/subtract: the ternary
    // accumulator runs them (the energy mapping's unit), and so can the integer MACs.
    let kind_ok = match wk {
        WeightKind::Ternary => ternary,
        WeightKind::Binary => true,
        WeightKind::Int { .. } => !ternary,
    };
    kind_ok
        && (0..1i32 << aw).contains(&zero_point)
        && act.iter().all(|&a| u32::from(a) < 1 << aw)
        && weights.iter().all(|&w| fits(i32::from(w), ww))
        && !act.is_empty()
        && act.len() == weights.len()
}

/// Engine accumulator after every step of an integer dot row: one dense layer whose output `o`
/// holds the row's first `o + 1` weights (later ones zero), run by the reference executor.
fn dot_reference(
    bias: i32,
    zero_point: i32,
    wk: WeightKind,
    act: &[u8],
    weights: &[i8],
) -> Result<Vec<i32>> {
    let n = act.len();
    // Prefix rows hold zero weights, which binary weights cannot: the same values as 2-bit integers
    // (the engine's dense arithmetic does not depend on the weight kind).
    let wk = match wk {
        WeightKind::Binary => WeightKind::Int { bits: 2 },
        k => k,
    };
    let mut w = vec![0i8; n * n];
    for o in 0..n {
        w[o * n..o * n + o + 1].copy_from_slice(&weights[..=o]);
    }
    let mut b = GraphBuilder::new(&[n]);
    let x = b.input();
    let d = b.dense(
        "mac",
        x,
        Dense {
            in_features: n,
            out_features: n,
            weight_kind: wk,
            input_zero_point: zero_point,
            weights: w,
            bias: Some(vec![bias; n]),
        },
    )?;
    let g = b.finish(d)?;
    Ok(reference::run(&g, act, 1)?.values)
}

/// Engine accumulator after every word of a binary dot row: per prefix, a threshold turning 0/1
/// bytes into +-1 and a binary dense layer, run by the reference executor.
fn binary_reference(bias: i32, act: &[u64], weights: &[u64]) -> Result<Vec<i32>> {
    let bit = |words: &[u64], i: usize| (words[i / 64] >> (i % 64)) & 1 == 1;
    (1..=act.len())
        .map(|k| {
            let f = 64 * k;
            let mut b = GraphBuilder::new(&[f]);
            let x = b.input();
            let s = b.requant(
                "sign",
                x,
                DType::Binary,
                Requant::Threshold {
                    thresholds: vec![1],
                    flip: vec![false],
                },
            )?;
            let weights = (0..f)
                .map(|i| if bit(weights, i) { 1 } else { -1 })
                .collect();
            let d = b.binary_dense(
                "xnor",
                s,
                BinaryDense {
                    in_features: f,
                    out_features: 1,
                    weights,
                    bias: Some(vec![bias]),
                },
            )?;
            let g = b.finish(d)?;
            let input: Vec<u8> = (0..f).map(|i| u8::from(bit(act, i))).collect();
            Ok(reference::run(&g, &input, 1)?.values[0])
        })
        .collect()
}

/// The clock-by-clock stimulus of `unit` over the vectors it can execute, with the engine's
/// expected output for each clock.
///
/// # Errors
/// [`HwError::Engine`] if a reference graph cannot be built (operands outside the engine's rules).
pub fn stimulus(unit: &Unit, vectors: &VectorSet) -> Result<Vec<Cycle>> {
    let (_, out_bits) = ports(unit.kind);
    let mut cycles = Vec::new();
    for (vi, v) in vectors.vectors.iter().enumerate() {
        if let Some((fields, y)) = requant_reference(unit.kind, &v.op) {
            let mut p = Packer::default();
            for (w, val) in fields {
                p.push(w, val);
            }
            cycles.push(Cycle {
                vector: vi,
                step: 0,
                hex: p.hex(),
                expected: (y as i64 as u64) & mask(out_bits),
            });
            continue;
        }
        match (&v.op, unit.kind) {
            (
                Operands::Dot {
                    bias,
                    zero_point,
                    weight_kind,
                    act,
                    weights,
                },
                UnitKind::Mac { .. } | UnitKind::TernaryAcc { .. },
            ) if dot_fits(unit.kind, *zero_point, *weight_kind, act, weights) => {
                let (ports, _) = ports(unit.kind);
                let (aw, ww) = (ports[2].width, ports[4].width);
                let expect = dot_reference(*bias, *zero_point, *weight_kind, act, weights)?;
                for (i, (&a, &w)) in act.iter().zip(weights).enumerate() {
                    let mut p = Packer::default();
                    p.push(1, i64::from(i == 0));
                    p.push(32, i64::from(*bias));
                    p.push(aw, i64::from(a));
                    p.push(aw, i64::from(*zero_point));
                    p.push(ww, i64::from(w));
                    cycles.push(Cycle {
                        vector: vi,
                        step: i,
                        hex: p.hex(),
                        expected: u64::from(expect[i] as u32),
                    });
                }
            }
            (Operands::BinaryDot { bias, act, weights }, UnitKind::XnorPopcount { n: 64 })
                if !act.is_empty() && act.len() == weights.len() =>
            {
                let expect = binary_reference(*bias, act, weights)?;
                for (i, (&a, &w)) in act.iter().zip(weights).enumerate() {
                    let mut p = Packer::default();
                    p.push(1, i64::from(i == 0));
                    p.push(32, i64::from(*bias));
                    p.push(64, a as i64);
                    p.push(64, w as i64);
                    cycles.push(Cycle {
                        vector: vi,
                        step: i,
                        hex: p.hex(),
                        expected: u64::from(expect[i] as u32),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(cycles)
}

/// RTL or gate-level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The unit's Verilog source.
    Rtl,
    /// The synthesized netlist with the library's cell models.
    Netlist,
}

/// The first clock whose output differs from the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Index of the vector in the set.
    pub vector: usize,
    /// Its origin.
    pub source: Source,
    /// Step within the vector (MAC rows).
    pub step: usize,
    /// The operands, as the engine sees them.
    pub operands: String,
    /// Engine output (hex of the output bits).
    pub expected: String,
    /// Simulated output (hex, `x`/`z` digits if undefined).
    pub got: String,
}

/// Result of one co-simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosimReport {
    /// The unit.
    pub unit: String,
    /// RTL or netlist.
    pub level: Level,
    /// Vectors the unit executed, by origin.
    pub vectors: BTreeMap<String, usize>,
    /// Clocks simulated and compared.
    pub cycles: usize,
    /// The first mismatch, if any.
    pub first_divergence: Option<Divergence>,
}

impl CosimReport {
    /// Whether every clock matched the engine.
    pub fn passed(&self) -> bool {
        self.first_divergence.is_none() && self.cycles > 0
    }
}

impl std::fmt::Display for CosimReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({:?}): {} clocks, vectors {:?}",
            self.unit, self.level, self.cycles, self.vectors
        )?;
        match &self.first_divergence {
            None => write!(f, ", all equal to the engine"),
            Some(d) => write!(f, ", FIRST DIVERGENCE {d}"),
        }
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "at vector {} ({:?}) step {}: {} -> engine {} but simulation {}",
            self.vector, self.source, self.step, self.operands, self.expected, self.got
        )
    }
}

/// The generated testbench: reads `stim.hex`, drives one vector per clock, prints each output.
/// With `vcd`, dumps the unit's top-level nets (not the cells' internals) to that file.
fn testbench(unit: &Unit, level: Level, cycles: usize, vcd: Option<&Path>) -> String {
    let (inputs, out_bits) = ports(unit.kind);
    let total: u32 = inputs.iter().map(|p| p.width).sum();
    let mut s = String::new();
    let _ = writeln!(s, "`timescale 1ns/10ps\nmodule qbench_tb;");
    let _ = writeln!(s, "  reg clk = 1'b0;");
    let _ = writeln!(s, "  reg [{}:0] mem [0:{}];", total - 1, cycles.max(1) - 1);
    let _ = writeln!(s, "  reg [{}:0] cur = 0;", total - 1);
    let mut hi = total;
    for p in &inputs {
        let _ = writeln!(
            s,
            "  wire [{}:0] in_{} = cur[{}:{}];",
            p.width - 1,
            p.name,
            hi - 1,
            hi - p.width
        );
        hi -= p.width;
    }
    let _ = writeln!(s, "  wire [{}:0] y;", out_bits - 1);
    let params = match level {
        Level::Rtl if !unit.params.is_empty() => format!(
            " #({})",
            unit.params
                .iter()
                .map(|(k, v)| format!(".{k}({v})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => String::new(),
    };
    let conns: Vec<String> = std::iter::once(".clk(clk)".to_string())
        .chain(inputs.iter().map(|p| format!(".{0}(in_{0})", p.name)))
        .chain(std::iter::once(".y(y)".to_string()))
        .collect();
    let _ = writeln!(s, "  {}{} dut ({});", unit.top, params, conns.join(", "));
    let _ = writeln!(s, "  integer i;\n  initial begin");
    let _ = writeln!(s, "    $readmemh(\"stim.hex\", mem);");
    if let Some(v) = vcd {
        let _ = writeln!(
            s,
            "    $dumpfile(\"{}\");\n    $dumpvars(1, dut);",
            v.display()
        );
    }
    let half = SIM_PERIOD_NS / 2.0;
    let _ = writeln!(s, "    for (i = 0; i <= {cycles}; i = i + 1) begin");
    let _ = writeln!(s, "      if (i < {cycles}) cur = mem[i];");
    let _ = writeln!(s, "      #{half} clk = 1'b1;");
    let _ = writeln!(s, "      #1 if (i > 0) $display(\"QB %0d %h\", i - 1, y);");
    let _ = writeln!(s, "      #{} clk = 1'b0;", half - 1.0);
    let _ = writeln!(s, "    end\n    $finish;\n  end\nendmodule");
    s
}

/// Compiles and runs a testbench in `dir`; returns the simulator's stdout.
fn run_icarus(sources: &[PathBuf], dir: &Path, name: &str) -> Result<String> {
    let iverilog = tools::require("iverilog")?;
    let vvp = tools::require("vvp")?;
    let exe = dir.join(format!("{name}.vvp"));
    let log = dir.join(format!("{name}.iverilog.log"));
    let out = iverilog
        .command()
        .arg("-g2005")
        .arg("-o")
        .arg(&exe)
        .args(sources)
        .current_dir(dir)
        .output()
        .map_err(|e| IoError::new("run", &iverilog.path, e))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    write_atomic(&log, &text)?;
    if !out.status.success() {
        return Err(HwError::ToolFailed {
            tool: "iverilog".into(),
            detail: format!(
                "{} (log {}):\n{}",
                out.status,
                log.display(),
                log_tail(&log, 15)
            ),
        });
    }
    let out = vvp
        .command()
        .arg("-n")
        .arg(&exe)
        .current_dir(dir)
        .output()
        .map_err(|e| IoError::new("run", &vvp.path, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(HwError::ToolFailed {
            tool: "vvp".into(),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(stdout)
}

/// Writes stimulus and testbench for `unit` into `dir` and simulates it; returns the cycles and the
/// simulator's output lines `QB <cycle> <hex>`.
fn simulate(
    unit: &Unit,
    netlist: Option<&Netlist>,
    vectors: &VectorSet,
    dir: &Path,
    vcd: Option<&Path>,
) -> Result<(Vec<Cycle>, Vec<String>)> {
    let cycles = stimulus(unit, vectors)?;
    if cycles.is_empty() {
        return Err(HwError::Unit {
            unit: unit.name.clone(),
            detail: "the vector set has no operation this unit executes".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| IoError::new("create the folder", dir, e))?;
    let hex: String = cycles.iter().map(|c| c.hex.clone() + "\n").collect();
    write_atomic(dir.join("stim.hex"), &hex)?;
    let level = if netlist.is_some() {
        Level::Netlist
    } else {
        Level::Rtl
    };
    let tb = dir.join("tb.v");
    write_atomic(&tb, testbench(unit, level, cycles.len(), vcd))?;
    let sources = match netlist {
        Some(n) => {
            let models = tools::cell_models();
            tools::require_file(&models)?;
            vec![tb, n.path.clone(), models]
        }
        None => {
            let rtl = dir.join(format!("{}.rtl.v", unit.name));
            write_atomic(&rtl, unit.source())?;
            vec![tb, rtl]
        }
    };
    let out = run_icarus(&sources, dir, &unit.name)?;
    let lines = out
        .lines()
        .filter(|l| l.starts_with("QB "))
        .map(str::to_string)
        .collect();
    Ok((cycles, lines))
}

/// Co-simulates `unit` (its RTL when `netlist` is `None`, else the gate-level netlist with the
/// library's cell models) on the vectors it can execute, comparing every clock's output with the
/// engine bit for bit. Files go to `workdir/<unit>-<rtl|netlist>/`.
///
/// # Errors
/// Missing tools or cell models, a failing compile/simulation, no executable vectors, or output
/// the simulator did not print (reported with the simulator's lines).
pub fn cosim(
    unit: &Unit,
    netlist: Option<&Netlist>,
    vectors: &VectorSet,
    workdir: &Path,
) -> Result<CosimReport> {
    let level = if netlist.is_some() {
        Level::Netlist
    } else {
        Level::Rtl
    };
    let tag = if netlist.is_some() { "netlist" } else { "rtl" };
    let dir = workdir.join(format!("{}-{tag}", unit.name));
    let (cycles, lines) = simulate(unit, netlist, vectors, &dir, None)?;
    if lines.len() != cycles.len() {
        return Err(HwError::Parse {
            what: "simulator output".into(),
            path: dir.clone(),
            detail: format!("{} output lines for {} clocks", lines.len(), cycles.len()),
        });
    }
    let first = first_divergence(unit, &cycles, &lines, vectors);
    let mut counts = BTreeMap::new();
    let mut last = None;
    for c in &cycles {
        if last != Some(c.vector) {
            let key = format!("{:?}", vectors.vectors[c.vector].source).to_lowercase();
            *counts.entry(key).or_insert(0) += 1;
            last = Some(c.vector);
        }
    }
    Ok(CosimReport {
        unit: unit.name.clone(),
        level,
        vectors: counts,
        cycles: cycles.len(),
        first_divergence: first,
    })
}

/// The first clock whose simulated output differs from the engine's, with its operands.
fn first_divergence(
    unit: &Unit,
    cycles: &[Cycle],
    lines: &[String],
    vectors: &VectorSet,
) -> Option<Divergence> {
    let (_, out_bits) = ports(unit.kind);
    let digits = out_bits.div_ceil(4) as usize;
    cycles.iter().zip(lines).find_map(|(c, line)| {
        let got = line.rsplit(' ').next().unwrap_or("").to_string();
        let value = u64::from_str_radix(&got, 16).ok();
        (value != Some(c.expected)).then(|| {
            let v = &vectors.vectors[c.vector];
            Divergence {
                vector: c.vector,
                source: v.source,
                step: c.step,
                operands: format!("{:?}", v.op),
                expected: format!("{:0digits$x}", c.expected),
                got,
            }
        })
    })
}

/// Switching activity of one net over a simulation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PinActivity {
    /// Transitions (rises plus falls) per clock cycle.
    pub toggles_per_cycle: f64,
    /// Fraction of the simulated time the net is high.
    pub duty: f64,
}

/// Per-net switching activity of a gate-level simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    /// Clock cycles simulated.
    pub cycles: u64,
    /// Simulated clock period (the activity is per cycle, so any clock can use it).
    pub clock_period_ns: f64,
    /// Activity by net name as the netlist (and OpenSTA) names it: `_01234_`, `acc[3]`, `clk`.
    pub pins: BTreeMap<String, PinActivity>,
}

/// Simulates the gate-level `netlist` of `unit` on the vectors it executes (Icarus with the
/// library's cell models, zero-delay), dumps the netlist's nets to a VCD and counts each net's
/// transitions per clock cycle and its duty. Transitions are counted between simulation time steps,
/// so zero-delay delta-cycle glitches are not counted: functional switching activity, the standard
/// zero-delay estimate. Every clock's output is checked against the engine as in [`cosim`], so the
/// activity is that of a netlist proven right on these very operands. Files go to
/// `workdir/<unit>-activity/`.
///
/// # Errors
/// As [`cosim`]; [`HwError::Unit`] quoting the first divergence; [`HwError::Parse`] when the VCD
/// cannot be read.
pub fn gate_activity(
    unit: &Unit,
    netlist: &Netlist,
    vectors: &VectorSet,
    workdir: &Path,
) -> Result<Activity> {
    let dir = workdir.join(format!("{}-activity", unit.name));
    let vcd = dir.join("activity.vcd");
    let (cycles, lines) = simulate(unit, Some(netlist), vectors, &dir, Some(&vcd))?;
    if lines.len() != cycles.len() {
        return Err(HwError::Parse {
            what: "simulator output".into(),
            path: dir.clone(),
            detail: format!("{} output lines for {} clocks", lines.len(), cycles.len()),
        });
    }
    if let Some(d) = first_divergence(unit, &cycles, &lines, vectors) {
        return Err(HwError::Unit {
            unit: unit.name.clone(),
            detail: format!("gate-level simulation diverged from the engine: {d}"),
        });
    }
    let text = std::fs::read_to_string(&vcd).map_err(|e| IoError::new("read", &vcd, e))?;
    let counts = vcd::toggle_counts(&text).map_err(|detail| HwError::Parse {
        what: "VCD".into(),
        path: vcd.clone(),
        detail,
    })?;
    let n = cycles.len() as u64 + 1;
    let pins = counts
        .nets
        .into_iter()
        .map(|(name, c)| {
            let duty = if counts.end_time > 0 {
                c.high_time as f64 / counts.end_time as f64
            } else {
                0.0
            };
            (
                name,
                PinActivity {
                    toggles_per_cycle: c.toggles as f64 / n as f64,
                    duty,
                },
            )
        })
        .collect();
    Ok(Activity {
        cycles: n,
        clock_period_ns: SIM_PERIOD_NS,
        pins,
    })
}
