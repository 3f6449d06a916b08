//! Building capture files in test code: TCP/IPv4 conversations written segment by segment
//! with etherparse, straight into a classic pcap (LINKTYPE_ETHERNET, microsecond
//! timestamps). Each frame is written into the file's buffer as it is made, so captures of
//! hundreds of thousands of frames cost no more than their bytes.

use etherparse::PacketBuilder;

use super::Analysis;
use super::binary::TempPath;

/// TCP header flags, with the bit values they have on the wire.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// Payload bytes per segment when a byte stream is sent whole (`Conv::send_stream`).
pub const MSS: usize = 1448;

/// One endpoint of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub mac: [u8; 6],
    pub ip: [u8; 4],
    pub port: u16,
}

/// The client of `Conv::new`, 10.9.0.2:40000.
pub const CLIENT: Endpoint = Endpoint {
    mac: [2, 0, 0, 0, 0, 2],
    ip: [10, 9, 0, 2],
    port: 40000,
};

/// The server of `Conv::new`, 10.9.0.1:80.
pub const SERVER: Endpoint = Endpoint {
    mac: [2, 0, 0, 0, 0, 1],
    ip: [10, 9, 0, 1],
    port: 80,
};

/// Who sends a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client = 0,
    Server = 1,
}
pub use Side::{Client as C, Server as S};

impl Side {
    pub fn other(self) -> Side {
        match self {
            C => S,
            S => C,
        }
    }
}

/// The first frame's timestamp: 2023-11-14 22:13:20 UTC.
const START_US: u64 = 1_700_000_000_000_000;
const PCAP_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// A capture being written, one TCP connection at a time between a client and a server.
///
/// Each side's `next` sequence number is its high-water mark; by default every segment
/// acknowledges everything the peer has sent so far (captured or not). Every frame moves
/// the clock on by the spacing (1 ms unless `spaced_us` says otherwise).
pub struct Conv {
    /// The pcap file so far.
    pcap: Vec<u8>,
    /// Where the last record's header starts in `pcap`.
    last: Option<usize>,
    ts_us: u64,
    spacing_us: u64,
    ends: [Endpoint; 2],
    next: [u32; 2],
}

impl Default for Conv {
    fn default() -> Conv {
        Conv::new()
    }
}

impl Conv {
    /// A capture of `CLIENT` talking to `SERVER`.
    pub fn new() -> Conv {
        Conv::between(CLIENT, SERVER)
    }

    pub fn between(client: Endpoint, server: Endpoint) -> Conv {
        let mut pcap = Vec::new();
        pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        pcap.extend_from_slice(&2u16.to_le_bytes());
        pcap.extend_from_slice(&4u16.to_le_bytes());
        pcap.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        pcap.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        pcap.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
        pcap.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        debug_assert_eq!(pcap.len(), PCAP_HEADER);
        Conv {
            pcap,
            last: None,
            ts_us: START_US,
            spacing_us: 1000,
            ends: [client, server],
            next: [0, 0],
        }
    }

    /// Frames `us` microseconds apart instead of 1 ms.
    pub fn spaced_us(mut self, us: u64) -> Conv {
        self.spacing_us = us;
        self
    }

    /// From here on, segments belong to a new connection between `client` and `server`, on
    /// the same capture and clock; its sequence numbers start over.
    pub fn connection(&mut self, client: Endpoint, server: Endpoint) -> &mut Conv {
        self.ends = [client, server];
        self.next = [0, 0];
        self
    }

    /// A conversation already under way: no handshake, the given next sequence numbers.
    pub fn mid_stream(&mut self, client_next: u32, server_next: u32) -> &mut Conv {
        self.next = [client_next, server_next];
        self
    }

    pub fn next(&self, side: Side) -> u32 {
        self.next[side as usize]
    }

    /// Moves the clock on (every frame also moves it by the spacing).
    pub fn wait_ms(&mut self, ms: u64) -> &mut Conv {
        self.ts_us += ms * 1000;
        self
    }

    /// Writes exactly this segment and changes no sequence state; the `ack` number is
    /// written only with the ACK flag (0 without it).
    pub fn raw(&mut self, from: Side, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> &mut Conv {
        let (src, dst) = (self.ends[from as usize], self.ends[from.other() as usize]);
        let mut builder = PacketBuilder::ethernet2(src.mac, dst.mac)
            .ipv4(src.ip, dst.ip, 64)
            .tcp(src.port, dst.port, seq, 64240);
        if flags & FIN != 0 {
            builder = builder.fin();
        }
        if flags & SYN != 0 {
            builder = builder.syn();
        }
        if flags & RST != 0 {
            builder = builder.rst();
        }
        if flags & PSH != 0 {
            builder = builder.psh();
        }
        if flags & ACK != 0 {
            builder = builder.ack(ack);
        }
        let length = builder.size(payload.len()) as u32;
        self.last = Some(self.pcap.len());
        self.pcap
            .extend_from_slice(&((self.ts_us / 1_000_000) as u32).to_le_bytes());
        self.pcap
            .extend_from_slice(&((self.ts_us % 1_000_000) as u32).to_le_bytes());
        self.pcap.extend_from_slice(&length.to_le_bytes()); // captured
        self.pcap.extend_from_slice(&length.to_le_bytes()); // on the wire
        builder
            .write(&mut self.pcap, payload)
            .expect("build packet");
        self.ts_us += self.spacing_us;
        self
    }

    /// A segment at an explicit sequence number, acknowledging everything the peer sent
    /// (whether or not `flags` has ACK); raises the sender's high-water mark past it.
    pub fn segment(&mut self, from: Side, seq: u32, flags: u8, payload: &[u8]) -> &mut Conv {
        let ack = self.next(from.other());
        self.raw(from, seq, ack, flags, payload);
        self.advance(from, seq.wrapping_add(payload.len() as u32));
        self
    }

    /// Raises `side`'s high-water mark to `end` when `end` is ahead of it (mod 2^32).
    fn advance(&mut self, side: Side, end: u32) {
        let next = &mut self.next[side as usize];
        if (end.wrapping_sub(*next) as i32) > 0 {
            *next = end;
        }
    }

    /// The client's SYN with initial sequence number `isn`.
    pub fn syn(&mut self, isn: u32) -> &mut Conv {
        self.next[C as usize] = isn.wrapping_add(1);
        self.raw(C, isn, 0, SYN, b"")
    }

    pub fn syn_ack(&mut self, isn: u32) -> &mut Conv {
        self.next[S as usize] = isn.wrapping_add(1);
        let ack = self.next(C);
        self.raw(S, isn, ack, SYN | ACK, b"")
    }

    /// SYN, SYN-ACK, ACK with the given initial sequence numbers.
    pub fn handshake(&mut self, client_isn: u32, server_isn: u32) -> &mut Conv {
        self.syn(client_isn).syn_ack(server_isn).ack(C)
    }

    /// A pure ACK of everything the peer sent.
    pub fn ack(&mut self, from: Side) -> &mut Conv {
        let seq = self.next(from);
        self.segment(from, seq, ACK, b"")
    }

    /// Data at an explicit sequence number (to reorder, duplicate or overlap).
    pub fn send_at(&mut self, from: Side, seq: u32, payload: &[u8]) -> &mut Conv {
        self.segment(from, seq, PSH | ACK, payload)
    }

    /// Data at the sender's next sequence number.
    pub fn send(&mut self, from: Side, payload: &[u8]) -> &mut Conv {
        let seq = self.next(from);
        self.send_at(from, seq, payload)
    }

    /// Each piece as its own segment, in order.
    pub fn send_pieces(&mut self, from: Side, pieces: &[&[u8]]) -> &mut Conv {
        for piece in pieces {
            self.send(from, piece);
        }
        self
    }

    /// A byte stream as full-sized (`MSS`) segments, in order.
    pub fn send_stream(&mut self, from: Side, bytes: &[u8]) -> &mut Conv {
        for chunk in bytes.chunks(MSS) {
            self.send(from, chunk);
        }
        self
    }

    /// Data at the next sequence number as one frame of any size: a TSO/GRO super-segment
    /// as captured on an offloading host, IPv4 total length 0 (what such captures show; the
    /// header checksum is left as it was, readers do not check it).
    pub fn send_offloaded(&mut self, from: Side, payload: &[u8]) -> &mut Conv {
        self.send(from, b"");
        let at = self.last.expect("a frame was just written");
        let frame = at + RECORD_HEADER;
        // Ethernet header (14 bytes), then the IPv4 total length at offset 2.
        self.pcap[frame + 16..frame + 18].copy_from_slice(&0u16.to_be_bytes());
        self.pcap.extend_from_slice(payload);
        let length = (self.pcap.len() - frame) as u32;
        self.pcap[at + 8..at + 12].copy_from_slice(&length.to_le_bytes());
        self.pcap[at + 12..at + 16].copy_from_slice(&length.to_le_bytes());
        let end = self.next(from).wrapping_add(payload.len() as u32);
        self.advance(from, end);
        self
    }

    /// `bytes` the sender put on the wire that the capture never saw.
    pub fn lose(&mut self, from: Side, bytes: u32) -> &mut Conv {
        let end = self.next(from).wrapping_add(bytes);
        self.advance(from, end);
        self
    }

    /// Data at the next sequence number, of which only the first `captured` payload bytes
    /// are in the capture (a snaplen cut: caplen < wire length).
    pub fn send_cut(&mut self, from: Side, payload: &[u8], captured: usize) -> &mut Conv {
        self.send(from, payload);
        let wire = self.last_wire_len();
        self.cut_last_to(wire - payload.len() + captured)
    }

    /// Cuts the last frame to `caplen` captured bytes in total.
    pub fn cut_last_to(&mut self, caplen: usize) -> &mut Conv {
        let at = self.last.expect("a frame to cut");
        assert!(caplen <= self.last_wire_len(), "a cut cannot add bytes");
        self.pcap[at + 8..at + 12].copy_from_slice(&(caplen as u32).to_le_bytes());
        self.pcap.truncate(at + RECORD_HEADER + caplen);
        self
    }

    /// Changes the bytes of the last frame in place (to damage a header).
    pub fn edit_last(&mut self, edit: impl FnOnce(&mut [u8])) -> &mut Conv {
        let at = self.last.expect("a frame to edit") + RECORD_HEADER;
        edit(&mut self.pcap[at..]);
        self
    }

    fn last_wire_len(&self) -> usize {
        let at = self.last.expect("a frame");
        let field: [u8; 4] = self.pcap[at + 12..at + 16].try_into().unwrap();
        u32::from_le_bytes(field) as usize
    }

    pub fn fin(&mut self, from: Side) -> &mut Conv {
        let seq = self.next(from);
        self.segment(from, seq, FIN | ACK, b"");
        self.next[from as usize] = seq.wrapping_add(1);
        self
    }

    pub fn rst(&mut self, from: Side) -> &mut Conv {
        let seq = self.next(from);
        self.segment(from, seq, RST | ACK, b"")
    }

    /// FIN from `first`, FIN-ACK from the other side, final ACK.
    pub fn close_by(&mut self, first: Side) -> &mut Conv {
        self.fin(first).fin(first.other()).ack(first)
    }

    /// The capture as a classic pcap file.
    pub fn pcap(&self) -> &[u8] {
        &self.pcap
    }

    /// The capture with each frame replaced by the frames `rewrite` returns for it (none to
    /// leave it out; see [`rewrite_frames`]).
    pub fn rewritten(&self, rewrite: impl FnMut(&[u8]) -> Vec<Vec<u8>>) -> Vec<u8> {
        rewrite_frames(&self.pcap, rewrite)
    }

    /// The capture in a temporary file `….{name}.pcap`, removed when the path is dropped.
    pub fn write(&self, name: &str) -> TempPath {
        TempPath::with(&format!("{name}.pcap"), &self.pcap)
    }

    /// Analyzes the capture with the library; a hand-built capture must read without
    /// warnings.
    pub fn analyze(&self, name: &str) -> Analysis {
        let analysis = super::analyze(&self.write(name));
        assert!(
            analysis.warnings.is_empty(),
            "warnings: {:?}",
            analysis.warnings
        );
        analysis
    }
}

/// The records of a classic pcap as built by [`Conv`]: (microseconds since the epoch, frame).
pub fn pcap_records(pcap: &[u8]) -> Vec<(u64, &[u8])> {
    let mut records = Vec::new();
    let mut at = PCAP_HEADER;
    while at + RECORD_HEADER <= pcap.len() {
        let word = |i: usize| u32::from_le_bytes(pcap[at + i..at + i + 4].try_into().unwrap());
        let ts_us = u64::from(word(0)) * 1_000_000 + u64::from(word(4));
        let caplen = word(8) as usize;
        records.push((
            ts_us,
            &pcap[at + RECORD_HEADER..at + RECORD_HEADER + caplen],
        ));
        at += RECORD_HEADER + caplen;
    }
    records
}

/// A pcapng file written block by block (pcapng spec, draft-ietf-opsawg-pcapng): sections
/// in either byte order, interfaces with their own link type and timestamp resolution, and
/// enhanced packet blocks on them.
pub struct Pcapng {
    bytes: Vec<u8>,
    big_endian: bool,
}

impl Pcapng {
    /// A file whose first section has the given byte order.
    pub fn new(big_endian: bool) -> Pcapng {
        let mut file = Pcapng {
            bytes: Vec::new(),
            big_endian,
        };
        file.section(big_endian);
        file
    }

    fn u16(&self, value: u16) -> [u8; 2] {
        if self.big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    }

    fn u32(&self, value: u32) -> [u8; 4] {
        if self.big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    }

    /// A block of `kind` around `body` (padded to 4 bytes), its length before and after.
    fn block(&mut self, kind: u32, body: &[u8]) -> &mut Pcapng {
        let padded = body.len().next_multiple_of(4);
        let len = (12 + padded) as u32;
        let (kind, len_bytes) = (self.u32(kind), self.u32(len));
        self.bytes.extend_from_slice(&kind);
        self.bytes.extend_from_slice(&len_bytes);
        self.bytes.extend_from_slice(body);
        self.bytes.resize(self.bytes.len() + padded - body.len(), 0);
        self.bytes.extend_from_slice(&len_bytes);
        self
    }

    /// A new section (its interfaces start over), in the given byte order.
    pub fn section(&mut self, big_endian: bool) -> &mut Pcapng {
        self.big_endian = big_endian;
        let mut body = self.u32(0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&self.u16(1));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
        self.block(0x0a0d_0d0a, &body)
    }

    /// An interface with `link_type` (a LINKTYPE_ value); `tsresol` is the `if_tsresol`
    /// option (6, microseconds, when absent). Interfaces are numbered from 0 per section.
    pub fn interface(&mut self, link_type: u16, tsresol: Option<u8>) -> &mut Pcapng {
        let mut body = self.u16(link_type).to_vec();
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&self.u32(0)); // no snaplen
        if let Some(resolution) = tsresol {
            body.extend_from_slice(&self.u16(9));
            body.extend_from_slice(&self.u16(1));
            body.extend_from_slice(&[resolution, 0, 0, 0]);
            body.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        self.block(1, &body)
    }

    /// A packet on `interface` at `ts` in that interface's units.
    pub fn packet(&mut self, interface: u32, ts: u64, frame: &[u8]) -> &mut Pcapng {
        let mut body = self.u32(interface).to_vec();
        body.extend_from_slice(&self.u32((ts >> 32) as u32));
        body.extend_from_slice(&self.u32(ts as u32));
        body.extend_from_slice(&self.u32(frame.len() as u32));
        body.extend_from_slice(&self.u32(frame.len() as u32));
        body.extend_from_slice(frame);
        self.block(6, &body)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A classic pcap (little-endian, as [`Conv`] writes it) with each frame's captured bytes
/// replaced by the frames `rewrite` returns for it (captured and wire length both become
/// their length; none leaves the frame out). Timestamps are kept.
pub fn rewrite_frames(pcap: &[u8], mut rewrite: impl FnMut(&[u8]) -> Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = pcap[..PCAP_HEADER].to_vec();
    for (ts_us, frame) in pcap_records(pcap) {
        for new in rewrite(frame) {
            out.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(new.len() as u32).to_le_bytes());
            out.extend_from_slice(&(new.len() as u32).to_le_bytes());
            out.extend_from_slice(&new);
        }
    }
    out
}
