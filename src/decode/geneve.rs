//! Geneve (RFC 8926) on UDP port 6081, used by GCP packet mirroring and the AWS Gateway Load
//! Balancer: an 8-byte header, its options, then what its protocol type names (Ethernet, or
//! IP directly).

use super::{Skip, be16, ethernet};

const TRANSPARENT_ETHERNET: u16 = 0x6558;

pub(super) fn inner_packet(geneve: &[u8]) -> Result<&[u8], Skip> {
    let first = *geneve.first().ok_or(Skip::Truncated)?;
    if first >> 6 != 0 {
        // Only version 0 exists.
        return Err(Skip::NotIp);
    }
    let options = usize::from(first & 0x3f) * 4;
    let protocol = be16(geneve, 2)?;
    let payload = geneve.get(8 + options..).ok_or(Skip::Truncated)?;
    match protocol {
        TRANSPARENT_ETHERNET => ethernet::frame_payload(payload),
        ethertype => ethernet::after_ethertype(ethertype, payload, 0),
    }
}
