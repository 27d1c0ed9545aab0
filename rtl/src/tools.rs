//! The EDA tools the flow runs (Yosys, Icarus Verilog, OpenSTA, optionally OpenROAD) and the default
//! standard-cell library.
//!
//! Tools are found on `PATH`; a missing one is a [`HwError::MissingTool`] naming the Debian package
//! that provides it, never a silently skipped step. Each found tool carries its version string so
//! every figure the flow reports can name the tool that produced it.

use std::path::{Path, PathBuf};
use std::process::Command;

use qbench_io::IoError;

use crate::error::{HwError, Result};

/// An EDA tool found on `PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tool {
    /// Binary name (`yosys`, `iverilog`, `vvp`, `sta`, `openroad`).
    pub name: String,
    /// Absolute path of the binary.
    pub path: PathBuf,
    /// First non-empty line the tool prints for its version flag (provenance of every figure).
    pub version: String,
}

impl Tool {
    /// A [`Command`] running this tool, which ends with the process that started it (see
    /// [`end_with_parent`]).
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        end_with_parent(&mut command);
        command
    }
}

/// Makes the child of `command` receive SIGKILL when the thread that started it ends, so that a
/// Yosys or simulator run never outlives a qbench process that was killed (even by SIGKILL, which
/// qbench cannot catch). The flow starts tools from threads that live as long as the process.
pub fn end_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and calls only the
        // async-signal-safe functions prctl, getppid and _exit.
        unsafe {
            let parent = libc::getpid();
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
}

/// Directory of the default library (Debian package `qflow-tech-osu018`).
const OSU018_DIR: &str = "/usr/share/qflow/tech/osu018";

/// The Debian package that provides `binary`, for the [`HwError::MissingTool`] message.
pub fn debian_package(binary: &str) -> &'static str {
    match binary {
        "yosys" | "yosys-abc" => "yosys",
        "iverilog" | "vvp" => "iverilog",
        "sta" => "opensta",
        "verilator" => "verilator",
        "openroad" => "(none in Debian 12: build OpenROAD from source)",
        _ => "(unknown package)",
    }
}

/// The version flag of `binary`.
fn version_flag(binary: &str) -> &'static str {
    match binary {
        "iverilog" | "vvp" | "yosys" => "-V",
        _ => "-version",
    }
}

/// Looks `binary` up on `PATH` (no version query).
pub fn find(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// Finds `binary` on `PATH` and asks it for its version.
///
/// # Errors
/// [`HwError::MissingTool`] (naming the Debian package) when it is not on `PATH`;
/// [`HwError::ToolFailed`] when it does not answer its version flag.
pub fn require(binary: &str) -> Result<Tool> {
    let path = find(binary).ok_or_else(|| HwError::MissingTool {
        tool: binary.to_string(),
        package: debian_package(binary).to_string(),
    })?;
    let out = Command::new(&path)
        .arg(version_flag(binary))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| IoError::new("run", &path, e))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let version = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    if version.is_empty() {
        return Err(HwError::ToolFailed {
            tool: binary.to_string(),
            detail: format!(
                "`{} {}` printed no version",
                path.display(),
                version_flag(binary)
            ),
        });
    }
    Ok(Tool {
        name: binary.to_string(),
        path,
        version,
    })
}

/// The default Liberty library: OSU 0.18 um standard cells from `qflow-tech-osu018`.
pub fn default_liberty() -> PathBuf {
    Path::new(OSU018_DIR).join("osu018_stdcells.lib")
}

/// Verilog simulation models of the default library's cells, for gate-level simulation.
pub fn cell_models() -> PathBuf {
    Path::new(OSU018_DIR).join("osu018_stdcells.v")
}

/// Checks that a library file exists, naming the package that provides the default one.
///
/// # Errors
/// [`HwError::MissingLibrary`] when a file of the default library (a Debian package) is not
/// installed; [`HwError::NoSuchLibrary`] when any other path is not a file (the user's setting is
/// wrong: no package would help).
pub fn require_file(path: &Path) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else if path.starts_with(OSU018_DIR) {
        Err(HwError::MissingLibrary {
            path: path.to_path_buf(),
            package: "qflow-tech-osu018".to_string(),
        })
    } else {
        Err(HwError::NoSuchLibrary {
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_names_its_package() {
        let err = require("qbench-no-such-eda-tool").unwrap_err();
        assert!(matches!(err, HwError::MissingTool { .. }));
        assert!(err.to_string().contains("qbench-no-such-eda-tool"));
        assert_eq!(debian_package("sta"), "opensta");
        assert_eq!(debian_package("vvp"), "iverilog");
    }

    #[test]
    fn missing_library_names_the_package() {
        let err = require_file(Path::new("/tmp/qbench-no-such.lib")).unwrap_err();
        assert!(
            matches!(&err, HwError::NoSuchLibrary { path } if path.ends_with("qbench-no-such.lib")),
            "a path the user gave names no package: {err}"
        );
        let err = require_file(Path::new("/usr/share/qflow/tech/osu018/none.lib")).unwrap_err();
        assert!(err.to_string().contains("qflow-tech-osu018"), "{err}");
    }
}
