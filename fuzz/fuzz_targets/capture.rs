//! Shared by the `pipeline` targets: a capture file through the driver, the analyzer and
//! every sink, as `kascope` itself runs them.

use kascope::driver::{self, Limits, Unobserved};
use kascope::report::{ConnectionTable, Report, Rows, RowsFile, ServersTable, Sink, SummaryText};
use kascope::source::FileSource;
use kascope::{Analyzer, Config};

/// Runs the whole pipeline over `bytes` as a capture file. Errors are fine; panics are not.
pub fn analyze(bytes: &[u8]) {
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
    // Read from memory, as from standard input: compressed inputs are decoded on the way.
    let input = Box::new(std::io::Cursor::new(bytes.to_vec()));
    if let Ok(mut source) = FileSource::from_reader("fuzz-input", input, None)
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
}
