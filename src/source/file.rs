//! Saved capture files (pcap, pcapng, stdin, gzip) read through libpcap.
//!
//! A [`FileSource`] hands out one [`Frame`] at a time, borrowed from libpcap's buffer, so
//! nothing is copied on the way in. Several files given together are read one after the
//! other as one capture (like `mergecap -a`): a connection may start in one file and end in
//! the next, which is what rotated captures (`tcpdump -C`/`-G`) need.

use std::path::{Path, PathBuf};

use pcap::{Activated, Capture, Precision};

use super::{Frame, FrameSource, Linktype, SourceError, SourceEvent, pcap_message};

/// Reads the given capture files in order, applying an optional BPF filter to each.
pub struct FileSource {
    inputs: Vec<PathBuf>,
    filter: Option<String>,
    current: Option<Opened>,
    next_input: usize,
    /// The current file is read to its end: the next call opens the next one.
    at_end: bool,
    /// Bytes of capture records consumed so far, an estimate of the file offset for progress.
    bytes_read: u64,
    total_bytes: Option<u64>,
}

struct Opened {
    name: String,
    capture: Capture<dyn Activated>,
    link_type: Linktype,
}

/// Size of a pcap record header; pcapng blocks are a little larger, close enough for progress.
const RECORD_HEADER_LEN: u64 = 16;

impl FileSource {
    /// Opens the first input at once, so an unreadable file or a bad filter fails early.
    pub fn open(inputs: Vec<PathBuf>, filter: Option<String>) -> Result<FileSource, SourceError> {
        let total_bytes = total_size(&inputs);
        let mut source = FileSource {
            inputs,
            filter,
            current: None,
            next_input: 0,
            at_end: false,
            bytes_read: 0,
            total_bytes,
        };
        source.open_next()?;
        Ok(source)
    }

    fn open_next(&mut self) -> Result<(), SourceError> {
        self.current = None;
        if let Some(path) = self.inputs.get(self.next_input) {
            self.next_input += 1;
            self.current = Some(open_offline(path, self.filter.as_deref())?);
        }
        Ok(())
    }
}

/// Total size of the inputs when all are regular files (for a progress bar).
fn total_size(inputs: &[PathBuf]) -> Option<u64> {
    let mut total = 0;
    for input in inputs {
        let meta = std::fs::metadata(input).ok()?;
        if !meta.is_file() {
            return None;
        }
        total += meta.len();
    }
    Some(total)
}

impl FrameSource for FileSource {
    /// Frames of every input in order. Damage inside a file is reported and reading goes on
    /// with the next file; an input that cannot be opened at all is an error.
    fn next_event(&mut self) -> Result<Option<SourceEvent<'_>>, SourceError> {
        if self.at_end {
            self.at_end = false;
            self.open_next()?;
        }
        let Some(opened) = self.current.as_mut() else {
            return Ok(None);
        };
        match opened.capture.next_packet() {
            Ok(packet) => {
                let header = packet.header;
                self.bytes_read += RECORD_HEADER_LEN + u64::from(header.caplen);
                // With nanosecond precision libpcap puts nanoseconds in tv_usec.
                let ts_ns = (header.ts.tv_sec as u64)
                    .wrapping_mul(1_000_000_000)
                    .wrapping_add(header.ts.tv_usec as u64);
                Ok(Some(SourceEvent::Frame(Frame {
                    ts_ns,
                    link_type: opened.link_type,
                    data: packet.data,
                })))
            }
            Err(pcap::Error::NoMorePackets) => {
                self.at_end = true;
                Ok(Some(SourceEvent::Pending))
            }
            Err(err) => {
                self.at_end = true;
                let message = format!("{}: {}", opened.name, describe_read_error(&err));
                Ok(Some(SourceEvent::Damage(message)))
            }
        }
    }

    fn progress(&self) -> (u64, Option<u64>) {
        (self.bytes_read, self.total_bytes)
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
                pcap_message(&err)
            ))
        })?
    };
    let mut capture: Capture<dyn Activated> = capture.into();
    if let Some(expr) = filter {
        capture.filter(expr, true).map_err(|err| {
            fail(format!(
                "bad filter expression '{expr}': {}",
                pcap_message(&err)
            ))
        })?;
    }
    let link_type = Linktype(capture.get_datalink().0);
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
                pcap_message(&err)
            )
        },
    )
}

fn is_gzip(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|_| magic == [0x1f, 0x8b])
        .unwrap_or(false)
}
