//! ERSPAN, how switches mirror ports over GRE: type II (GRE protocol 0x88BE with a sequence
//! number) and type III (0x22EB) have a header of their own before the mirrored frame; type I
//! (0x88BE without a sequence number) has none and is handled in `gre`.

use super::{Skip, ethernet, ip::ip_by_version};

/// Type II: an 8-byte header (version 1), then the mirrored Ethernet frame.
pub(super) fn type_2(erspan: &[u8]) -> Result<&[u8], Skip> {
    let version = erspan.first().ok_or(Skip::Truncated)? >> 4;
    if version != 1 {
        return Err(Skip::NotIp);
    }
    ethernet::frame_payload(erspan.get(8..).ok_or(Skip::Truncated)?)
}

/// Type III: a 12-byte header (version 2), an 8-byte platform-specific subheader when its O
/// bit is set, then the mirrored frame: Ethernet, or IP when its frame type says 2.
pub(super) fn type_3(erspan: &[u8]) -> Result<&[u8], Skip> {
    let header = erspan.get(..12).ok_or(Skip::Truncated)?;
    if header[0] >> 4 != 2 {
        return Err(Skip::NotIp);
    }
    let frame_type = (header[10] >> 2) & 0x1f;
    let optional = header[11] & 0x01 != 0;
    let at = if optional { 20 } else { 12 };
    let frame = erspan.get(at..).ok_or(Skip::Truncated)?;
    match frame_type {
        0 => ethernet::frame_payload(frame),
        2 => ip_by_version(frame),
        _ => Err(Skip::NotIp),
    }
}
