//! Experiments: specs, the parallel resumable runner, the result store and aggregation.

pub mod aggregate;
pub mod figures;
pub mod hardware;
pub mod manifest;
pub mod runner;
pub mod slurm;
pub mod spec;
pub mod store;
