//! From a captured frame to a TCP segment: link layer by hand (a few fixed offsets), IP and
//! TCP through etherparse's lax slicers, which accept snaplen-cut packets.
//!
//! Nothing is copied: the returned [`Segment`] borrows its payload from the frame.

use std::net::{IpAddr, SocketAddr};

use etherparse::{LaxIpSlice, TcpSlice};

use crate::source::Frame;

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
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// Payload bytes that were on the wire but not in the capture (snaplen).
    pub missing: u32,
}

/// Why a frame yields no TCP segment. Each reason is counted in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A link type this decoder does not know (its DLT number).
    UnsupportedLink(i32),
    /// Not IPv4 or IPv6 (ARP, LLDP, 802.11 management, ...).
    NotIp,
    /// IP, but not TCP.
    NotTcp,
    /// An IP fragment: kascope does not reassemble IP, so the segment is lost.
    Fragment,
    /// The frame ends inside a header.
    Truncated,
}

// libpcap DLT values (pcap/dlt.h); LINKTYPE_RAW (101) reads back as DLT_RAW (12 on Linux).
const DLT_NULL: i32 = 0;
const DLT_EN10MB: i32 = 1;
const DLT_RAW: i32 = 12;
const DLT_RAW_BSD: i32 = 14;
const DLT_LOOP: i32 = 108;
const DLT_LINUX_SLL: i32 = 113;
const DLT_IEEE802_11: i32 = 105;
const DLT_IEEE802_11_RADIO: i32 = 127;
const DLT_IPV4: i32 = 228;
const DLT_IPV6: i32 = 229;
const DLT_NFLOG: i32 = 239;
const DLT_LINUX_SLL2: i32 = 276;
const LINKTYPE_RAW: i32 = 101;

/// Whether frames of this link type can be decoded at all.
pub fn link_supported(link_type: i32) -> bool {
    matches!(
        link_type,
        DLT_NULL
            | DLT_EN10MB
            | DLT_RAW
            | DLT_RAW_BSD
            | LINKTYPE_RAW
            | DLT_LOOP
            | DLT_LINUX_SLL
            | DLT_LINUX_SLL2
            | DLT_IEEE802_11
            | DLT_IEEE802_11_RADIO
            | DLT_IPV4
            | DLT_IPV6
            | DLT_NFLOG
    )
}

/// Decodes one frame down to its TCP segment.
pub fn decode<'a>(frame: &Frame<'a>) -> Result<Segment<'a>, Skip> {
    let ip = network_layer(frame.link_type, frame.data)?;
    tcp_segment(frame.ts_ns, ip)
}

fn network_layer(link_type: i32, data: &[u8]) -> Result<&[u8], Skip> {
    match link_type {
        DLT_EN10MB => {
            let ethertype = be16(data, 12)?;
            after_ethertype(ethertype, data, 14)
        }
        DLT_LINUX_SLL => after_ethertype(be16(data, 14)?, data, 16),
        DLT_LINUX_SLL2 => after_ethertype(be16(data, 0)?, data, 20),
        // The 4-byte family is in the writer's byte order; the IP version nibble says enough.
        DLT_NULL | DLT_LOOP => ip_by_version(data.get(4..).ok_or(Skip::Truncated)?),
        DLT_RAW | DLT_RAW_BSD | LINKTYPE_RAW | DLT_IPV4 | DLT_IPV6 => ip_by_version(data),
        DLT_NFLOG => nflog_payload(data),
        DLT_IEEE802_11_RADIO => {
            let radiotap_len = usize::from(le16(data, 2)?);
            wifi_payload(data.get(radiotap_len..).ok_or(Skip::Truncated)?)
        }
        DLT_IEEE802_11 => wifi_payload(data),
        other => Err(Skip::UnsupportedLink(other)),
    }
}

fn be16(data: &[u8], at: usize) -> Result<u16, Skip> {
    data.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(Skip::Truncated)
}

fn le16(data: &[u8], at: usize) -> Result<u16, Skip> {
    data.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or(Skip::Truncated)
}

/// Follows VLAN tags (802.1Q, QinQ) and MPLS labels down to IP.
fn after_ethertype(mut ethertype: u16, data: &[u8], mut at: usize) -> Result<&[u8], Skip> {
    loop {
        match ethertype {
            0x0800 | 0x86dd => return data.get(at..).ok_or(Skip::Truncated),
            0x8100 | 0x88a8 | 0x9100 => {
                ethertype = be16(data, at + 2)?;
                at += 4;
            }
            0x8847 | 0x8848 => {
                // MPLS: pop labels until bottom-of-stack, then guess IP from the version nibble.
                loop {
                    let label = data.get(at..at + 4).ok_or(Skip::Truncated)?;
                    at += 4;
                    if label[2] & 0x01 != 0 {
                        break;
                    }
                }
                return ip_by_version(data.get(at..).ok_or(Skip::Truncated)?);
            }
            _ => return Err(Skip::NotIp),
        }
    }
}

fn ip_by_version(data: &[u8]) -> Result<&[u8], Skip> {
    match data.first().map(|b| b >> 4) {
        Some(4 | 6) => Ok(data),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Truncated),
    }
}

/// NFLOG: a 4-byte header, then type-length-value attributes in host (little-endian) order;
/// attribute 9 carries the packet.
fn nflog_payload(data: &[u8]) -> Result<&[u8], Skip> {
    const NFULA_PAYLOAD: u16 = 9;
    let mut at = 4;
    while at + 4 <= data.len() {
        let len = usize::from(le16(data, at)?);
        let kind = le16(data, at + 2)? & 0x7fff;
        if len < 4 {
            return Err(Skip::Truncated);
        }
        if kind == NFULA_PAYLOAD {
            let end = (at + len).min(data.len());
            return ip_by_version(&data[at + 4..end]);
        }
        at += (len + 3) & !3;
    }
    Err(Skip::NotIp)
}

/// 802.11 data frames carrying LLC/SNAP-encapsulated IP.
fn wifi_payload(data: &[u8]) -> Result<&[u8], Skip> {
    let control = *data.first().ok_or(Skip::Truncated)?;
    let flags = *data.get(1).ok_or(Skip::Truncated)?;
    let frame_type = (control >> 2) & 0x3;
    let subtype = control >> 4;
    if frame_type != 2 || flags & 0x40 != 0 {
        // Not data, or protected (encrypted): nothing to read.
        return Err(Skip::NotIp);
    }
    let mut header_len = 24;
    if flags & 0x03 == 0x03 {
        header_len += 6; // four addresses: to-DS and from-DS
    }
    if subtype & 0x08 != 0 {
        header_len += 2; // QoS control
        if flags & 0x80 != 0 {
            header_len += 4; // HT control
        }
    }
    let llc = data
        .get(header_len..header_len + 8)
        .ok_or(Skip::Truncated)?;
    if llc[..3] != [0xaa, 0xaa, 0x03] {
        return Err(Skip::NotIp);
    }
    after_ethertype(u16::from_be_bytes([llc[6], llc[7]]), data, header_len + 8)
}

fn tcp_segment(ts_ns: u64, ip: &[u8]) -> Result<Segment<'_>, Skip> {
    let (slice, _extension_error) = LaxIpSlice::from_slice(ip).map_err(|_| Skip::Truncated)?;
    let (src_ip, dst_ip, payload) = match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let header = v4.header();
            (
                IpAddr::from(header.source_addr()),
                IpAddr::from(header.destination_addr()),
                v4.payload(),
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let header = v6.header();
            (
                IpAddr::from(header.source_addr()),
                IpAddr::from(header.destination_addr()),
                v6.payload(),
            )
        }
    };
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    if payload.ip_number != etherparse::IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    let wire_tcp_len = match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let header = v4.header();
            usize::from(header.total_len()).saturating_sub(header.slice().len())
        }
        LaxIpSlice::Ipv6(v6) => {
            let declared = usize::from(v6.header().payload_length());
            let extensions = v6.extensions().slice().len();
            if declared == 0 {
                payload.payload.len()
            } else {
                declared.saturating_sub(extensions)
            }
        }
    };
    let tcp = TcpSlice::from_slice(payload.payload).map_err(|_| Skip::Truncated)?;
    let header_len = tcp.header_len();
    let captured = tcp.payload();
    let missing = wire_tcp_len.saturating_sub(header_len + captured.len());
    let mut flags = 0;
    for (set, bit) in [
        (tcp.fin(), Flags::FIN),
        (tcp.syn(), Flags::SYN),
        (tcp.rst(), Flags::RST),
        (tcp.ack(), Flags::ACK),
    ] {
        if set {
            flags |= bit;
        }
    }
    Ok(Segment {
        ts_ns,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: Flags(flags),
        payload: captured,
        missing: u32::try_from(missing).unwrap_or(u32::MAX),
    })
}
