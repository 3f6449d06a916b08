//! The connection table: every stage's state per connection, fed one frame at a time.
//!
//! [`Analyzer`] decodes each frame, finds (or opens) the connection's slot by its canonical
//! 4-tuple, numbers it as Wireshark numbers `tcp.stream`, and runs the segment through the
//! connection's tcp → http → analysis stages. Finished connections come out as records; idle
//! ones are evicted, and past the memory budget the longest-idle ones are written out early.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::analysis::{CloseKind, EndReason, Ledger, transaction_record};
use crate::decode::{
    self, DamagedSegment, Defragmenter, Encapsulation, Encapsulations, Segment, Skip, Tcp,
};
use crate::flows::{Flows, Id, List, WireMap};
use crate::http::{self, HttpConnection, HttpEvent};
use crate::named::Tally;
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
    /// Memory the whole analysis may hold (estimated): the per-server aggregation gets
    /// [`servers_budget`] of it, the connection table the rest; past it the connections idle
    /// the longest are written out early, flagged `memory-budget`.
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

/// The share of `--max-memory` the per-server aggregation may hold (the report's); the
/// connection table holds the rest.
pub fn servers_budget(max_memory: usize) -> usize {
    max_memory / 8
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
    /// IP fragments that did not complete a datagram themselves (held, or lost).
    pub fragments: u64,
    /// IP datagrams put back together from fragments.
    pub reassembled: u64,
    /// IP fragments of datagrams never completed (or that could not be part of one).
    pub fragments_lost: u64,
    pub truncated: u64,
    /// IP headers that cannot be right (bad version, header or total length).
    pub bad_ip_headers: u64,
    /// TCP segments with an unusable header, counted into their stream (flag `bad-tcp-header`).
    pub damaged_segments: u64,
    /// Frames carried in each kind of tunnel (a frame counts once for each it was in).
    pub encapsulated: Tally<Encapsulation>,
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

impl FrameCounts {
    /// What became of the IP fragments `defragmenter` was given, at the end.
    pub fn add_defragmented(&mut self, defragmenter: &Defragmenter) {
        self.reassembled += defragmenter.reassembled;
        self.fragments_lost += defragmenter.fragments_lost;
    }

    /// Adds what a shard counted (`--threads`): what its frames were, late packets, shed
    /// connections, its peak memory; frames, bytes and times are the reader's.
    pub fn add_shard(&mut self, shard: &FrameCounts) {
        self.tcp_segments += shard.tcp_segments;
        self.not_ip += shard.not_ip;
        self.not_tcp += shard.not_tcp;
        self.fragments += shard.fragments;
        self.reassembled += shard.reassembled;
        self.fragments_lost += shard.fragments_lost;
        self.truncated += shard.truncated;
        self.bad_ip_headers += shard.bad_ip_headers;
        self.damaged_segments += shard.damaged_segments;
        self.encapsulated.merge(&shard.encapsulated);
        self.unsupported_link += shard.unsupported_link;
        for link in &shard.unsupported_link_types {
            if !self.unsupported_link_types.contains(link) {
                self.unsupported_link_types.push(*link);
            }
        }
        self.late_packets += shard.late_packets;
        self.shed_connections += shard.shed_connections;
        self.peak_memory += shard.peak_memory;
    }
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

/// Memory of one connection beyond its buffers and the table's own arrays: the boxed slot
/// and the allocator's header on it, and its place in the vector that writes connections
/// out in stream order when many leave at once (a sweep, the end of the capture).
const SLOT_COST: usize =
    std::mem::size_of::<Slot>() + MALLOC_OVERHEAD + std::mem::size_of::<(FlowKey, Box<Slot>)>();

/// What the allocator keeps beside each allocation (glibc: 8 bytes of header, rounded to 16).
const MALLOC_OVERHEAD: usize = 16;

/// Memory of one remembered stream number: its map bucket (with hashbrown's control byte,
/// at worst half full after doubling) and its place in the order of retirement.
const RETIRED_COST: usize =
    2 * (std::mem::size_of::<(FlowKey, Retired)>() + 1) + std::mem::size_of::<(FlowKey, u64)>();

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
        self.tcp.buffered_bytes() + self.http.buffered_bytes() + self.ledger.heap_bytes()
    }
}

/// What is remembered of a connection after its record was written: enough to give late
/// packets (a retransmitted FIN, a RST hours after an eviction) the same `tcp.stream`
/// number, as Wireshark does, which never starts a new stream without a SYN.
struct Retired {
    stream: u64,
    /// It was seen to close: late packets without payload (final ACKs, retransmitted FINs)
    /// are only counted. An evicted or shed connection's late packets get a row.
    closed: bool,
    /// Its place in the order of retirement (the oldest are forgotten first).
    order: u64,
}

/// Written-out connections, remembered for as long as the memory budget allows: past their
/// share of it, the oldest are forgotten first.
#[derive(Default)]
struct RetiredSet {
    by_key: WireMap<FlowKey, Retired>,
    /// Keys in the order they were retired, with their `order`; an entry whose key was
    /// retired again since (or came back) is stale and skipped.
    fifo: VecDeque<(FlowKey, u64)>,
    next_order: u64,
}

impl RetiredSet {
    fn insert(&mut self, key: FlowKey, stream: u64, closed: bool) {
        let order = self.next_order;
        self.next_order += 1;
        self.by_key.insert(
            key,
            Retired {
                stream,
                closed,
                order,
            },
        );
        self.fifo.push_back((key, order));
    }

    fn take(&mut self, key: &FlowKey) -> Option<Retired> {
        self.by_key.remove(key)
    }

    fn contains_closed(&self, key: &FlowKey) -> bool {
        self.by_key.get(key).is_some_and(|r| r.closed)
    }

    /// Forgets the connection retired the longest ago: its stream number; `None` when none
    /// is left.
    fn forget_oldest(&mut self) -> Option<u64> {
        while let Some((key, order)) = self.fifo.pop_front() {
            if self.by_key.get(&key).is_some_and(|r| r.order == order) {
                return self.by_key.remove(&key).map(|retired| retired.stream);
            }
        }
        None
    }

    fn memory(&self) -> usize {
        self.by_key.len() * RETIRED_COST
            + self.fifo.len().saturating_sub(self.by_key.len())
                * std::mem::size_of::<(FlowKey, u64)>()
    }

    /// Gives back memory a storm left behind, and drops stale places in the order.
    fn shrink(&mut self) {
        if self.fifo.len() > 2 * self.by_key.len() + 1024 {
            let by_key = &self.by_key;
            self.fifo
                .retain(|(key, order)| by_key.get(key).is_some_and(|r| r.order == *order));
        }
        if self.by_key.capacity() > 4 * self.by_key.len() + 1024 {
            self.by_key.shrink_to_fit();
        }
        if self.fifo.capacity() > 4 * self.fifo.len() + 1024 {
            self.fifo.shrink_to_fit();
        }
    }
}

/// Connections whose server advertises a longer `timeout=` are kept at most this long
/// without a packet: an advert of 2^32 s must not keep every connection forever.
pub const MAX_ADVERTISED_IDLE_NS: u64 = 3_600_000_000_000;

/// When the connection table is swept: at the first frame (or tick) at least a second after
/// the last sweep. A function of the frames' times alone, so that the shards of `--threads`
/// sweep where one analyzer would.
#[derive(Debug, Default, Clone, Copy)]
pub struct SweepClock {
    last_ns: u64,
}

impl SweepClock {
    /// Whether a sweep is due at `now_ns`; if so, it counts as done.
    pub fn due(&mut self, now_ns: u64) -> bool {
        let due = now_ns >= self.last_ns.saturating_add(SWEEP_INTERVAL_NS);
        if due {
            self.last_ns = now_ns;
        }
        due
    }
}

/// Counts a frame read: its bytes and time (`--threads`: by the reader, for every frame).
pub fn count_frame(frame: &Frame<'_>, counts: &mut FrameCounts) {
    counts.frames += 1;
    counts.bytes += frame.data.len() as u64;
    counts.first_ts.get_or_insert(frame.ts_ns);
    counts.last_ts = Some(frame.ts_ns);
}

/// Decodes `frame` down to its TCP segment, if it has one, counting what it turned out to
/// be into `counts`: the part of the work that needs no connection state.
pub fn decode_frame<'a>(
    frame: &Frame<'a>,
    counts: &mut FrameCounts,
    defragmenter: &mut Defragmenter,
    datagram: &'a mut Vec<u8>,
    kernel_shedding: bool,
) -> Option<Tcp<'a>> {
    let mut encapsulations = Encapsulations::default();
    let decoded = decode::decode(frame, &mut encapsulations, defragmenter, datagram);
    if !encapsulations.is_empty() {
        encapsulations
            .iter()
            .for_each(|encapsulation| counts.encapsulated.add(encapsulation));
    }
    match decoded {
        Ok(Tcp::Segment(mut segment)) => {
            counts.tcp_segments += 1;
            // A shedding source cuts a frame exactly after its TCP header only to shed
            // its payload (an empty payload with bytes missing is that cut).
            segment.shed = kernel_shedding && segment.payload.is_empty() && segment.missing > 0;
            return Some(Tcp::Segment(segment));
        }
        Ok(Tcp::Damaged(damaged)) => {
            counts.damaged_segments += 1;
            return Some(Tcp::Damaged(damaged));
        }
        Err(Skip::NotIp) => counts.not_ip += 1,
        Err(Skip::NotTcp) => counts.not_tcp += 1,
        Err(Skip::Fragment) => counts.fragments += 1,
        Err(Skip::Truncated) => counts.truncated += 1,
        Err(Skip::BadIpHeader) => counts.bad_ip_headers += 1,
        Err(Skip::UnsupportedLink(link)) => {
            counts.unsupported_link += 1;
            if !counts.unsupported_link_types.contains(&link) {
                counts.unsupported_link_types.push(link);
            }
        }
    }
    None
}

/// Which of `shards` connection tables the connection between `a` and `b` belongs to (either
/// direction gives the same). A cheap mix of the addresses and ports, not a keyed hash: the
/// reader computes it for every segment, and 4-tuples chosen to fall on one shard only make
/// that shard busier (each table's own hash map is keyed).
pub fn shard_of(a: SocketAddr, b: SocketAddr, shards: usize) -> usize {
    fn fold(address: SocketAddr) -> u64 {
        let ip = match address.ip() {
            std::net::IpAddr::V4(ip) => u64::from(u32::from(ip)),
            std::net::IpAddr::V6(ip) => {
                let bits = u128::from(ip);
                (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17)
            }
        };
        ip << 16 | u64::from(address.port())
    }
    // Symmetric in the two endpoints, then the splitmix64 finalizer.
    let (x, y) = (fold(a), fold(b));
    let mut h = x.min(y) ^ x.max(y).rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h % shards as u64) as usize
}

/// How new streams get their `tcp.stream` numbers.
enum Numbering {
    /// In the order they start: the analyzer sees every frame.
    Sequential { next: u64 },
    /// A shard of `--threads` sees some of the frames. A stream is numbered by the index of
    /// the frame that started it, which the merger turns into its rank among all streams;
    /// it is told each start, and each number no packet can take any more (so that it can
    /// forget it).
    ByFrame {
        frame: u64,
        started: bool,
        forgotten: Vec<u64>,
    },
}

/// The whole pipeline from frames to records.
pub struct Analyzer {
    config: Config,
    /// Open connections in order of their last packet; slots are boxed so that growing the
    /// slab moves pointers, not kilobyte-sized slots.
    table: Flows<FlowKey, Box<Slot>>,
    retired: RetiredSet,
    numbering: Numbering,
    counts: FrameCounts,
    output: Vec<Output>,
    sweeps: SweepClock,
    /// Largest `timeout=` advertised on any connection (bounded by
    /// [`MAX_ADVERTISED_IDLE_NS`]): idle eviction waits at least twice that, so it never cuts
    /// a connection the server still keeps.
    largest_timeout_ns: u64,
    /// Sum of every slot's buffered bytes, kept up to date packet by packet.
    buffered: usize,
    /// Hints for the source since the last [`Analyzer::take_shed_hints`].
    hints: Vec<ShedHint>,
    /// IP datagrams waiting for fragments.
    defragmenter: Defragmenter,
}

const SWEEP_INTERVAL_NS: u64 = 1_000_000_000;

impl Analyzer {
    pub fn new(config: Config) -> Analyzer {
        Analyzer {
            config,
            table: Flows::default(),
            retired: RetiredSet::default(),
            numbering: Numbering::Sequential { next: 0 },
            counts: FrameCounts::default(),
            output: Vec::new(),
            sweeps: SweepClock::default(),
            largest_timeout_ns: 0,
            buffered: 0,
            hints: Vec::new(),
            defragmenter: Defragmenter::default(),
        }
    }

    /// One shard of `--threads`: fed segments with their frame's index
    /// ([`Analyzer::at_frame`]) and told when to sweep ([`Analyzer::sweep_shared`]); its
    /// streams are numbered by the frame that started them.
    pub fn shard(config: Config) -> Analyzer {
        Analyzer {
            numbering: Numbering::ByFrame {
                frame: 0,
                started: false,
                forgotten: Vec::new(),
            },
            ..Analyzer::new(config)
        }
    }

    pub fn counts(&self) -> &FrameCounts {
        &self.counts
    }

    /// A shard: the index of the frame whose segment comes next.
    pub fn at_frame(&mut self, index: u64) {
        if let Numbering::ByFrame { frame, .. } = &mut self.numbering {
            *frame = index;
        }
    }

    /// A shard: whether the last frame started a stream (numbered by that frame's index).
    pub fn take_started(&mut self) -> bool {
        match &mut self.numbering {
            Numbering::ByFrame { started, .. } => std::mem::take(started),
            Numbering::Sequential { .. } => false,
        }
    }

    /// A shard: the stream numbers that no packet can take any more since the last call.
    pub fn take_forgotten(&mut self, each: impl FnMut(u64)) {
        if let Numbering::ByFrame { forgotten, .. } = &mut self.numbering {
            forgotten.drain(..).for_each(each);
        }
    }

    /// A new stream's number.
    fn start_stream(&mut self) -> u64 {
        match &mut self.numbering {
            Numbering::Sequential { next } => {
                *next += 1;
                *next - 1
            }
            Numbering::ByFrame { frame, started, .. } => {
                *started = true;
                *frame
            }
        }
    }

    /// No packet can take this stream number any more.
    fn forget_stream(&mut self, stream: u64) {
        if let Numbering::ByFrame { forgotten, .. } = &mut self.numbering {
            forgotten.push(stream);
        }
    }

    /// Forgets the connection retired the longest ago; false when none is left.
    fn forget_oldest_retired(&mut self) -> bool {
        match self.retired.forget_oldest() {
            Some(stream) => {
                self.forget_stream(stream);
                true
            }
            None => false,
        }
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
        count_frame(frame, &mut self.counts);
        self.decode_and_process(frame);
        if self.sweeps.due(frame.ts_ns) {
            self.sweep(frame.ts_ns);
        }
    }

    /// Decodes a frame and runs its segment through the table, counting what it was but not
    /// the frame itself (a shard: the reader counted it) and sweeping nothing.
    pub fn decode_and_process(&mut self, frame: &Frame<'_>) {
        // An IP datagram put back together from fragments (no allocation otherwise).
        let mut datagram = Vec::new();
        let shedding = self.config.kernel_shedding;
        let defragmenter = &mut self.defragmenter;
        match decode_frame(
            frame,
            &mut self.counts,
            defragmenter,
            &mut datagram,
            shedding,
        ) {
            Some(Tcp::Segment(segment)) => self.process_segment(&segment),
            Some(Tcp::Damaged(damaged)) => self.process_damaged(&damaged),
            None => {}
        }
    }

    pub fn process_segment(&mut self, segment: &Segment<'_>) {
        self.process(segment, None);
    }

    /// A segment whose header could not be used: it takes its place in the stream numbering
    /// (its connection, a new one, or a new one for a SYN reusing the 4-tuple) as Wireshark
    /// gives it one, and is counted there, but nothing in it is analysed.
    pub fn process_damaged(&mut self, damaged: &DamagedSegment) {
        self.process(&damaged.header, Some(damaged.sequenced));
    }

    /// The slot for `segment`'s connection: the open one, a new one for a new stream (a
    /// reused 4-tuple writes the old one out), or a continuation of a written-out one.
    /// `None` for a payload-less late packet of a connection that closed and was written out.
    fn slot_for(&mut self, key: FlowKey, segment: &Segment<'_>) -> Option<Id> {
        let new_slot = |config: &Config, stream, continued| {
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
        if let Some(id) = self.table.find(&key) {
            if self.table.get(id).tcp.is_reused_by(segment) {
                let stream = self.start_stream();
                let old = self
                    .table
                    .replace(id, new_slot(&self.config, stream, false));
                self.table.touch(id, List::Open);
                self.buffered = self.buffered.saturating_sub(old.buffered_bytes());
                release_shed_hints(&old, &mut self.hints);
                let reason = old.end_reason(EndReason::Superseded);
                let old_stream = old.tcp.stream;
                finish(old, reason, &self.config, &mut self.output);
                self.forget_stream(old_stream);
            }
            return Some(id);
        }
        let opens = segment.flags.syn() && !segment.flags.ack();
        let carries_data = !segment.payload.is_empty() || segment.missing > 0;
        if !opens && !carries_data && self.retired.contains_closed(&key) {
            // A final ACK, retransmitted FIN or stray RST of a connection that closed and was
            // written out: nothing to report on a row of its own.
            self.counts.late_packets += 1;
            return None;
        }
        let slot = match self.retired.take(&key) {
            Some(retired) if !opens => new_slot(&self.config, retired.stream, true),
            forgotten => {
                if let Some(retired) = forgotten {
                    // A new connection on the 4-tuple: the old one's number is done with.
                    self.forget_stream(retired.stream);
                }
                let stream = self.start_stream();
                new_slot(&self.config, stream, false)
            }
        };
        Some(self.table.insert(key, slot, List::Open))
    }

    /// `damaged` is `Some` for a damaged segment, saying whether Wireshark takes its
    /// sequence numbers into account.
    fn process(&mut self, segment: &Segment<'_>, damaged: Option<bool>) {
        let key = FlowKey::new(segment.src, segment.dst);
        let Some(id) = self.slot_for(key, segment) else {
            return;
        };
        let slot = self.table.get_mut(id);
        if let Some(sequenced) = damaged {
            slot.tcp.on_damaged_segment(segment, sequenced);
            let list = if slot.closed_at.is_some() {
                List::Closed
            } else {
                List::Open
            };
            self.table.touch(id, list);
            self.keep_within_budget();
            return;
        }
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
        if let Some(timeout) = ledger.advertised_timeout() {
            let ns = (u64::from(timeout) * 1_000_000_000).min(MAX_ADVERTISED_IDLE_NS);
            self.largest_timeout_ns = self.largest_timeout_ns.max(ns);
        }
        if self.config.kernel_shedding {
            update_shed_hints(slot, &mut self.hints);
        }
        if slot.closed_at.is_none() && slot.tcp.is_closed() {
            slot.closed_at = Some(ts);
            slot.tcp.release_buffers();
        }
        self.buffered = (self.buffered + slot.buffered_bytes()).saturating_sub(held_before);
        let closed = slot.closed_at.is_some();
        if closed && self.config.linger_ns == 0 {
            let (key, slot) = self.table.remove(id);
            self.retire(key, slot, EndReason::Closed);
        } else {
            let list = if closed { List::Closed } else { List::Open };
            self.table.touch(id, list);
        }
        self.keep_within_budget();
    }

    #[inline]
    fn keep_within_budget(&mut self) {
        if self.memory_estimate() > self.table_budget() {
            self.shed();
        }
    }

    /// What the connection table may hold: the budget less the per-server aggregation's share.
    fn table_budget(&self) -> usize {
        self.config.max_memory - servers_budget(self.config.max_memory)
    }

    /// Estimated memory held by the connection table and what it remembers.
    pub fn memory_estimate(&self) -> usize {
        self.table.len() * SLOT_COST
            + self.table.footprint()
            + self.retired.memory()
            + self.buffered
            + self.defragmenter.held()
    }

    /// Over the memory budget: forget written-out connections first (the oldest first), then
    /// write out the connections idle the longest until a quarter of the budget is free.
    fn shed(&mut self) {
        self.counts.peak_memory = self.counts.peak_memory.max(self.memory_estimate());
        let target = self.table_budget() / 4 * 3;
        while self.memory_estimate() > target && self.forget_oldest_retired() {}
        self.retired.shrink();
        while self.memory_estimate() > target {
            // The longest idle of either list.
            let oldest = [List::Closed, List::Open]
                .into_iter()
                .filter_map(|list| self.table.front(list))
                .min_by_key(|&id| self.table.get(id).tcp.last_ts);
            let Some(id) = oldest else {
                break;
            };
            let (key, slot) = self.table.remove(id);
            self.counts.shed_connections += 1;
            let reason = slot.end_reason(EndReason::MemoryBudget);
            self.retire(key, slot, reason);
        }
        self.table.compact();
    }

    /// Writes a connection out and remembers its stream number for late packets.
    fn retire(&mut self, key: FlowKey, slot: Box<Slot>, reason: EndReason) {
        self.buffered = self.buffered.saturating_sub(slot.buffered_bytes());
        release_shed_hints(&slot, &mut self.hints);
        // Remembered within the budget: past half of it, the oldest are forgotten.
        while self.retired.memory() + RETIRED_COST > self.table_budget() / 2
            && self.forget_oldest_retired()
        {}
        self.retired
            .insert(key, slot.tcp.stream, slot.closed_at.is_some());
        finish(slot, reason, &self.config, &mut self.output);
    }

    /// Lets time pass without packets (live capture): connections due are written out.
    pub fn tick(&mut self, now_ns: u64) {
        if self.sweeps.due(now_ns) {
            self.sweep(now_ns);
        }
    }

    /// The largest `timeout=` advertised on this analyzer's connections so far (bounded).
    pub fn largest_timeout_ns(&self) -> u64 {
        self.largest_timeout_ns
    }

    /// A shard's sweep at the point the reader chose ([`SweepClock`]), given the largest
    /// `timeout=` advertised on any shard's connections so far: every shard then evicts after
    /// the idle time one analyzer would.
    pub fn sweep_shared(&mut self, now_ns: u64, largest_timeout_ns: u64) {
        self.largest_timeout_ns = self.largest_timeout_ns.max(largest_timeout_ns);
        self.sweep(now_ns);
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

    /// Writes out connections that closed a while ago or went idle too long: taken from the
    /// front of their lists, so the work is what is written out.
    fn sweep(&mut self, now: u64) {
        self.counts.peak_memory = self.counts.peak_memory.max(self.memory_estimate());
        let mut expired = Vec::new();
        for (list, after) in [
            (List::Closed, self.config.linger_ns),
            (List::Open, self.idle_eviction_ns()),
        ] {
            while let Some(id) = self.table.front(list) {
                let slot = self.table.get(id);
                let since = slot.closed_at.unwrap_or(0).max(slot.tcp.last_ts);
                if now.saturating_sub(since) <= after {
                    break;
                }
                expired.push(self.table.remove(id));
            }
        }
        expired.sort_by_key(|(_, slot)| slot.tcp.stream);
        for (key, slot) in expired {
            let reason = slot.end_reason(EndReason::Evicted);
            self.retire(key, slot, reason);
        }
        // A storm of short connections leaves large, empty arrays behind; give them back.
        self.table.compact();
        self.retired.shrink();
    }

    /// End of input: every connection still open is written out, in stream order, each
    /// record handed to `on_output` at once so the end of a big capture needs no extra memory.
    pub fn finish_all(&mut self, mut on_output: impl FnMut(Output)) {
        self.counts.peak_memory = self.counts.peak_memory.max(self.memory_estimate());
        self.output.drain(..).for_each(&mut on_output);
        self.retired = RetiredSet::default();
        let mut order: Vec<(u64, Id)> = self
            .table
            .ids()
            .map(|id| (self.table.get(id).tcp.stream, id))
            .collect();
        order.sort_unstable_by_key(|(stream, _)| *stream);
        for (_, id) in order {
            let (_, slot) = self.table.remove(id);
            let reason = slot.end_reason(EndReason::CaptureEnded);
            finish(slot, reason, &self.config, &mut self.output);
            self.output.drain(..).for_each(&mut on_output);
        }
        self.table = Flows::default();
        self.buffered = 0;
        self.defragmenter.finish();
        self.counts.add_defragmented(&self.defragmenter);
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
        into_ledger(ledger, client, &http_event, ts)
    });
}

/// One event of the HTTP stage into the ledger; what it says of the client is learned.
fn into_ledger(ledger: &mut Ledger, client: &mut ClientSide, event: &HttpEvent<'_>, ts: u64) {
    if let HttpEvent::ClientIs(learned) = *event {
        client.learn_from_http(learned);
    }
    ledger.on_http(event, ts);
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
        into_ledger(&mut ledger, &mut client, &http_event, ts)
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
