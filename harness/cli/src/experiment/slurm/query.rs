//! Talking to Slurm: submitting a script with `sbatch`, and asking which array tasks are queued or
//! running (`squeue`) and how finished ones ended (`scontrol`, or `sacct` once the controller
//! has forgotten the job).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// One array task: (array job id, task index).
pub type TaskKey = (String, usize);

/// Fails with the Debian package to install when a Slurm client command is not on `PATH`.
pub fn require(tool: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    if !found {
        bail!(
            "`{tool}` is not on PATH: the Slurm backend needs the Slurm client commands \
             (Debian package `slurm-client`; `slurm-wlm` for a whole cluster)"
        );
    }
    Ok(())
}

/// Submits `script` and returns its job id.
pub fn sbatch(script: &Path) -> Result<String> {
    require("sbatch")?;
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .context("running sbatch")?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch {} printed no job id: {text:?}", script.display());
    }
    Ok(id)
}

/// Runs a Slurm query; `Ok(None)` when Slurm no longer knows the job.
fn query(tool: &str, args: &[&str]) -> Result<Option<String>> {
    require(tool)?;
    let out = Command::new(tool)
        .args(args)
        .output()
        .with_context(|| format!("running {tool}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("Invalid job id") {
            return Ok(None);
        }
        bail!("{tool} {} failed: {}", args.join(" "), stderr.trim());
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// State (`PENDING`, `RUNNING`, ...) of every queued or running task of the given array jobs.
pub fn live_tasks(job_ids: &[String]) -> Result<BTreeMap<TaskKey, String>> {
    let mut tasks = BTreeMap::new();
    for id in job_ids {
        // `-r` lists every pending array task on its own line.
        if let Some(text) = query("squeue", &["-h", "-r", "-j", id, "-o", "%i|%T"])? {
            for line in text.lines() {
                if let Some((task, state)) = line.trim().split_once('|') {
                    for key in parse_task_id(task)? {
                        tasks.insert(key, state.to_string());
                    }
                }
            }
        }
    }
    Ok(tasks)
}

/// Final (or current) state of every task the controller or the accounting database still knows:
/// `scontrol show job` while the controller keeps the job (`MinJobAge`), `sacct` after that.
pub fn task_states(job_ids: &[String]) -> Result<BTreeMap<TaskKey, String>> {
    let mut tasks = BTreeMap::new();
    for id in job_ids {
        let before = tasks.len();
        if let Some(text) = query("scontrol", &["-o", "show", "job", id])? {
            parse_scontrol(&text, &mut tasks)?;
        }
        if tasks.len() == before && sacct_usable() {
            let args = ["-n", "-P", "-X", "-j", id, "-o", "JobID,State"];
            if let Some(text) = query("sacct", &args)? {
                for line in text.lines() {
                    if let Some((task, state)) = line.trim().split_once('|') {
                        // `CANCELLED by 0` -> `CANCELLED`.
                        let state = state.split_whitespace().next().unwrap_or("").to_string();
                        for key in parse_task_id(task)? {
                            tasks.insert(key, state.clone());
                        }
                    }
                }
            }
        }
    }
    Ok(tasks)
}

/// Whether `sacct` can answer (it cannot when accounting storage is disabled).
fn sacct_usable() -> bool {
    Command::new("sacct")
        .args(["-n", "-X", "-j", "1"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Reads `scontrol -o show job` lines (`ArrayJobId=12 ArrayTaskId=3-5 ... JobState=FAILED`).
fn parse_scontrol(text: &str, tasks: &mut BTreeMap<TaskKey, String>) -> Result<()> {
    for line in text.lines() {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        let (Some(job), Some(indices), Some(state)) =
            (field("ArrayJobId"), field("ArrayTaskId"), field("JobState"))
        else {
            continue;
        };
        for index in parse_indices(indices)? {
            tasks.insert((job.to_string(), index), state.to_string());
        }
    }
    Ok(())
}

/// Splits `12_3` or `12_[3-5,7%2]` into its tasks.
fn parse_task_id(task: &str) -> Result<Vec<TaskKey>> {
    let Some((job, indices)) = task.split_once('_') else {
        return Ok(Vec::new());
    };
    let indices = indices.trim_start_matches('[').trim_end_matches(']');
    Ok(parse_indices(indices)?
        .into_iter()
        .map(|i| (job.to_string(), i))
        .collect())
}

/// Parses Slurm's array index list: `3`, `3-5,7`, with an optional `%limit` suffix.
pub fn parse_indices(list: &str) -> Result<Vec<usize>> {
    let list = list.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let number = |s: &str| {
            s.parse::<usize>()
                .with_context(|| format!("bad array index `{s}` in `{list}`"))
        };
        match part.split_once('-') {
            Some((a, b)) => out.extend(number(a)?..=number(b)?),
            None => out.push(number(part)?),
        }
    }
    Ok(out)
}

/// Formats indices as Slurm's `--array` list, runs of consecutive indices as ranges: `0-3,7`.
pub fn format_indices(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lists_round_trip() {
        let indices = [0, 1, 2, 3, 7, 9, 10];
        assert_eq!(format_indices(&indices), "0-3,7,9-10");
        assert_eq!(parse_indices("0-3,7,9-10%2").unwrap(), indices);
        assert!(parse_indices("3-x").is_err());
    }

    #[test]
    fn task_ids_of_squeue_and_sacct() {
        assert_eq!(parse_task_id("41_5").unwrap(), [("41".to_string(), 5)]);
        assert_eq!(
            parse_task_id("41_[2-3]").unwrap(),
            [("41".to_string(), 2), ("41".to_string(), 3)]
        );
        assert!(parse_task_id("41").unwrap().is_empty());
    }

    #[test]
    fn scontrol_lines() {
        let text = "JobId=44 ArrayJobId=41 ArrayTaskId=3 JobName=x JobState=FAILED Reason=NonZeroExitCode\n\
                    JobId=41 ArrayJobId=41 ArrayTaskId=4-5 JobState=PENDING Reason=Resources\n\
                    JobId=40 JobName=plain JobState=COMPLETED\n";
        let mut tasks = BTreeMap::new();
        parse_scontrol(text, &mut tasks).unwrap();
        let key = |i| ("41".to_string(), i);
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[&key(3)], "FAILED");
        assert_eq!(tasks[&key(5)], "PENDING");
    }
}
