//! One module per subcommand.

pub mod bench;
mod bench_model;
mod bench_train;
pub mod data;
pub mod eval;
pub mod export;
pub mod hw;
pub mod import;
pub mod models;
pub mod quantize;
pub mod reproduce;
pub mod run;
pub mod runs;
pub mod slurm;
pub mod train;
