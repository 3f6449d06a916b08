//! Command line: wires arguments to the kascope library.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use kascope::report::{CsvOutput, JsonLines, Servers, Summary, Table};
use kascope::source::{self, Live, LiveEvent, LiveOptions, Source};
use kascope::verdict::Tolerance;
use kascope::{Analyzer, Config, Output};

/// HTTP/1.x connection reuse, pipelining and keep-alive behaviour from packet captures.
///
/// Reads pcap/pcapng files (or `-` for standard input) and prints one row per TCP
/// connection plus a summary. Arguments after the capture files form a BPF filter
/// expression, as with tcpdump: `kascope trace.pcap tcp port 8080`.
#[derive(Parser, Debug)]
#[command(name = "kascope", version)]
struct Cli {
    /// Capture file to read (repeatable; files are read in order as one capture).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Vec<PathBuf>,

    /// Capture live from this interface (`any` for all) instead of reading files; needs
    /// CAP_NET_RAW and CAP_NET_ADMIN (root).
    #[arg(short = 'i', long, value_name = "INTERFACE")]
    interface: Option<String>,

    /// List the interfaces that can be captured on, and exit.
    #[arg(short = 'D', long)]
    list_interfaces: bool,

    /// Live: stop after this many packets.
    #[arg(short = 'c', long, value_name = "COUNT")]
    count: Option<u64>,

    /// Live: stop after this long (`30s`, `5m`, `1h`).
    #[arg(long, value_name = "TIME")]
    duration: Option<String>,

    /// Live: bytes captured per packet.
    #[arg(short = 's', long, default_value_t = 262_144, value_name = "SNAPLEN")]
    snaplen: i32,

    /// Live: do not put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    no_promiscuous: bool,

    /// Capture files, then an optional BPF filter expression.
    #[arg(value_name = "FILE... [FILTER]")]
    args: Vec<String>,

    /// Write one CSV row per connection to FILE (columns: docs/csv.md).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,

    /// Write one CSV row per HTTP request/response pair to FILE.
    #[arg(long, value_name = "FILE")]
    transactions_csv: Option<PathBuf>,

    /// Write one JSON object per connection per line to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Print only the summary and the per-server table, not the per-connection table.
    #[arg(short, long)]
    quiet: bool,

    /// Show the per-server table only (with the summary), not the per-connection one.
    #[arg(long)]
    servers: bool,

    /// Write one CSV row per server to FILE.
    #[arg(long, value_name = "FILE")]
    servers_csv: Option<PathBuf>,

    /// Exit with status 1 when a server broke a Keep-Alive promise (`violation`), when a
    /// keep-alive race was seen (`race`), or either (`any`).
    #[arg(long, value_name = "WHAT")]
    fail_on: Option<FailOn>,

    /// An idle close this many seconds before the advertised timeout still honours it.
    #[arg(long, default_value_t = 0.1, value_name = "SECONDS")]
    timeout_tolerance: f64,

    /// An unanswered request sent up to this many seconds before the server's idle close
    /// counts as a keep-alive race.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    race_window: f64,

    /// Most rows the terminal table shows.
    #[arg(long, default_value_t = 200, value_name = "N")]
    rows: usize,

    /// Out-of-order bytes buffered per direction before a hole is given up.
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES")]
    reassembly_limit: usize,

    /// Seconds without packets after which an open connection is written out as evicted.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    idle_timeout: u64,

    /// Memory the connection table may use (e.g. 512MiB, 2G); past it the connections idle
    /// the longest are written out early, flagged memory-budget.
    #[arg(long, default_value = "512MiB", value_name = "SIZE", value_parser = parse_size)]
    max_memory: usize,

    /// Never draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FailOn {
    Violation,
    Race,
    Any,
}

/// Splits positional arguments into capture files and the filter expression that follows.
fn split_inputs(cli: &Cli) -> Result<(Vec<PathBuf>, Option<String>), String> {
    let mut files = cli.read.clone();
    let mut rest = cli.args.as_slice();
    if files.is_empty() {
        while let Some(first) = rest.first() {
            let looks_like_file = first == "-"
                || Path::new(first).exists()
                || first.contains('/')
                || [".pcap", ".pcapng", ".cap", ".gz"]
                    .iter()
                    .any(|ext| first.ends_with(ext));
            if !looks_like_file {
                break;
            }
            files.push(PathBuf::from(first));
            rest = &rest[1..];
        }
    }
    if files.is_empty() {
        return Err("no capture file given (kascope FILE... [FILTER], or -r FILE)".into());
    }
    let filter = (!rest.is_empty()).then(|| rest.join(" "));
    Ok((files, filter))
}

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

struct Outputs {
    csv: Option<CsvOutput>,
    transactions: Option<CsvOutput>,
    json: Option<JsonLines>,
    table: Table,
    summary: Summary,
    servers: Servers,
    violations: u64,
    races: u64,
    /// Live capture: flush after every record so `tail -f` and a killed process keep it.
    flush_each: bool,
}

impl Outputs {
    fn take(&mut self, output: Output) -> std::io::Result<()> {
        match output {
            Output::Connection(record) => {
                self.summary.add(&record);
                self.table.add(&record);
                self.servers.add(&record);
                self.violations += u64::from(record.violation);
                self.races += u64::from(record.race_request.is_some());
                if let Some(csv) = &mut self.csv {
                    csv.write(&record)?;
                }
                if let Some(json) = &mut self.json {
                    json.write(&record)?;
                }
            }
            Output::Transaction(record) => {
                if let Some(csv) = &mut self.transactions {
                    csv.write(&record)?;
                }
            }
        }
        Ok(())
    }

    /// Takes every record the analyzer finished.
    fn take_all(&mut self, analyzer: &mut Analyzer) -> std::io::Result<()> {
        let mut any = false;
        for output in analyzer.take_output() {
            self.take(output)?;
            any = true;
        }
        if any && self.flush_each {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(csv) = &mut self.csv {
            csv.flush()?;
        }
        if let Some(csv) = &mut self.transactions {
            csv.flush()?;
        }
        if let Some(json) = &mut self.json {
            json.flush()?;
        }
        Ok(())
    }
}

fn create<T>(
    path: &Option<PathBuf>,
    open: fn(&Path) -> std::io::Result<T>,
) -> Result<Option<T>, String> {
    path.as_deref()
        .map(|p| open(p).map_err(|e| format!("{}: cannot write: {e}", p.display())))
        .transpose()
}

/// Parses a byte size: `1048576`, `64KiB`, `512MiB`, `2G` (powers of 1024).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("bad size '{text}' (examples: 512MiB, 2G)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("bad size unit in '{text}' (KiB, MiB, GiB)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

/// Parses `30s`, `5m`, `2h` or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("bad duration '{text}' (examples: 30s, 5m, 1h)"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("bad duration unit in '{text}' (ms, s, m, h)")),
    };
    if !(value >= 0.0 && value.is_finite()) {
        return Err(format!("bad duration '{text}'"));
    }
    Ok(std::time::Duration::from_secs_f64(value * scale))
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
    let mut outputs = Outputs {
        csv: create(&cli.csv, CsvOutput::create)?,
        transactions: create(&cli.transactions_csv, CsvOutput::create)?,
        json: create(&cli.json, JsonLines::create)?,
        table: Table::new(if cli.quiet || cli.servers {
            0
        } else {
            cli.rows
        }),
        summary: Summary::default(),
        servers: Servers::default(),
        violations: 0,
        races: 0,
        flush_each: live,
    };
    let seconds = |s: f64| (s.max(0.0) * 1e9) as u64;
    let config = Config {
        reassembly_limit: cli.reassembly_limit,
        transactions: cli.transactions_csv.is_some(),
        idle_evict_ns: cli.idle_timeout.saturating_mul(1_000_000_000),
        max_memory: cli.max_memory,
        // Live: a connection's row is written the moment it closes.
        linger_ns: if live { 0 } else { Config::default().linger_ns },
        tolerance: Tolerance {
            timeout_ns: seconds(cli.timeout_tolerance),
            race_window_ns: seconds(cli.race_window),
        },
        ..Config::default()
    };
    let mut analyzer = Analyzer::new(config);
    let mut warnings = Vec::new();
    if live {
        run_live(cli, &mut analyzer, &mut outputs, &mut warnings)?;
    } else {
        run_offline(cli, &mut analyzer, &mut outputs, &mut warnings)?;
    }
    let mut write_error = None;
    analyzer.finish_all(|output| {
        if let Err(err) = outputs.take(output)
            && write_error.is_none()
        {
            write_error = Some(err);
        }
    });
    if let Some(err) = write_error {
        return Err(format!("writing output: {err}"));
    }
    outputs
        .flush()
        .map_err(|e| format!("writing output: {e}"))?;
    report(cli, &analyzer, &mut outputs, warnings)
}

fn run_offline(
    cli: &Cli,
    analyzer: &mut Analyzer,
    outputs: &mut Outputs,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let (files, filter) = split_inputs(cli)?;
    let mut source = Source::open(files, filter).map_err(|e| e.to_string())?;
    let progress = match source.total_bytes() {
        Some(total) if !cli.no_progress && std::io::stderr().is_terminal() => {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Some(bar)
        }
        _ => None,
    };
    let mut write_error = None;
    let mut frames: u64 = 0;
    let mut bytes: u64 = 0;
    source
        .run(
            |frame| {
                frames += 1;
                bytes += 16 + frame.data.len() as u64;
                analyzer.process_frame(&frame);
                if let Err(err) = outputs.take_all(analyzer) {
                    write_error = Some(err);
                    return ControlFlow::Break(());
                }
                if frames.is_multiple_of(8192)
                    && let Some(bar) = &progress
                {
                    bar.set_position(bytes);
                }
                ControlFlow::Continue(())
            },
            |damage| warnings.push(damage),
        )
        .map_err(|e| e.to_string())?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    match write_error {
        Some(err) => Err(format!("writing output: {err}")),
        None => Ok(()),
    }
}

/// Live capture until Ctrl-C/SIGTERM, `-c COUNT` packets or `--duration`. A second Ctrl-C
/// exits at once (status 130); everything finished before it is already in the files.
fn run_live(
    cli: &Cli,
    analyzer: &mut Analyzer,
    outputs: &mut Outputs,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    if !cli.read.is_empty() || cli.args.first().is_some_and(|arg| Path::new(arg).exists()) {
        return Err("give either -i INTERFACE or capture files, not both".into());
    }
    let options = LiveOptions {
        interface: cli.interface.clone().unwrap_or_default(),
        filter: (!cli.args.is_empty()).then(|| cli.args.join(" ")),
        snaplen: cli.snaplen,
        promiscuous: !cli.no_promiscuous,
    };
    let mut live = Live::open(&options).map_err(|e| e.to_string())?;
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
    let status = (!cli.no_progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    });
    eprintln!(
        "kascope: capturing on {} (filter: {}); Ctrl-C to stop",
        options.interface,
        source::live_filter(options.filter.as_deref())
    );
    let started = std::time::Instant::now();
    let mut packets: u64 = 0;
    let mut rate_mark = (std::time::Instant::now(), 0u64);
    let mut kernel_drops = 0;
    let mut write_error = None;
    live.run(|event| {
        match event {
            LiveEvent::Frame(frame) => {
                packets += 1;
                analyzer.process_frame(&frame);
                if cli.count.is_some_and(|count| packets >= count) {
                    return ControlFlow::Break(());
                }
            }
            LiveEvent::Tick {
                now_ns,
                kernel_drops: drops,
            } => {
                analyzer.tick(now_ns);
                if drops > kernel_drops {
                    kernel_drops = drops;
                    analyzer.mark_kernel_drops();
                }
                if let Some(bar) = &status
                    && rate_mark.0.elapsed() >= std::time::Duration::from_secs(1)
                {
                    let rate = (packets - rate_mark.1) as f64 / rate_mark.0.elapsed().as_secs_f64();
                    rate_mark = (std::time::Instant::now(), packets);
                    bar.set_message(format!(
                        "{packets} packets, {rate:.0}/s, {} open, {} finished, {kernel_drops} kernel drops",
                        analyzer.open_connections(),
                        outputs.summary.connections
                    ));
                    bar.tick();
                }
                if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    return ControlFlow::Break(());
                }
            }
        }
        if let Err(err) = outputs.take_all(analyzer) {
            write_error = Some(err);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .map_err(|e| e.to_string())?;
    if let Some(bar) = status {
        bar.finish_and_clear();
    }
    eprintln!(
        "kascope: captured {packets} packets in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if kernel_drops > 0 {
        warnings.push(format!(
            "the kernel dropped {kernel_drops} packets: connections open meanwhile are flagged \
             kernel-drops and their verdicts are uncertain"
        ));
    }
    match write_error {
        Some(err) => Err(format!("writing output: {err}")),
        None => Ok(()),
    }
}

fn report(
    cli: &Cli,
    analyzer: &Analyzer,
    outputs: &mut Outputs,
    mut warnings: Vec<String>,
) -> Result<ExitCode, String> {
    let counts = analyzer.counts();
    if !counts.unsupported_link_types.is_empty() {
        warnings.push(format!(
            "{} frames of unsupported link type(s) {:?} were not analysed",
            counts.unsupported_link, counts.unsupported_link_types
        ));
    }
    if let Some(mut csv) = create(&cli.servers_csv, CsvOutput::create)? {
        for record in outputs.servers.records() {
            csv.write(&record)
                .map_err(|e| format!("writing output: {e}"))?;
        }
        csv.flush().map_err(|e| format!("writing output: {e}"))?;
    }
    if !cli.quiet && !cli.servers {
        print!("{}", outputs.table.render());
        println!();
    }
    print!("{}", outputs.summary.render(counts));
    if !outputs.servers.is_empty() {
        println!();
        print!("{}", outputs.servers.render(cli.rows));
    }
    for warning in &warnings {
        eprintln!("kascope: warning: {warning}");
    }
    let failed = match cli.fail_on {
        None => false,
        Some(FailOn::Violation) => outputs.violations > 0,
        Some(FailOn::Race) => outputs.races > 0,
        Some(FailOn::Any) => outputs.violations + outputs.races > 0,
    };
    if failed {
        eprintln!(
            "kascope: failing: {} connection(s) with a broken Keep-Alive promise, {} with a keep-alive race",
            outputs.violations, outputs.races
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
