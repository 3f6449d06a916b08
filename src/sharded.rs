//! `--threads N`: the connection table split over analysis threads (shards) by canonical
//! 4-tuple, so that each connection's state lives on one thread; one reader feeds them, and
//! the records are merged back into exactly the order, and with exactly the `tcp.stream`
//! numbers, that one thread gives them.
//!
//! ```text
//!            ┌ Batch ▶ shard 0: Analyzer::shard ┐
//!  reader ───┤   …                              ├─ Results ▶ merger ▶ Report
//!  (decode)  └ Batch ▶ shard n-1                ┘  (on the reader's thread)
//! ```
//!
//! - The **reader** (the caller's thread) reads frames, counts and decodes them
//!   ([`decode_frame`]), and hands each TCP segment to its connection's shard as a
//!   [`Work`] item: the segment's header fields and where its payload lies in the reader's
//!   buffer, which the batch holds a reference to — payload is not copied. It decides
//!   when the tables are swept by the frames' times ([`SweepClock`], the rule one analyzer
//!   follows) and sends every shard the sweep at the same place in the frame order.
//! - A **shard** runs an [`Analyzer`] over its segments. A stream is numbered by the index
//!   of the frame that started it; the shard notes each start and each number no packet can
//!   take any more. At a sweep the shards agree on the largest `timeout=` any of them has
//!   seen, which sets the idle eviction time ([`Agreement`]).
//! - The **merger** orders every shard's notes by (frame, then a sweep's records by stream,
//!   the end's records by stream) — the order one analyzer writes them in — and gives each
//!   stream its rank among the starts as its number.
//!
//! Output is the same as with one thread, with one exception: each shard keeps within its
//! share of `--max-memory`, so when the budget is reached, which connections are written out
//! early (and which remembered numbers are forgotten) depends on how the connections fell
//! into shards.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::decode::{DamagedSegment, Defragmenter, Segment, Tcp, plain_tcp_endpoints};
use crate::driver::{self, Limits, Observer, RunError, RunStats, Status};
use crate::pipeline::{
    Analyzer, Config, FrameCounts, Output, SweepClock, count_frame, decode_frame, shard_of,
};
use crate::report::Report;
use crate::source::{Frame, FrameSource, Linktype, SourceEvent};

/// Frames the reader walks before it hands every shard its part (and the shards their
/// progress to the merger), or fewer once they hold this many bytes: a batch keeps the
/// reader's buffers its frames lie in alive, so the bytes bound what is held in flight.
const BATCH_FRAMES: usize = 1024;
const BATCH_BYTES: usize = 512 << 10;

/// Batches waiting for each shard: what keeps the reader at most this far ahead of the
/// slowest shard, and so bounds the buffers and notes in flight.
const QUEUED_BATCHES: usize = 2;

/// Records a shard sends at a time when it writes out its connections at the end.
const END_NOTES: usize = 64;

/// Which shard threads `threads` gives: the reader is one of them, and there is at least one
/// shard.
pub fn shards_for(threads: usize) -> usize {
    threads.saturating_sub(1).max(1)
}

/// Each shard's share of `--max-memory`. The merger's map of stream numbers holds an entry
/// for each connection the tables hold or remember, a seventh of the least a table spends
/// on one (a remembered number), and half as much again while the map grows (old and new
/// buckets side by side); a quarter of the budget is left to it and the records in flight.
fn shard_budget(max_memory: usize, shards: usize) -> usize {
    (max_memory - max_memory / 4) / shards
}

/// The `buffer` of a payload in the batch's own bytes.
const OWN: u32 = u32::MAX;

/// One thing a shard does, in the frame order.
enum Work {
    /// A plain Ethernet + IPv4 + TCP frame, which the shard decodes: its bytes are `bytes`
    /// of the batch's `buffers[buffer]` (or of `own`).
    Frame {
        frame: u64,
        ts_ns: u64,
        buffer: u32,
        bytes: (u32, u32),
    },
    Segment {
        frame: u64,
        /// The header fields, with an empty payload: the payload is `payload` of the batch's
        /// `buffers[buffer]` (or of `own`).
        header: Segment<'static>,
        buffer: u32,
        payload: (u32, u32),
    },
    Damaged {
        frame: u64,
        damaged: DamagedSegment,
    },
    /// Sweep number `round` of the table, at this capture time, after frame `frame`.
    Sweep {
        frame: u64,
        round: u64,
        now_ns: u64,
    },
    /// The kernel dropped packets: mark every open connection.
    KernelDrops,
}

/// A shard's part of some frames.
struct Batch {
    /// The reader's buffers the payloads lie in.
    buffers: Vec<Arc<Vec<u8>>>,
    /// Payloads copied, from a source that cannot lend its buffer (live capture).
    own: Vec<u8>,
    items: Vec<Work>,
    /// Every frame before this index has been handed out.
    done_before: u64,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            buffers: Vec::new(),
            own: Vec::new(),
            items: Vec::with_capacity(BATCH_FRAMES),
            done_before: 0,
        }
    }

    /// The bytes at `(offset, len)` of `buffer`.
    fn bytes(&self, buffer: u32, (offset, len): (u32, u32)) -> &[u8] {
        let range = offset as usize..(offset + len) as usize;
        match (len, buffer) {
            (0, _) => &[],
            (_, OWN) => &self.own[range],
            _ => &self.buffers[buffer as usize][range],
        }
    }

    /// Where `bytes` lie for the shard: in `frame`'s shared buffer (pushed when it is not
    /// the last one pushed), or, when they are not in one (a live capture's frame, an IP
    /// datagram put back together from fragments), in a copy in the batch's own bytes. The
    /// buffer's index and the bytes' range.
    fn lend(&mut self, frame: &Frame<'_>, bytes: &[u8]) -> (u32, (u32, u32)) {
        let len = bytes.len() as u32;
        if bytes.is_empty() {
            return (0, (0, 0));
        }
        let offset_in = |buffer: &Arc<Vec<u8>>| {
            (bytes.as_ptr() as usize)
                .checked_sub(buffer.as_ptr() as usize)
                .filter(|offset| offset + bytes.len() <= buffer.len())
        };
        let lent = frame
            .buffer
            .and_then(|buffer| Some((buffer, offset_in(buffer)?)));
        let Some((buffer, offset)) = lent else {
            let offset = self.own.len() as u32;
            self.own.extend_from_slice(bytes);
            return (OWN, (offset, len));
        };
        if !self
            .buffers
            .last()
            .is_some_and(|last| Arc::ptr_eq(last, buffer))
        {
            self.buffers.push(Arc::clone(buffer));
        }
        ((self.buffers.len() - 1) as u32, (offset as u32, len))
    }
}

/// Where a note falls in the order one analyzer writes its records in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    frame: u64,
    /// 0: while its frame is analysed; 1: in a sweep after it; 2: at the end.
    phase: u8,
    /// The sweep's number (two ticks may sweep after the same frame).
    round: u64,
    /// In a sweep and at the end, records leave in stream order (provisional numbers
    /// order like the final ones).
    stream: u64,
}

const AT_END: u64 = u64::MAX;

/// What a shard tells the merger.
enum Note {
    /// A stream started at the key's frame.
    Started,
    Output(Output),
    /// This stream number will not be seen again.
    Forgotten(u64),
}

/// A shard's notes for a batch, and how far it got.
struct Results {
    shard: usize,
    notes: Vec<(Key, Note)>,
    /// Every frame before this index is done.
    done_before: u64,
    /// The shard is finished: what only it counted.
    counts: Option<FrameCounts>,
}

/// The shards' agreement at a sweep on the largest `timeout=` advertised so far. Two slots
/// used in turn: a shard that is already at the next sweep cannot raise the value another
/// one is still reading, since it cannot pass that next sweep before the other reaches it.
struct Agreement {
    largest: [AtomicU64; 2],
    state: Mutex<Meeting>,
    met: Condvar,
    shards: usize,
}

struct Meeting {
    arrived: usize,
    generation: u64,
    /// A shard panicked: nobody waits for it.
    broken: bool,
}

impl Agreement {
    fn new(shards: usize) -> Agreement {
        Agreement {
            largest: [AtomicU64::new(0), AtomicU64::new(0)],
            state: Mutex::new(Meeting {
                arrived: 0,
                generation: 0,
                broken: false,
            }),
            met: Condvar::new(),
            shards,
        }
    }

    /// The largest of every shard's `largest` at sweep number `sweep`.
    fn largest_timeout(&self, sweep: u64, largest: u64) -> u64 {
        let slot = &self.largest[(sweep % 2) as usize];
        slot.fetch_max(largest, Ordering::AcqRel);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let generation = state.generation;
        state.arrived += 1;
        if state.arrived == self.shards {
            state.arrived = 0;
            state.generation += 1;
            self.met.notify_all();
        } else {
            while state.generation == generation && !state.broken {
                state = self.met.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        slot.load(Ordering::Acquire)
    }

    fn break_off(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.broken = true;
        self.met.notify_all();
    }
}

/// Breaks the agreement when its shard ends, so that the others never wait for a shard that
/// panicked or stopped early (the merger went away). A shard that ends normally has met the
/// others at every sweep already.
struct BreakOnExit<'a>(&'a Agreement);

impl Drop for BreakOnExit<'_> {
    fn drop(&mut self) {
        self.0.break_off();
    }
}

/// One shard: its analyzer over every batch, its notes to the merger.
fn shard_main(
    shard: usize,
    config: Config,
    work: Receiver<Batch>,
    results: SyncSender<Results>,
    agreement: &Agreement,
    open: &AtomicUsize,
) -> Duration {
    let _guard = BreakOnExit(agreement);
    let mut analyzer = Analyzer::shard(config);
    for mut batch in work {
        let mut notes = Vec::new();
        let items = std::mem::take(&mut batch.items);
        for item in items {
            match item {
                Work::Frame {
                    frame,
                    ts_ns,
                    buffer,
                    bytes,
                } => {
                    analyzer.at_frame(frame);
                    analyzer.decode_and_process(&Frame {
                        ts_ns,
                        link_type: Linktype::ETHERNET,
                        data: batch.bytes(buffer, bytes),
                        buffer: None,
                    });
                    collect(&mut analyzer, &mut notes, key(frame, 0, 0, 0));
                }
                Work::Segment {
                    frame,
                    header,
                    buffer,
                    payload: (offset, len),
                } => {
                    analyzer.at_frame(frame);
                    let payload = batch.bytes(buffer, (offset, len));
                    analyzer.process_segment(&Segment { payload, ..header });
                    collect(&mut analyzer, &mut notes, key(frame, 0, 0, 0));
                }
                Work::Damaged { frame, damaged } => {
                    analyzer.at_frame(frame);
                    analyzer.process_damaged(&damaged);
                    collect(&mut analyzer, &mut notes, key(frame, 0, 0, 0));
                }
                Work::Sweep {
                    frame,
                    round,
                    now_ns,
                } => {
                    let largest = agreement.largest_timeout(round, analyzer.largest_timeout_ns());
                    analyzer.sweep_shared(now_ns, largest);
                    collect(&mut analyzer, &mut notes, key(frame, 1, round, 0));
                }
                Work::KernelDrops => analyzer.mark_kernel_drops(),
            }
        }
        open.store(analyzer.open_connections(), Ordering::Relaxed);
        let results_sent = results.send(Results {
            shard,
            notes,
            done_before: batch.done_before,
            counts: None,
        });
        if results_sent.is_err() {
            return driver::thread_cpu_time().unwrap_or_default();
        }
    }
    // The connections still open leave a few at a time: the merger interleaves them with
    // the other shards' by stream as they come, so none of them waits whole in memory.
    let mut notes = Vec::with_capacity(END_NOTES);
    let mut gone = false;
    analyzer.finish_all(|output| {
        let stream = stream_of(&output);
        notes.push((key(AT_END, 2, 0, stream), Note::Output(output)));
        if notes.len() == END_NOTES && !gone {
            let chunk = std::mem::replace(&mut notes, Vec::with_capacity(END_NOTES));
            gone = results
                .send(Results {
                    shard,
                    notes: chunk,
                    done_before: AT_END,
                    counts: None,
                })
                .is_err();
        }
    });
    open.store(0, Ordering::Relaxed);
    let cpu = driver::thread_cpu_time().unwrap_or_default();
    let _ = results.send(Results {
        shard,
        notes,
        done_before: AT_END,
        counts: Some(analyzer.counts().clone()),
    });
    cpu
}

fn key(frame: u64, phase: u8, round: u64, stream: u64) -> Key {
    Key {
        frame,
        phase,
        round,
        stream,
    }
}

fn stream_of(output: &Output) -> u64 {
    match output {
        Output::Connection(record) => record.stream,
        Output::Transaction(record) => record.stream,
    }
}

/// What the analyzer noted while it took the item at `at`: a start first, then the
/// records (a sweep's by stream), then the numbers done with (forgetting later than needed
/// is harmless).
fn collect(analyzer: &mut Analyzer, notes: &mut Vec<(Key, Note)>, at: Key) {
    if analyzer.take_started() {
        notes.push((at, Note::Started));
    }
    for output in analyzer.take_output() {
        let stream = if at.phase == 0 { 0 } else { stream_of(&output) };
        notes.push((Key { stream, ..at }, Note::Output(output)));
    }
    let last = Key {
        stream: u64::MAX,
        ..at
    };
    analyzer.take_forgotten(|stream| notes.push((last, Note::Forgotten(stream))));
}

/// Hashes frame indices, which the reader assigns (not the wire): a multiplication spreads
/// them, no keyed hash is needed.
#[derive(Default)]
struct FrameIndexHasher(u64);

impl Hasher for FrameIndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, index: u64) {
        self.0 = (self.0 ^ index).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Puts the shards' notes back in one analyzer's order and hands the records to the report.
struct Merger {
    /// Per shard, its results as they come (a few batches' worth at most: the shard waits
    /// when the merger falls behind).
    inbox: Vec<Receiver<Results>>,
    queues: Vec<VecDeque<(Key, Note)>>,
    /// Per shard, the frames before this index are done.
    done_before: Vec<u64>,
    /// Provisional stream number (the starting frame) → `tcp.stream`, for the streams
    /// packets may still take.
    streams: HashMap<u64, u64, BuildHasherDefault<FrameIndexHasher>>,
    next_stream: u64,
    /// Per shard, once it is finished: what only it counted.
    counts: Vec<Option<FrameCounts>>,
}

impl Merger {
    fn new(inbox: Vec<Receiver<Results>>) -> Merger {
        let shards = inbox.len();
        Merger {
            inbox,
            queues: (0..shards).map(|_| VecDeque::new()).collect(),
            done_before: vec![0; shards],
            streams: HashMap::default(),
            next_stream: 0,
            counts: vec![None; shards],
        }
    }

    fn absorb(&mut self, results: Results) {
        let shard = results.shard;
        self.queues[shard].extend(results.notes);
        self.done_before[shard] = results.done_before;
        if results.counts.is_some() {
            self.counts[shard] = results.counts;
        }
    }

    /// Takes whatever results are there and writes what can be written; returns the shard
    /// whose notes are needed before anything more can be (`None`: all is written).
    fn drain(&mut self, report: &mut Report) -> io::Result<Option<usize>> {
        for shard in 0..self.inbox.len() {
            while let Ok(results) = self.inbox[shard].try_recv() {
                self.absorb(results);
            }
        }
        self.emit(report)
    }

    /// Waits up to `timeout` for the results of `shard`, then drains. A shard that is gone
    /// (it panicked; joining it says why) counts as finished.
    fn wait(
        &mut self,
        shard: usize,
        timeout: Duration,
        report: &mut Report,
    ) -> io::Result<Option<usize>> {
        match self.inbox[shard].recv_timeout(timeout) {
            Ok(results) => self.absorb(results),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                self.counts[shard].get_or_insert_with(FrameCounts::default);
            }
        }
        self.drain(report)
    }

    /// After the input: everything the shards still send, in order.
    fn finish(&mut self, report: &mut Report) -> io::Result<()> {
        while let Some(shard) = self.drain(report)? {
            match self.inbox[shard].recv() {
                Ok(results) => self.absorb(results),
                Err(_) => {
                    self.counts[shard].get_or_insert_with(FrameCounts::default);
                }
            }
        }
        Ok(())
    }

    /// Writes every record whose place in the order is known; returns the shard waited for.
    fn emit(&mut self, report: &mut Report) -> io::Result<Option<usize>> {
        loop {
            // A shard with nothing queued may still have a note before the next one, unless
            // it is past that note's frame or finished.
            let next = (0..self.queues.len())
                .filter_map(|s| self.queues[s].front().map(|(key, _)| (*key, s)))
                .min();
            let blocking = |frame: u64| {
                (0..self.queues.len()).find(|&s| {
                    self.queues[s].is_empty()
                        && self.counts[s].is_none()
                        && self.done_before[s] <= frame
                })
            };
            let Some((key, shard)) = next else {
                return Ok(blocking(AT_END));
            };
            if let Some(waited) = blocking(key.frame) {
                return Ok(Some(waited));
            }
            let (_, note) = self.queues[shard].pop_front().expect("a queued note");
            match note {
                Note::Started => {
                    self.streams.insert(key.frame, self.next_stream);
                    self.next_stream += 1;
                }
                Note::Output(mut output) => {
                    let provisional = stream_of(&output);
                    let stream = *self
                        .streams
                        .get(&provisional)
                        .expect("a stream is numbered when it starts");
                    match &mut output {
                        Output::Connection(record) => record.stream = stream,
                        Output::Transaction(record) => record.stream = stream,
                    }
                    report.take(output)?;
                }
                Note::Forgotten(provisional) => {
                    self.streams.remove(&provisional);
                }
            }
        }
    }

    /// The frame counts of the reader with what the shards counted.
    fn counts(&self, mut read: FrameCounts) -> FrameCounts {
        for counts in self.counts.iter().flatten() {
            read.add_shard(counts);
        }
        read
    }
}

/// [`driver::run`] with the connection table split over `shards` threads. Frames that name
/// their buffer ([`Frame::buffer`]) are lent to the shards, others copied;
/// `config.max_memory` is shared among the shards. Returns the run's statistics and the
/// frame counts for the report.
pub fn run(
    source: &mut dyn FrameSource,
    config: &Config,
    shards: usize,
    report: &mut Report,
    limits: &Limits,
    observer: &mut dyn Observer,
) -> Result<(RunStats, FrameCounts), RunError> {
    let started = Instant::now();
    let shard_config = Config {
        max_memory: shard_budget(config.max_memory, shards),
        // Hints cannot flow back to a file; a shedding source is live and single-threaded.
        kernel_shedding: false,
        ..config.clone()
    };
    let agreement = Agreement::new(shards);
    let open: Vec<AtomicUsize> = (0..shards).map(|_| AtomicUsize::new(0)).collect();
    std::thread::scope(|scope| {
        let mut work = Vec::with_capacity(shards);
        let mut inbox = Vec::with_capacity(shards);
        let mut threads = Vec::with_capacity(shards);
        for shard in 0..shards {
            let (tx, rx) = mpsc::sync_channel::<Batch>(QUEUED_BATCHES);
            work.push(tx);
            let (results, results_rx) = mpsc::sync_channel::<Results>(QUEUED_BATCHES + 1);
            inbox.push(results_rx);
            let (config, agreement, open) = (shard_config.clone(), &agreement, &open[shard]);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("shard-{shard}"))
                    .spawn_scoped(scope, move || {
                        shard_main(shard, config, rx, results, agreement, open)
                    })
                    .expect("an analysis thread"),
            );
        }
        let mut reader = Reader {
            work,
            batches: (0..shards).map(|_| Batch::new()).collect(),
            counts: FrameCounts::default(),
            defragmenter: Defragmenter::default(),
            sweeps: SweepClock::default(),
            rounds: 0,
            frames_in_batch: 0,
            bytes_in_batch: 0,
        };
        let mut merger = Merger::new(inbox);
        let read = reader.read(source, limits, observer, report, &mut merger, &open);
        // End of input (or of a shard): the shards finish, the merger takes the rest.
        drop(reader.work);
        let write_error = merger.finish(report).err();
        // A shard stuck sending to a merger that stopped (a write error) lets go.
        merger.inbox.clear();
        let mut thread_cpu = vec![(
            "reader".to_string(),
            driver::thread_cpu_time().unwrap_or_default(),
        )];
        for (shard, thread) in threads.into_iter().enumerate() {
            match thread.join() {
                Ok(cpu) => thread_cpu.push((format!("shard-{shard}"), cpu)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        let mut stats = read?;
        stats.thread_cpu = thread_cpu;
        if let Some(err) = write_error {
            return Err(RunError::Write(err));
        }
        report.flush().map_err(RunError::Write)?;
        reader.defragmenter.finish();
        reader.counts.add_defragmented(&reader.defragmenter);
        let counts = merger.counts(reader.counts);
        stats.elapsed = started.elapsed();
        driver::end_of_run_warnings(&mut stats, &counts);
        Ok((stats, counts))
    })
}

/// Where the reader sends a frame.
enum Routed<'a> {
    /// Whole, for the shard to decode.
    Frame,
    /// Decoded: the segment, whose header fields and payload go separately.
    Segment(Segment<'a>),
    Damaged(DamagedSegment),
}

/// The reader's side: frames into batches, batches to the shards.
struct Reader {
    work: Vec<SyncSender<Batch>>,
    batches: Vec<Batch>,
    counts: FrameCounts,
    /// IP fragments never reach a shard: the reader puts their datagrams back together.
    defragmenter: Defragmenter,
    sweeps: SweepClock,
    /// Sweeps sent so far.
    rounds: u64,
    frames_in_batch: usize,
    bytes_in_batch: usize,
}

impl Reader {
    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        source: &mut dyn FrameSource,
        limits: &Limits,
        observer: &mut dyn Observer,
        report: &mut Report,
        merger: &mut Merger,
        open: &[AtomicUsize],
    ) -> Result<RunStats, RunError> {
        let mut stats = RunStats::default();
        let shards = self.work.len();
        let status = |stats: &RunStats, report: &Report, bytes| Status {
            frames: stats.frames,
            bytes,
            open_connections: open.iter().map(|n| n.load(Ordering::Relaxed)).sum(),
            finished_connections: report.totals().connections,
            kernel_drops: stats.kernel_drops,
        };
        loop {
            let frame_index = stats.frames;
            let Some(event) = source.next_event().map_err(RunError::Source)? else {
                break;
            };
            let mut stop = false;
            match event {
                SourceEvent::Frame(frame) => {
                    stats.frames += 1;
                    let (ts_ns, frame_len) = (frame.ts_ns, frame.data.len());
                    // An IP datagram put back together from fragments, copied into the batch.
                    let mut datagram = Vec::new();
                    count_frame(&frame, &mut self.counts);
                    // A plain frame goes whole, to be decoded by its shard; the reader
                    // decodes the others (tunnels, VLANs, other link layers, IPv6) to find
                    // their connection.
                    let routed = match plain_tcp_endpoints(&frame) {
                        Some((a, b)) => Some((shard_of(a, b, shards), Routed::Frame)),
                        None => match decode_frame(
                            &frame,
                            &mut self.counts,
                            &mut self.defragmenter,
                            &mut datagram,
                            false,
                        ) {
                            Some(Tcp::Segment(segment)) => Some((
                                shard_of(segment.src, segment.dst, shards),
                                Routed::Segment(segment),
                            )),
                            Some(Tcp::Damaged(damaged)) => Some((
                                shard_of(damaged.header.src, damaged.header.dst, shards),
                                Routed::Damaged(damaged),
                            )),
                            None => None,
                        },
                    };
                    if let Some((shard, routed)) = routed {
                        let batch = &mut self.batches[shard];
                        let item = match routed {
                            Routed::Frame => {
                                let (buffer, bytes) = batch.lend(&frame, frame.data);
                                Work::Frame {
                                    frame: frame_index,
                                    ts_ns,
                                    buffer,
                                    bytes,
                                }
                            }
                            Routed::Segment(segment) => {
                                let (buffer, payload) = batch.lend(&frame, segment.payload);
                                Work::Segment {
                                    frame: frame_index,
                                    header: Segment {
                                        payload: &[],
                                        ..segment
                                    },
                                    buffer,
                                    payload,
                                }
                            }
                            Routed::Damaged(damaged) => Work::Damaged {
                                frame: frame_index,
                                damaged,
                            },
                        };
                        batch.items.push(item);
                    }
                    if self.sweeps.due(ts_ns) {
                        self.sweep(frame_index, ts_ns);
                    }
                    stop = limits.max_frames.is_some_and(|max| stats.frames >= max);
                    self.frames_in_batch += 1;
                    self.bytes_in_batch += frame_len;
                    if self.frames_in_batch == BATCH_FRAMES || self.bytes_in_batch >= BATCH_BYTES {
                        self.send(stats.frames, report, merger)?;
                        observer.update(&status(&stats, report, source.progress()));
                    }
                }
                SourceEvent::Tick(now_ns) => {
                    if self.sweeps.due(now_ns) {
                        // A tick falls after the frames before it.
                        self.sweep(frame_index.saturating_sub(1), now_ns);
                    }
                    // Live: what the shards have is analysed and written at every tick.
                    self.send(stats.frames, report, merger)?;
                    if limits.flush_each {
                        report.flush().map_err(RunError::Write)?;
                    }
                    report.tick(now_ns).map_err(RunError::Write)?;
                    observer.update(&status(&stats, report, source.progress()));
                    stop = limits.stop_requested();
                }
                SourceEvent::KernelDrops(total) => {
                    stats.kernel_drops = total;
                    self.broadcast(|| Work::KernelDrops);
                }
                SourceEvent::Damage(message) => stats.warnings.push(message),
                SourceEvent::Pending => {}
            }
            if stop {
                break;
            }
        }
        self.send(stats.frames, report, merger)?;
        observer.done();
        stats.delivery = source.delivery();
        Ok(stats)
    }

    fn sweep(&mut self, frame: u64, now_ns: u64) {
        let round = self.rounds;
        self.rounds += 1;
        self.broadcast(|| Work::Sweep {
            frame,
            round,
            now_ns,
        });
    }

    fn broadcast(&mut self, item: impl Fn() -> Work) {
        for batch in &mut self.batches {
            batch.items.push(item());
        }
    }

    /// Hands every shard its batch (an empty one too: it tells the merger how far the
    /// frames went). While a shard's queue is full, the records coming back are merged and
    /// written, so that they do not pile up.
    fn send(
        &mut self,
        done_before: u64,
        report: &mut Report,
        merger: &mut Merger,
    ) -> Result<(), RunError> {
        self.frames_in_batch = 0;
        self.bytes_in_batch = 0;
        for (shard, batch) in self.batches.iter_mut().enumerate() {
            let mut full = std::mem::replace(batch, Batch::new());
            full.done_before = done_before;
            loop {
                match self.work[shard].try_send(full) {
                    Ok(()) => break,
                    Err(TrySendError::Full(back)) => {
                        full = back;
                        merger
                            .wait(shard, Duration::from_micros(200), report)
                            .map_err(RunError::Write)?;
                    }
                    // The shard is gone (it panicked): joining it says why.
                    Err(TrySendError::Disconnected(_)) => return Ok(()),
                }
            }
        }
        merger.drain(report).map_err(RunError::Write)?;
        Ok(())
    }
}
