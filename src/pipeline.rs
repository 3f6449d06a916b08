//! The connection table: every stage's state per connection, fed one frame at a time.
//!
//! [`Analyzer`] decodes each frame, finds (or opens) the connection's slot by its canonical
//! 4-tuple, numbers it as Wireshark numbers `tcp.stream`, and runs the segment through the
//! connection's tcp → http → analysis stages. Finished connections come out as records; idle
//! ones are evicted, and past the memory budget the longest-idle ones are written out early.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;

use crate::analysis::{CloseKind, EndReason, Ledger, transaction_record};
use crate::decode::{self, Segment, Skip};
use crate::http::{self, HttpConnection, HttpEvent};
use crate::record::{ConnectionRecord, Flag, TransactionRecord};
use crate::source::{Frame, Linktype, ShedHint};
use crate::tcp::{ClientSide, Dir, StreamEvent, TcpConnection};
use crate::verdict;

/// Tunables of the pipeline.
#[derive(Debug, Clone)]
pub struct Config {
    /// Out-of-order bytes one direction may buffer before a hole is given up.
    pub reassembly_limit: usize,
    /// Longest message head kept while waiting for its end.
    pub max_head: usize,
    /// Produce a [`TransactionRecord`] per request.
    pub transactions: bool,
    /// Keep each request's method, target and Host in its record (else they are empty).
    pub transaction_text: bool,
    /// How long a closed connection stays in the table for late ACKs and retransmitted FINs
    /// before its record is written; 0 writes it at once (live capture), and later packets
    /// without payload are then only counted.
    pub linger_ns: u64,
    /// Connections without a packet for this long are written out as evicted.
    pub idle_evict_ns: u64,
    /// Measurement noise the Keep-Alive verdicts forgive.
    pub tolerance: verdict::Tolerance,
    /// Memory the connection table may hold (estimated); past it the connections idle the
    /// longest are written out early, flagged `memory-budget`.
    pub max_memory: usize,
    /// The source sheds payload on request (`--ebpf`): the analyzer produces
    /// [`ShedHint`]s, and reads a frame cut exactly at the end of its TCP header as payload
    /// shed on purpose (known and skipped), not lost.
    pub kernel_shedding: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            reassembly_limit: 4 << 20,
            max_head: http::DEFAULT_MAX_HEAD,
            transactions: false,
            transaction_text: false,
            linger_ns: 5_000_000_000,
            idle_evict_ns: 300_000_000_000,
            tolerance: verdict::Tolerance::default(),
            max_memory: 512 << 20,
            kernel_shedding: false,
        }
    }
}

impl Config {
    /// What the HTTP stage keeps of finished transactions.
    fn keep(&self) -> http::Keep {
        match (self.transactions, self.transaction_text) {
            (false, _) => http::Keep::Nothing,
            (true, false) => http::Keep::Timing,
            (true, true) => http::Keep::Everything,
        }
    }
}

/// A finished record.
#[derive(Debug, Clone)]
pub enum Output {
    Connection(Box<ConnectionRecord>),
    Transaction(Box<TransactionRecord>),
}

/// Frames that did not make it to the TCP stage, by reason.
#[derive(Debug, Clone, Default)]
pub struct FrameCounts {
    pub frames: u64,
    pub tcp_segments: u64,
    pub not_ip: u64,
    pub not_tcp: u64,
    pub fragments: u64,
    pub truncated: u64,
    pub unsupported_link: u64,
    /// Unsupported link types seen.
    pub unsupported_link_types: Vec<Linktype>,
    pub bytes: u64,
    /// Payload-less packets of connections already written out (final ACKs, late RSTs).
    pub late_packets: u64,
    /// Connections written out early to stay within the memory budget.
    pub shed_connections: u64,
    /// The largest memory estimate reached.
    pub peak_memory: usize,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
}

/// Canonical 4-tuple: the lower endpoint first, so both directions share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey(SocketAddr, SocketAddr);

impl FlowKey {
    fn new(a: SocketAddr, b: SocketAddr) -> FlowKey {
        if a <= b { FlowKey(a, b) } else { FlowKey(b, a) }
    }
}

/// Every stage's state for one connection.
struct Slot {
    tcp: TcpConnection,
    /// Which side is the client: learned from the handshake or the HTTP bytes, read by all.
    client: ClientSide,
    http: HttpConnection,
    ledger: Ledger,
    /// Capture time at which both FINs or a RST were seen.
    closed_at: Option<u64>,
    /// Packets of a connection already written out came late; this row carries them.
    continued: bool,
    /// The kernel dropped packets while this connection was open (live capture).
    kernel_drops: bool,
    /// Per direction, the shed range last handed to the source, if any.
    shed: [Option<Shed>; 2],
}

/// A shed range handed to the source, in stream offsets: it ends at `until`, short of or at
/// the end of the body (`body_end`) it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shed {
    body_end: u64,
    until: u64,
}

/// Bodies with fewer bytes than this still to come are not worth a hint (a map update in
/// the kernel and, later, its removal).
pub const SHED_THRESHOLD: u64 = 4096;

/// Longest shed range: well within half the sequence space, so wrapping comparisons hold.
const MAX_SHED: u64 = 1 << 30;

/// Memory of one table entry beyond its buffers: the slot, its key and the map's overhead.
const SLOT_COST: usize = std::mem::size_of::<Slot>()
    + std::mem::size_of::<FlowKey>()
    + std::mem::size_of::<Box<Slot>>()
    + 24;
const RETIRED_COST: usize = std::mem::size_of::<Retired>() + std::mem::size_of::<FlowKey>() + 16;

impl Slot {
    /// Why the record is written now: a connection seen to close ended by closing, whatever
    /// made the table let go of it; otherwise `cause`.
    fn end_reason(&self, cause: EndReason) -> EndReason {
        if self.closed_at.is_some() {
            EndReason::Closed
        } else {
            cause
        }
    }

    /// Bytes held in buffers and queues, which change packet by packet.
    fn buffered_bytes(&self) -> usize {
        self.tcp.buffered_bytes() + self.http.buffered_bytes()
    }
}

/// What is remembered of a connection after its record was written: enough to give late
/// packets (a retransmitted FIN, a RST long after the close) the same `tcp.stream` number,
/// as Wireshark does, which never starts a new stream without a SYN.
struct Retired {
    stream: u64,
    at: u64,
}

/// Retired connections are forgotten after this long, or when there are this many.
const RETIRED_FOR_NS: u64 = 600_000_000_000;
const MAX_RETIRED: usize = 1 << 20;

/// The whole pipeline from frames to records.
pub struct Analyzer {
    config: Config,
    /// Slots are boxed so that growing the map moves pointers, not kilobyte-sized slots.
    table: HashMap<FlowKey, Box<Slot>>,
    retired: HashMap<FlowKey, Retired>,
    next_stream: u64,
    counts: FrameCounts,
    output: Vec<Output>,
    last_sweep_ns: u64,
    /// Largest `timeout=` advertised on any open connection seen at a sweep: idle eviction
    /// waits at least twice that, so it never cuts a connection the server still keeps.
    largest_timeout_ns: u64,
    /// Sum of every slot's buffered bytes, kept up to date packet by packet.
    buffered: usize,
    /// Hints for the source since the last [`Analyzer::take_shed_hints`].
    hints: Vec<ShedHint>,
}

const SWEEP_INTERVAL_NS: u64 = 1_000_000_000;

impl Analyzer {
    pub fn new(config: Config) -> Analyzer {
        Analyzer {
            config,
            table: HashMap::new(),
            retired: HashMap::new(),
            next_stream: 0,
            counts: FrameCounts::default(),
            output: Vec::new(),
            last_sweep_ns: 0,
            largest_timeout_ns: 0,
            buffered: 0,
            hints: Vec::new(),
        }
    }

    pub fn counts(&self) -> &FrameCounts {
        &self.counts
    }

    pub fn open_connections(&self) -> usize {
        self.table.len()
    }

    /// Records finished since the last call.
    pub fn take_output(&mut self) -> std::vec::Drain<'_, Output> {
        self.output.drain(..)
    }

    /// Hints for the source since the last call (only with `kernel_shedding`).
    pub fn take_shed_hints(&mut self) -> std::vec::Drain<'_, ShedHint> {
        self.hints.drain(..)
    }

    pub fn process_frame(&mut self, frame: &Frame<'_>) {
        let counts = &mut self.counts;
        counts.frames += 1;
        counts.bytes += frame.data.len() as u64;
        counts.first_ts.get_or_insert(frame.ts_ns);
        counts.last_ts = Some(frame.ts_ns);
        match decode::decode(frame) {
            Ok(mut segment) => {
                counts.tcp_segments += 1;
                // A shedding source cuts a frame exactly after its TCP header only to shed
                // its payload (an empty payload with bytes missing is that cut).
                segment.shed = self.config.kernel_shedding
                    && segment.payload.is_empty()
                    && segment.missing > 0;
                self.process_segment(&segment);
            }
            Err(Skip::NotIp) => counts.not_ip += 1,
            Err(Skip::NotTcp) => counts.not_tcp += 1,
            Err(Skip::Fragment) => counts.fragments += 1,
            Err(Skip::Truncated) => counts.truncated += 1,
            Err(Skip::UnsupportedLink(link)) => {
                counts.unsupported_link += 1;
                if !counts.unsupported_link_types.contains(&link) {
                    counts.unsupported_link_types.push(link);
                }
            }
        }
        if frame.ts_ns >= self.last_sweep_ns.saturating_add(SWEEP_INTERVAL_NS) {
            self.sweep(frame.ts_ns);
        }
    }

    pub fn process_segment(&mut self, segment: &Segment<'_>) {
        let config = &self.config;
        let key = FlowKey::new(segment.src, segment.dst);
        let new_slot = |stream, continued| {
            Box::new(Slot {
                tcp: TcpConnection::new(segment, stream, config.reassembly_limit),
                client: ClientSide::default(),
                http: HttpConnection::new(config.max_head, config.keep()),
                ledger: Ledger::default(),
                closed_at: None,
                continued,
                kernel_drops: false,
                shed: [None; 2],
            })
        };
        let slot = match self.table.entry(key) {
            Entry::Occupied(entry) if entry.get().tcp.is_reused_by(segment) => {
                let entry = entry.into_mut();
                let old = std::mem::replace(entry, new_slot(self.next_stream, false));
                self.buffered = self.buffered.saturating_sub(old.buffered_bytes());
                self.next_stream += 1;
                release_shed_hints(&old, &mut self.hints);
                let reason = old.end_reason(EndReason::Superseded);
                finish(old, reason, config, &mut self.output);
                entry
            }
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let opens = segment.flags.syn() && !segment.flags.ack();
                let carries_data = !segment.payload.is_empty() || segment.missing > 0;
                if !opens && !carries_data && self.retired.contains_key(&key) {
                    // A final ACK, retransmitted FIN or stray RST of a connection already
                    // written out: nothing to report on a row of its own.
                    self.counts.late_packets += 1;
                    return;
                }
                match self.retired.remove(&key) {
                    Some(retired) if !opens => entry.insert(new_slot(retired.stream, true)),
                    _ => {
                        let slot = entry.insert(new_slot(self.next_stream, false));
                        self.next_stream += 1;
                        slot
                    }
                }
            }
        };
        let held_before = slot.buffered_bytes();
        let Slot {
            tcp,
            client,
            http,
            ledger,
            ..
        } = &mut **slot;
        let ts = segment.ts_ns;
        let dir = tcp.direction_of(segment);
        client.learn_from_segment(dir, segment.flags);
        let believed = tcp.on_segment(segment, |dir, event| {
            http_event(http, ledger, client, dir, event, ts);
        });
        if segment.flags.rst() {
            if believed {
                ledger.on_close_flag(dir, CloseKind::Rst, ts);
            }
        } else if segment.flags.fin() {
            ledger.on_close_flag(dir, CloseKind::Fin, ts);
        }
        emit_transactions(http, tcp, *client, &mut self.output);
        if self.config.kernel_shedding {
            update_shed_hints(slot, &mut self.hints);
        }
        if slot.closed_at.is_none() && slot.tcp.is_closed() {
            slot.closed_at = Some(ts);
            slot.tcp.release_buffers();
        }
        self.buffered = (self.buffered + slot.buffered_bytes()).saturating_sub(held_before);
        if slot.closed_at.is_some()
            && self.config.linger_ns == 0
            && let Some(slot) = self.table.remove(&key)
        {
            self.retire(key, slot, EndReason::Closed, ts);
        }
        if self.memory_estimate() > self.config.max_memory {
            self.shed(ts);
        }
    }

    /// Estimated memory held by the connection table and what it remembers.
    pub fn memory_estimate(&self) -> usize {
        self.table.len() * SLOT_COST + self.retired.len() * RETIRED_COST + self.buffered
    }

    /// Over the memory budget: forget written-out connections first, then write out the
    /// connections idle the longest until a quarter of the budget is free again.
    fn shed(&mut self, now: u64) {
        self.counts.peak_memory = self.counts.peak_memory.max(self.memory_estimate());
        if self.retired.len() * RETIRED_COST > self.config.max_memory / 8 {
            self.retired = HashMap::new();
        }
        let target = self.config.max_memory / 4 * 3;
        if self.memory_estimate() <= target {
            return;
        }
        let mut by_idle: Vec<(u64, FlowKey)> = self
            .table
            .iter()
            .map(|(key, slot)| (slot.tcp.last_ts, *key))
            .collect();
        by_idle.sort_unstable_by_key(|(last_ts, _)| *last_ts);
        for (_, key) in by_idle {
            if self.memory_estimate() <= target {
                break;
            }
            if let Some(slot) = self.table.remove(&key) {
                self.counts.shed_connections += 1;
                self.retire(key, slot, EndReason::MemoryBudget, now);
            }
        }
    }

    /// Writes a connection out and remembers its stream number for late packets.
    fn retire(&mut self, key: FlowKey, slot: Box<Slot>, reason: EndReason, now: u64) {
        self.buffered = self.buffered.saturating_sub(slot.buffered_bytes());
        release_shed_hints(&slot, &mut self.hints);
        if self.retired.len() < MAX_RETIRED {
            let stream = slot.tcp.stream;
            self.retired.insert(key, Retired { stream, at: now });
        }
        finish(slot, reason, &self.config, &mut self.output);
    }

    /// Lets time pass without packets (live capture): connections due are written out.
    pub fn tick(&mut self, now_ns: u64) {
        if now_ns >= self.last_sweep_ns.saturating_add(SWEEP_INTERVAL_NS) {
            self.sweep(now_ns);
        }
    }

    /// Marks every open connection as affected by kernel packet drops.
    pub fn mark_kernel_drops(&mut self) {
        for slot in self.table.values_mut() {
            slot.kernel_drops = true;
        }
    }

    /// The idle time after which an open connection is evicted now.
    pub fn idle_eviction_ns(&self) -> u64 {
        self.config
            .idle_evict_ns
            .max(self.largest_timeout_ns.saturating_mul(2))
    }

    /// Writes out connections that closed a while ago or went idle too long.
    fn sweep(&mut self, now: u64) {
        self.last_sweep_ns = now;
        self.counts.peak_memory = self.counts.peak_memory.max(self.memory_estimate());
        // A storm of short connections leaves a large, empty map behind; give it back.
        if self.table.capacity() > 4 * self.table.len() + 1024 {
            self.table.shrink_to_fit();
        }
        if self.retired.capacity() > 4 * self.retired.len() + 1024 {
            self.retired.shrink_to_fit();
        }
        for slot in self.table.values() {
            if let Some(timeout) = slot.ledger.advertised_timeout() {
                self.largest_timeout_ns = self
                    .largest_timeout_ns
                    .max(u64::from(timeout) * 1_000_000_000);
            }
        }
        let linger = self.config.linger_ns;
        let idle = self.idle_eviction_ns();
        let expired: Vec<FlowKey> = self
            .table
            .iter()
            .filter(|(_, slot)| match slot.closed_at {
                Some(closed) => now.saturating_sub(closed.max(slot.tcp.last_ts)) > linger,
                None => now.saturating_sub(slot.tcp.last_ts) > idle,
            })
            .map(|(key, _)| *key)
            .collect();
        self.retired
            .retain(|_, retired| now.saturating_sub(retired.at) < RETIRED_FOR_NS);
        let mut expired: Vec<(FlowKey, Box<Slot>)> = expired
            .iter()
            .filter_map(|key| self.table.remove(key).map(|slot| (*key, slot)))
            .collect();
        expired.sort_by_key(|(_, slot)| slot.tcp.stream);
        for (key, slot) in expired {
            let reason = slot.end_reason(EndReason::Evicted);
            self.retire(key, slot, reason, now);
        }
    }

    /// End of input: every connection still open is written out, in stream order, each
    /// record handed to `on_output` at once so the end of a big capture needs no extra memory.
    pub fn finish_all(&mut self, mut on_output: impl FnMut(Output)) {
        self.counts.peak_memory = self.counts.peak_memory.max(self.memory_estimate());
        self.output.drain(..).for_each(&mut on_output);
        let mut order: Vec<(u64, FlowKey)> = self
            .table
            .iter()
            .map(|(key, slot)| (slot.tcp.stream, *key))
            .collect();
        order.sort_unstable_by_key(|(stream, _)| *stream);
        for (_, key) in order {
            if let Some(slot) = self.table.remove(&key) {
                let reason = slot.end_reason(EndReason::CaptureEnded);
                finish(slot, reason, &self.config, &mut self.output);
                self.output.drain(..).for_each(&mut on_output);
            }
        }
        self.table = HashMap::new();
        self.retired = HashMap::new();
        self.buffered = 0;
    }
}

/// Tells the source which payload of the connection it may shed: per direction, the rest of
/// the body being counted when more than [`SHED_THRESHOLD`] bytes of it are still to come,
/// once per body (and again past [`MAX_SHED`]); and that it must send everything again once
/// the parser needs to look at the bytes (the body ended, a gap broke its framing, the
/// connection closed).
fn update_shed_hints(slot: &mut Slot, hints: &mut Vec<ShedHint>) {
    for dir in [Dir::A, Dir::B] {
        let wanted = slot
            .http
            .countable_body_bytes(dir)
            .filter(|remaining| *remaining > SHED_THRESHOLD)
            .zip(slot.tcp.stream_end(dir));
        let held = &mut slot.shed[dir.index()];
        let range = match (wanted, *held) {
            (Some((remaining, (offset, _))), Some(shed))
                if shed.body_end == offset + remaining && offset < shed.until =>
            {
                continue;
            }
            (Some((remaining, (offset, seq))), _) => {
                let length = remaining.min(MAX_SHED);
                *held = Some(Shed {
                    body_end: offset + remaining,
                    until: offset + length,
                });
                Some((seq, seq.wrapping_add(length as u32)))
            }
            (None, Some(_)) => {
                *held = None;
                None
            }
            (None, None) => continue,
        };
        let endpoints = &slot.tcp.endpoints;
        hints.push(ShedHint {
            src: endpoints[dir.index()],
            dst: endpoints[dir.opposite().index()],
            range,
        });
    }
}

/// A connection leaves the table: the source forgets its shed ranges.
fn release_shed_hints(slot: &Slot, hints: &mut Vec<ShedHint>) {
    for dir in [Dir::A, Dir::B] {
        if slot.shed[dir.index()].is_some() {
            let endpoints = &slot.tcp.endpoints;
            hints.push(ShedHint {
                src: endpoints[dir.index()],
                dst: endpoints[dir.opposite().index()],
                range: None,
            });
        }
    }
}

/// One stream event through the HTTP stage into the ledger; what the HTTP bytes say of the
/// client is learned on the way.
fn http_event(
    http: &mut HttpConnection,
    ledger: &mut Ledger,
    client: &mut ClientSide,
    dir: Dir,
    event: StreamEvent<'_>,
    ts: u64,
) {
    http.on_stream_event(dir, event, ts, client.known(), &mut |http_event| {
        if let HttpEvent::ClientIs(learned) = http_event {
            client.learn_from_http(learned);
        }
        ledger.on_http(&http_event, ts);
    });
}

/// The connection's finished transactions as records (there are some only when wanted).
fn emit_transactions(
    http: &mut HttpConnection,
    tcp: &TcpConnection,
    client: ClientSide,
    output: &mut Vec<Output>,
) {
    for transaction in http.take_finished() {
        let record = transaction_record(transaction, tcp, client);
        output.push(Output::Transaction(Box::new(record)));
    }
}

/// Flushes a connection through every stage and writes its records.
fn finish(slot: Box<Slot>, reason: EndReason, config: &Config, output: &mut Vec<Output>) {
    let Slot {
        mut tcp,
        mut client,
        mut http,
        mut ledger,
        continued,
        kernel_drops,
        ..
    } = *slot;
    let ts = tcp.last_ts;
    tcp.flush(|dir, event| http_event(&mut http, &mut ledger, &mut client, dir, event, ts));
    http.finish(ts, client.known(), &mut |http_event| {
        ledger.on_http(&http_event, ts)
    });
    let mut record = ledger.record(&tcp, &http, client, reason, &config.tolerance);
    http.close_transactions();
    for (set, flag) in [
        (continued, Flag::Continued),
        (kernel_drops, Flag::KernelDrops),
    ] {
        if set {
            record.flags.insert(flag);
        }
    }
    emit_transactions(&mut http, &tcp, client, output);
    output.push(Output::Connection(Box::new(record)));
}
