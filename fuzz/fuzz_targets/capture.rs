//! Shared by the `pipeline` targets: a capture file through `Source` and `Analyzer`, and the
//! records through the report stages, as `kascope` itself does.

use std::ops::ControlFlow;
use std::path::PathBuf;

use kascope::report::{Servers, Summary, Table};
use kascope::source::Source;
use kascope::{Analyzer, Config, Output};

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
    let mut analyzer = Analyzer::new(Config {
        transactions: true,
        ..Config::default()
    });
    let mut outputs = Vec::new();
    let mut warnings = Vec::new();
    if let Ok(mut source) = Source::open(vec![path.clone()], None) {
        let _ = source.run(
            |frame| {
                analyzer.process_frame(&frame);
                outputs.extend(analyzer.take_output());
                ControlFlow::Continue(())
            },
            |warning| warnings.push(warning),
        );
        analyzer.finish_all(|output| outputs.push(output));
    }
    let _ = std::fs::remove_file(&path);
    let mut summary = Summary::default();
    let mut table = Table::new(5);
    let mut servers = Servers::default();
    for output in &outputs {
        match output {
            Output::Connection(record) => {
                summary.add(record);
                table.add(record);
                servers.add(record);
            }
            Output::Transaction(record) => {
                std::hint::black_box(format!("{record:?}"));
            }
        }
    }
    std::hint::black_box(summary.render(analyzer.counts()));
    std::hint::black_box(table.render());
    std::hint::black_box(servers.render(5));
    std::hint::black_box(servers.records());
    std::hint::black_box(warnings);
}
