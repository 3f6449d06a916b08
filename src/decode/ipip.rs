//! IP-in-IP: an IPv4 packet (IP protocol 4) or an IPv6 packet (protocol 41, "6in4") carried
//! directly as the payload of an IPv4 or IPv6 packet, either way round.

use etherparse::IpNumber;

use super::Skip;

/// The inner packet of IP protocol 4 or 41: its version must be the one the protocol names.
pub(super) fn inner_packet(protocol: IpNumber, payload: &[u8]) -> Result<&[u8], Skip> {
    let expected = if protocol == IpNumber::IPV4 { 4 } else { 6 };
    match payload.first().map(|b| b >> 4) {
        Some(version) if version == expected => Ok(payload),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Truncated),
    }
}
