//! Data-driven: every directory under tests/data/config/ holds an `imipd.toml` with one
//! mistake and, in `expected.txt`, the exact message `imipd` prints for it (`{file}` stands
//! for the file's path). Set `IMIPD_BLESS=1` to write the current messages into new cases.

use std::path::{Path, PathBuf};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/data/config exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_bad_configuration_is_refused_with_its_expected_message() {
    let cases = cases();
    assert!(cases.len() >= 20, "the config cases are missing");
    let mut failures = Vec::new();
    for case in &cases {
        let file = case.join("imipd.toml");
        let message = match imipd::config::Config::load(&file) {
            Ok(_) => {
                failures.push(format!("{}: loaded without an error", case.display()));
                continue;
            }
            Err(e) => e.to_string().replace(&file.display().to_string(), "{file}"),
        };
        let expected_path = case.join("expected.txt");
        if std::env::var_os("IMIPD_BLESS").is_some() && !expected_path.exists() {
            std::fs::write(&expected_path, format!("{message}\n")).expect("write expected.txt");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if message.trim_end() != expected.trim_end() {
            failures.push(format!(
                "{}:\n  expected: {}\n  got:      {}",
                case.display(),
                expected.trim_end(),
                message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_base_of_the_cases_is_valid() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config/base.toml");
    imipd::config::Config::load(&base).expect("base.toml is the valid starting point");
}
