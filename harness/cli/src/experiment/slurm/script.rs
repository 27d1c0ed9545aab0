//! The sbatch scripts of a run: one array job per stage, written into the run folder so that what
//! was submitted can be read (and resubmitted by hand) later.

use std::path::Path;

use anyhow::{Result, bail};

use super::query::format_indices;

/// Resources every task asks for (`qbench run --backend slurm` options).
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (wall-time limit per task).
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
    /// `--mem` (memory per node, e.g. `4G`).
    pub mem: Option<String>,
    /// Further sbatch options, verbatim (e.g. `--account=lab`).
    pub extra: Vec<String>,
}

/// One array job to write.
pub struct ArrayScript<'a> {
    /// `--job-name`.
    pub name: &'a str,
    /// Array indices.
    pub indices: &'a [usize],
    /// Folder of the `%A_%a.out` / `%A_%a.err` logs.
    pub logs: &'a Path,
    /// Job that must have completed successfully first.
    pub after_ok: Option<&'a str>,
    /// The command each task executes (`$SLURM_ARRAY_TASK_ID` selects its work).
    pub command: Vec<String>,
}

/// The script's text.
pub fn render(job: &ArrayScript, resources: &Resources) -> Result<String> {
    let logs = job.logs.display().to_string();
    if logs.chars().any(char::is_whitespace) {
        bail!("the run folder {logs} contains white space, which #SBATCH lines cannot carry");
    }
    let mut options = vec![
        format!("--job-name={}", job.name),
        format!("--array={}", format_indices(job.indices)),
        format!("--output={logs}/%A_%a.out"),
        format!("--error={logs}/%A_%a.err"),
    ];
    if let Some(id) = job.after_ok {
        options.push(format!("--dependency=afterok:{id}"));
        // A failed float model would otherwise leave its cells pending forever.
        options.push("--kill-on-invalid-dep=yes".into());
    }
    let named = [
        ("partition", &resources.partition),
        ("time", &resources.time),
        ("mem", &resources.mem),
    ];
    options.extend(
        named
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("--{k}={v}"))),
    );
    if let Some(n) = resources.cpus_per_task {
        options.push(format!("--cpus-per-task={n}"));
    }
    options.extend(resources.extra.iter().cloned());

    let mut text = format!(
        "#!/bin/sh\n# Written by qbench {}; submitted with `sbatch --parsable <this file>`.\n",
        env!("CARGO_PKG_VERSION")
    );
    for option in &options {
        text.push_str(&format!("#SBATCH {option}\n"));
    }
    text.push_str(
        "# Thread pools follow the CPUs Slurm granted.\n\
         [ -n \"$SLURM_CPUS_PER_TASK\" ] && export RAYON_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"\n",
    );
    let command: Vec<String> = job.command.iter().map(|a| shell_quote(a)).collect();
    text.push_str(&format!("exec {}\n", command.join(" ")));
    Ok(text)
}

/// Quotes `arg` for a POSIX shell.
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_carries_array_dependency_and_resources() {
        let job = ArrayScript {
            name: "qbench-cells-r",
            indices: &[0, 1, 2, 5],
            logs: Path::new("/shared/results/runs/r/slurm/logs"),
            after_ok: Some("17"),
            command: vec!["/opt/qbench".into(), "run-task".into(), "it's".into()],
        };
        let resources = Resources {
            partition: Some("cpu".into()),
            cpus_per_task: Some(2),
            extra: vec!["--account=lab".into()],
            ..Resources::default()
        };
        let text = render(&job, &resources).unwrap();
        for line in [
            "#SBATCH --array=0-2,5\n",
            "#SBATCH --output=/shared/results/runs/r/slurm/logs/%A_%a.out\n",
            "#SBATCH --dependency=afterok:17\n",
            "#SBATCH --partition=cpu\n",
            "#SBATCH --cpus-per-task=2\n",
            "#SBATCH --account=lab\n",
            "exec /opt/qbench run-task 'it'\\''s'\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("--time"));
    }

    #[test]
    fn white_space_in_the_log_folder_is_refused() {
        let job = ArrayScript {
            name: "n",
            indices: &[0],
            logs: Path::new("/my results/logs"),
            after_ok: None,
            command: vec![],
        };
        assert!(render(&job, &Resources::default()).is_err());
    }
}
