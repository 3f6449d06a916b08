//! The command line: options, and how positional words split into files and a filter.
//! Kept in the library so that tests (and the man page generator) see the same definition.

use std::path::{Path, PathBuf};

use clap::Parser;

/// HTTP/1.x connection reuse, pipelining and keep-alive behaviour from packet captures.
///
/// Reads pcap/pcapng files (or `-` for standard input) and prints one row per TCP
/// connection plus a summary. Arguments after the capture files form a BPF filter
/// expression, as with tcpdump: `kascope trace.pcap tcp port 8080`.
#[derive(Parser, Debug)]
#[command(name = "kascope", version)]
pub struct Cli {
    /// Capture file to read (repeatable; files are read in order as one capture).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<PathBuf>,

    /// Capture live from this interface (`any` for all) instead of reading files; needs
    /// CAP_NET_RAW and CAP_NET_ADMIN (root).
    #[arg(short = 'i', long, value_name = "INTERFACE")]
    pub interface: Option<String>,

    /// List the interfaces that can be captured on, and exit.
    #[arg(short = 'D', long)]
    pub list_interfaces: bool,

    /// Live: stop after this many packets.
    #[arg(short = 'c', long, value_name = "COUNT")]
    pub count: Option<u64>,

    /// Live: stop after this long (`30s`, `5m`, `1h`).
    #[arg(long, value_name = "TIME")]
    pub duration: Option<String>,

    /// Live: bytes captured per packet.
    #[arg(short = 's', long, default_value_t = 262_144, value_name = "SNAPLEN")]
    pub snaplen: i32,

    /// Live: capture through an eBPF socket filter that leaves HTTP body bytes in the
    /// kernel (only their length comes up); needs CAP_BPF besides CAP_NET_RAW.
    #[arg(long, requires = "interface")]
    pub ebpf: bool,

    /// Live: do not put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    pub no_promiscuous: bool,

    /// Capture files, then an optional BPF filter expression.
    #[arg(value_name = "FILE... [FILTER]")]
    pub args: Vec<String>,

    /// Write one CSV row per connection to FILE (columns: docs/csv.md).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Write one CSV row per HTTP request/response pair to FILE.
    #[arg(long, value_name = "FILE")]
    pub transactions_csv: Option<PathBuf>,

    /// Write one JSON object per connection per line to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Print only the summary and the per-server table, not the per-connection table.
    #[arg(short, long)]
    pub quiet: bool,

    /// Show the per-server table only (with the summary), not the per-connection one.
    #[arg(long)]
    pub servers: bool,

    /// Write one CSV row per server to FILE.
    #[arg(long, value_name = "FILE")]
    pub servers_csv: Option<PathBuf>,

    /// Write the findings (problems found, with evidence and advice) as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub findings_json: Option<PathBuf>,

    /// Write a self-contained HTML report (timelines, distributions, findings) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Write the connection rows as typed Parquet columns to FILE (docs/csv.md, docs/scale.md).
    #[arg(long, value_name = "FILE")]
    pub parquet: Option<PathBuf>,

    /// Write the transaction rows as typed Parquet columns to FILE.
    #[arg(long, value_name = "FILE")]
    pub transactions_parquet: Option<PathBuf>,

    /// Write the per-server rows as typed Parquet columns to FILE.
    #[arg(long, value_name = "FILE")]
    pub servers_parquet: Option<PathBuf>,

    /// Live: close the connection and transaction Parquet files and start new ones this
    /// often (`10m`, `1h`; at least 1s), each named FILE-<UTC start time>.parquet.
    #[arg(long, value_name = "DURATION")]
    pub rotate: Option<String>,

    /// Exit with status 1 when a server broke a Keep-Alive promise (`violation`), when a
    /// keep-alive race was seen (`race`), or either (`any`).
    #[arg(long, value_name = "WHAT")]
    pub fail_on: Option<FailOn>,

    /// An idle close this many seconds before the advertised timeout still honours it.
    #[arg(long, default_value_t = 0.1, value_name = "SECONDS")]
    pub timeout_tolerance: f64,

    /// An unanswered request sent up to this many seconds before the server's idle close
    /// counts as a keep-alive race.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub race_window: f64,

    /// Most rows the terminal table shows.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub rows: usize,

    /// Out-of-order bytes buffered per direction before a hole is given up.
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES")]
    pub reassembly_limit: usize,

    /// Seconds without packets after which an open connection is written out as evicted.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub idle_timeout: u64,

    /// Memory the connection table may use (e.g. 512MiB, 2G); past it the connections idle
    /// the longest are written out early, flagged memory-budget.
    #[arg(long, default_value = "512MiB", value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: usize,

    /// Never draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Violation,
    Race,
    Any,
}

/// Splits positional arguments into capture files and the filter expression that follows.
pub fn split_inputs(cli: &Cli) -> Result<(Vec<PathBuf>, Option<String>), String> {
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

/// Parses a byte size: `1048576`, `64KiB`, `512MiB`, `2G` (powers of 1024).
pub fn parse_size(text: &str) -> Result<usize, String> {
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
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
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
