//! The command line: options, and how positional words split into files and a filter.
//! Kept in the library so that tests (and the man page generator) see the same definition.
//!
//! Options are grouped under the headings `--help` shows (input, live capture, output
//! files, terminal report, analysis); a new option goes into its group. Every numeric value
//! is checked against its range here (`values`), so the rest of the program never sees 0
//! where 0 makes no sense, or a size or time it cannot represent.

mod values;
mod words;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::report::{Only, SortKey, TimeFormat};

pub use values::{Bounds, parse_duration, parse_size};
pub use words::{Inputs, display_filter_hint, split_inputs};

/// HTTP/1.x connection reuse, pipelining and keep-alive behaviour from packet captures.
///
/// Reads pcap/pcapng files (or `-` for standard input), or captures live (`-i`), and prints
/// one row per TCP connection, a summary and one row per server. Words after the capture
/// files form a BPF filter expression, as with tcpdump: `kascope trace.pcap tcp port 8080`.
/// The filter starts at the first word that is a BPF keyword (`tcp`, `port`, `host`, `not`,
/// …) or begins with `(` or `!`; every word before it is a capture file.
///
/// An output given as `-` (or `/dev/stdout`, or the file standard output is redirected to)
/// is written to standard output; the report then goes to standard error.
#[derive(Parser, Debug)]
#[command(
    name = "kascope",
    version,
    long_version = long_version(),
    after_long_help = crate::report::legend(),
    max_term_width = 100
)]
pub struct Cli {
    // ---- Input --------------------------------------------------------------------------
    /// Capture file to read (repeatable; files are read in order as one capture). With -r,
    /// every word after the options is the filter.
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        help_heading = "Input"
    )]
    pub read: Vec<PathBuf>,

    /// Capture files, then an optional BPF filter expression.
    #[arg(value_name = "FILE... [FILTER]")]
    pub args: Vec<String>,

    /// Stop after this many packets (files and live; counted after the filter).
    #[arg(short = 'c', long, value_name = "COUNT", help_heading = "Input",
          value_parser = |s: &str| values::COUNT.parse_integer(s), allow_negative_numbers = true)]
    pub count: Option<u64>,

    /// Accepted for tcpdump's sake: kascope never resolves addresses or ports to names.
    #[arg(short = 'n', action = clap::ArgAction::Count, help_heading = "Input")]
    pub numeric: u8,

    /// Say on standard error what is read (files, filter) and how fast.
    #[arg(short = 'v', long, action = clap::ArgAction::Count, help_heading = "Input")]
    pub verbose: u8,

    // ---- Live capture -------------------------------------------------------------------
    /// Capture live from this interface (`any` for all) instead of reading files; needs
    /// CAP_NET_RAW and CAP_NET_ADMIN (root).
    #[arg(
        short = 'i',
        long,
        value_name = "INTERFACE",
        help_heading = "Live capture"
    )]
    pub interface: Option<String>,

    /// List the interfaces that can be captured on, and exit.
    #[arg(short = 'D', long, help_heading = "Live capture")]
    pub list_interfaces: bool,

    /// Live: stop after this long (`30s`, `5m`, `1h`, `1d`; at most 365 days).
    #[arg(long, value_name = "TIME", help_heading = "Live capture",
          value_parser = |s: &str| values::DURATION.parse_duration(s), allow_negative_numbers = true)]
    pub duration: Option<Duration>,

    /// Live: also save the captured packets (those the filter passes) to FILE as pcap,
    /// like tcpdump -w.
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        help_heading = "Live capture"
    )]
    pub write: Option<PathBuf>,

    /// Live: bytes captured per packet (68 to 262144, or 0 for 262144, as tcpdump).
    #[arg(short = 's', long, default_value = "262144", value_name = "SNAPLEN",
          help_heading = "Live capture", value_parser = values::snaplen)]
    pub snaplen: i32,

    /// Live: capture through an eBPF socket filter that leaves HTTP body bytes in the
    /// kernel (only their length comes up); needs CAP_BPF besides CAP_NET_RAW.
    #[arg(long, requires = "interface", help_heading = "Live capture")]
    pub ebpf: bool,

    /// Live: do not put the interface into promiscuous mode.
    #[arg(
        short = 'p',
        long = "no-promiscuous-mode",
        help_heading = "Live capture"
    )]
    pub no_promiscuous: bool,

    // ---- Output files -------------------------------------------------------------------
    /// Write one CSV row per connection to FILE (`-`: standard output; columns: docs/csv.md).
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub csv: Option<PathBuf>,

    /// Write one CSV row per HTTP request/response pair to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub transactions_csv: Option<PathBuf>,

    /// Write one JSON object per connection per line to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub json: Option<PathBuf>,

    /// Write one CSV row per server to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub servers_csv: Option<PathBuf>,

    /// Write the findings (problems found, with evidence and advice) as JSON lines to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub findings_json: Option<PathBuf>,

    /// Write a self-contained HTML report (timelines, distributions, findings) to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub html: Option<PathBuf>,

    /// Write the connection rows as typed Parquet columns to FILE (docs/csv.md, docs/scale.md).
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub parquet: Option<PathBuf>,

    /// Write the transaction rows as typed Parquet columns to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub transactions_parquet: Option<PathBuf>,

    /// Write the per-server rows as typed Parquet columns to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub servers_parquet: Option<PathBuf>,

    /// Live: close the connection and transaction Parquet files and start new ones this
    /// often (`10m`, `1h`; 1s to 365 days), each named FILE-<UTC start time>.parquet.
    #[arg(long, value_name = "TIME", help_heading = "Output files",
          value_parser = |s: &str| values::ROTATE.parse_duration(s), allow_negative_numbers = true)]
    pub rotate: Option<Duration>,

    /// Times in CSV files: `epoch` seconds with microseconds, or `iso` (RFC 3339, UTC, with
    /// microseconds, which spreadsheets read as dates). JSON always has epoch numbers.
    #[arg(long, value_name = "FORMAT", default_value = "epoch", help_heading = "Output files",
          value_parser = values::named::<TimeFormat>())]
    pub time_format: TimeFormat,

    // ---- Terminal report ----------------------------------------------------------------
    /// Print only the summary lines and the findings, no tables.
    #[arg(short, long, help_heading = "Terminal report")]
    pub quiet: bool,

    /// Print only the per-server table.
    #[arg(long, help_heading = "Terminal report", conflicts_with = "quiet")]
    pub servers: bool,

    /// Most rows each table shows.
    #[arg(long, default_value = "200", value_name = "N", help_heading = "Terminal report",
          value_parser = |s: &str| values::ROWS.parse_integer(s), allow_negative_numbers = true)]
    pub rows: u64,

    /// Show every column, however wide the terminal (by default the tables fit `COLUMNS`
    /// or the terminal's width, dropping the least important columns).
    #[arg(long, help_heading = "Terminal report")]
    pub wide: bool,

    /// Show only the connections with a keep-alive race, a broken promise, or any flag
    /// (repeatable or comma-separated: any of them).
    #[arg(long, value_name = "WHAT", value_delimiter = ',', help_heading = "Terminal report",
          value_parser = values::named::<Only>())]
    pub only: Vec<Only>,

    /// Order the connection table by this column (numbers: largest first).
    #[arg(long, value_name = "COLUMN", default_value = "stream", help_heading = "Terminal report",
          value_parser = values::named::<SortKey>())]
    pub sort: SortKey,

    /// Never draw the progress bar.
    #[arg(long, help_heading = "Terminal report")]
    pub no_progress: bool,

    // ---- Analysis -----------------------------------------------------------------------
    /// Exit with status 1 when a server broke a Keep-Alive promise (`violation`), when a
    /// keep-alive race was seen (`race`), or either (`any`).
    #[arg(long, value_name = "WHAT", help_heading = "Analysis")]
    pub fail_on: Option<FailOn>,

    /// An idle close this long before the advertised timeout still honours it (0 to 1h).
    #[arg(long, default_value = "0.1s", value_name = "TIME", help_heading = "Analysis",
          value_parser = |s: &str| values::TOLERANCE.parse_duration(s), allow_negative_numbers = true)]
    pub timeout_tolerance: Duration,

    /// An unanswered request sent up to this long before the server's idle close counts as
    /// a keep-alive race (0 to 1h).
    #[arg(long, default_value = "1s", value_name = "TIME", help_heading = "Analysis",
          value_parser = |s: &str| values::TOLERANCE.parse_duration(s), allow_negative_numbers = true)]
    pub race_window: Duration,

    /// Out-of-order bytes buffered per direction before a hole is given up (16KiB to 1GiB).
    #[arg(long, default_value = "4MiB", value_name = "SIZE", help_heading = "Analysis",
          value_parser = |s: &str| values::REASSEMBLY.parse_size(s))]
    pub reassembly_limit: usize,

    /// Time without packets after which an open connection is written out as evicted
    /// (1s to 365 days; plain numbers are seconds).
    #[arg(long, default_value = "300s", value_name = "TIME", help_heading = "Analysis",
          value_parser = |s: &str| values::IDLE.parse_duration(s), allow_negative_numbers = true)]
    pub idle_timeout: Duration,

    /// Memory the connection table may use (8MiB to 1TiB; e.g. 512MiB, 2G); past it the
    /// connections idle the longest are written out early, flagged memory-budget.
    #[arg(long, default_value = "512MiB", value_name = "SIZE", help_heading = "Analysis",
          value_parser = |s: &str| values::MEMORY.parse_size(s))]
    pub max_memory: usize,

    /// Threads (1 to 256; default for files: the machine's cores, at most 8; live: 1). Files:
    /// one reads ahead, one analyses, or (3 and more) one routes frames to the others, each
    /// analysing a share of the connections (by address and port); live: one captures. The
    /// output is the same as with 1, unless --max-memory is reached (each analysing thread
    /// keeps to its share of it). --ebpf uses one.
    #[arg(short = 'j', long, value_name = "N", help_heading = "Analysis",
          value_parser = |s: &str| values::THREADS.parse_integer(s), allow_negative_numbers = true)]
    pub threads: Option<u64>,
}

impl Cli {
    /// The threads `--threads` asks for, or the default: the machine's cores, at most 8.
    pub fn threads(&self) -> usize {
        match self.threads {
            Some(threads) => threads as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Violation,
    Race,
    Any,
}

/// `--version`: kascope's and libpcap's, as tcpdump prints them.
fn long_version() -> String {
    format!(
        "{}\n{}",
        env!("CARGO_PKG_VERSION"),
        crate::source::libpcap_version()
    )
}
