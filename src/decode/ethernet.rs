//! Ethernet II payloads: the ethertype chain through VLAN tags and MPLS labels to IP.

use super::{Skip, be16, ip::ip_by_version};

/// An Ethernet II frame (the link layer, or the inner frame of a tunnel): its IP packet.
pub(super) fn frame_payload(frame: &[u8]) -> Result<&[u8], Skip> {
    after_ethertype(be16(frame, 12)?, frame, 14)
}

/// Follows VLAN tags (802.1Q, QinQ) and MPLS labels down to IP.
pub(super) fn after_ethertype(
    mut ethertype: u16,
    data: &[u8],
    mut at: usize,
) -> Result<&[u8], Skip> {
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
