//! Command line: wires arguments to the kascope library.

use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use kascope::cli::{Cli, FailOn, Inputs, display_filter_hint, split_inputs};
use kascope::driver::{self, Limits, Observer, RunError, RunStats, Unobserved};
use kascope::report::progress::{FileProgress, LiveStatus};
use kascope::report::{
    BehaviourText, ConnectionTable, FindingsText, HtmlReport, NamedOutput, Report, Rows, RowsFile,
    ServersTable, Sink, SummaryText, TableOptions, plural,
};
use kascope::sharded;
use kascope::source::{self, FileSource, FrameSource, LiveOptions, LiveSource, SourceError};
use kascope::verdict::Tolerance;
use kascope::{Analyzer, Config};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    match run(&cli) {
        Ok(code) => code,
        Err(Failure::ClosedPipe) => ExitCode::SUCCESS,
        Err(Failure::Message(message)) => {
            say(&message);
            ExitCode::from(2)
        }
    }
}

/// Why a run ended early.
enum Failure {
    /// The reader of an output went away (`kascope … | head`): end quietly, as grep does.
    ClosedPipe,
    /// Anything else: one line on standard error, exit status 2.
    Message(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Message(message)
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        match err.kind() {
            io::ErrorKind::BrokenPipe => Failure::ClosedPipe,
            _ => Failure::Message(format!("writing {err}")),
        }
    }
}

impl From<RunError> for Failure {
    fn from(err: RunError) -> Failure {
        match err {
            RunError::Source(err) => Failure::Message(err.to_string()),
            RunError::Write(err) => err.into(),
        }
    }
}

/// One line on standard error (never a panic, even when standard error is a closed pipe).
fn say(message: &str) {
    let _ = writeln!(io::stderr(), "kascope: {message}");
}

/// Help and version go to standard output; a usage error is one line, status 2 — without
/// clap's tip to pass an option after `--`, which is wrong advice here.
fn usage_error(err: clap::Error) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let rendered = err.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let mut message = first.strip_prefix("error: ").unwrap_or(first).to_string();
    if let Some(ContextValue::String(suggested)) = err.get(ContextKind::SuggestedArg) {
        message.push_str(&format!(" (did you mean '{suggested}'?)"));
    }
    if let Some(ContextValue::Strings(values)) = err.get(ContextKind::ValidValue)
        && !values.is_empty()
    {
        message.push_str(&format!(" (possible values: {})", values.join(", ")));
    }
    say(&format!("{message}; see kascope --help"));
    ExitCode::from(2)
}

/// Where an output option writes.
struct Planned {
    option: &'static str,
    path: PathBuf,
    to_stdout: bool,
}

impl Planned {
    fn name(&self) -> String {
        match self.to_stdout {
            true => "standard output".to_string(),
            false => self.path.display().to_string(),
        }
    }

    fn open(&self) -> Result<Box<dyn Write>, Failure> {
        let out: Box<dyn Write> = if self.to_stdout {
            Box::new(io::stdout())
        } else {
            let file = std::fs::File::create(&self.path)
                .map_err(|e| format!("{}: cannot write: {e}", self.path.display()))?;
            Box::new(file)
        };
        Ok(Box::new(NamedOutput::new(self.name(), out)))
    }
}

/// The file's device and inode, when it exists.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Standard output's device and inode when it is redirected to a regular file.
fn stdout_file() -> Option<(u64, u64)> {
    let fd = io::stdout().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    meta.is_file().then(|| (meta.dev(), meta.ino()))
}

/// The outputs the options name: `-`, `/dev/stdout` or the file standard output is
/// redirected to mean standard output. Two outputs on one file, or an output on an input,
/// are refused before anything is opened.
fn plan_outputs(cli: &Cli, inputs: &Inputs) -> Result<Vec<Planned>, String> {
    let stdout = stdout_file();
    let options = [
        ("--csv", &cli.csv),
        ("--transactions-csv", &cli.transactions_csv),
        ("--json", &cli.json),
        ("--servers-csv", &cli.servers_csv),
        ("--findings-json", &cli.findings_json),
        ("--html", &cli.html),
        ("--parquet", &cli.parquet),
        ("--transactions-parquet", &cli.transactions_parquet),
        ("--servers-parquet", &cli.servers_parquet),
        ("-w", &cli.write),
    ];
    let planned: Vec<Planned> = options
        .into_iter()
        .filter_map(|(option, path)| path.as_ref().map(|path| (option, path)))
        .map(|(option, path)| Planned {
            option,
            path: path.clone(),
            to_stdout: ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"]
                .iter()
                .any(|name| path == Path::new(name))
                || (stdout.is_some() && identity(path) == stdout),
        })
        .collect();
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.into());
    let is_device =
        |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device());
    if let Some(parquet) = planned
        .iter()
        .find(|p| p.to_stdout && p.option.ends_with("parquet"))
    {
        return Err(format!(
            "{} needs a file: Parquet cannot be written to standard output",
            parquet.option
        ));
    }
    for (i, a) in planned.iter().enumerate() {
        for b in &planned[i + 1..] {
            let same = match (a.to_stdout, b.to_stdout) {
                (true, true) => true,
                (false, false) => {
                    !is_device(&a.path)
                        && (absolute(&a.path) == absolute(&b.path)
                            || identity(&a.path).is_some_and(|id| identity(&b.path) == Some(id)))
                }
                _ => false,
            };
            if same {
                return Err(format!(
                    "{} is given to both {} and {}: each output needs its own file",
                    a.name(),
                    a.option,
                    b.option
                ));
            }
        }
        if a.to_stdout {
            continue;
        }
        for input in &inputs.files {
            if identity(input).is_some_and(|id| identity(&a.path) == Some(id)) {
                return Err(format!(
                    "{}: is an input, and {} would overwrite it",
                    input.display(),
                    a.option
                ));
            }
        }
    }
    Ok(planned)
}

/// The width the tables fit: none with `--wide`; else `COLUMNS`, else the terminal's.
fn table_width(
    cli: &Cli,
    terminal: Option<(terminal_size::Width, terminal_size::Height)>,
) -> Option<usize> {
    if cli.wide {
        return None;
    }
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok());
    columns
        .filter(|&c: &usize| c > 0)
        .or(terminal.map(|(terminal_size::Width(w), _)| usize::from(w)))
}

/// The outputs the flags ask for, in the order they finish (the terminal parts last). The
/// report goes to standard output, or to standard error when an output took standard output.
fn sinks(cli: &Cli, inputs: &Inputs, outputs: &[Planned]) -> Result<Vec<Box<dyn Sink>>, Failure> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for planned in outputs {
        let times = cli.time_format;
        let sink: Box<dyn Sink> = match planned.option {
            "--csv" => Box::new(RowsFile::csv(Rows::Connections, planned.open()?, times)),
            "--transactions-csv" => {
                Box::new(RowsFile::csv(Rows::Transactions, planned.open()?, times))
            }
            "--json" => Box::new(RowsFile::json_lines(Rows::Connections, planned.open()?)),
            "--servers-csv" => Box::new(RowsFile::csv(Rows::Servers, planned.open()?, times)),
            "--findings-json" => Box::new(RowsFile::json_lines(Rows::Findings, planned.open()?)),
            "--html" => Box::new(HtmlReport::new(planned.open()?, report_title(cli, inputs))),
            "--parquet" => Box::new(parquet(Rows::Connections, planned, cli.rotate)?),
            "--transactions-parquet" => Box::new(parquet(Rows::Transactions, planned, cli.rotate)?),
            "--servers-parquet" => Box::new(parquet(Rows::Servers, planned, None)?),
            _ => continue,
        };
        sinks.push(sink);
    }
    let to_stderr = outputs.iter().any(|planned| planned.to_stdout);
    let (report_name, width) = if to_stderr {
        (
            "standard error",
            table_width(cli, terminal_size::terminal_size_of(io::stderr())),
        )
    } else {
        (
            "standard output",
            table_width(cli, terminal_size::terminal_size_of(io::stdout())),
        )
    };
    let report = || -> Box<dyn Write> {
        let out: Box<dyn Write> = match to_stderr {
            true => Box::new(io::stderr()),
            false => Box::new(io::stdout()),
        };
        Box::new(NamedOutput::new(report_name.to_string(), out))
    };
    let rows = cli.rows as usize;
    if !cli.quiet && !cli.servers {
        let options = TableOptions {
            rows,
            width,
            only: cli.only.clone(),
            sort: cli.sort,
        };
        sinks.push(Box::new(ConnectionTable::new(report(), options)));
    }
    if !cli.servers {
        sinks.push(Box::new(SummaryText::new(report())));
    }
    if !cli.quiet {
        sinks.push(Box::new(ServersTable::new(report(), rows, width)));
    }
    if !cli.quiet && !cli.servers {
        sinks.push(Box::new(BehaviourText::new(report(), rows)));
    }
    if !cli.servers {
        sinks.push(Box::new(FindingsText::new(report())));
    }
    Ok(sinks)
}

/// A Parquet file (it writes to its path itself; `--rotate` starts a new one every period).
fn parquet(rows: Rows, planned: &Planned, rotate: Option<Duration>) -> Result<RowsFile, Failure> {
    RowsFile::parquet(rows, &planned.path, rotate)
        .map_err(|e| Failure::Message(format!("{}: cannot write: {e}", planned.path.display())))
}

/// What the HTML report is about: the files read, or the interface.
fn report_title(cli: &Cli, inputs: &Inputs) -> String {
    match &cli.interface {
        Some(interface) => format!("live capture on {interface}"),
        None => {
            let names: Vec<String> = inputs
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            names.join(", ")
        }
    }
}

fn list_interfaces() -> Result<ExitCode, Failure> {
    let mut out = io::stdout().lock();
    for (index, (name, description)) in source::list_interfaces()?.into_iter().enumerate() {
        match description {
            Some(text) => writeln!(out, "{}.{name} ({text})", index + 1)?,
            None => writeln!(out, "{}.{name}", index + 1)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A source that could not be opened, with a hint when the filter is Wireshark's syntax.
fn open_error(err: SourceError, filter: Option<&str>) -> Failure {
    let hint = filter
        .filter(|_| err.message.contains("bad filter expression"))
        .and_then(display_filter_hint);
    match hint {
        Some(hint) => Failure::Message(format!("{err}; {hint}")),
        None => Failure::Message(err.to_string()),
    }
}

fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    if cli.list_interfaces {
        return list_interfaces();
    }
    let live = cli.interface.is_some();
    let inputs = split_inputs(cli)?;
    if cli.write.is_some() && !live {
        return Err(Failure::Message(
            "-w saves a live capture (with -i INTERFACE); to copy packets out of files, \
             use tcpdump -r FILE -w OUT"
                .into(),
        ));
    }
    if cli.rotate.is_some() {
        if !live {
            return Err(Failure::Message(
                "--rotate is for live capture (-i INTERFACE)".into(),
            ));
        }
        if cli.parquet.is_none() && cli.transactions_parquet.is_none() {
            return Err(Failure::Message(
                "--rotate needs --parquet or --transactions-parquet".into(),
            ));
        }
    }
    if cli.ebpf && cli.write.is_some() {
        return Err(Failure::Message(
            "-w saves whole packets, and --ebpf leaves HTTP body bytes in the kernel: use one \
             or the other"
                .into(),
        ));
    }
    if cli.duration.is_some() && !live {
        return Err(Failure::Message(
            "--duration applies to live capture (-i INTERFACE); -c COUNT stops reading files"
                .into(),
        ));
    }
    let outputs = plan_outputs(cli, &inputs)?;
    let show_progress = !cli.no_progress && io::stderr().is_terminal();
    // --ebpf: the table's hints on what to shed flow back to the one source, from one table.
    // Live, one thread unless asked: at the rates measured (docs/live-benchmark.md) one
    // keeps up, and a second costs more CPU than it saves.
    let threads = match (cli.ebpf, live) {
        (true, _) => 1,
        (false, true) => cli.threads.map_or(1, |threads| threads as usize),
        (false, false) => cli.threads(),
    };
    // The input is opened before any output is created, so a bad input leaves no file.
    let (mut source, limits, mut observer): (Box<dyn FrameSource>, Limits, Box<dyn Observer>) =
        if live {
            let (source, limits) = open_live(cli, &inputs)?;
            let observer: Box<dyn Observer> = match show_progress {
                true => Box::new(LiveStatus::new()),
                false => Box::new(Unobserved),
            };
            (source, limits, observer)
        } else {
            let filter = inputs.filter.clone();
            let mut source = FileSource::open(inputs.files.clone(), filter.clone())
                .map_err(|err| open_error(err, filter.as_deref()))?;
            if threads > 1 {
                source.read_ahead();
            }
            let observer: Box<dyn Observer> = match source.progress().1 {
                Some(total) if show_progress => Box::new(FileProgress::new(total)),
                _ => Box::new(Unobserved),
            };
            let limits = Limits {
                max_frames: cli.count,
                ..Limits::default()
            };
            (Box::new(source), limits, observer)
        };
    if cli.verbose > 0 && !live {
        let files: Vec<String> = inputs
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        say(&format!(
            "reading {} (filter: {})",
            files.join(", "),
            inputs.filter.as_deref().unwrap_or("none")
        ));
    }
    let mut report = Report::new(sinks(cli, &inputs, &outputs)?).with_max_memory(cli.max_memory);
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let config = Config {
        reassembly_limit: cli.reassembly_limit,
        // The per-server aggregation reads every transaction's timing and status.
        transactions: true,
        transaction_text: report.wants_transactions(),
        idle_evict_ns: nanos(cli.idle_timeout),
        max_memory: cli.max_memory,
        // Live: a connection's row is written the moment it closes.
        linger_ns: if live { 0 } else { Config::default().linger_ns },
        kernel_shedding: cli.ebpf,
        tolerance: Tolerance {
            timeout_ns: nanos(cli.timeout_tolerance),
            race_window_ns: nanos(cli.race_window),
        },
        ..Config::default()
    };
    // Files: with two threads or more one reads the input ahead (docs/threads.md); of the
    // others one runs the analysis, or one takes the records and routes them to the rest.
    let analysis_threads = if live {
        threads
    } else {
        threads.saturating_sub(1).max(1)
    };
    let (stats, counts) = if analysis_threads > 1 {
        let shards = sharded::shards_for(analysis_threads);
        sharded::run(
            &mut *source,
            &config,
            shards,
            &mut report,
            &limits,
            &mut *observer,
        )?
    } else {
        let mut analyzer = Analyzer::new(config);
        let stats = driver::run(
            &mut *source,
            &mut analyzer,
            &mut report,
            &limits,
            &mut *observer,
        )?;
        (stats, analyzer.counts().clone())
    };
    if live {
        say(&capture_summary(&stats));
    } else if cli.verbose > 0 {
        let seconds = stats.elapsed.as_secs_f64();
        let megabytes = counts.bytes as f64 / 1e6;
        say(&format!(
            "read {} ({megabytes:.1} MB) in {seconds:.3} s ({:.0} MB/s)",
            plural(stats.frames, "frame", "frames"),
            megabytes / seconds.max(1e-9)
        ));
        let read_ahead = source
            .read_ahead_cpu()
            .map(|cpu| ("read-ahead".to_string(), cpu));
        let thread_cpu: Vec<_> = read_ahead.into_iter().chain(stats.thread_cpu).collect();
        if thread_cpu.len() > 1 {
            let threads: Vec<String> = thread_cpu
                .iter()
                .map(|(name, cpu)| format!("{name} {:.3} s", cpu.as_secs_f64()))
                .collect();
            say(&format!("CPU time: {}", threads.join(", ")));
        }
    }
    report.finish(&counts)?;
    for warning in &stats.warnings {
        say(&format!("warning: {warning}"));
    }
    let totals = report.totals();
    let failed = match cli.fail_on {
        None => false,
        Some(FailOn::Violation) => totals.violations > 0,
        Some(FailOn::Race) => totals.races > 0,
        Some(FailOn::Any) => totals.violations + totals.races > 0,
    };
    if failed {
        say(&format!(
            "failing: {} with a broken Keep-Alive promise, {} with a keep-alive race",
            plural(totals.violations, "connection", "connections"),
            totals.races
        ));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The live summary line: packets, and the bytes on the wire, delivered to user space and
/// dropped by the kernel.
fn capture_summary(stats: &RunStats) -> String {
    let mut line = format!(
        "captured {} in {:.1} s",
        plural(stats.frames, "packet", "packets"),
        stats.elapsed.as_secs_f64()
    );
    if let Some(delivery) = stats.delivery {
        let share = match delivery.wire_bytes {
            0 => 0.0,
            wire => 100.0 * delivery.delivered_bytes as f64 / wire as f64,
        };
        line.push_str(&format!(
            ": {} bytes on the wire, {} delivered to user space ({share:.1}%), {} dropped by \
             the kernel",
            delivery.wire_bytes,
            delivery.delivered_bytes,
            plural(stats.kernel_drops, "packet", "packets")
        ));
    }
    line
}

/// Live capture until Ctrl-C/SIGTERM, `-c COUNT` packets or `--duration`. A second Ctrl-C
/// exits at once (status 130); everything finished before it is already in the files.
fn open_live(cli: &Cli, inputs: &Inputs) -> Result<(Box<dyn FrameSource>, Limits), Failure> {
    let options = LiveOptions {
        interface: cli.interface.clone().unwrap_or_default(),
        filter: inputs.filter.clone(),
        snaplen: cli.snaplen,
        promiscuous: !cli.no_promiscuous,
        save: cli.write.clone(),
    };
    let opened = match cli.ebpf {
        true => source::open_ebpf(&options),
        false => LiveSource::open(&options).map(|live| Box::new(live) as Box<dyn FrameSource>),
    };
    let source = opened.map_err(|err| open_error(err, options.filter.as_deref()))?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal asks to stop; a second one while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let deadline = match cli.duration {
        None => None,
        Some(duration) => Some(
            std::time::Instant::now()
                .checked_add(duration)
                .ok_or_else(|| "--duration is too long for this clock".to_string())?,
        ),
    };
    let saving = match &cli.write {
        Some(path) => format!(", saving to {}", path.display()),
        None => String::new(),
    };
    say(&format!(
        "capturing on {}{} (filter: {}{saving}); Ctrl-C to stop",
        options.interface,
        match cli.ebpf {
            true => " through the eBPF socket filter",
            false => "",
        },
        source::live_filter(options.filter.as_deref())
    ));
    let limits = Limits {
        max_frames: cli.count,
        deadline,
        stop: Some(stop),
        flush_each: true,
    };
    Ok((source, limits))
}
