//! `qbench`: the command-line edge of the harness. It is the only crate that knows every other
//! one; it turns user input into calls on them and renders their progress and results.

use clap::{Parser, Subcommand};

mod commands;
mod detection;
mod experiment;
mod float_model;
mod malloc_tuning;
mod method_run;
mod progress;
mod results;

/// qbench: which quantization method gives the best accuracy for the least silicon?
///
/// Every method runs through one shared integer inference engine, bit for bit the arithmetic the
/// RTL implements. Start with `qbench reproduce`; every subcommand has its own --help.
#[derive(Parser)]
#[command(
    name = "qbench",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit codes: 0 done; 1 error; 2 usage error; 3 done except the hardware flow, which a \
                  missing Debian package (named in the message and the run's summary) kept from running."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List, verify and download datasets.
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// List the built-in model architectures.
    Models,
    /// Train a float model (resumes from its last checkpoint if interrupted).
    Train(commands::train::TrainArgs),
    /// Quantize a trained float model with a configured method and evaluate its integer graph.
    Quantize(commands::quantize::QuantizeArgs),
    /// Evaluate a saved integer graph on a dataset with the integer engine.
    Eval(commands::eval::EvalArgs),
    /// Write an integer graph as an ONNX model (exact integers; QONNX for BNN/QNN).
    Export(commands::export::ExportArgs),
    /// Lower an ONNX model (qbench's own, QDQ, QOperator or QONNX) to an integer graph.
    Import(commands::import::ImportArgs),
    /// Measure speed against the machine's own peak.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Run the paper suite on the default data and write its results under results/.
    Reproduce(commands::reproduce::ReproduceArgs),
    /// Run an experiment spec (a grid of models x methods x seeds) into the result store.
    Run(commands::run::RunArgs),
    /// Rebuild a run's tables and figures from its cell records.
    Aggregate(commands::run::AggregateArgs),
    /// List, show and compare runs in the result store.
    #[command(subcommand)]
    Runs(commands::runs::RunsCommand),
    /// Recompute a sample of a run's cells and check that they match the store.
    Verify(commands::runs::VerifyArgs),
    /// Run one Slurm array task of a run (what the generated sbatch scripts execute).
    #[command(hide = true)]
    RunTask(commands::slurm::RunTaskArgs),
    /// Hardware cost of every method's units: synthesis, co-simulation, timing and energy.
    Hw(commands::hw::HwArgs),
}

/// The command did its work and wrote its results, but a part the user asked for could not run
/// (only a missing Debian package may cause this); `qbench` exits with [`Incomplete::EXIT_CODE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Incomplete(pub String);

impl Incomplete {
    /// Exit code of an incomplete command (1 is an error, 2 a usage error).
    pub const EXIT_CODE: u8 = 3;
}

fn main() -> std::process::ExitCode {
    malloc_tuning::keep_freed_memory();
    let cli = Cli::parse();
    let jobs = match &cli.command {
        Command::Reproduce(args) => Some(args.jobs),
        Command::Run(args) if args.backend == commands::slurm::Backend::Local => Some(args.jobs),
        _ => None,
    };
    if let Some(jobs) = jobs {
        let jobs = jobs.unwrap_or_else(experiment::runner::default_jobs);
        // SAFETY: no other thread exists yet (argument parsing spawns none).
        unsafe { experiment::runner::one_thread_per_job(jobs) };
    }
    let outcome = match cli.command {
        Command::Data(cmd) => commands::data::run(cmd),
        Command::Models => commands::models::run(),
        Command::Train(args) => commands::train::run(args),
        Command::Quantize(args) => commands::quantize::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Reproduce(args) => commands::reproduce::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Aggregate(args) => commands::run::aggregate(args),
        Command::Runs(cmd) => commands::runs::run(cmd),
        Command::Verify(args) => commands::runs::verify(args),
        Command::RunTask(args) => commands::slurm::run_task(args),
        Command::Hw(args) => commands::hw::run(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) if err.is::<Incomplete>() => {
            eprintln!("incomplete: {err:#}");
            std::process::ExitCode::from(Incomplete::EXIT_CODE)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
