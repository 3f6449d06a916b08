//! Engines nobody here wrote, reading kascope's Parquet files: `tests/sql/check.py` runs
//! DuckDB or Spark (Python packages installed by `scripts/install-deps.sh`) and compares
//! what they read or compute with kascope's own CSVs.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::repo;

/// Runs `tests/sql/check.py ARGS`. Returns its summary line when the check passed; `None`
/// (with a note) when the engine is not installed, which fails under `CI=true`. A failed
/// check panics with the differences it printed.
pub fn check(args: &[&str]) -> Option<String> {
    let script = repo().join("tests/sql/check.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run python3 {}: {err}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match output.status.code() {
        Some(0) => Some(stdout),
        Some(3) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{stdout} (required under CI=true)")
        }
        Some(3) => {
            eprintln!("note: {stdout}; check {args:?} skipped");
            None
        }
        _ => panic!(
            "check.py {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// A directory of its own in the temporary directory, removed with everything in it when
/// dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("kascope-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `pattern` inside the directory, as one argument (a glob for the engines).
    pub fn glob(&self, pattern: &str) -> String {
        self.join(pattern).display().to_string()
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
