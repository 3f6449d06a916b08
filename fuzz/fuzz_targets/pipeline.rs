//! Arbitrary bytes as a capture file (pcap, pcapng, gzip, or garbage).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "capture.rs"]
mod capture;

fuzz_target!(|input: &[u8]| {
    capture::analyze(input);
});
