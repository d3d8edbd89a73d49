//! Wall time and peak memory of a command, for the scaling benchmark.
//!
//! The peak comes from `wait4`, whose `ru_maxrss` for a child is the largest
//! resident set of the child and of every descendant it waited for: for
//! `xtask codegen` that is the larger of the generator process and the
//! biggest rustfmt it ran.

use std::process::Command;
use std::time::Instant;

pub fn run(command: &[String]) -> Result<(), String> {
    let (program, args) = command.split_first().ok_or("no command given")?;
    let start = Instant::now();
    let child = Command::new(program).args(args).spawn().map_err(|e| format!("cannot run {program}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 only writes to
    // the status and rusage we pass for a child this process spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    if waited != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    // Linux reports ru_maxrss in KiB.
    println!("{}", serde_json::json!({ "wall_s": wall, "max_rss_kib": usage.ru_maxrss, "exit_code": code }));
    if code == 0 { Ok(()) } else { Err(format!("{program} exited with {code}")) }
}
