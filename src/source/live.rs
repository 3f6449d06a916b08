//! Live capture from a network interface through libpcap.

use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pcap::{Capture, Precision, Savefile};

use super::{Delivery, Frame, FrameSource, Linktype, SourceError, SourceEvent, pcap_message};

/// Live capture settings, tcpdump style.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub interface: String,
    /// The user's BPF expression; it is combined with `tcp`, all the analysis needs.
    pub filter: Option<String>,
    pub snaplen: i32,
    pub promiscuous: bool,
    /// Also save the captured packets to this pcap file (`-w`; `-` is standard output).
    pub save: Option<PathBuf>,
}

/// A capture from a network interface.
pub struct LiveSource {
    capture: Capture<pcap::Active>,
    /// Where `-w` saves the packets, flushed at every tick.
    savefile: Option<(Savefile, String)>,
    link_type: Linktype,
    interface: String,
    last_tick: Instant,
    kernel_drops: u64,
    /// A tick is due and the drop counter rose: report the drops on the next call.
    drops_to_report: bool,
    delivery: Delivery,
    /// The capture's socket (an AF_PACKET socket on Linux), to wait on.
    socket: RawFd,
}

/// How often a live source reports the time and the kernel's drop counter.
const TICK: Duration = Duration::from_millis(100);

/// Names and descriptions of the interfaces libpcap can capture on (`-D`).
pub fn list_interfaces() -> Result<Vec<(String, Option<String>)>, String> {
    pcap::Device::list()
        .map(|devices| devices.into_iter().map(|d| (d.name, d.desc)).collect())
        .map_err(|err| pcap_message(&err))
}

/// The full BPF filter for a live capture: `tcp`, and the user's expression if any.
pub fn live_filter(user: Option<&str>) -> String {
    match user {
        Some(expr) => format!("tcp and ({expr})"),
        None => "tcp".to_string(),
    }
}

fn privilege_hint(message: &str) -> Option<String> {
    let lowered = message.to_ascii_lowercase();
    (lowered.contains("operation not permitted") || lowered.contains("permission denied")).then(
        || {
            format!(
                "capturing needs the CAP_NET_RAW and CAP_NET_ADMIN capabilities ({message}); \
                 run it with sudo, or grant them once with \
                 'sudo setcap cap_net_raw,cap_net_admin=eip {}'",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "kascope".into())
            )
        },
    )
}

fn with_interfaces(message: String) -> String {
    match list_interfaces() {
        Ok(list) if !list.is_empty() => {
            let names: Vec<String> = list.into_iter().map(|(name, _)| name).collect();
            format!("{message}; interfaces: {}", names.join(", "))
        }
        _ => message,
    }
}

fn bad_filter(options: &LiveOptions, filter: &str, err: &pcap::Error) -> SourceError {
    SourceError {
        input: options.interface.clone(),
        message: format!("bad filter expression '{filter}': {}", pcap_message(err)),
    }
}

impl LiveSource {
    /// Opens the interface. A missing privilege, an unknown interface and a bad filter each
    /// give one clear message (with the list of interfaces where it helps).
    pub fn open(options: &LiveOptions) -> Result<LiveSource, SourceError> {
        let mut source = LiveSource::open_unfiltered(options)?;
        let filter = live_filter(options.filter.as_deref());
        source
            .capture
            .filter(&filter, true)
            .map_err(|err| bad_filter(options, &filter, &err))?;
        Ok(source)
    }

    /// Opens the interface without a filter in the kernel: every packet comes up until
    /// the caller attaches a socket filter of its own to [`LiveSource::socket`].
    pub(super) fn open_unfiltered(options: &LiveOptions) -> Result<LiveSource, SourceError> {
        let fail = |message: String| SourceError {
            input: options.interface.clone(),
            message,
        };
        let inactive = Capture::from_device(options.interface.as_str())
            .map_err(|err| fail(with_interfaces(pcap_message(&err))))?;
        // Non-blocking: with immediate mode libpcap's read timeout does not fire on an idle
        // interface, and the loop must wake up for signals, eviction and the status line.
        let capture = inactive
            .promisc(options.promiscuous)
            .snaplen(options.snaplen)
            .immediate_mode(true)
            .buffer_size(32 << 20)
            .precision(Precision::Nano)
            .open()
            .and_then(|capture| capture.setnonblock())
            .map_err(|err| {
                let message = pcap_message(&err);
                fail(privilege_hint(&message).unwrap_or_else(|| with_interfaces(message)))
            })?;
        let savefile = match &options.save {
            None => None,
            Some(path) => {
                let name = path.display().to_string();
                let saving = path
                    .to_str()
                    .ok_or_else(|| "the name is not UTF-8".to_string())
                    .and_then(|path| capture.savefile(path).map_err(|err| pcap_message(&err)))
                    .map_err(|err| fail(format!("{name}: cannot write: {err}")))?;
                Some((saving, name))
            }
        };
        let link_type = Linktype(capture.get_datalink().0);
        Ok(LiveSource {
            socket: capture.as_raw_fd(),
            capture,
            savefile,
            link_type,
            interface: options.interface.clone(),
            last_tick: Instant::now(),
            kernel_drops: 0,
            drops_to_report: false,
            delivery: Delivery::default(),
        })
    }

    /// The full filter (`tcp` and the user's expression) compiled for this interface.
    #[cfg(all(feature = "ebpf", target_os = "linux"))]
    pub(super) fn compile_filter(
        &self,
        options: &LiveOptions,
    ) -> Result<pcap::BpfProgram, SourceError> {
        let filter = live_filter(options.filter.as_deref());
        self.capture
            .compile(&filter, true)
            .map_err(|err| bad_filter(options, &filter, &err))
    }

    #[cfg(all(feature = "ebpf", target_os = "linux"))]
    pub(super) fn link_type(&self) -> Linktype {
        self.link_type
    }

    /// The capture's socket (an AF_PACKET socket on Linux).
    #[cfg(all(feature = "ebpf", target_os = "linux"))]
    pub(super) fn socket(&self) -> RawFd {
        self.socket
    }
}

impl FrameSource for LiveSource {
    /// Frames as they arrive, a tick about every 100 ms, drops when the counter rises. It
    /// never ends by itself: the driver stops it (signal, count, duration). Errors after the
    /// start end the capture with a message.
    fn next_event(&mut self) -> Result<Option<SourceEvent<'_>>, SourceError> {
        if self.drops_to_report {
            self.drops_to_report = false;
            return Ok(Some(SourceEvent::KernelDrops(self.kernel_drops)));
        }
        if self.last_tick.elapsed() >= TICK {
            self.last_tick = Instant::now();
            if let Ok(stats) = self.capture.stats() {
                let drops = u64::from(stats.dropped) + u64::from(stats.if_dropped);
                self.drops_to_report = drops > self.kernel_drops;
                self.kernel_drops = drops;
            }
            if let Some((savefile, name)) = &mut self.savefile {
                savefile.flush().map_err(|err| SourceError {
                    input: name.clone(),
                    message: format!("cannot write: {err}"),
                })?;
            }
            let now_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            return Ok(Some(SourceEvent::Tick(now_ns)));
        }
        match self.capture.next_packet() {
            Ok(packet) => {
                if let Some((savefile, _)) = &mut self.savefile {
                    savefile.write(&packet);
                }
                let header = packet.header;
                self.delivery.wire_bytes += u64::from(header.len);
                self.delivery.delivered_bytes += u64::from(header.caplen);
                Ok(Some(SourceEvent::Frame(Frame {
                    ts_ns: (header.ts.tv_sec as u64)
                        .wrapping_mul(1_000_000_000)
                        .wrapping_add(header.ts.tv_usec as u64),
                    link_type: self.link_type,
                    data: packet.data,
                    buffer: None,
                })))
            }
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing waiting: sleep until a packet comes or the next tick is due. Waking
                // at once matters to `--ebpf`, whose shed hints race the packets they are for.
                let wait = TICK.saturating_sub(self.last_tick.elapsed());
                let mut socket = libc::pollfd {
                    fd: self.socket,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd; an error or a signal just ends the wait early.
                unsafe { libc::poll(&mut socket, 1, wait.as_millis() as libc::c_int + 1) };
                Ok(Some(SourceEvent::Pending))
            }
            Err(err) => Err(SourceError {
                input: self.interface.clone(),
                message: format!("capture stopped: {}", pcap_message(&err)),
            }),
        }
    }

    fn delivery(&self) -> Option<Delivery> {
        Some(self.delivery)
    }
}
