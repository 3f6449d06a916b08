//! Where frames come from: saved capture files (pcap, pcapng, stdin) read through libpcap.
//!
//! A [`Source`] hands out one [`Frame`] at a time, borrowed from libpcap's buffer, so nothing
//! is copied on the way in. Several files given together are read one after the other as
//! one capture (like `mergecap -a`): a connection may start in one file and end in the next,
//! which is what rotated captures (`tcpdump -C`/`-G`) need.

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use pcap::{Activated, Capture, Precision};

/// One captured frame, borrowed from the reader.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time in nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// libpcap's DLT value for this frame's link layer.
    pub link_type: i32,
    /// The captured bytes (possibly fewer than were on the wire: snaplen).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub wire_len: u32,
}

/// Why a capture could not be opened or read at all.
#[derive(Debug)]
pub struct SourceError {
    pub input: String,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.input, self.message)
    }
}

impl std::error::Error for SourceError {}

/// Reads the given capture files in order, applying an optional BPF filter to each.
pub struct Source {
    inputs: Vec<PathBuf>,
    filter: Option<String>,
    current: Option<Opened>,
    next_input: usize,
    /// Bytes of capture records consumed so far, an estimate of the file offset for progress.
    pub bytes_read: u64,
    pub frames_read: u64,
}

struct Opened {
    name: String,
    capture: Capture<dyn Activated>,
    link_type: i32,
}

/// Size of a pcap record header; pcapng blocks are a little larger, close enough for progress.
const RECORD_HEADER_LEN: u64 = 16;

impl Source {
    /// Opens the first input at once, so an unreadable file or a bad filter fails early.
    pub fn open(inputs: Vec<PathBuf>, filter: Option<String>) -> Result<Source, SourceError> {
        let mut source = Source {
            inputs,
            filter,
            current: None,
            next_input: 0,
            bytes_read: 0,
            frames_read: 0,
        };
        source.open_next()?;
        Ok(source)
    }

    /// Total size of the input files that are regular files (for a progress bar).
    pub fn total_bytes(&self) -> Option<u64> {
        let mut total = 0;
        for input in &self.inputs {
            let meta = std::fs::metadata(input).ok()?;
            if !meta.is_file() {
                return None;
            }
            total += meta.len();
        }
        Some(total)
    }

    fn open_next(&mut self) -> Result<bool, SourceError> {
        self.current = None;
        let Some(path) = self.inputs.get(self.next_input) else {
            return Ok(false);
        };
        self.next_input += 1;
        let opened = open_offline(path, self.filter.as_deref())?;
        self.current = Some(opened);
        Ok(true)
    }

    /// Reads every frame of every input in order, handing each to `on_frame` (which may stop
    /// the reading early). Damage inside a file is reported to `on_damage` and reading goes
    /// on with the next file; an input that cannot be opened at all is an error.
    pub fn run(
        &mut self,
        mut on_frame: impl FnMut(Frame<'_>) -> ControlFlow<()>,
        mut on_damage: impl FnMut(String),
    ) -> Result<(), SourceError> {
        while let Some(opened) = self.current.as_mut() {
            let damage = loop {
                match opened.capture.next_packet() {
                    Ok(packet) => {
                        let header = packet.header;
                        self.bytes_read += RECORD_HEADER_LEN + u64::from(header.caplen);
                        self.frames_read += 1;
                        // With nanosecond precision libpcap puts nanoseconds in tv_usec.
                        let ts_ns = (header.ts.tv_sec as u64)
                            .wrapping_mul(1_000_000_000)
                            .wrapping_add(header.ts.tv_usec as u64);
                        let frame = Frame {
                            ts_ns,
                            link_type: opened.link_type,
                            data: packet.data,
                            wire_len: header.len,
                        };
                        if on_frame(frame).is_break() {
                            return Ok(());
                        }
                    }
                    Err(pcap::Error::NoMorePackets) => break None,
                    Err(err) => {
                        break Some(format!("{}: {}", opened.name, describe_read_error(&err)));
                    }
                }
            };
            if let Some(message) = damage {
                on_damage(message);
            }
            self.open_next()?;
        }
        Ok(())
    }
}

fn describe_read_error(err: &pcap::Error) -> String {
    match err {
        pcap::Error::PcapError(text) if text.contains("truncated") => {
            format!("file is cut short ({text}); results cover the packets before the cut")
        }
        other => format!("read error ({other}); results cover the packets before it"),
    }
}

fn open_offline(path: &Path, filter: Option<&str>) -> Result<Opened, SourceError> {
    let name = path.display().to_string();
    let fail = |message: String| SourceError {
        input: name.clone(),
        message,
    };
    if name != "-" {
        match std::fs::metadata(path) {
            Err(err) => return Err(fail(format!("cannot open: {err}"))),
            Ok(meta) if meta.is_dir() => return Err(fail("is a directory".into())),
            Ok(meta) if meta.len() == 0 => {
                return Err(fail("empty file, not a capture".into()));
            }
            Ok(_) => {}
        }
    }
    let capture = if name != "-" && is_gzip(path) {
        open_gzip(path).map_err(&fail)?
    } else {
        Capture::from_file_with_precision(path, Precision::Nano).map_err(|err| {
            fail(format!(
                "not a readable pcap/pcapng capture: {}",
                strip(&err)
            ))
        })?
    };
    let mut capture: Capture<dyn Activated> = capture.into();
    if let Some(expr) = filter {
        capture
            .filter(expr, true)
            .map_err(|err| fail(format!("bad filter expression '{expr}': {}", strip(&err))))?;
    }
    let link_type = capture.get_datalink().0;
    Ok(Opened {
        name,
        capture,
        link_type,
    })
}

/// Reads a gzip-compressed capture by decompressing it on a thread into a pipe that libpcap
/// reads, so the file is never held whole in memory or written out.
fn open_gzip(path: &Path) -> Result<Capture<pcap::Offline>, String> {
    use std::os::fd::IntoRawFd;
    let file = std::fs::File::open(path).map_err(|err| format!("cannot open: {err}"))?;
    let (reader, mut writer) =
        std::io::pipe().map_err(|err| format!("cannot make a pipe: {err}"))?;
    std::thread::spawn(move || {
        let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
        // A corrupt stream just ends the pipe early; libpcap then reports the file cut short.
        let _ = std::io::copy(&mut decoder, &mut writer);
    });
    // SAFETY: into_raw_fd gives up ownership, so the capture is the descriptor's sole owner.
    unsafe { Capture::from_raw_fd_with_precision(reader.into_raw_fd(), Precision::Nano) }.map_err(
        |err| {
            format!(
                "gzip-compressed, but not a pcap/pcapng inside: {}",
                strip(&err)
            )
        },
    )
}

fn strip(err: &pcap::Error) -> String {
    match err {
        pcap::Error::PcapError(text) => text.clone(),
        other => other.to_string(),
    }
}

fn is_gzip(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|_| magic == [0x1f, 0x8b])
        .unwrap_or(false)
}

/// Live capture settings, tcpdump style.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub interface: String,
    /// The user's BPF expression; it is combined with `tcp`, all the analysis needs.
    pub filter: Option<String>,
    pub snaplen: i32,
    pub promiscuous: bool,
}

/// What a live capture reports besides frames.
pub enum LiveEvent<'a> {
    Frame(Frame<'a>),
    /// About every 100 ms, with or without traffic: the time now (ns since the epoch) and
    /// the packets the kernel dropped so far.
    Tick {
        now_ns: u64,
        kernel_drops: u64,
    },
}

/// A capture from a network interface.
pub struct Live {
    capture: Capture<pcap::Active>,
    link_type: i32,
    pub interface: String,
}

/// Names and descriptions of the interfaces libpcap can capture on (`-D`).
pub fn list_interfaces() -> Result<Vec<(String, Option<String>)>, String> {
    pcap::Device::list()
        .map(|devices| devices.into_iter().map(|d| (d.name, d.desc)).collect())
        .map_err(|err| strip(&err))
}

/// The full BPF filter for a live capture: `tcp`, and the user's expression if any.
pub fn live_filter(user: Option<&str>) -> String {
    match user {
        Some(expr) => format!("tcp and ({expr})"),
        None => "tcp".to_string(),
    }
}

fn privilege_hint(message: &str) -> Option<String> {
    let lowered = message.to_ascii_lowercase();
    (lowered.contains("operation not permitted") || lowered.contains("permission denied")).then(
        || {
            format!(
                "capturing needs the CAP_NET_RAW and CAP_NET_ADMIN capabilities ({message}); \
                 run it with sudo, or grant them once with \
                 'sudo setcap cap_net_raw,cap_net_admin=eip {}'",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "kascope".into())
            )
        },
    )
}

fn with_interfaces(message: String) -> String {
    match list_interfaces() {
        Ok(list) if !list.is_empty() => {
            let names: Vec<String> = list.into_iter().map(|(name, _)| name).collect();
            format!("{message}; interfaces: {}", names.join(", "))
        }
        _ => message,
    }
}

impl Live {
    /// Opens the interface. A missing privilege, an unknown interface and a bad filter each
    /// give one clear message (with the list of interfaces where it helps).
    pub fn open(options: &LiveOptions) -> Result<Live, SourceError> {
        let fail = |message: String| SourceError {
            input: options.interface.clone(),
            message,
        };
        let inactive = Capture::from_device(options.interface.as_str())
            .map_err(|err| fail(with_interfaces(strip(&err))))?;
        // Non-blocking: with immediate mode libpcap's read timeout does not fire on an idle
        // interface, and the loop must wake up for signals, eviction and the status line.
        let mut capture = inactive
            .promisc(options.promiscuous)
            .snaplen(options.snaplen)
            .immediate_mode(true)
            .buffer_size(32 << 20)
            .precision(Precision::Nano)
            .open()
            .and_then(|capture| capture.setnonblock())
            .map_err(|err| {
                let message = strip(&err);
                fail(privilege_hint(&message).unwrap_or_else(|| with_interfaces(message)))
            })?;
        let filter = live_filter(options.filter.as_deref());
        capture
            .filter(&filter, true)
            .map_err(|err| fail(format!("bad filter expression '{filter}': {}", strip(&err))))?;
        let link_type = capture.get_datalink().0;
        Ok(Live {
            capture,
            link_type,
            interface: options.interface.clone(),
        })
    }

    /// Captures until `on_event` breaks. Errors after the start end the capture with a message.
    pub fn run(
        &mut self,
        mut on_event: impl FnMut(LiveEvent<'_>) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let mut last_tick = std::time::Instant::now();
        let mut kernel_drops = 0;
        loop {
            match self.capture.next_packet() {
                Ok(packet) => {
                    let header = packet.header;
                    let frame = Frame {
                        ts_ns: (header.ts.tv_sec as u64)
                            .wrapping_mul(1_000_000_000)
                            .wrapping_add(header.ts.tv_usec as u64),
                        link_type: self.link_type,
                        data: packet.data,
                        wire_len: header.len,
                    };
                    if on_event(LiveEvent::Frame(frame)).is_break() {
                        return Ok(());
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    // Nothing waiting: a short nap keeps an idle capture off the CPU.
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(err) => {
                    return Err(SourceError {
                        input: self.interface.clone(),
                        message: format!("capture stopped: {}", strip(&err)),
                    });
                }
            }
            if last_tick.elapsed() >= std::time::Duration::from_millis(100) {
                last_tick = std::time::Instant::now();
                if let Ok(stats) = self.capture.stats() {
                    kernel_drops = u64::from(stats.dropped) + u64::from(stats.if_dropped);
                }
                let now_ns = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                if on_event(LiveEvent::Tick {
                    now_ns,
                    kernel_drops,
                })
                .is_break()
                {
                    return Ok(());
                }
            }
        }
    }
}
