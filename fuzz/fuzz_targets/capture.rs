//! Shared by the `pipeline` targets: a capture file through the driver, the analyzer and
//! every sink, as `kascope` itself runs them.

use std::path::PathBuf;

use kascope::driver::{self, Limits, Unobserved};
use kascope::report::{ConnectionTable, Report, Rows, RowsFile, ServersTable, Sink, SummaryText};
use kascope::source::FileSource;
use kascope::{Analyzer, Config};

fn scratch_path() -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("kascope-fuzz-{}.pcap", std::process::id()))
}

/// Runs the whole pipeline over `bytes` as a capture file. Errors are fine; panics are not.
pub fn analyze(bytes: &[u8]) {
    // libFuzzer's own main does not ignore SIGPIPE as Rust's does; the gzip reader thread
    // writes into a pipe libpcap may close early.
    static IGNORE_SIGPIPE: std::sync::Once = std::sync::Once::new();
    IGNORE_SIGPIPE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
    let path = scratch_path();
    std::fs::write(&path, bytes).expect("write the scratch capture");
    let sink = || -> Box<dyn std::io::Write> { Box::new(std::io::sink()) };
    let sinks: Vec<Box<dyn Sink>> = vec![
        Box::new(RowsFile::csv(Rows::Connections, sink())),
        Box::new(RowsFile::csv(Rows::Transactions, sink())),
        Box::new(RowsFile::json_lines(Rows::Connections, sink())),
        Box::new(RowsFile::csv(Rows::Servers, sink())),
        Box::new(ConnectionTable::new(sink(), 5)),
        Box::new(SummaryText::new(sink())),
        Box::new(ServersTable::new(sink(), 5)),
    ];
    let mut report = Report::new(sinks);
    let mut analyzer = Analyzer::new(Config {
        transactions: report.wants_transactions(),
        ..Config::default()
    });
    if let Ok(mut source) = FileSource::open(vec![path.clone()], None)
        && driver::run(
            &mut source,
            &mut analyzer,
            &mut report,
            &Limits::default(),
            &mut Unobserved,
        )
        .is_ok()
    {
        let _ = report.finish(analyzer.counts());
    }
    let _ = std::fs::remove_file(&path);
}
