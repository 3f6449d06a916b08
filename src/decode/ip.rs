//! IPv4/IPv6 and TCP through etherparse's lax slicers, which accept snaplen-cut packets; on
//! the way, the tunnels inside IP are peeled until the TCP segment is reached.

use std::net::{IpAddr, SocketAddr};

use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::{IpNumber, Ipv6ExtensionSlice, LaxIpSlice, TcpSlice};

use super::defrag::{DatagramKey, Defragmenter, Fragment};
use super::{
    DamagedSegment, Encapsulation, Encapsulations, Flags, Segment, Skip, Tcp, be16, geneve, gre,
    ipip, vxlan,
};

/// Tunnels peeled at most in one frame: each costs at least a header, so the walk ends
/// anyway; the bound keeps a crafted frame of nested tunnels from costing more than a few
/// steps.
const MAX_DEPTH: usize = 8;

/// Bytes of TCP header Wireshark must have to give a segment a `tcp.stream` number: ports,
/// sequence and acknowledgement numbers, offset, flags and window.
const NUMBERED_TCP_BYTES: usize = 16;

pub(super) fn ip_by_version(data: &[u8]) -> Result<&[u8], Skip> {
    match data.first().map(|b| b >> 4) {
        Some(4 | 6) => Ok(data),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Truncated),
    }
}

/// One IP header's worth: who sent it to whom, what it carries, and the bytes it carries.
struct IpPacket<'a> {
    src: IpAddr,
    dst: IpAddr,
    protocol: IpNumber,
    /// The payload bytes that were captured (never more than the header says there are).
    payload: &'a [u8],
    /// Payload bytes the header says were on the wire.
    wire_len: usize,
}

#[inline]
fn ip_packet(ip: &[u8]) -> Result<IpPacket<'_>, Skip> {
    match packet_of(&lax_slice(ip)?)? {
        (_, true) => Err(Skip::Fragment),
        (packet, false) => Ok(packet),
    }
}

/// The packet an IP header describes, and whether its payload is a fragment of a datagram.
#[inline(always)]
fn packet_of<'a>(slice: &LaxIpSlice<'a>) -> Result<(IpPacket<'a>, bool), Skip> {
    let (src, dst, payload, wire_len) = match slice {
        LaxIpSlice::Ipv4(v4) => {
            let header = v4.header();
            let total = usize::from(header.total_len());
            let header_len = header.slice().len();
            // Wireshark takes a total length of 0 for a segmentation-offloaded packet and
            // reads what was captured; one shorter than the header is bogus.
            if total != 0 && total < header_len {
                return Err(Skip::BadIpHeader);
            }
            let payload = v4.payload();
            let wire_len = match total {
                0 => payload.payload.len(),
                _ => (total - header_len)
                    .saturating_sub(v4.extensions().auth.map_or(0, |auth| auth.slice().len())),
            };
            (
                IpAddr::from(header.source_addr()),
                IpAddr::from(header.destination_addr()),
                payload,
                wire_len,
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let header = v6.header();
            let declared = usize::from(header.payload_length());
            let payload = v6.payload();
            let wire_len = match declared {
                0 => payload.payload.len(),
                _ => declared.saturating_sub(v6.extensions().slice().len()),
            };
            (
                IpAddr::from(header.source_addr()),
                IpAddr::from(header.destination_addr()),
                payload,
                wire_len,
            )
        }
    };
    let packet = IpPacket {
        src,
        dst,
        protocol: payload.ip_number,
        payload: payload.payload,
        wire_len,
    };
    Ok((packet, payload.fragmented))
}

/// The IP header at the start of `ip`, read as far as it was captured (what follows a bad
/// extension header is taken as payload).
#[inline]
fn lax_slice(ip: &[u8]) -> Result<LaxIpSlice<'_>, Skip> {
    let (slice, _extension_error) = LaxIpSlice::from_slice(ip).map_err(|error| match error {
        LaxHeaderSliceError::Len(_) => Skip::Truncated,
        LaxHeaderSliceError::Content(_) => Skip::BadIpHeader,
    })?;
    Ok(slice)
}

/// The datagram a fragment ([`ip_packet`] said `ip` is one) completes, once it does. Out of
/// the way of every other packet: the header is read again here, as [`ip_packet`] reads it,
/// and then for where the fragment goes.
#[cold]
#[inline(never)]
fn reassembled<'a>(
    ts_ns: u64,
    ip: &[u8],
    defragmenter: &mut Defragmenter,
    datagram: &'a mut Vec<u8>,
) -> Result<IpPacket<'a>, Skip> {
    let slice = lax_slice(ip)?;
    let (piece, _) = packet_of(&slice)?;
    // (identification, offset in bytes, more fragments)
    let (id, offset, more) = match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let header = v4.header();
            (
                u32::from(header.identification()),
                usize::from(header.fragments_offset().value()) * 8,
                header.more_fragments(),
            )
        }
        LaxIpSlice::Ipv6(v6) => v6
            .extensions()
            .clone()
            .into_iter()
            .find_map(|extension| match extension {
                Ipv6ExtensionSlice::Fragment(f) => Some((
                    f.identification(),
                    usize::from(f.fragment_offset().value()) * 8,
                    f.more_fragments(),
                )),
                _ => None,
            })
            .ok_or(Skip::Fragment)?,
    };
    let fragment = Fragment {
        key: DatagramKey {
            src: piece.src,
            dst: piece.dst,
            protocol: piece.protocol.0,
            id,
        },
        offset,
        more,
        data: piece.payload,
        wire_len: piece.wire_len,
    };
    *datagram = defragmenter.add(ts_ns, &fragment).ok_or(Skip::Fragment)?;
    Ok(IpPacket {
        src: piece.src,
        dst: piece.dst,
        protocol: piece.protocol,
        payload: datagram,
        wire_len: datagram.len(),
    })
}

/// The TCP segment inside an IP packet, through whatever tunnels carry it; the tunnels
/// peeled are added to `encapsulations`. A fragment goes to `defragmenter`; the datagram
/// it completes is kept in `datagram`.
pub(super) fn tcp_segment<'a>(
    ts_ns: u64,
    mut ip: &'a [u8],
    encapsulations: &mut Encapsulations,
    defragmenter: &mut Defragmenter,
    datagram: &'a mut Vec<u8>,
) -> Result<Tcp<'a>, Skip> {
    let mut datagram = Some(datagram);
    for _ in 0..MAX_DEPTH {
        let packet = match ip_packet(ip) {
            Ok(packet) => packet,
            // One layer of a frame is put back together: a fragment inside a datagram
            // completed by this frame stays a fragment (fragmented twice over: not seen).
            Err(Skip::Fragment) => {
                let datagram = datagram.take().ok_or(Skip::Fragment)?;
                reassembled(ts_ns, ip, defragmenter, datagram)?
            }
            Err(skip) => return Err(skip),
        };
        let encapsulation = match packet.protocol {
            IpNumber::TCP => return tcp(ts_ns, &packet),
            IpNumber::IPV4 | IpNumber::IPV6 => Encapsulation::IpInIp,
            IpNumber::GRE => Encapsulation::Gre,
            IpNumber::UDP => udp_tunnel(packet.payload)?,
            _ => return Err(Skip::NotTcp),
        };
        // Counted whether or not what it carries turns out to be TCP.
        encapsulations.insert(encapsulation);
        ip = match encapsulation {
            Encapsulation::IpInIp => ipip::inner_packet(packet.protocol, packet.payload)?,
            Encapsulation::Gre | Encapsulation::Erspan => {
                gre::inner_packet(packet.payload, encapsulations)?
            }
            Encapsulation::Vxlan => vxlan::inner_packet(&packet.payload[UDP_HEADER..])?,
            Encapsulation::Geneve => geneve::inner_packet(&packet.payload[UDP_HEADER..])?,
        };
    }
    Err(Skip::NotTcp)
}

const UDP_HEADER: usize = 8;

/// A tunnel on UDP, known by its port (either way, as Wireshark decodes it): VXLAN on 4789,
/// Geneve on 6081. Any other UDP is not TCP.
fn udp_tunnel(udp: &[u8]) -> Result<Encapsulation, Skip> {
    const VXLAN: u16 = 4789;
    const GENEVE: u16 = 6081;
    let ports = [be16(udp, 0)?, be16(udp, 2)?];
    if udp.len() < UDP_HEADER {
        Err(Skip::Truncated)
    } else if ports.contains(&VXLAN) {
        Ok(Encapsulation::Vxlan)
    } else if ports.contains(&GENEVE) {
        Ok(Encapsulation::Geneve)
    } else {
        Err(Skip::NotTcp)
    }
}

#[inline(always)]
fn tcp<'a>(ts_ns: u64, packet: &IpPacket<'a>) -> Result<Tcp<'a>, Skip> {
    let bytes = packet.payload;
    let Ok(tcp) = TcpSlice::from_slice(bytes) else {
        return damaged(ts_ns, packet);
    };
    let header_len = tcp.header_len();
    let captured = tcp.payload();
    let missing = packet.wire_len.saturating_sub(header_len + captured.len());
    Ok(Tcp::Segment(Segment {
        ts_ns,
        src: SocketAddr::new(packet.src, tcp.source_port()),
        dst: SocketAddr::new(packet.dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: flags(bytes[13]),
        window: tcp.window_size(),
        payload: captured,
        missing: u32::try_from(missing).unwrap_or(u32::MAX),
        shed: false,
    }))
}

/// The flags kept by the analysis, from the TCP header's flags byte.
fn flags(byte: u8) -> Flags {
    Flags(byte & (Flags::FIN | Flags::SYN | Flags::RST | Flags::ACK))
}

/// A TCP header etherparse refuses: a damaged segment when Wireshark would still number it
/// (its first 16 bytes are there), else a frame cut inside a header.
#[cold]
fn damaged<'a>(ts_ns: u64, packet: &IpPacket<'_>) -> Result<Tcp<'a>, Skip> {
    let bytes = packet.payload;
    if bytes.len() < NUMBERED_TCP_BYTES || packet.wire_len < NUMBERED_TCP_BYTES {
        return Err(Skip::Truncated);
    }
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let port = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
    let claimed_header = usize::from(bytes[12] >> 4) * 4;
    Ok(Tcp::Damaged(DamagedSegment {
        header: Segment {
            ts_ns,
            src: SocketAddr::new(packet.src, port(0)),
            dst: SocketAddr::new(packet.dst, port(2)),
            seq: word(4),
            ack: word(8),
            flags: flags(bytes[13]),
            window: u16::from_be_bytes([bytes[14], bytes[15]]),
            payload: &[],
            missing: 0,
            shed: false,
        },
        sequenced: packet.wire_len >= claimed_header,
    }))
}
