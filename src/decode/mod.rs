//! From a captured frame to a TCP segment: link layer by hand (a few fixed offsets), IP and
//! TCP through etherparse's lax slicers, which accept snaplen-cut packets.
//!
//! Nothing is copied: the returned [`Segment`] borrows its payload from the frame.
//!
//! To add a link type, write its header walk (frame bytes → IP packet) in a file of its own
//! here and add its [`Linktype`] to the match in `network_layer`.

mod ethernet;
mod ip;
mod nflog;
mod wifi;

use std::net::SocketAddr;

use crate::source::{Frame, Linktype};

/// TCP header flags kept by the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// One TCP segment as seen on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub ts_ns: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    /// The window field as sent (unscaled).
    pub window: u16,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// Payload bytes that were on the wire but not in the capture (snaplen).
    pub missing: u32,
    /// The missing bytes were shed by the source on purpose (`--ebpf`: body bytes the
    /// analysis only counts): known and skipped, not lost.
    pub shed: bool,
}

/// Why a frame yields no TCP segment. Each reason is counted in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A link type this decoder does not know.
    UnsupportedLink(Linktype),
    /// Not IPv4 or IPv6 (ARP, LLDP, 802.11 management, ...).
    NotIp,
    /// IP, but not TCP.
    NotTcp,
    /// An IP fragment: kascope does not reassemble IP, so the segment is lost.
    Fragment,
    /// The frame ends inside a header.
    Truncated,
}

/// Decodes one frame down to its TCP segment.
pub fn decode<'a>(frame: &Frame<'a>) -> Result<Segment<'a>, Skip> {
    let ip = network_layer(frame.link_type, frame.data)?;
    ip::tcp_segment(frame.ts_ns, ip)
}

fn network_layer(link_type: Linktype, data: &[u8]) -> Result<&[u8], Skip> {
    match link_type {
        Linktype::ETHERNET => {
            let ethertype = be16(data, 12)?;
            ethernet::after_ethertype(ethertype, data, 14)
        }
        Linktype::LINUX_SLL => ethernet::after_ethertype(be16(data, 14)?, data, 16),
        Linktype::LINUX_SLL2 => ethernet::after_ethertype(be16(data, 0)?, data, 20),
        // The 4-byte family is in the writer's byte order; the IP version nibble says enough.
        Linktype::NULL | Linktype::LOOP => ip::ip_by_version(data.get(4..).ok_or(Skip::Truncated)?),
        Linktype::RAW
        | Linktype::RAW_BSD
        | Linktype::RAW_FILE
        | Linktype::IPV4
        | Linktype::IPV6 => ip::ip_by_version(data),
        Linktype::NFLOG => nflog::nflog_payload(data),
        Linktype::IEEE802_11_RADIOTAP => {
            let radiotap_len = usize::from(le16(data, 2)?);
            wifi::wifi_payload(data.get(radiotap_len..).ok_or(Skip::Truncated)?)
        }
        Linktype::IEEE802_11 => wifi::wifi_payload(data),
        other => Err(Skip::UnsupportedLink(other)),
    }
}

pub(crate) fn be16(data: &[u8], at: usize) -> Result<u16, Skip> {
    data.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(Skip::Truncated)
}

pub(crate) fn le16(data: &[u8], at: usize) -> Result<u16, Skip> {
    data.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or(Skip::Truncated)
}
