//! EDA tool processes end with the qbench process that started them, even when it is killed with
//! SIGKILL (which it cannot catch): a Yosys or simulator run must never outlive it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the child copy of this test binary: start a long `sleep` the way the flow starts its
/// tools, print its pid, then wait to be killed.
const CHILD: &str = "QBENCH_ORPHAN_TEST_CHILD";

fn alive(pid: u32) -> bool {
    // A killed child stays a zombie until its parent reaps it; a zombie is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn a_tool_dies_with_the_process_that_started_it() {
    if std::env::var_os(CHILD).is_some() {
        let mut sleep = Command::new("sleep");
        sleep.arg("600").stdout(Stdio::null());
        qbench_hw::tools::end_with_parent(&mut sleep);
        let mut child = sleep.spawn().expect("start sleep");
        println!("tool pid {}", child.id());
        // Killed long before this ends; the tool is reaped if it ever does.
        std::thread::sleep(Duration::from_secs(600));
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_tool_dies_with_the_process_that_started_it",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
    let tool: u32 = lines
        .find_map(|l| l.ok()?.strip_prefix("tool pid ")?.trim().parse().ok())
        .expect("the child printed its tool's pid");
    assert!(alive(tool), "the tool runs while its parent does");
    parent.kill().unwrap(); // SIGKILL
    parent.wait().unwrap();
    let start = Instant::now();
    while alive(tool) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(tool), "tool {tool} outlived its killed parent");
}
