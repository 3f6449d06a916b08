//! VXLAN (RFC 7348) on UDP port 4789, how AWS VPC Traffic Mirroring delivers packets: an
//! 8-byte header (flags, VNI), then the Ethernet frame.

use super::{Skip, ethernet};

pub(super) fn inner_packet(vxlan: &[u8]) -> Result<&[u8], Skip> {
    ethernet::frame_payload(vxlan.get(8..).ok_or(Skip::Truncated)?)
}
