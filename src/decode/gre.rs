//! GRE (RFC 2784, RFC 2890, and version 1 as PPTP uses it, RFC 2637): the header, then by its
//! protocol type an ethertype (IP, VLAN, MPLS), transparent Ethernet bridging (0x6558), PPP
//! (PPTP), or ERSPAN (0x88BE, 0x22EB).

use super::{Encapsulation, Encapsulations, Skip, be16, erspan, ethernet};

const TRANSPARENT_ETHERNET: u16 = 0x6558;
const PPP: u16 = 0x880b;
const ERSPAN_II: u16 = 0x88be;
const ERSPAN_III: u16 = 0x22eb;

/// The IP packet a GRE packet carries; ERSPAN, when it is that, is added to
/// `encapsulations` whatever the mirrored frame holds.
pub(super) fn inner_packet<'a>(
    gre: &'a [u8],
    encapsulations: &mut Encapsulations,
) -> Result<&'a [u8], Skip> {
    let flags = be16(gre, 0)?;
    let protocol = be16(gre, 2)?;
    let checksum = flags & 0x8000 != 0;
    let routing = flags & 0x4000 != 0;
    let key = flags & 0x2000 != 0;
    let sequence = flags & 0x1000 != 0;
    let acknowledgement = flags & 0x0080 != 0;
    let version = flags & 0x0007;
    if version > 1 {
        return Err(Skip::NotIp);
    }
    let mut at = 4;
    for (present, len) in [
        (checksum || routing, 4),
        (key, 4),
        (sequence, 4),
        (version == 1 && acknowledgement, 4),
    ] {
        if present {
            at += len;
        }
    }
    if routing {
        at = after_routing(gre, at)?;
    }
    let payload = gre.get(at..).ok_or(Skip::Truncated)?;
    if matches!(protocol, ERSPAN_II | ERSPAN_III) {
        encapsulations.insert(Encapsulation::Erspan);
    }
    match protocol {
        TRANSPARENT_ETHERNET => ethernet::frame_payload(payload),
        ERSPAN_II if sequence => erspan::type_2(payload),
        // Type I has no ERSPAN header, and the GRE header has no sequence number.
        ERSPAN_II => ethernet::frame_payload(payload),
        ERSPAN_III => erspan::type_3(payload),
        PPP => ppp_payload(payload),
        ethertype => ethernet::after_ethertype(ethertype, payload, 0),
    }
}

/// RFC 1701 source route entries, up to the empty one that ends them.
fn after_routing(gre: &[u8], mut at: usize) -> Result<usize, Skip> {
    loop {
        let length = usize::from(*gre.get(at + 3).ok_or(Skip::Truncated)?);
        at += 4 + length;
        if length == 0 {
            return Ok(at);
        }
    }
}

/// A PPP frame (PPTP's GRE): address and control bytes when present, then the protocol
/// (one byte when compressed); IPv4 is 0x21, IPv6 0x57.
fn ppp_payload(ppp: &[u8]) -> Result<&[u8], Skip> {
    let ppp = ppp.strip_prefix(&[0xff, 0x03]).unwrap_or(ppp);
    let first = *ppp.first().ok_or(Skip::Truncated)?;
    let (protocol, at) = if first & 1 == 1 {
        (u16::from(first), 1)
    } else {
        (be16(ppp, 0)?, 2)
    };
    match protocol {
        0x21 | 0x57 => Ok(&ppp[at..]),
        _ => Err(Skip::NotIp),
    }
}
