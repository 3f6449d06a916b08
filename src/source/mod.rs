//! Where frames come from. Every way of getting frames — saved capture files (read by
//! `capfile`, decompressed by `input`), a live interface through libpcap — is a
//! [`FrameSource`]: it yields [`SourceEvent`]s one at a time, and [`crate::driver::run`]
//! runs any source through the pipeline. Each frame carries its own link type and a
//! timestamp in nanoseconds.
//!
//! To add a source (another capture mechanism), implement [`FrameSource`] in a file of its
//! own here and open it from the command line's wiring.

mod capfile;
#[cfg(all(feature = "ebpf", target_os = "linux"))]
mod ebpf;
mod file;
mod input;
mod live;
mod readahead;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use file::FileSource;
pub use live::{LiveOptions, LiveSource, list_interfaces, live_filter};

/// A live capture through the eBPF socket filter that sheds the payload the analysis does
/// not need (`--ebpf`), or why it cannot be had here.
pub fn open_ebpf(options: &LiveOptions) -> Result<Box<dyn FrameSource>, SourceError> {
    #[cfg(all(feature = "ebpf", target_os = "linux"))]
    return Ok(Box::new(ebpf::EbpfSource::open(options)?));
    #[cfg(not(all(feature = "ebpf", target_os = "linux")))]
    Err(SourceError {
        input: options.interface.clone(),
        message: "this kascope was built without the eBPF capture path (cargo feature \
                  'ebpf', Linux only, needs clang and libbpf-dev to build); capture through \
                  libpcap instead (the same command without --ebpf)"
            .into(),
    })
}

/// A link-layer type: the `LINKTYPE_`/DLT number a capture gives its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Linktype(pub i32);

impl Linktype {
    /// BSD loopback: a 4-byte address family, then IP.
    pub const NULL: Linktype = Linktype(0);
    pub const ETHERNET: Linktype = Linktype(1);
    /// Raw IP as libpcap on Linux reports `LINKTYPE_RAW` (DLT_RAW is 12 there, 14 on BSDs).
    pub const RAW: Linktype = Linktype(12);
    pub const RAW_BSD: Linktype = Linktype(14);
    /// `LINKTYPE_RAW` as written in files.
    pub const RAW_FILE: Linktype = Linktype(101);
    pub const IEEE802_11: Linktype = Linktype(105);
    /// OpenBSD loopback: like NULL.
    pub const LOOP: Linktype = Linktype(108);
    /// Linux cooked capture v1 (`-i any` before libpcap 1.10).
    pub const LINUX_SLL: Linktype = Linktype(113);
    pub const IEEE802_11_RADIOTAP: Linktype = Linktype(127);
    pub const IPV4: Linktype = Linktype(228);
    pub const IPV6: Linktype = Linktype(229);
    pub const NFLOG: Linktype = Linktype(239);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: Linktype = Linktype(276);
}

impl fmt::Display for Linktype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time in nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub link_type: Linktype,
    /// The captured bytes (possibly fewer than were on the wire: snaplen).
    pub data: &'a [u8],
    /// The shared buffer `data` lies in, for a source whose frames may be read by other
    /// threads later (`--threads`: holding it keeps the bytes in place); `None` (live
    /// captures) when the bytes are gone at the next frame.
    pub buffer: Option<&'a Arc<Vec<u8>>>,
}

/// What a source reports.
#[derive(Debug)]
pub enum SourceEvent<'a> {
    Frame(Frame<'a>),
    /// Wall-clock time (ns since the epoch), about every 100 ms of a live capture whether or
    /// not traffic flows, so that idle connections are evicted and the status line updated.
    Tick(u64),
    /// The kernel's count of packets it dropped rose to this total.
    KernelDrops(u64),
    /// Part of the input could not be read (a file cut short); reading goes on after it.
    Damage(String),
    /// Nothing to hand out this time — an input file ended, or no packet is waiting yet —
    /// ask again. (A frame borrows from the source, so a source cannot loop past an empty
    /// read and then lend out a frame in the same call.)
    Pending,
}

/// Why a source could not be opened or read at all.
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

/// libpcap's own words for an error, without the crate's wrapping.
fn pcap_message(err: &pcap::Error) -> String {
    match err {
        pcap::Error::PcapError(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The one value that flows back to a source: direction `src` → `dst` of a connection
/// needs no payload with sequence numbers in `[lo, hi)` (body bytes the analysis only
/// counts), or, with `range` `None`, needs all of it again. A source that can shed payload
/// (`--ebpf`) delivers such segments as their headers only; the pipeline then reads the
/// missing payload as known and skipped. A segment that comes before the source acted on
/// the hint just comes with its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShedHint {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// `(lo, hi)` sequence numbers, wrapping.
    pub range: Option<(u32, u32)>,
}

/// Bytes a live source saw go by and handed to user space.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Frame bytes on the wire, as the kernel reported their length.
    pub wire_bytes: u64,
    /// Frame bytes that reached user space.
    pub delivered_bytes: u64,
}

/// libpcap's version line, e.g. `libpcap version 1.10.3 (with TPACKET_V3)`.
pub fn libpcap_version() -> String {
    unsafe extern "C" {
        fn pcap_lib_version() -> *const std::ffi::c_char;
    }
    // SAFETY: libpcap returns a pointer to a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(pcap_lib_version()) }
        .to_string_lossy()
        .into_owned()
}

/// Anything frames come from.
pub trait FrameSource {
    /// The next event, or `None` when the input is over.
    fn next_event(&mut self) -> Result<Option<SourceEvent<'_>>, SourceError>;

    /// Bytes of input consumed so far and in all, when the size is known (for progress).
    fn progress(&self) -> (u64, Option<u64>) {
        (0, None)
    }

    /// Acts on a hint from the analysis. Sources that cannot shed payload ignore it.
    fn shed(&mut self, _hint: &ShedHint) {}

    /// Frame bytes seen on the wire and delivered so far (live sources).
    fn delivery(&self) -> Option<Delivery> {
        None
    }

    /// CPU time spent so far by threads of the source's own that read its input ahead.
    fn read_ahead_cpu(&self) -> Option<Duration> {
        None
    }
}
