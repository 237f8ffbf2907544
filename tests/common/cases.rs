//! The driver every data-driven case runner shares: one directory per case (those holding an
//! `expected.json`), run in name order, optionally narrowed by an environment variable, all
//! failures reported together.

use std::future::Future;
use std::path::{Path, PathBuf};

/// Runs `run` on every case directory under `root` (those with an `expected.json`) whose name
/// contains the value of the environment variable `only_var` when it is set, and fails with
/// every case's errors at once. Asserts that at least `at_least` cases exist.
pub async fn run_every_case<F, Fut>(root: &Path, only_var: &str, at_least: usize, mut run: F)
where
    F: FnMut(PathBuf) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{} is readable: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").exists())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= at_least.max(1),
        "only {} cases found under {}",
        dirs.len(),
        root.display()
    );
    let only = std::env::var(only_var).ok();
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let errors = run(dir.clone()).await;
        if !errors.is_empty() {
            failures.push(format!("== {name}\n{}", errors.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}
