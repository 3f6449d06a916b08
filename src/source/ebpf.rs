//! `--ebpf`: live capture through libpcap's own AF_PACKET socket with an eBPF socket filter
//! (`src/bpf/shed.bpf.c`) in place of its classic BPF filter. The filter's return value is
//! a per-packet snaplen: every TCP segment comes up with its headers, and its payload too
//! unless the analysis said the payload is body bytes it only counts ([`ShedHint`], written
//! into the filter's `shed` map). Frames keep arriving through libpcap's memory-mapped ring
//! as in the plain live capture, so kernel drops, timestamps and link types are libpcap's.
//!
//! Why a socket filter rather than a TC program writing records to a ring buffer: the
//! AF_PACKET tap sees both directions of every interface (`any` included) as libpcap does,
//! GSO/GRO super-packets come up as one frame whose IP length is the whole super-packet's,
//! its drops are counted by the ring, and nothing is attached to the interface (closing the
//! socket detaches the program; a killed kascope leaves nothing behind). See
//! docs/live-benchmark.md for the comparison.
//!
//! The user's filter expression cannot run in the kernel beside the eBPF program (a socket
//! has one filter), so libpcap compiles it and it runs here, on each frame as delivered.

use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

use super::live::LiveSource;
use super::{Delivery, FrameSource, Linktype, LiveOptions, ShedHint, SourceError, SourceEvent};

#[allow(clippy::all, clippy::pedantic)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/shed.skel.rs"));
}

use skel::{ShedSkel, ShedSkelBuilder};

/// `link_layer` values of the BPF program: where the IP header starts.
const LINK_ETHERNET: u32 = 1;
const LINK_IP: u32 = 0;

/// libpcap's largest snaplen: the ring's frames are this large whatever `-s` says.
const MAX_SNAPLEN: i32 = 262_144;

/// Capabilities by number (linux/capability.h).
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// A live capture whose socket filter sheds the payload the analysis does not need.
pub struct EbpfSource {
    live: LiveSource,
    skel: ShedSkel<'static>,
    /// The user's filter expression (with `tcp`), run on each delivered frame.
    filter: Option<pcap::BpfProgram>,
}

/// The effective capabilities of this process, from /proc/self/status.
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// Names of the capabilities `--ebpf` needs and this process lacks.
fn missing_capabilities() -> Vec<&'static str> {
    let Some(caps) = effective_capabilities() else {
        return Vec::new();
    };
    let has = |cap: u32| caps & (1 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_NET_RAW) {
        missing.push("CAP_NET_RAW");
    }
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    missing
}

fn libpcap_instead(message: String) -> String {
    format!("{message}; capture through libpcap instead (the same command without --ebpf)")
}

impl EbpfSource {
    pub fn open(options: &LiveOptions) -> Result<EbpfSource, SourceError> {
        let fail = |message: String| SourceError {
            input: options.interface.clone(),
            message: libpcap_instead(message),
        };
        let missing = missing_capabilities();
        if !missing.is_empty() {
            return Err(fail(format!(
                "the eBPF capture path needs CAP_NET_RAW and CAP_BPF, and this process lacks {} \
                 (run it with sudo, or grant them once with 'sudo setcap \
                 cap_net_raw,cap_net_admin,cap_bpf=eip {}')",
                missing.join(" and "),
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "kascope".into())
            )));
        }
        // The program applies the snaplen itself: libpcap must not cut a frame the program
        // kept at exactly the end of its headers, which would read as shed.
        let ring = LiveOptions {
            snaplen: options.snaplen.max(MAX_SNAPLEN),
            ..options.clone()
        };
        let live = LiveSource::open_unfiltered(&ring)?;
        let link_layer = match live.link_type() {
            Linktype::ETHERNET => LINK_ETHERNET,
            Linktype::LINUX_SLL | Linktype::LINUX_SLL2 | Linktype::RAW | Linktype::IPV4 => LINK_IP,
            other => {
                return Err(fail(format!(
                    "--ebpf handles Ethernet, cooked (-i any) and raw-IP interfaces; this one \
                     has link type {other}"
                )));
            }
        };
        let user_filter = options.filter.is_some();
        let filter = user_filter
            .then(|| live.compile_filter(options))
            .transpose()?;
        // The skeleton borrows the object it opens for as long as the program runs: one
        // per capture, kept until the process ends.
        let object: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let kernel = |what: &str, err: libbpf_rs::Error| {
            fail(format!(
                "this kernel cannot {what} kascope's eBPF socket filter ({err})"
            ))
        };
        let mut open = ShedSkelBuilder::default()
            .open(object)
            .map_err(|err| kernel("open", err))?;
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.link_layer = link_layer;
            rodata.snaplen = options.snaplen.max(1) as u32;
        }
        let skel = open.load().map_err(|err| kernel("load", err))?;
        let program = skel.progs.shed_bodies.as_fd().as_raw_fd();
        // SAFETY: setsockopt reads an int-sized program descriptor from a valid pointer.
        let attached = unsafe {
            libc::setsockopt(
                live.socket(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_BPF,
                (&raw const program).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if attached != 0 {
            return Err(fail(format!(
                "this kernel cannot attach kascope's eBPF socket filter to the capture \
                 socket ({})",
                std::io::Error::last_os_error()
            )));
        }
        Ok(EbpfSource { live, skel, filter })
    }
}

/// The BPF map key of one direction (`struct flow_key`): addresses as 16 bytes (IPv4
/// mapped), ports in network byte order.
fn flow_key(src: SocketAddr, dst: SocketAddr) -> [u8; 36] {
    let bytes = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    let mut key = [0u8; 36];
    key[..16].copy_from_slice(&bytes(src.ip()));
    key[16..32].copy_from_slice(&bytes(dst.ip()));
    key[32..34].copy_from_slice(&src.port().to_be_bytes());
    key[34..36].copy_from_slice(&dst.port().to_be_bytes());
    key
}

impl FrameSource for EbpfSource {
    fn next_event(&mut self) -> Result<Option<SourceEvent<'_>>, SourceError> {
        let event = self.live.next_event()?;
        if let (Some(SourceEvent::Frame(frame)), Some(filter)) = (&event, &self.filter)
            && !filter.filter(frame.data)
        {
            return Ok(Some(SourceEvent::Pending));
        }
        Ok(event)
    }

    /// Writes or removes the direction's shed range. A failed update only means payload
    /// keeps coming up.
    fn shed(&mut self, hint: &ShedHint) {
        let key = flow_key(hint.src, hint.dst);
        let map = &self.skel.maps.shed;
        let _ = match hint.range {
            Some((lo, hi)) => {
                let mut value = [0u8; 8];
                value[..4].copy_from_slice(&lo.to_ne_bytes());
                value[4..].copy_from_slice(&hi.to_ne_bytes());
                map.update(&key, &value, MapFlags::ANY)
            }
            None => map.delete(&key),
        };
    }

    fn delivery(&self) -> Option<Delivery> {
        self.live.delivery()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow_key_is_laid_out_as_the_bpf_program_reads_the_packet() {
        let key = flow_key(
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        );
        assert_eq!(key[10..16], [0xff, 0xff, 10, 0, 0, 1]);
        assert_eq!(key[26..32], [0xff, 0xff, 10, 0, 0, 2]);
        assert_eq!(key[32..], [0x9c, 0x40, 0, 80]);
    }
}
