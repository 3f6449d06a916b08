//! IPv4/IPv6 and TCP through etherparse's lax slicers, which accept snaplen-cut packets.

use std::net::{IpAddr, SocketAddr};

use etherparse::{LaxIpSlice, TcpSlice};

use super::{Flags, Segment, Skip};

pub(super) fn ip_by_version(data: &[u8]) -> Result<&[u8], Skip> {
    match data.first().map(|b| b >> 4) {
        Some(4 | 6) => Ok(data),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Truncated),
    }
}

pub(super) fn tcp_segment(ts_ns: u64, ip: &[u8]) -> Result<Segment<'_>, Skip> {
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
        window: tcp.window_size(),
        payload: captured,
        missing: u32::try_from(missing).unwrap_or(u32::MAX),
        shed: false,
    })
}
