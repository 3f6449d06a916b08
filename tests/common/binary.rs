//! Running the kascope binary as a user does: its path, its output as text, the CSV files it
//! writes, and temporary files for what goes in and comes out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

/// The kascope binary built for these tests.
pub const KASCOPE: &str = env!("CARGO_BIN_EXE_kascope");

/// Runs kascope with `args` to the end.
pub fn kascope(args: &[&str]) -> Output {
    Command::new(KASCOPE)
        .args(args)
        .output()
        .expect("run kascope")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A CSV file kascope wrote, read whole.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<csv::StringRecord>,
}

impl Table {
    pub fn read(path: &Path) -> Table {
        let mut reader = csv::Reader::from_path(path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        let headers = reader
            .headers()
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .iter()
            .map(str::to_string)
            .collect();
        let rows = reader
            .records()
            .map(|row| row.unwrap_or_else(|err| panic!("{}: {err}", path.display())))
            .collect();
        Table { headers, rows }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Per client address (column `client`), the values of `fields`.
    pub fn by_client(&self, fields: &[&str]) -> BTreeMap<String, Vec<String>> {
        (0..self.len())
            .map(|row| {
                let values = fields
                    .iter()
                    .map(|f| self.column(row, f).to_string())
                    .collect();
                (self.column(row, "client").to_string(), values)
            })
            .collect()
    }

    /// The value of column `name` in row `row`.
    pub fn column(&self, row: usize, name: &str) -> &str {
        let at = self
            .headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.headers));
        &self.rows[row][at]
    }
}

/// A unique path in the temporary directory, removed (if it was written) when dropped.
pub struct TempPath(PathBuf);

impl TempPath {
    /// `name` is kept at the end of the path, extension included.
    pub fn new(name: &str) -> TempPath {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        TempPath(std::env::temp_dir().join(format!(
            "kascope-test-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )))
    }

    /// A temporary file holding `bytes`.
    pub fn with(name: &str, bytes: &[u8]) -> TempPath {
        let path = TempPath::new(name);
        std::fs::write(&path.0, bytes)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.0.display()));
        path
    }

    /// The path as an argument for the command line.
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("temporary paths are UTF-8")
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
