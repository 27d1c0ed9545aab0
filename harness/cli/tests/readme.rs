//! The README's first command (install the Debian packages, then `qbench reproduce`) works
//! verbatim both as root in a container without `sudo` and as a user with `sudo`. The command
//! runs in bash exactly as written, against stand-ins for `apt-get`, `cargo` and `sudo` that only
//! record how they were called.

use std::path::Path;
use std::process::Command;

/// The first `sh` code block of the README: the main job's command.
fn first_command() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    readme[start..end].trim().to_string()
}

/// Writes an executable script `name` into `dir` that appends its name and arguments to `log`.
fn stand_in(dir: &Path, name: &str, log: &Path, then: &str) {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"{name} $*\" >> '{}'\n{then}\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs the command with only the stand-ins on PATH; returns the log lines.
fn run(with_sudo: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    for tool in ["apt-get", "cargo"] {
        stand_in(dir.path(), tool, &log, "exit 0");
    }
    if with_sudo {
        stand_in(dir.path(), "sudo", &log, "exec \"$@\"");
    }
    let bash = ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|b| Path::new(b).exists())
        .expect("bash");
    let out = Command::new(bash)
        .args(["-c", &first_command()])
        .env_clear()
        .env("PATH", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README command failed (sudo {with_sudo}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_main_command_runs_as_root_without_sudo() {
    let log = run(false);
    assert!(log.iter().any(|l| l == "apt-get update"), "{log:?}");
    let install = log
        .iter()
        .find(|l| l.starts_with("apt-get install"))
        .expect("installs packages");
    for package in [
        "dataset-fashion-mnist",
        "yosys",
        "opensta",
        "iverilog",
        "qflow-tech-osu018",
    ] {
        assert!(install.contains(package), "{install}");
    }
    assert!(log.last().unwrap().ends_with("reproduce"), "{log:?}");
}

#[test]
fn the_main_command_runs_as_a_user_with_sudo() {
    let log = run(true);
    let sudo_lines: Vec<&String> = log.iter().filter(|l| l.starts_with("sudo ")).collect();
    assert!(
        sudo_lines
            .iter()
            .any(|l| l.starts_with("sudo apt-get update"))
            && sudo_lines
                .iter()
                .any(|l| l.starts_with("sudo apt-get install")),
        "apt-get runs through sudo: {log:?}"
    );
    assert!(
        log.iter().any(|l| l.starts_with("cargo "))
            && !log.iter().any(|l| l.starts_with("sudo cargo")),
        "cargo runs as the user: {log:?}"
    );
}
