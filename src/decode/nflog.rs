//! Linux NFLOG (`nflog:N` captures).

use super::{Skip, ip::ip_by_version, le16};

/// NFLOG: a 4-byte header, then type-length-value attributes in host (little-endian) order;
/// attribute 9 carries the packet.
pub(super) fn nflog_payload(data: &[u8]) -> Result<&[u8], Skip> {
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
