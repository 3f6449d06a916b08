//! Building capture files in test code: TCP/IPv4 frames with etherparse, written as a
//! classic pcap (LINKTYPE_ETHERNET, microsecond timestamps).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use etherparse::PacketBuilder;

/// TCP header flags, with the bit values they have on the wire.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// One endpoint of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub mac: [u8; 6],
    pub ip: [u8; 4],
    pub port: u16,
}

/// One pcap record: the whole frame as on the wire, and how much of it was captured.
pub struct Record {
    pub ts_us: u64,
    pub frame: Vec<u8>,
    pub caplen: usize,
}

impl Record {
    /// A frame captured whole.
    pub fn whole(ts_us: u64, frame: Vec<u8>) -> Record {
        Record {
            ts_us,
            caplen: frame.len(),
            frame,
        }
    }
}

/// An Ethernet/IPv4/TCP frame; `ack` of `None` leaves the ACK flag off.
pub fn tcp_frame(
    from: Endpoint,
    to: Endpoint,
    seq: u32,
    ack: Option<u32>,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut builder = PacketBuilder::ethernet2(from.mac, to.mac)
        .ipv4(from.ip, to.ip, 64)
        .tcp(from.port, to.port, seq, 64240);
    if flags & SYN != 0 {
        builder = builder.syn();
    }
    if flags & FIN != 0 {
        builder = builder.fin();
    }
    if flags & RST != 0 {
        builder = builder.rst();
    }
    if flags & PSH != 0 {
        builder = builder.psh();
    }
    if let Some(ack) = ack {
        builder = builder.ack(ack);
    }
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, payload).expect("build packet");
    frame
}

/// The records as a classic pcap file.
pub fn pcap_bytes(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for record in records {
        out.extend_from_slice(&((record.ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((record.ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(record.caplen as u32).to_le_bytes());
        out.extend_from_slice(&(record.frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&record.frame[..record.caplen]);
    }
    out
}

/// A unique temporary path for a generated capture.
pub fn temp_capture(name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "kascope-test-{}-{}-{name}.pcap",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}
