//! A short fuzz smoke run of every target in `fuzz/` (`scripts/fuzz all`), so that CI notices
//! a crash the fuzzers find within seconds of the seed corpora.
//!
//! It never makes CI flaky: without a nightly toolchain or cargo-fuzz it is skipped with a
//! message saying so; a slow input or an out-of-memory under a loaded machine is reported,
//! not failed (the long runs, `scripts/fuzz all 1800`, judge those with a 20 s timeout); only
//! a crash (a panic, a sanitizer report) or a target that no longer builds fails it.
//!
//! `IMIPD_FUZZ_SMOKE_SECS` sets the seconds per target (default 10; 0 skips the run).

use std::path::Path;
use std::process::Command;

#[test]
fn fuzz_targets_survive_a_smoke_run() {
    let secs: u64 = std::env::var("IMIPD_FUZZ_SMOKE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    if secs == 0 {
        eprintln!("fuzz smoke run SKIPPED: IMIPD_FUZZ_SMOKE_SECS=0");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let logs = tempfile::tempdir().expect("a temporary log directory");
    // Only the seeds from the test data: a corpus grown by long runs takes longer to load
    // than the whole smoke run.
    let corpus = tempfile::tempdir().expect("a temporary corpus directory");
    let output = Command::new(root.join("scripts/fuzz"))
        .args(["all", &secs.to_string()])
        .current_dir(root)
        .env("FUZZ_SLOW_OK", "1")
        // Unoptimised targets build in half the time; ten seconds of fuzzing does not need
        // the speed.
        .env("FUZZ_PROFILE", "dev")
        .env("FUZZ_TIMEOUT", "60")
        .env("FUZZ_LOG_DIR", logs.path())
        .env("FUZZ_CORPUS", corpus.path())
        // The fuzz workspace has its own target directory; the test's must not leak into it.
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("scripts/fuzz runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(3) => eprintln!("fuzz smoke run SKIPPED: {}", stderr.trim()),
        Some(0) => {
            // The executions per target, for the test log.
            eprint!("{stdout}");
            for target in ["extract", "icalendar", "vcalendar", "tnef", "process"] {
                assert!(
                    stdout.contains(&format!("FUZZ {target}:")),
                    "no result for {target}:\n{stdout}\n{stderr}"
                );
            }
        }
        _ => {
            let mut logs_text = String::new();
            for entry in std::fs::read_dir(logs.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                logs_text.push_str(&format!(
                    "--- {}\n{}\n",
                    entry.path().display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            panic!(
                "the fuzz smoke run found a crash or a target does not build ({}):\n{stdout}\n{stderr}\n{logs_text}\nMinimize the input under fuzz/artifacts/ (cargo +nightly fuzz tmin TARGET FILE) and add it as a regression test.",
                output.status
            );
        }
    }
}
