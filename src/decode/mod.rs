//! From a captured frame to a TCP segment: link layer by hand (a few fixed offsets), IP and
//! TCP through etherparse's lax slicers, which accept snaplen-cut packets, and the tunnels
//! inside IP peeled on the way (IP-in-IP, GRE and ERSPAN, VXLAN, Geneve): the connection is
//! always the innermost TCP 4-tuple.
//!
//! Nothing is copied: the returned [`Segment`] borrows its payload from the frame — or,
//! for an IP datagram sent in fragments, from the datagram the [`Defragmenter`] put
//! together.
//!
//! To add a link type, write its header walk (frame bytes → IP packet) in a file of its own
//! here and add its [`Linktype`] to the match in `network_layer`. To add an encapsulation
//! inside IP, write the function that peels it (its payload → the inner IP packet or
//! Ethernet frame) in a file of its own and call it from `ip::tcp_segment`.

mod defrag;
mod erspan;
mod ethernet;
mod geneve;
mod gre;
mod ip;
mod ipip;
mod nflog;
mod vxlan;
mod wifi;

use std::net::SocketAddr;

pub use defrag::Defragmenter;

use crate::named::Named;
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

/// A TCP segment whose header is unusable (a data offset under 5 words, or more header than
/// the segment holds) but whose first 16 bytes are there. Wireshark gives such a segment the
/// `tcp.stream` number of its 4-tuple, so kascope counts it into that stream too (flag
/// `bad-tcp-header`); it carries no usable payload.
#[derive(Debug, Clone, Copy)]
pub struct DamagedSegment {
    /// Its addresses, sequence numbers and flags, with no payload.
    pub header: Segment<'static>,
    /// The IP length covers the header length the segment claims: Wireshark then takes its
    /// sequence numbers into account (the base a later SYN is compared with).
    pub sequenced: bool,
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
    /// An IP fragment, held until its datagram is complete (or given up).
    Fragment,
    /// The frame ends inside a header.
    Truncated,
    /// An IP header that cannot be right (a version other than 4 or 6, an IPv4 header
    /// length under 20 bytes, a total length shorter than the header): Wireshark decodes
    /// nothing inside it either.
    BadIpHeader,
}

/// A tunnel a frame was carried in, on its way to the TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulation {
    /// IPv4 or IPv6 directly inside IPv4 or IPv6 (IP protocols 4 and 41).
    IpInIp,
    Gre,
    /// ERSPAN types I, II and III (switch port mirroring), inside GRE.
    Erspan,
    /// VXLAN on UDP port 4789 (AWS VPC Traffic Mirroring).
    Vxlan,
    /// Geneve on UDP port 6081 (GCP packet mirroring, AWS Gateway Load Balancer).
    Geneve,
}

named_enum!(Encapsulation {
    IpInIp => "ip-in-ip",
    Gre => "gre",
    Erspan => "erspan",
    Vxlan => "vxlan",
    Geneve => "geneve",
});

/// The encapsulations one frame was carried in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Encapsulations(u8);

impl Encapsulations {
    pub(crate) fn insert(&mut self, encapsulation: Encapsulation) {
        self.0 |= 1 << encapsulation.index();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Encapsulation> {
        Encapsulation::ALL
            .iter()
            .copied()
            .filter(move |e| self.0 & (1 << e.index()) != 0)
    }
}

/// The TCP a frame holds.
#[derive(Debug, Clone, Copy)]
pub enum Tcp<'a> {
    Segment(Segment<'a>),
    /// TCP with an unusable header: counted into its stream, not analysed.
    Damaged(DamagedSegment),
}

/// Decodes one frame down to its TCP segment, or says why there is none; the tunnels it was
/// carried in (whether or not it held TCP) are added to `encapsulations`. An IP fragment is
/// handed to `defragmenter`: the frame that completes its datagram yields what the datagram
/// holds, which is moved into `datagram` for the segment to borrow.
pub fn decode<'a>(
    frame: &Frame<'a>,
    encapsulations: &mut Encapsulations,
    defragmenter: &mut Defragmenter,
    datagram: &'a mut Vec<u8>,
) -> Result<Tcp<'a>, Skip> {
    let ip = network_layer(frame.link_type, frame.data)?;
    ip::tcp_segment(frame.ts_ns, ip, encapsulations, defragmenter, datagram)
}

/// The TCP endpoints of a plain Ethernet + IPv4 + TCP frame (no VLAN tag, not a fragment),
/// read at their fixed places without decoding the rest: for such a frame [`decode`] finds
/// these endpoints if it finds a segment at all. `None` for any other frame. What the
/// reader of `--threads` routes frames by, leaving their decoding to the shards.
pub fn plain_tcp_endpoints(frame: &Frame<'_>) -> Option<(SocketAddr, SocketAddr)> {
    use std::net::{Ipv4Addr, SocketAddrV4};
    let data = frame.data;
    if frame.link_type != Linktype::ETHERNET || data.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = &data[14..];
    let header = usize::from(ip.first()? & 0x0f) * 4;
    let fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff != 0;
    if ip[0] >> 4 != 4 || header < 20 || *ip.get(9)? != 6 || fragment {
        return None;
    }
    let ports = ip.get(header..header + 4)?;
    let endpoint = |at: usize, port: usize| {
        let address = Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
        SocketAddr::V4(SocketAddrV4::new(
            address,
            u16::from_be_bytes([ports[port], ports[port + 1]]),
        ))
    };
    Some((endpoint(12, 0), endpoint(16, 2)))
}

fn network_layer(link_type: Linktype, data: &[u8]) -> Result<&[u8], Skip> {
    match link_type {
        Linktype::ETHERNET => ethernet::frame_payload(data),
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
