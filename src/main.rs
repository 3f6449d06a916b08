//! Command line: wires arguments to the kascope library.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;

use kascope::cli::{Cli, FailOn, parse_duration, split_inputs};

use kascope::driver::RunStats;
use kascope::driver::{self, Limits, Observer, Unobserved};
use kascope::report::progress::{FileProgress, LiveStatus};
use kascope::report::{
    BehaviourText, ConnectionTable, FindingsText, HtmlReport, Report, Rows, RowsFile, ServersTable,
    Sink, SummaryText,
};
use kascope::source::{self, FileSource, FrameSource, LiveOptions, LiveSource};
use kascope::verdict::Tolerance;
use kascope::{Analyzer, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("kascope: {message}");
            ExitCode::from(2)
        }
    }
}

fn stdout() -> Box<dyn Write> {
    Box::new(std::io::stdout())
}

/// The outputs the flags ask for, in the order they finish (the terminal parts last).
fn sinks(cli: &Cli) -> Result<Vec<Box<dyn Sink>>, String> {
    let files = [
        (&cli.csv, Rows::Connections, false),
        (&cli.transactions_csv, Rows::Transactions, false),
        (&cli.json, Rows::Connections, true),
        (&cli.servers_csv, Rows::Servers, false),
        (&cli.findings_json, Rows::Findings, true),
    ];
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for (path, rows, json) in files {
        if let Some(path) = path {
            let file = std::fs::File::create(path)
                .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
            let out: Box<dyn Write> = Box::new(file);
            sinks.push(Box::new(if json {
                RowsFile::json_lines(rows, out)
            } else {
                RowsFile::csv(rows, out)
            }));
        }
    }
    if let Some(path) = &cli.html {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        let title = if cli.interface.is_some() {
            format!(
                "live capture on {}",
                cli.interface.as_deref().unwrap_or_default()
            )
        } else {
            let (files, _) = split_inputs(cli)?;
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            names.join(", ")
        };
        sinks.push(Box::new(HtmlReport::new(Box::new(file), title)));
    }
    let rotate = cli.rotate.as_deref().map(parse_duration).transpose()?;
    if let Some(every) = rotate {
        if cli.interface.is_none() {
            return Err("--rotate is for live capture (-i INTERFACE)".into());
        }
        if every < std::time::Duration::from_secs(1) {
            return Err("--rotate must be at least 1s".into());
        }
        if cli.parquet.is_none() && cli.transactions_parquet.is_none() {
            return Err("--rotate needs --parquet or --transactions-parquet".into());
        }
    }
    let parquet = [
        (&cli.parquet, Rows::Connections, rotate),
        (&cli.transactions_parquet, Rows::Transactions, rotate),
        (&cli.servers_parquet, Rows::Servers, None),
    ];
    for (path, rows, rotate) in parquet {
        if let Some(path) = path {
            let file = RowsFile::parquet(rows, path, rotate).map_err(|e| e.to_string())?;
            sinks.push(Box::new(file));
        }
    }
    if !cli.quiet && !cli.servers {
        sinks.push(Box::new(ConnectionTable::new(stdout(), cli.rows)));
    }
    sinks.push(Box::new(SummaryText::new(stdout())));
    sinks.push(Box::new(ServersTable::new(stdout(), cli.rows)));
    sinks.push(Box::new(BehaviourText::new(stdout(), cli.rows)));
    sinks.push(Box::new(FindingsText::new(stdout())));
    Ok(sinks)
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    if cli.list_interfaces {
        for (index, (name, description)) in source::list_interfaces()?.into_iter().enumerate() {
            match description {
                Some(text) => println!("{}.{name} ({text})", index + 1),
                None => println!("{}.{name}", index + 1),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let live = cli.interface.is_some();
    let mut report = Report::new(sinks(cli)?);
    let seconds = |s: f64| (s.max(0.0) * 1e9) as u64;
    let config = Config {
        reassembly_limit: cli.reassembly_limit,
        // The per-server aggregation reads every transaction's timing and status.
        transactions: true,
        transaction_text: report.wants_transactions(),
        idle_evict_ns: cli.idle_timeout.saturating_mul(1_000_000_000),
        max_memory: cli.max_memory,
        // Live: a connection's row is written the moment it closes.
        linger_ns: if live { 0 } else { Config::default().linger_ns },
        kernel_shedding: cli.ebpf,
        tolerance: Tolerance {
            timeout_ns: seconds(cli.timeout_tolerance),
            race_window_ns: seconds(cli.race_window),
        },
        ..Config::default()
    };
    let mut analyzer = Analyzer::new(config);
    let show_progress = !cli.no_progress && std::io::stderr().is_terminal();
    let (mut source, limits, mut observer): (Box<dyn FrameSource>, Limits, Box<dyn Observer>) =
        if live {
            let (source, limits) = open_live(cli)?;
            let observer: Box<dyn Observer> = match show_progress {
                true => Box::new(LiveStatus::new()),
                false => Box::new(Unobserved),
            };
            (source, limits, observer)
        } else {
            let (files, filter) = split_inputs(cli)?;
            let source = FileSource::open(files, filter).map_err(|e| e.to_string())?;
            let observer: Box<dyn Observer> = match source.progress().1 {
                Some(total) if show_progress => Box::new(FileProgress::new(total)),
                _ => Box::new(Unobserved),
            };
            (Box::new(source), Limits::default(), observer)
        };
    let stats = driver::run(
        &mut *source,
        &mut analyzer,
        &mut report,
        &limits,
        &mut *observer,
    )
    .map_err(|e| e.to_string())?;
    if live {
        eprintln!("kascope: {}", capture_summary(&stats));
    }
    report
        .finish(analyzer.counts())
        .map_err(|e| format!("writing output: {e}"))?;
    for warning in &stats.warnings {
        eprintln!("kascope: warning: {warning}");
    }
    let totals = report.totals();
    let failed = match cli.fail_on {
        None => false,
        Some(FailOn::Violation) => totals.violations > 0,
        Some(FailOn::Race) => totals.races > 0,
        Some(FailOn::Any) => totals.violations + totals.races > 0,
    };
    if failed {
        eprintln!(
            "kascope: failing: {} connection(s) with a broken Keep-Alive promise, {} with a keep-alive race",
            totals.violations, totals.races
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The live summary line: packets, and the bytes on the wire, delivered to user space and
/// dropped by the kernel.
fn capture_summary(stats: &RunStats) -> String {
    let mut line = format!(
        "captured {} packets in {:.1} s",
        stats.frames,
        stats.elapsed.as_secs_f64()
    );
    if let Some(delivery) = stats.delivery {
        let share = match delivery.wire_bytes {
            0 => 0.0,
            wire => 100.0 * delivery.delivered_bytes as f64 / wire as f64,
        };
        line.push_str(&format!(
            ": {} bytes on the wire, {} delivered to user space ({share:.1}%), {} packets \
             dropped by the kernel",
            delivery.wire_bytes, delivery.delivered_bytes, stats.kernel_drops
        ));
    }
    line
}

/// Live capture until Ctrl-C/SIGTERM, `-c COUNT` packets or `--duration`. A second Ctrl-C
/// exits at once (status 130); everything finished before it is already in the files.
fn open_live(cli: &Cli) -> Result<(Box<dyn FrameSource>, Limits), String> {
    if !cli.read.is_empty() || cli.args.first().is_some_and(|arg| Path::new(arg).exists()) {
        return Err("give either -i INTERFACE or capture files, not both".into());
    }
    let options = LiveOptions {
        interface: cli.interface.clone().unwrap_or_default(),
        filter: (!cli.args.is_empty()).then(|| cli.args.join(" ")),
        snaplen: cli.snaplen,
        promiscuous: !cli.no_promiscuous,
    };
    let source: Box<dyn FrameSource> = if cli.ebpf {
        source::open_ebpf(&options).map_err(|e| e.to_string())?
    } else {
        Box::new(LiveSource::open(&options).map_err(|e| e.to_string())?)
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal asks to stop; a second one while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let deadline = cli
        .duration
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .map(|d| std::time::Instant::now() + d);
    eprintln!(
        "kascope: capturing on {}{} (filter: {}); Ctrl-C to stop",
        options.interface,
        if cli.ebpf {
            " through the eBPF socket filter"
        } else {
            ""
        },
        source::live_filter(options.filter.as_deref())
    );
    let limits = Limits {
        max_frames: cli.count,
        deadline,
        stop: Some(stop),
        flush_each: true,
    };
    Ok((source, limits))
}
