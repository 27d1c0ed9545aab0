//! qbench's hardware cost flow.
//!
//! Every method's quantization unit and processing element exists as synthesizable Verilog under
//! `rtl/verilog`. This crate simulates each unit with Icarus (RTL and the synthesized gate-level
//! netlist) against the engine's own scalar arithmetic, synthesizes it with Yosys to a Liberty
//! library, and measures timing and energy with OpenSTA using switching activity from simulation.

pub mod error;

// Units, vectors and co-simulation.
pub mod sim;
pub mod units;
pub mod vectors;

// Tools, synthesis, timing/power, the cached flow, tables, the mapping of engine operations to
// units, per-graph activity, memory and energy per inference.
pub mod activity;
pub mod energy;
pub mod flow;
pub mod mapping;
pub mod memory;
pub mod sta;
pub mod synth;
pub mod table;
pub mod tools;
mod workdir;
