//! Tunnels around frames that [`super::pcap::Conv`] built: each function takes an inner
//! Ethernet frame (Ethernet II, IPv4, TCP) and returns the frame that carries it, as the
//! encapsulations users capture put it on the wire. Used with `Conv::rewritten`.

/// The outer endpoints of every tunnel here (TEST-NET-1 and a ULA prefix).
const OUTER_V4: [[u8; 4]; 2] = [[192, 0, 2, 1], [192, 0, 2, 2]];
const OUTER_V6: [[u8; 16]; 2] = [
    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
];
const OUTER_MACS: [u8; 12] = [2, 0, 0, 0, 0, 0x10, 2, 0, 0, 0, 0, 0x11];

const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86dd;

/// The IP packet inside an Ethernet frame.
fn ip_of(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = OUTER_MACS.to_vec();
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut header = vec![0x45, 0];
    header.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    header.extend_from_slice(&[0, 1, 0x40, 0, 64, protocol, 0, 0]);
    header.extend_from_slice(&OUTER_V4[0]);
    header.extend_from_slice(&OUTER_V4[1]);
    let sum = checksum(&header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    header.extend_from_slice(payload);
    header
}

fn ipv6_header(next: u8, payload_len: usize, src: &[u8; 16], dst: &[u8; 16]) -> Vec<u8> {
    let mut header = vec![0x60, 0, 0, 0];
    header.extend_from_slice(&(payload_len as u16).to_be_bytes());
    header.extend_from_slice(&[next, 64]);
    header.extend_from_slice(src);
    header.extend_from_slice(dst);
    header
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut packet = ipv6_header(next, payload.len(), &OUTER_V6[0], &OUTER_V6[1]);
    packet.extend_from_slice(payload);
    packet
}

/// An IPv4/TCP packet as IPv6/TCP between `2001:db8::` + the IPv4 addresses, with the TCP
/// checksum made again.
pub fn as_ipv6(ipv4_packet: &[u8]) -> Vec<u8> {
    let header_len = usize::from(ipv4_packet[0] & 0x0f) * 4;
    let mut tcp = ipv4_packet[header_len..].to_vec();
    let address = |v4: &[u8]| {
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[12..].copy_from_slice(v4);
        v6
    };
    let (src, dst) = (address(&ipv4_packet[12..16]), address(&ipv4_packet[16..20]));
    tcp[16..18].copy_from_slice(&[0, 0]);
    let mut pseudo = src.to_vec();
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&(tcp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 6]);
    pseudo.extend_from_slice(&tcp);
    let sum = checksum(&pseudo);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut packet = ipv6_header(6, tcp.len(), &src, &dst);
    packet.extend_from_slice(&tcp);
    packet
}

/// IP-in-IP: the inner packet (as IPv6 when `inner_v6`: protocol 41) directly inside an
/// outer IPv4 or IPv6 packet.
pub fn ip_in_ip(frame: &[u8], outer_v6: bool, inner_v6: bool) -> Vec<u8> {
    let (inner, protocol) = if inner_v6 {
        (as_ipv6(ip_of(frame)), 41)
    } else {
        (ip_of(frame).to_vec(), 4)
    };
    if outer_v6 {
        ethernet(IPV6, &ipv6(protocol, &inner))
    } else {
        ethernet(IPV4, &ipv4(protocol, &inner))
    }
}

/// A GRE header (RFC 2784/2890) with the optional key and sequence number.
fn gre_header(protocol: u16, key: Option<u32>, sequence: Option<u32>) -> Vec<u8> {
    let flags: u16 =
        if key.is_some() { 0x2000 } else { 0 } | if sequence.is_some() { 0x1000 } else { 0 };
    let mut header = flags.to_be_bytes().to_vec();
    header.extend_from_slice(&protocol.to_be_bytes());
    for field in [key, sequence].into_iter().flatten() {
        header.extend_from_slice(&field.to_be_bytes());
    }
    header
}

fn over_gre(header: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    let mut gre = header;
    gre.extend_from_slice(payload);
    ethernet(IPV4, &ipv4(47, &gre))
}

/// GRE carrying the inner IP packet (protocol type 0x0800).
pub fn gre_ip(frame: &[u8]) -> Vec<u8> {
    over_gre(gre_header(IPV4, None, None), ip_of(frame))
}

/// GRE with a key and a sequence number carrying the whole inner Ethernet frame
/// (transparent Ethernet bridging, 0x6558).
pub fn gre_ethernet(frame: &[u8], sequence: u32) -> Vec<u8> {
    over_gre(gre_header(0x6558, Some(7), Some(sequence)), frame)
}

/// PPTP's enhanced GRE (version 1, key = payload length and call id, sequence number)
/// carrying PPP with the inner IP packet.
pub fn pptp(frame: &[u8], sequence: u32) -> Vec<u8> {
    let ip = ip_of(frame);
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(ip);
    let mut header = vec![0x30, 0x01, 0x88, 0x0b];
    header.extend_from_slice(&(ppp.len() as u16).to_be_bytes());
    header.extend_from_slice(&[0x00, 0x01]);
    header.extend_from_slice(&sequence.to_be_bytes());
    over_gre(header, &ppp)
}

/// ERSPAN of `version` 1 (type I: no ERSPAN header, no GRE sequence number), 2 (type II)
/// or 3 (type III, with the platform-specific subheader when `subheader`), session 5.
pub fn erspan(frame: &[u8], version: u8, sequence: u32, subheader: bool) -> Vec<u8> {
    match version {
        1 => over_gre(gre_header(0x88be, None, None), frame),
        2 => {
            let mut payload = vec![0x10, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00];
            payload.extend_from_slice(frame);
            over_gre(gre_header(0x88be, None, Some(sequence)), &payload)
        }
        _ => {
            let mut payload = vec![0x20, 0x00, 0x00, 0x05];
            payload.extend_from_slice(&sequence.wrapping_mul(1000).to_be_bytes());
            payload.extend_from_slice(&[0x00, 0x00, 0x00, u8::from(subheader)]);
            if subheader {
                payload.extend_from_slice(&[0x0c, 0, 0, 0, 0, 0, 0, 0]);
            }
            payload.extend_from_slice(frame);
            over_gre(gre_header(0x22eb, None, Some(sequence)), &payload)
        }
    }
}

fn udp(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut datagram = 49152u16.to_be_bytes().to_vec();
    datagram.extend_from_slice(&port.to_be_bytes());
    datagram.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(payload);
    ethernet(IPV4, &ipv4(17, &datagram))
}

/// VXLAN on UDP 4789 (VNI 42) carrying the inner Ethernet frame, as AWS VPC Traffic
/// Mirroring sends it.
pub fn vxlan(frame: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    payload.extend_from_slice(frame);
    udp(4789, &payload)
}

/// Geneve on UDP 6081 (VNI 42): the inner Ethernet frame behind one 8-byte option, or,
/// when `ip_only`, the inner IP packet with no option (as the AWS Gateway Load Balancer
/// and GCP packet mirroring send them).
pub fn geneve(frame: &[u8], ip_only: bool) -> Vec<u8> {
    let mut payload = if ip_only {
        vec![0x00, 0x00, 0x08, 0x00, 0, 0, 42, 0]
    } else {
        vec![
            0x02, 0x00, 0x65, 0x58, 0, 0, 42, 0, 0x01, 0x08, 0x01, 0x01, 0, 0, 0, 1,
        ]
    };
    payload.extend_from_slice(if ip_only { ip_of(frame) } else { frame });
    udp(6081, &payload)
}

/// An Ethernet frame's IPv4 packet (header without options) sent in fragments of at most
/// `piece` payload bytes (a multiple of 8), identification `id`: the frames, in order.
pub fn ipv4_fragments(frame: &[u8], piece: usize, id: u16) -> Vec<Vec<u8>> {
    let ip = ip_of(frame);
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let payload = &ip[20..total];
    let mut frames = Vec::new();
    for (n, data) in payload.chunks(piece).enumerate() {
        let offset = n * piece;
        let more = offset + data.len() < payload.len();
        let mut header = ip[..20].to_vec();
        header[2..4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
        header[4..6].copy_from_slice(&id.to_be_bytes());
        let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
        header[6..8].copy_from_slice(&flags.to_be_bytes());
        header[10..12].copy_from_slice(&[0, 0]);
        let sum = checksum(&header);
        header[10..12].copy_from_slice(&sum.to_be_bytes());
        header.extend_from_slice(data);
        frames.push(ethernet(IPV4, &header));
    }
    frames
}

/// The same packet as IPv6 ([`as_ipv6`]) in fragments (a Fragment header, RFC 8200 §4.5).
pub fn ipv6_fragments(frame: &[u8], piece: usize, id: u32) -> Vec<Vec<u8>> {
    const FRAGMENT: u8 = 44;
    let packet = as_ipv6(ip_of(frame));
    let (src, dst): ([u8; 16], [u8; 16]) = (
        packet[8..24].try_into().unwrap(),
        packet[24..40].try_into().unwrap(),
    );
    let next = packet[6];
    let payload = &packet[40..];
    let mut frames = Vec::new();
    for (n, data) in payload.chunks(piece).enumerate() {
        let offset = n * piece;
        let more = offset + data.len() < payload.len();
        let mut fragment = ipv6_header(FRAGMENT, 8 + data.len(), &src, &dst);
        fragment.extend_from_slice(&[next, 0]);
        fragment.extend_from_slice(&((offset as u16) | u16::from(more)).to_be_bytes());
        fragment.extend_from_slice(&id.to_be_bytes());
        fragment.extend_from_slice(data);
        frames.push(ethernet(IPV6, &fragment));
    }
    frames
}

/// The frame with its IPv4 packet as IPv6 ([`as_ipv6`]).
pub fn ipv6_frame(frame: &[u8]) -> Vec<u8> {
    ethernet(IPV6, &as_ipv6(ip_of(frame)))
}
