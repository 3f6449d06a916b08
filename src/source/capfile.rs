//! The capture file formats, read by hand from any byte stream: classic pcap (micro- and
//! nanosecond, either byte order, the "modified" variant) and pcapng (every section and
//! interface, either byte order, each interface's own link type, timestamp resolution and
//! offset). libpcap 1.10 refuses pcapng files whose interfaces differ in link type, which
//! is what `dumpcap -i eth0 -i lo` and Wireshark merges write; this reader takes them.
//!
//! Records are read into one large buffer (1 MiB, grown only for a record larger than that)
//! and handed out as slices of it: nothing is copied per packet and nothing allocated. The
//! buffer is shared ([`Frame::buffer`]) so that `--threads` can hand the frames in it to
//! other threads as they are; the reader then refills another buffer instead of writing
//! over one still read elsewhere. With [`CaptureReader::read_ahead`] the buffers are read
//! by a thread of its own ([`ReadAhead`]) and taken as they come.

use std::io::{self, Read};
use std::sync::Arc;

use super::input::read_full;
use super::readahead::{self, Chunk, ReadAhead};
use super::{Frame, Linktype};

/// The largest record accepted. libpcap's limit is 256 KiB of packet; GRO/BIG TCP captures
/// hold larger frames, and pcapng blocks carry options, so allow well above that. A record
/// claiming more is damage (a corrupt length), not a reason to allocate gigabytes.
pub(super) const MAX_RECORD: usize = 16 << 20;

/// The buffer records are read into: it starts small (a small file needs no more) and
/// doubles as the input proves larger, up to `BUFFER`, before any growth for a larger record.
const FIRST_BUFFER: usize = 64 << 10;
const BUFFER: usize = 1 << 20;

/// Buffers kept for reuse once every thread reading their frames lets go of them: more than
/// `--threads` keeps in flight, so that none is allocated (and its pages faulted in) again.
const SPARE_BUFFERS: usize = 16;

/// One interface of a pcapng section, or the one link of a pcap file.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: Linktype,
    snaplen: u32,
    /// Timestamp units per second (10^6 unless the file says otherwise).
    units_per_second: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_s: i64,
}

#[derive(Debug)]
enum Format {
    Pcap {
        big_endian: bool,
        /// Record header length: 16, or 24 in the "modified" (Kuznetzov) format.
        record_header: usize,
        interface: Interface,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Why an input could not be opened as a capture.
pub(super) enum OpenError {
    /// The bytes are not pcap or pcapng: why.
    NotACapture(String),
    /// The bytes could not be read (a damaged or cut compressed stream): the error.
    Unreadable(String),
}

/// What the next record turned out to be.
pub(super) enum Next<'a> {
    Frame(Frame<'a>),
    /// The input ended cleanly.
    End,
    /// The input is damaged here and cannot be read further: the message says how.
    Damage(String),
}

/// A packet found in the buffer: its time, link type and where its bytes are.
struct Located {
    ts_ns: u64,
    link_type: Linktype,
    from: usize,
    to: usize,
    /// The packet's length on the wire (at least the captured length).
    wire_len: u32,
}

/// Where a reader's bytes come from.
enum Bytes {
    /// Read on the reader's thread, into its own buffer.
    Here(Box<dyn Read + Send>),
    /// Read by a thread of its own, into buffers that become the reader's.
    Ahead(ReadAhead),
}

/// A capture file being read.
pub(super) struct CaptureReader {
    input: Bytes,
    /// Shared with the threads still reading frames in it (`--threads`); only written when
    /// nobody else holds it.
    buf: Arc<Vec<u8>>,
    /// Earlier buffers, refilled (or, reading ahead, handed back to be) once nobody holds
    /// them any more.
    spare: Vec<Arc<Vec<u8>>>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    /// What ended the input early (a corrupt or cut compressed stream, an I/O error), to
    /// report once the bytes before it are used up.
    error: Option<io::Error>,
    format: Format,
}

const PCAP_MICRO: u32 = 0xa1b2_c3d4;
const PCAP_NANO: u32 = 0xa1b2_3c4d;
const PCAP_MODIFIED: u32 = 0xa1b2_cd34;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;

const IDB: u32 = 1;
const OBSOLETE_PACKET: u32 = 2;
const SIMPLE_PACKET: u32 = 3;
const ENHANCED_PACKET: u32 = 6;

/// libpcap's DLT value for a file's LINKTYPE, where they differ, for compiling filters.
pub(super) fn dlt_of(link_type: Linktype) -> Linktype {
    match link_type {
        Linktype::RAW_FILE => Linktype::RAW,
        // LINKTYPE_ATM_RFC1483 is DLT_ATM_RFC1483 (11).
        Linktype(100) => Linktype(11),
        other => other,
    }
}

fn u16_at(bytes: &[u8], at: usize, big_endian: bool) -> u16 {
    let b = [bytes[at], bytes[at + 1]];
    if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

fn u32_at(bytes: &[u8], at: usize, big_endian: bool) -> u32 {
    let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

impl Interface {
    fn new(link_type: Linktype, snaplen: u32) -> Interface {
        Interface {
            link_type,
            snaplen,
            units_per_second: 1_000_000,
            offset_s: 0,
        }
    }

    /// A timestamp in this interface's units as nanoseconds since the epoch.
    fn ns(&self, units: u64) -> u64 {
        let per = self.units_per_second;
        let ns = if per == 1_000_000_000 {
            units
        } else if 1_000_000_000 % per == 0 {
            units.wrapping_mul(1_000_000_000 / per)
        } else {
            (u128::from(units) * 1_000_000_000 / u128::from(per)) as u64
        };
        ns.wrapping_add_signed(self.offset_s.wrapping_mul(1_000_000_000))
    }
}

/// The words for a read error of the underlying stream (a decompressor's complaint, an I/O
/// error), as a damage message.
fn stream_damage(err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        format!("file is cut short ({err}); results cover the packets before the cut")
    } else {
        format!("read error ({err}); results cover the packets before it")
    }
}

fn bad_record(what: String) -> String {
    format!("read error ({what}); results cover the packets before it")
}

impl CaptureReader {
    /// Reads the file header. The error says why the bytes are not a capture, or why they
    /// could not be read.
    pub(super) fn open(mut input: Box<dyn Read + Send>) -> Result<CaptureReader, OpenError> {
        let mut buf = vec![0u8; FIRST_BUFFER];
        let (end, error) = read_full(&mut *input, &mut buf);
        let format = match (Self::sniff(&buf[..end]), &error) {
            (Ok(format), _) => format,
            (Err(_), Some(err)) => return Err(OpenError::Unreadable(err.to_string())),
            (Err(reason), None) => return Err(OpenError::NotACapture(reason)),
        };
        let mut reader = CaptureReader {
            input: Bytes::Here(input),
            eof: end < buf.len() || error.is_some(),
            buf: Arc::new(buf),
            spare: Vec::new(),
            start: 0,
            end,
            error,
            format,
        };
        match reader.format {
            Format::Pcap { .. } => reader.start = 24,
            Format::PcapNg { .. } => reader.read_preamble(),
        }
        Ok(reader)
    }

    fn sniff(head: &[u8]) -> Result<Format, String> {
        if head.len() < 4 {
            return Err("too short to be a capture".into());
        }
        let magic_le = u32_at(head, 0, false);
        if magic_le == PCAPNG_SHB {
            return Ok(Format::PcapNg {
                big_endian: false,
                interfaces: Vec::new(),
            });
        }
        for big_endian in [false, true] {
            let magic = u32_at(head, 0, big_endian);
            let (units, record_header) = match magic {
                PCAP_MICRO => (1_000_000, 16),
                PCAP_NANO => (1_000_000_000, 16),
                PCAP_MODIFIED => (1_000_000, 24),
                _ => continue,
            };
            if head.len() < 24 {
                return Err("the pcap file header is cut short".into());
            }
            let snaplen = u32_at(head, 16, big_endian);
            // The low 16 bits are the link type; the upper ones hold FCS flags.
            let link = u32_at(head, 20, big_endian) & 0xffff;
            let mut interface = Interface::new(Linktype(link as i32), snaplen);
            interface.units_per_second = units;
            return Ok(Format::Pcap {
                big_endian,
                record_header,
                interface,
            });
        }
        Err("unknown file format".into())
    }

    /// Link types of the interfaces described so far (pcapng describes them as it goes).
    pub(super) fn link_types(&self) -> Vec<Linktype> {
        match &self.format {
            Format::Pcap { interface, .. } => vec![interface.link_type],
            Format::PcapNg { interfaces, .. } => {
                let mut types: Vec<Linktype> = interfaces.iter().map(|i| i.link_type).collect();
                types.dedup();
                types
            }
        }
    }

    /// Takes the blocks before the first packet (section header, interface descriptions),
    /// so that the link types a filter must be compiled for are known when the file opens.
    /// Damage is left in place for [`CaptureReader::next`] to report.
    fn read_preamble(&mut self) {
        while let Ok(true) = self.need(8) {
            let Format::PcapNg { big_endian, .. } = self.format else {
                return;
            };
            let kind = u32_at(&self.buf, self.start, big_endian);
            if matches!(kind, ENHANCED_PACKET | OBSOLETE_PACKET | SIMPLE_PACKET) {
                return;
            }
            if !matches!(self.pcapng_block(), Ok(None)) {
                return;
            }
        }
    }

    /// From now on the input is read ahead by a thread of its own, unless it is read to its
    /// end already or no thread can start (then it goes on being read here).
    pub(super) fn read_ahead(&mut self) {
        self.read_ahead_in(readahead::HEAD_ROOM, readahead::CHUNK);
    }

    /// [`CaptureReader::read_ahead`] into buffers of other sizes (the tests cut records at
    /// every place with small ones).
    fn read_ahead_in(&mut self, head_room: usize, chunk: usize) {
        if self.eof {
            return;
        }
        let placeholder = Bytes::Here(Box::new(io::empty()));
        self.input = match std::mem::replace(&mut self.input, placeholder) {
            Bytes::Here(input) => match ReadAhead::spawn(input, head_room, chunk) {
                Ok(ahead) => Bytes::Ahead(ahead),
                Err((input, _)) => Bytes::Here(input),
            },
            ahead => ahead,
        };
    }

    /// CPU time spent by the thread reading ahead, if there is one.
    pub(super) fn read_ahead_cpu(&self) -> Option<std::time::Duration> {
        match &self.input {
            Bytes::Here(_) => None,
            Bytes::Ahead(ahead) => Some(ahead.cpu()),
        }
    }

    /// Makes `len` bytes available at `start`, reading (and growing the buffer up to
    /// [`MAX_RECORD`]) as needed. Returns how many are there if the input ends first.
    fn fill(&mut self, len: usize) -> usize {
        if self.end - self.start >= len {
            return len;
        }
        if let Bytes::Here(_) = self.input {
            let size = self.size_for(len);
            self.make_room(size);
        }
        while !self.eof && self.end - self.start < len {
            match &mut self.input {
                Bytes::Here(input) => {
                    // `make_room` left a buffer nobody else holds.
                    let buf = Arc::get_mut(&mut self.buf).expect("an unshared buffer");
                    let (got, error) = read_full(&mut **input, &mut buf[self.end..]);
                    self.end += got;
                    self.eof = got == 0 || self.end < buf.len() || error.is_some();
                    self.error = error;
                }
                Bytes::Ahead(ahead) => {
                    let chunk = ahead.next();
                    self.take(chunk);
                }
            }
        }
        (self.end - self.start).min(len)
    }

    /// The size of buffer to read `len` bytes into, reading here.
    fn size_for(&self, len: usize) -> usize {
        let unread = self.end - self.start;
        if len > self.buf.len() {
            len.next_power_of_two().max(BUFFER)
        } else if self.buf.len() < BUFFER && !self.eof {
            // The input is larger than the buffer: read it in larger pieces.
            self.buf.len() * 2
        } else if self.buf.len() > BUFFER && len <= BUFFER && unread <= BUFFER {
            // The large record that grew the buffer is gone: give the memory back.
            BUFFER
        } else {
            self.buf.len()
        }
    }

    /// Reads on from bytes read ahead. The chunk becomes the buffer, the unread bytes put
    /// in its head room in front of what was read; a record too large for the head room is
    /// gathered in a buffer of its own, the chunk's bytes copied after it.
    fn take(&mut self, mut chunk: Chunk) {
        let unread = self.end - self.start;
        self.eof = chunk.last;
        self.error = chunk.error.take();
        if unread <= chunk.head_room {
            let at = chunk.head_room - unread;
            chunk.bytes[at..chunk.head_room].copy_from_slice(&self.buf[self.start..self.end]);
            let done = std::mem::replace(&mut self.buf, Arc::new(chunk.bytes));
            self.start = at;
            self.end = chunk.head_room + chunk.len;
            if self.spare.len() < SPARE_BUFFERS {
                self.spare.push(done);
            }
        } else {
            let len = chunk.len;
            if self.buf.len() - self.end < len || Arc::get_mut(&mut self.buf).is_none() {
                self.make_room((unread + len).next_power_of_two());
            }
            let buf = Arc::get_mut(&mut self.buf).expect("an unshared buffer");
            buf[self.end..self.end + len].copy_from_slice(chunk.data());
            self.end += len;
            if let Bytes::Ahead(ahead) = &self.input {
                ahead.give_back(chunk.bytes);
            }
        }
        self.give_back_spares();
    }

    /// Hands the buffers nobody reads any more back to the thread reading ahead.
    fn give_back_spares(&mut self) {
        let Bytes::Ahead(ahead) = &self.input else {
            return;
        };
        let mut at = 0;
        while at < self.spare.len() {
            if Arc::get_mut(&mut self.spare[at]).is_some() {
                let free = self.spare.swap_remove(at);
                if let Ok(bytes) = Arc::try_unwrap(free) {
                    ahead.give_back(bytes);
                }
            } else {
                at += 1;
            }
        }
    }

    /// Moves the unread bytes to the front of a buffer of `size` bytes that no other thread
    /// reads: this one when nobody else holds it (always, without `--threads`), else a spare
    /// nobody holds any more, else a new one.
    fn make_room(&mut self, size: usize) {
        let unread = self.start..self.end;
        let kept = unread.len();
        if let Some(buf) = Arc::get_mut(&mut self.buf) {
            buf.copy_within(unread, 0);
            if buf.len() != size {
                buf.resize(size, 0);
                buf.shrink_to_fit();
            }
        } else {
            let reusable = self
                .spare
                .iter_mut()
                .position(|spare| spare.len() == size && Arc::get_mut(spare).is_some());
            let mut fresh = match reusable {
                Some(at) => self.spare.swap_remove(at),
                None => Arc::new(vec![0u8; size]),
            };
            let target = Arc::get_mut(&mut fresh).expect("an unshared buffer");
            target[..kept].copy_from_slice(&self.buf[unread]);
            let old = std::mem::replace(&mut self.buf, fresh);
            if self.spare.len() < SPARE_BUFFERS {
                self.spare.push(old);
            }
        }
        self.start = 0;
        self.end = kept;
    }

    /// Bytes `start..start + len` must be there: false at a clean end of the input; the
    /// `Err` is the damage message.
    fn need(&mut self, len: usize) -> Result<bool, String> {
        let got = self.fill(len);
        if got == len {
            return Ok(true);
        }
        match &self.error {
            Some(err) => Err(stream_damage(err)),
            None if got == 0 => Ok(false),
            None => Err(format!(
                "file is cut short (its last record has {got} of {len} bytes); results \
                 cover the packets before the cut"
            )),
        }
    }

    /// The next frame that `keep` accepts (given its link type, bytes and length on the
    /// wire), the clean end of the input, or the damage that stops it.
    pub(super) fn next(&mut self, mut keep: impl FnMut(Linktype, &[u8], u32) -> bool) -> Next<'_> {
        loop {
            let found = match self.format {
                Format::Pcap { .. } => self.pcap_record(),
                Format::PcapNg { .. } => self.pcapng_block(),
            };
            match found {
                Ok(Some(Located {
                    ts_ns,
                    link_type,
                    from,
                    to,
                    wire_len,
                })) => {
                    if keep(link_type, &self.buf[from..to], wire_len) {
                        return Next::Frame(Frame {
                            ts_ns,
                            link_type,
                            data: &self.buf[from..to],
                            buffer: Some(&self.buf),
                        });
                    }
                }
                Ok(None) => {}
                Err(Some(message)) => return Next::Damage(message),
                Err(None) => return Next::End,
            }
        }
    }

    /// One pcap record: `Ok(Some(frame))`, or `Err(None)` at the end, `Err(Some)` on damage.
    fn pcap_record(&mut self) -> Result<Option<Located>, Option<String>> {
        let Format::Pcap {
            big_endian,
            record_header,
            interface,
        } = self.format
        else {
            unreachable!("called for pcap files only")
        };
        if !self.need(record_header)? {
            return Err(None);
        }
        let head = &self.buf[self.start..];
        let seconds = u64::from(u32_at(head, 0, big_endian));
        let fraction = u64::from(u32_at(head, 4, big_endian));
        let caplen = u32_at(head, 8, big_endian) as usize;
        let wire = u32_at(head, 12, big_endian);
        if caplen > MAX_RECORD {
            return Err(Some(bad_record(format!(
                "a record claims {caplen} captured bytes, more than the {MAX_RECORD} a \
                 capture may hold"
            ))));
        }
        let len = record_header + caplen;
        if !self.need(len)? {
            return Err(None);
        }
        let from = self.start + record_header;
        self.start += len;
        let units = seconds * interface.units_per_second + fraction;
        Ok(Some(Located {
            ts_ns: interface.ns(units),
            link_type: interface.link_type,
            from,
            to: from + caplen,
            wire_len: wire.max(caplen as u32),
        }))
    }

    /// One pcapng block: a packet as `Ok(Some(..))`, other blocks as `Ok(None)` after taking
    /// what they say (sections, interfaces).
    fn pcapng_block(&mut self) -> Result<Option<Located>, Option<String>> {
        if !self.need(12)? {
            return Err(None);
        }
        let head = &self.buf[self.start..self.start + 12];
        let Format::PcapNg {
            ref mut big_endian,
            ref mut interfaces,
        } = self.format
        else {
            unreachable!("called for pcapng files only")
        };
        if u32_at(head, 0, false) == PCAPNG_SHB {
            // A new section: its own byte order, its own interfaces.
            *big_endian = match u32_at(head, 8, false) {
                PCAPNG_BYTE_ORDER => false,
                order if order.swap_bytes() == PCAPNG_BYTE_ORDER => true,
                _ => {
                    return Err(Some(bad_record(
                        "a pcapng section header with an unknown byte-order mark".into(),
                    )));
                }
            };
            interfaces.clear();
        }
        let big_endian = *big_endian;
        let kind = u32_at(head, 0, big_endian);
        let len = u32_at(head, 4, big_endian) as usize;
        if len < 12 || !len.is_multiple_of(4) || len > MAX_RECORD {
            return Err(Some(bad_record(format!(
                "a pcapng block of type {kind:#x} claims a length of {len} bytes"
            ))));
        }
        if !self.need(len)? {
            return Err(None);
        }
        let at = self.start;
        self.start += len;
        let body = &self.buf[at + 8..at + len - 4];
        let Format::PcapNg { interfaces, .. } = &mut self.format else {
            unreachable!("called for pcapng files only")
        };
        let short = || {
            Some(bad_record(format!(
                "a pcapng block of type {kind:#x} is too short for its contents"
            )))
        };
        // (interface, timestamp, offset of the data in the body, captured length, length on
        // the wire)
        let (interface, ts, data_at, caplen, wire) = match kind {
            IDB => {
                if body.len() < 8 {
                    return Err(short());
                }
                let link = u16_at(body, 0, big_endian);
                let snaplen = u32_at(body, 4, big_endian);
                let mut interface = Interface::new(Linktype(i32::from(link)), snaplen);
                read_interface_options(&body[8..], big_endian, &mut interface);
                interfaces.push(interface);
                return Ok(None);
            }
            ENHANCED_PACKET | OBSOLETE_PACKET => {
                if body.len() < 20 {
                    return Err(short());
                }
                let id = if kind == ENHANCED_PACKET {
                    u32_at(body, 0, big_endian) as usize
                } else {
                    usize::from(u16_at(body, 0, big_endian))
                };
                let high = u64::from(u32_at(body, 4, big_endian));
                let low = u64::from(u32_at(body, 8, big_endian));
                let caplen = u32_at(body, 12, big_endian) as usize;
                let wire = u32_at(body, 16, big_endian);
                (id, Some(high << 32 | low), 20, caplen, wire)
            }
            SIMPLE_PACKET => {
                if body.len() < 4 {
                    return Err(short());
                }
                let wire = u32_at(body, 0, big_endian);
                let snaplen = interfaces.first().map_or(u32::MAX, |i| i.snaplen) as usize;
                let caplen = (wire as usize).min(if snaplen == 0 { usize::MAX } else { snaplen });
                (0, None, 4, caplen.min(body.len() - 4), wire)
            }
            _ => return Ok(None),
        };
        let Some(interface) = interfaces.get(interface) else {
            return Err(Some(bad_record(format!(
                "a packet names interface {interface}, but the file describes only {}",
                interfaces.len()
            ))));
        };
        if data_at + caplen > body.len() {
            return Err(short());
        }
        // A simple packet block has no timestamp: it is taken as the epoch, as libpcap does.
        let ts_ns = ts.map_or(0, |units| interface.ns(units));
        let from = at + 8 + data_at;
        Ok(Some(Located {
            ts_ns,
            link_type: interface.link_type,
            from,
            to: from + caplen,
            wire_len: wire.max(caplen as u32),
        }))
    }
}

/// Reads `if_tsresol` and `if_tsoffset` from an interface description's options.
fn read_interface_options(mut options: &[u8], big_endian: bool, interface: &mut Interface) {
    const END: u16 = 0;
    const TSRESOL: u16 = 9;
    const TSOFFSET: u16 = 14;
    while options.len() >= 4 {
        let code = u16_at(options, 0, big_endian);
        let len = usize::from(u16_at(options, 2, big_endian));
        let Some(value) = options.get(4..4 + len) else {
            return;
        };
        match code {
            END => return,
            TSRESOL if len >= 1 => {
                let exponent = u32::from(value[0] & 0x7f);
                let units = if value[0] & 0x80 != 0 {
                    1u64.checked_shl(exponent)
                } else {
                    10u64.checked_pow(exponent)
                };
                // A resolution beyond what u64 holds is nonsense; keep microseconds.
                if let Some(units) = units.filter(|&u| u > 0) {
                    interface.units_per_second = units;
                }
            }
            TSOFFSET if len >= 8 => {
                let raw: [u8; 8] = value[..8].try_into().expect("eight bytes");
                interface.offset_s = if big_endian {
                    i64::from_be_bytes(raw)
                } else {
                    i64::from_le_bytes(raw)
                };
            }
            _ => {}
        }
        options = options.get(4 + len.next_multiple_of(4)..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Captured lengths mixing the empty, the small, the usual and the large (larger than
    /// the head rooms and pieces below, so that they are gathered by copying).
    fn lengths() -> Vec<usize> {
        (0..300)
            .map(|i| [0, 1, 54, 60, 1514, 77, 9000, 3000, 66][i % 9] + i % 5)
            .collect()
    }

    /// The bytes of packet `i`, told apart from every other.
    fn packet(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|b| (b * 31 + i * 7) as u8).collect()
    }

    /// A classic pcap, microseconds, little-endian, Ethernet.
    fn pcap(lengths: &[usize]) -> Vec<u8> {
        let mut file = Vec::new();
        for word in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
            file.extend_from_slice(&word.to_le_bytes());
        }
        for (i, &len) in lengths.iter().enumerate() {
            let wire = len as u32 + 3;
            for word in [i as u32, (i * 7) as u32, len as u32, wire] {
                file.extend_from_slice(&word.to_le_bytes());
            }
            file.extend_from_slice(&packet(i, len));
        }
        file
    }

    /// A pcapng: a section, an Ethernet interface, enhanced packet blocks.
    fn pcapng(lengths: &[usize]) -> Vec<u8> {
        let words = |file: &mut Vec<u8>, words: &[u32]| {
            for word in words {
                file.extend_from_slice(&word.to_le_bytes());
            }
        };
        let mut file = Vec::new();
        words(
            &mut file,
            &[PCAPNG_SHB, 28, PCAPNG_BYTE_ORDER, 1, u32::MAX, u32::MAX, 28],
        );
        words(&mut file, &[IDB, 20, 1, 0, 20]);
        for (i, &len) in lengths.iter().enumerate() {
            let total = 32 + len.next_multiple_of(4) as u32;
            words(
                &mut file,
                &[ENHANCED_PACKET, total, 0, 0, i as u32, len as u32, 9000],
            );
            file.extend_from_slice(&packet(i, len));
            file.resize(file.len() + len.next_multiple_of(4) - len, 0);
            words(&mut file, &[total]);
        }
        file
    }

    /// Bytes that end in a read error after `good` of them.
    struct FailingAfter {
        bytes: Cursor<Vec<u8>>,
        good: u64,
    }

    impl Read for FailingAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let left = self.good - self.bytes.position();
            if left == 0 {
                return Err(io::Error::other("the disk is on fire"));
            }
            let take = buf.len().min(left as usize);
            self.bytes.read(&mut buf[..take])
        }
    }

    /// Every frame a reader hands out (time, wire length, bytes), then how the input ended.
    /// `held` frames at a time are held on to by their buffer, as `--threads` holds them, and
    /// each is checked to be unchanged when let go: no buffer is read into while held.
    fn read_all(mut reader: CaptureReader, held: usize) -> (Vec<(u64, Vec<u8>)>, String) {
        let mut frames = Vec::new();
        let mut holding = std::collections::VecDeque::new();
        let unchanged = |(buffer, at, bytes): (Arc<Vec<u8>>, usize, Vec<u8>)| {
            assert_eq!(
                buffer[at..at + bytes.len()],
                bytes[..],
                "a held buffer changed"
            );
        };
        let end = loop {
            match reader.next(|_, _, _| true) {
                Next::Frame(frame) => {
                    let buffer = Arc::clone(frame.buffer.expect("files name their buffer"));
                    let at = frame.data.as_ptr() as usize - buffer.as_ptr() as usize;
                    holding.push_back((buffer, at, frame.data.to_vec()));
                    if holding.len() > held {
                        unchanged(holding.pop_front().expect("a held frame"));
                    }
                    frames.push((frame.ts_ns, frame.data.to_vec()));
                }
                Next::End => break "the end".to_string(),
                Next::Damage(message) => break message,
            }
        };
        holding.into_iter().for_each(unchanged);
        (frames, end)
    }

    fn open(bytes: impl Read + Send + 'static) -> CaptureReader {
        CaptureReader::open(Box::new(bytes))
            .ok()
            .expect("a capture")
    }

    /// Read ahead in pieces of many sizes, with any head room, records cut at every place:
    /// the same frames and the same end as reading on one thread.
    #[test]
    fn reading_ahead_hands_out_what_reading_here_does() {
        let lengths = lengths();
        let pcap = pcap(&lengths);
        // A name, the bytes, and after how many of them a read fails, if one does.
        let cases = [
            ("pcap", pcap.clone(), None),
            ("pcapng", pcapng(&lengths), None),
            ("cut short", pcap[..pcap.len() - 2000].to_vec(), None),
            ("read error", pcap, Some(400_000)),
        ];
        for (name, bytes, good) in &cases {
            let input = || -> Box<dyn Read + Send> {
                let bytes = Cursor::new(bytes.clone());
                match *good {
                    None => Box::new(bytes),
                    Some(good) => Box::new(FailingAfter { bytes, good }),
                }
            };
            let here = read_all(open(input()), 0);
            assert!(here.0.len() > 100, "{name}: {} frames", here.0.len());
            let damaged = *name == "cut short" || *name == "read error";
            assert_eq!(here.1 != "the end", damaged, "{name}: {}", here.1);
            for (i, head_room) in [0, 16, 1600, 20_000].into_iter().enumerate() {
                for (j, chunk) in [61, 333, 4096, 65_536].into_iter().enumerate() {
                    // Half the runs hold frames, as the shards do.
                    let held = [0, 50][(i + j) % 2];
                    let mut reader = open(input());
                    reader.read_ahead_in(head_room, chunk);
                    assert!(reader.read_ahead_cpu().is_some(), "{name}: reading ahead");
                    let ahead = read_all(reader, held);
                    assert_eq!(ahead.1, here.1, "{name}, {head_room} + {chunk}, {held}");
                    assert!(
                        ahead.0 == here.0,
                        "{name}, {head_room} + {chunk}, {held}: frames differ"
                    );
                }
            }
        }
    }

    /// Damage in record headers (a captured length made larger, smaller or absurd, so that
    /// reading goes on out of step, runs off the end or stops) ends reading ahead where and
    /// as it ends reading here.
    #[test]
    fn reading_ahead_meets_damage_where_reading_here_does() {
        let lengths = lengths();
        let file = pcap(&lengths);
        let headers: Vec<usize> = lengths
            .iter()
            .scan(24, |at, len| {
                let header = *at;
                *at += 16 + len;
                Some(header)
            })
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let mut ends = std::collections::BTreeSet::new();
        for round in 0..24 {
            let mut damaged = file.clone();
            let at = headers[random(headers.len())] + 8;
            let caplen = u32_at(&damaged, at, false) as usize;
            let wrong = match round % 3 {
                0 => caplen + 1 + random(3000),
                1 => caplen.saturating_sub(1 + random(60)),
                _ => MAX_RECORD / 2 + random(MAX_RECORD),
            };
            damaged[at..at + 4].copy_from_slice(&(wrong as u32).to_le_bytes());
            let input = || -> Box<dyn Read + Send> { Box::new(Cursor::new(damaged.clone())) };
            let here = read_all(open(input()), 0);
            ends.insert(here.1.split(' ').take(3).collect::<Vec<_>>().join(" "));
            for (head_room, chunk) in [(0, 4096), (1600, 1000), (20_000, 65_536)] {
                let mut reader = open(input());
                reader.read_ahead_in(head_room, chunk);
                let ahead = read_all(reader, 50);
                assert_eq!(ahead.1, here.1, "round {round}, {head_room} + {chunk}");
                assert!(ahead.0 == here.0, "round {round}, {head_room} + {chunk}");
            }
        }
        // Every kind of end was met: cut short, a record claiming too much, the clean end.
        assert_eq!(ends.len(), 3, "{ends:?}");
    }

    /// A file read to its end when it opens starts no thread.
    #[test]
    fn a_small_file_is_not_read_ahead() {
        let mut reader = open(Box::new(Cursor::new(pcap(&[60, 60]))));
        reader.read_ahead();
        assert!(reader.read_ahead_cpu().is_none());
        assert_eq!(read_all(reader, 0).0.len(), 2);
    }
}
