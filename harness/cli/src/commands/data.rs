//! `qbench data ...`: the dataset registry from the command line.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use qbench_datasets::{DEFAULT_DATASET, DatasetError, Registry, fetch, locate, verify};

use crate::progress;

/// Dataset subcommands.
#[derive(Subcommand)]
pub enum DataCommand {
    /// List the registered datasets and whether each is found on this machine.
    List,
    /// Hash the files of a dataset on disk and compare them with the registry's sha256.
    Verify {
        /// Dataset name (see `qbench data list`).
        #[arg(default_value = DEFAULT_DATASET)]
        name: String,
    },
    /// Download a dataset, verify its sha256 and unpack it (needs network access).
    Fetch {
        /// Dataset name (see `qbench data list`).
        name: String,
        /// Destination folder [default: $QBENCH_DATA/NAME].
        #[arg(long)]
        dest: Option<PathBuf>,
    },
    /// Write a generated dataset: `kitti-synth`, a detection set in KITTI's own format
    /// (Fashion-MNIST items pasted at several scales into 128x384 scenes, with truncation at the
    /// borders, occlusion, neighbouring classes and DontCare regions), read by the same loader
    /// and evaluator as real KITTI. `qbench run` and `reproduce` generate it when it is missing.
    Generate {
        /// Dataset name (only `kitti-synth` is generated).
        #[arg(default_value = crate::detection::SYNTH_NAME)]
        name: String,
        /// Destination folder [default: $QBENCH_DATA/kitti-synth, else results/data/kitti-synth].
        #[arg(long)]
        dest: Option<PathBuf>,
        /// Images to generate (a quarter is held out for evaluation). Runs find the set by its
        /// folder, so a smaller set in the default place is what they use.
        #[arg(long, default_value_t = crate::detection::SYNTH_IMAGES)]
        images: usize,
    },
}

/// Runs a dataset subcommand.
pub fn run(cmd: DataCommand) -> Result<()> {
    let registry = Registry::embedded();
    match cmd {
        DataCommand::Generate { name, dest, images } => {
            let entry = registry.get(&name)?;
            if entry.name != crate::detection::SYNTH_NAME {
                bail!(
                    "only `{}` is generated; `{name}` is read from its own files ({})",
                    crate::detection::SYNTH_NAME,
                    entry.install_hint()
                );
            }
            let dir = dest.unwrap_or_else(|| crate::detection::synth_dir(entry));
            if dir.join(qbench_datasets::kitti::TRAINING_DIR).is_dir() {
                println!("{name} is already in {}", dir.display());
                return Ok(());
            }
            crate::detection::generate_synth(&dir, images)?;
            Ok(())
        }
        DataCommand::List => {
            println!(
                "{:<14} {:<16} {:>7}  {:<11} where",
                "name", "format", "classes", "shape"
            );
            for entry in registry.entries() {
                let [c, h, w] = entry.image_shape;
                let generated = crate::detection::synth_dir(entry);
                let place = match locate(entry) {
                    Ok(dir) => dir.display().to_string(),
                    Err(_)
                        if entry.name == crate::detection::SYNTH_NAME
                            && generated
                                .join(qbench_datasets::kitti::TRAINING_DIR)
                                .is_dir() =>
                    {
                        generated.display().to_string()
                    }
                    Err(e @ DatasetError::BadFolder { .. }) => format!("unusable: {e}"),
                    Err(_) => format!("not found ({})", entry.install_hint()),
                };
                let format = format!("{:?}", entry.format).to_lowercase();
                println!(
                    "{:<14} {:<16} {:>7}  {:<11} {place}",
                    entry.name,
                    format,
                    entry.num_classes,
                    format!("{c}x{h}x{w}")
                );
            }
            Ok(())
        }
        DataCommand::Verify { name } => {
            let entry = registry.get(&name)?;
            let checks = verify(entry)?;
            let mut bad = 0;
            for check in &checks {
                println!("{check}");
                bad += usize::from(!check.is_ok());
            }
            if bad > 0 {
                bail!("{bad} of {} files of {name} did not verify", checks.len());
            }
            println!("{name}: all {} files verified", checks.len());
            Ok(())
        }
        DataCommand::Fetch { name, dest } => {
            let entry = registry.get(&name)?;
            let dest = match dest {
                Some(d) => d,
                None => qbench_datasets::data_dir_for(entry).with_context(|| {
                    format!("no destination for {name}: pass --dest DIR or set $QBENCH_DATA")
                })?,
            };
            let bar = progress::bytes_bar(&format!("fetching {name}"));
            let checks = fetch(entry, &dest, &|done, total| {
                if let Some(t) = total {
                    bar.set_length(t);
                }
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            for check in &checks {
                println!("{check}");
            }
            println!("{name} is ready in {}", dest.display());
            Ok(())
        }
    }
}
