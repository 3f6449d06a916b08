//! Arbitrary pcap records behind a valid classic pcap global header, so the fuzzer reaches the
//! decoders at once. The first input byte picks the link type (Ethernet for most values);
//! the rest is the record stream (16-byte little-endian record headers, then frame bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "capture.rs"]
mod capture;

/// LINKTYPE values kascope decodes; unlisted selector values mean Ethernet.
const LINK_TYPES: [u32; 12] = [1, 0, 101, 108, 113, 276, 105, 127, 228, 229, 239, 12];

fuzz_target!(|input: &[u8]| {
    let Some((&selector, records)) = input.split_first() else {
        return;
    };
    let link_type = LINK_TYPES
        .get(usize::from(selector & 0x1f))
        .copied()
        .unwrap_or(1);
    let mut file = Vec::with_capacity(24 + records.len());
    file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&4u16.to_le_bytes());
    file.extend_from_slice(&0i32.to_le_bytes());
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&262_144u32.to_le_bytes());
    file.extend_from_slice(&link_type.to_le_bytes());
    file.extend_from_slice(records);
    capture::analyze(&file);
});
