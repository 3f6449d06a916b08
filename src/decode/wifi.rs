//! IEEE 802.11 data frames (with or without a radiotap header before them).

use super::{Skip, ethernet::after_ethertype};

/// 802.11 data frames carrying LLC/SNAP-encapsulated IP.
pub(super) fn wifi_payload(data: &[u8]) -> Result<&[u8], Skip> {
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
