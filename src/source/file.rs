//! Saved capture files (pcap, pcapng; plain, gzip, zstd or xz; files or standard input).
//!
//! A [`FileSource`] hands out one [`Frame`] at a time, borrowed from the reader's buffer, so
//! nothing is copied on the way in. Each frame carries its own interface's link type and a
//! timestamp already in nanoseconds, so a pcapng file mixing interfaces (`dumpcap -i eth0 -i
//! lo`) reads whole. Several files given together are read one after the other as one
//! capture (like `mergecap -a`): a connection may start in one file and end in the next,
//! which is what rotated captures (`tcpdump -C`/`-G`) need.
//!
//! A BPF filter is compiled by libpcap once per link type met, for a capture that is not
//! open (`pcap_open_dead`), and run on each frame's bytes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pcap::{BpfProgram, Capture};

use super::capfile::{CaptureReader, Next, OpenError, dlt_of};
use super::input::{self, Compression};
use super::{FrameSource, Linktype, SourceError, SourceEvent, pcap_message};

/// Reads the given capture files in order, applying an optional BPF filter to each.
pub struct FileSource {
    inputs: Vec<PathBuf>,
    filter: Option<Filter>,
    current: Option<Opened>,
    next_input: usize,
    /// The current file is read to its end: the next call opens the next one.
    at_end: bool,
    /// Raw bytes read from the files done so far, and the counter of the current one.
    bytes_done: u64,
    total_bytes: Option<u64>,
    /// A warning to hand out before the next frame.
    warning: Option<String>,
    /// Each file is read ahead by a thread of its own ([`FileSource::read_ahead`]).
    read_ahead: bool,
    /// CPU time the threads reading the files done so far ahead spent.
    read_ahead_cpu_done: Duration,
}

struct Opened {
    name: String,
    reader: CaptureReader,
    raw_read: Arc<AtomicU64>,
}

/// A BPF program compiled for one link type.
struct Program(BpfProgram);

// SAFETY: a compiled BPF program is plain heap memory (the instruction array) that libpcap
// neither shares nor changes after `pcap_compile`; moving it to another thread is sound.
unsafe impl Send for Program {}

/// libpcap's `struct bpf_program`.
#[repr(C)]
struct RawProgram {
    bf_len: std::ffi::c_uint,
    bf_insns: *const pcap::BpfInstruction,
}

/// libpcap's `struct pcap_pkthdr` (the `struct timeval` of Linux and the BSDs).
#[repr(C)]
struct PacketHeader {
    tv_sec: std::ffi::c_long,
    tv_usec: std::ffi::c_long,
    caplen: u32,
    len: u32,
}

unsafe extern "C" {
    fn pcap_offline_filter(
        program: *const RawProgram,
        header: *const PacketHeader,
        packet: *const u8,
    ) -> std::ffi::c_int;
}

impl Program {
    /// Whether the program accepts a packet of `data` captured out of `wire_len` bytes on the
    /// wire: filters on the length (`greater`, `less`, `len`) see the wire length, as libpcap
    /// reading a file gives them (the pcap crate's `BpfProgram::filter` gives the captured one).
    fn accepts(&self, data: &[u8], wire_len: u32) -> bool {
        let instructions = self.0.get_instructions();
        let program = RawProgram {
            bf_len: instructions.len() as std::ffi::c_uint,
            bf_insns: instructions.as_ptr(),
        };
        let header = PacketHeader {
            tv_sec: 0,
            tv_usec: 0,
            caplen: data.len() as u32,
            len: wire_len,
        };
        // SAFETY: `program` points at the compiled instructions, alive while `self` is;
        // `header.caplen` is the length of `data`, which libpcap reads no further than.
        unsafe { pcap_offline_filter(&program, &header, data.as_ptr()) > 0 }
    }
}

/// The user's filter expression and its programs by link type (`None`: it does not compile
/// for that link type, and that link type's frames are left out).
struct Filter {
    expression: String,
    programs: Vec<(Linktype, Option<Program>)>,
    /// Why the filter does not apply to a link type met since the last frame.
    refused: Option<String>,
}

impl Filter {
    /// Compiles the expression for `link_type` unless that was done already.
    fn compile(&mut self, link_type: Linktype) -> Result<(), String> {
        if self.programs.iter().any(|(link, _)| *link == link_type) {
            return Ok(());
        }
        let compiled = Capture::dead(pcap::Linktype(dlt_of(link_type).0))
            .and_then(|dead| dead.compile(&self.expression, true));
        match compiled {
            Ok(program) => {
                self.programs.push((link_type, Some(Program(program))));
                Ok(())
            }
            Err(err) => {
                self.programs.push((link_type, None));
                Err(pcap_message(&err))
            }
        }
    }

    fn accepts(&self, link_type: Linktype, data: &[u8], wire_len: u32) -> bool {
        self.programs
            .iter()
            .find(|(link, _)| *link == link_type)
            .is_some_and(|(_, program)| program.as_ref().is_some_and(|p| p.accepts(data, wire_len)))
    }
}

impl FileSource {
    /// Opens the first input at once, so an unreadable file or a bad filter fails early.
    pub fn open(inputs: Vec<PathBuf>, filter: Option<String>) -> Result<FileSource, SourceError> {
        let total_bytes = total_size(&inputs);
        let mut source = FileSource {
            inputs,
            filter: filter.map(|expression| Filter {
                expression,
                programs: Vec::new(),
                refused: None,
            }),
            current: None,
            next_input: 0,
            at_end: false,
            bytes_done: 0,
            total_bytes,
            warning: None,
            read_ahead: false,
            read_ahead_cpu_done: Duration::ZERO,
        };
        source.open_next()?;
        Ok(source)
    }

    /// Reads a capture from any byte stream (compressed or not), named `name` in messages:
    /// what the fuzzers and tests use to read bytes held in memory.
    pub fn from_reader(
        name: &str,
        bytes: Box<dyn Read + Send>,
        filter: Option<String>,
    ) -> Result<FileSource, SourceError> {
        let mut source = FileSource::open(Vec::new(), filter)?;
        source.current = Some(source.start(name.to_string(), input::wrap(bytes))?);
        Ok(source)
    }

    /// From now on (the file being read included) each file is read ahead by a thread of
    /// its own, while the caller's thread takes the records: `--threads` 2 and more.
    pub fn read_ahead(&mut self) {
        self.read_ahead = true;
        if let Some(opened) = &mut self.current {
            opened.reader.read_ahead();
        }
    }

    fn open_next(&mut self) -> Result<(), SourceError> {
        if let Some(done) = self.current.take() {
            self.bytes_done += done.raw_read.load(Ordering::Relaxed);
            self.read_ahead_cpu_done += done.reader.read_ahead_cpu().unwrap_or_default();
        }
        if let Some(path) = self.inputs.get(self.next_input).cloned() {
            self.next_input += 1;
            let name = path.display().to_string();
            let input = open_input(&path).map_err(|message| SourceError {
                input: name.clone(),
                message,
            })?;
            self.current = Some(self.start(name, input)?);
        }
        Ok(())
    }

    /// Reads the file header and compiles the filter for the link types it starts with.
    fn start(&mut self, name: String, input: input::Input) -> Result<Opened, SourceError> {
        let fail = |message: String| SourceError {
            input: name.clone(),
            message,
        };
        let compression = input.compression;
        let mut reader = CaptureReader::open(input.bytes).map_err(|err| {
            fail(match (err, compression) {
                (OpenError::NotACapture(reason), Compression::None) => {
                    format!("not a readable pcap/pcapng capture: {reason}")
                }
                (OpenError::NotACapture(reason), kind) => format!(
                    "{}-compressed, but not a pcap/pcapng inside: {reason}",
                    kind.name()
                ),
                (OpenError::Unreadable(err), Compression::None) => format!("read error: {err}"),
                (OpenError::Unreadable(err), kind) => format!(
                    "{}-compressed, but the stream cannot be read ({err}): the file is cut \
                     short or damaged before its first packets",
                    kind.name()
                ),
            })
        })?;
        if let Some(filter) = &mut self.filter {
            // pcap names its link type in the header; the first pcapng interfaces come with
            // the first packets and are compiled for as they appear.
            for link_type in reader.link_types() {
                filter.compile(link_type).map_err(|message| {
                    fail(format!(
                        "bad filter expression '{}': {message}",
                        filter.expression
                    ))
                })?;
            }
        }
        if self.read_ahead {
            reader.read_ahead();
        }
        Ok(Opened {
            name,
            reader,
            raw_read: input.raw_read,
        })
    }
}

/// Opens one input file (or `-`), with a clear reason when it cannot be a capture at all.
fn open_input(path: &Path) -> Result<input::Input, String> {
    if path.as_os_str() != "-" {
        match std::fs::metadata(path) {
            Err(err) => return Err(format!("cannot open: {err}")),
            Ok(meta) if meta.is_dir() => return Err("is a directory".into()),
            Ok(meta) if meta.len() == 0 => return Err("empty file, not a capture".into()),
            Ok(_) => {}
        }
    }
    input::open(path).map_err(|err| format!("cannot open: {err}"))
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
        if let Some(warning) = self.warning.take() {
            return Ok(Some(SourceEvent::Damage(warning)));
        }
        let Some(opened) = self.current.as_mut() else {
            return Ok(None);
        };
        let filter = &mut self.filter;
        let next = opened
            .reader
            .next(|link_type, data, wire_len| match filter {
                None => true,
                Some(filter) => {
                    if let Err(message) = filter.compile(link_type) {
                        filter.refused = Some(format!(
                            "{}: the filter '{}' does not apply to link type {link_type} \
                         ({message}): its frames are left out",
                            opened.name, filter.expression
                        ));
                    }
                    filter.accepts(link_type, data, wire_len)
                }
            });
        if let Some(filter) = &mut self.filter {
            self.warning = filter.refused.take();
        }
        match next {
            Next::Frame(frame) => Ok(Some(SourceEvent::Frame(frame))),
            Next::End => {
                self.at_end = true;
                Ok(Some(SourceEvent::Pending))
            }
            Next::Damage(message) => {
                self.at_end = true;
                Ok(Some(SourceEvent::Damage(format!(
                    "{}: {message}",
                    opened.name
                ))))
            }
        }
    }

    fn progress(&self) -> (u64, Option<u64>) {
        let current = self
            .current
            .as_ref()
            .map_or(0, |opened| opened.raw_read.load(Ordering::Relaxed));
        (self.bytes_done + current, self.total_bytes)
    }

    fn read_ahead_cpu(&self) -> Option<Duration> {
        let current = self
            .current
            .as_ref()
            .and_then(|opened| opened.reader.read_ahead_cpu());
        self.read_ahead
            .then(|| self.read_ahead_cpu_done + current.unwrap_or_default())
    }
}
