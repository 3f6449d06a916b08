//! Shared by the `pipeline` targets: a capture file through the driver, the analyzer and
//! every sink, as `kascope` itself runs them (HTML and findings included).

use kascope::driver::{self, Limits, Unobserved};
use kascope::report::{
    BehaviourText, ConnectionTable, FindingsText, HtmlReport, Report, Rows, RowsFile, ServersTable,
    Sink, SortKey, SummaryText, TableOptions, TimeFormat,
};
use kascope::source::FileSource;
use kascope::{Analyzer, Config};

/// Runs the whole pipeline over `bytes` as a capture file. Errors are fine; panics are not.
pub fn analyze(bytes: &[u8]) {
    let sink = || -> Box<dyn std::io::Write> { Box::new(std::io::sink()) };
    let sinks: Vec<Box<dyn Sink>> = vec![
        Box::new(RowsFile::csv(Rows::Connections, sink(), TimeFormat::Epoch)),
        Box::new(RowsFile::csv(Rows::Transactions, sink(), TimeFormat::Iso)),
        Box::new(RowsFile::json_lines(Rows::Connections, sink())),
        Box::new(RowsFile::csv(Rows::Servers, sink(), TimeFormat::Epoch)),
        Box::new(RowsFile::json_lines(Rows::Findings, sink())),
        Box::new(HtmlReport::new(sink(), "fuzz".to_string())),
        Box::new(ConnectionTable::new(
            sink(),
            TableOptions {
                rows: 5,
                width: Some(80),
                only: Vec::new(),
                sort: SortKey::Stream,
            },
        )),
        Box::new(SummaryText::new(sink())),
        Box::new(ServersTable::new(sink(), 5, Some(80))),
        Box::new(BehaviourText::new(sink(), 5)),
        Box::new(FindingsText::new(sink())),
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
