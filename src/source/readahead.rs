//! Reading an input ahead on a thread of its own (`--threads` 2 and more). Reading a capture
//! file is, for the most part, the kernel copying it out of the page cache (and, for a
//! compressed one, inflating it): about half of what one thread spends on a large capture.
//! A thread that only reads lets the analysis run meanwhile on another core.
//!
//! The thread reads into buffers that keep [`HEAD_ROOM`] bytes free in front, and hands
//! them over whole: the capture reader puts the few unread bytes of its last buffer (a
//! record cut by the buffer's end) in that room and reads on from the handed buffer, so the
//! bytes are copied once, by the kernel, as when reading on the reader's own thread. Buffers
//! come back for reuse once nobody reads frames in them.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use super::input::read_full;
use crate::driver::thread_cpu_time;

/// Bytes free in front of each buffer: enough for the unread part of any record libpcap
/// writes (262,144 bytes of packet and a pcapng block's framing and options), so that only
/// larger records are gathered by copying.
pub(super) const HEAD_ROOM: usize = (256 + 4) << 10;

/// Bytes read into each buffer after its head room. Pieces of 128 KiB to 1 MiB ran alike;
/// with 4 MiB the buffers no longer stay in cache and the kernel's copy took half as long
/// again (docs/threads.md#speed).
pub(super) const CHUNK: usize = 256 << 10;

/// Buffers read and not yet taken: enough to cover a pause of the reader.
const QUEUED: usize = 2;

/// Buffers waiting to be read into again: with shards holding frames, several come back at
/// once (room for one made the thread allocate anew: 37,000 page faults in a run).
const RETURNED: usize = 4;

/// How long a side waiting for the other (the reader for bytes, the thread for room) tries
/// again before it sleeps: going to sleep and being woken costs more than most waits last
/// (a run slept some 2,500 times, 6% slower). It yields between tries rather than spin, so
/// that with more threads than cores the one it waits for gets the core.
const TRY_FOR: Duration = Duration::from_micros(100);

/// Bytes read ahead.
pub(super) struct Chunk {
    /// `head_room` bytes free for the reader, then `len` bytes read, then unused room.
    pub(super) bytes: Vec<u8>,
    pub(super) head_room: usize,
    pub(super) len: usize,
    /// The input ends after these bytes: cleanly, or because of `error`.
    pub(super) last: bool,
    pub(super) error: Option<io::Error>,
}

impl Chunk {
    pub(super) fn data(&self) -> &[u8] {
        &self.bytes[self.head_room..self.head_room + self.len]
    }
}

/// The receiving end of a thread reading an input ahead.
pub(super) struct ReadAhead {
    chunks: Receiver<Chunk>,
    returned: SyncSender<Vec<u8>>,
    /// The buffer size a returned buffer must have to be read into again.
    size: usize,
    /// CPU time the thread has spent, in nanoseconds, as of its last read.
    cpu_ns: Arc<AtomicU64>,
}

/// The input a thread was to read ahead, given back because the thread could not start.
pub(super) type NotStarted = (Box<dyn Read + Send>, io::Error);

impl ReadAhead {
    /// Starts a thread reading `input` ahead into buffers of `head_room` free bytes and
    /// `chunk` bytes read.
    pub(super) fn spawn(
        input: Box<dyn Read + Send>,
        head_room: usize,
        chunk: usize,
    ) -> Result<ReadAhead, NotStarted> {
        let (chunks_tx, chunks) = sync_channel(QUEUED);
        let (returned, returned_rx) = sync_channel::<Vec<u8>>(RETURNED);
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let thread_cpu = Arc::clone(&cpu_ns);
        // The input moves to the thread only once it started: a failed spawn hands it back.
        let (input_tx, input_rx) = sync_channel::<Box<dyn Read + Send>>(1);
        let started = std::thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || {
                let Ok(mut input) = input_rx.recv() else {
                    return;
                };
                loop {
                    let mut bytes = returned_rx
                        .try_recv()
                        .unwrap_or_else(|_| vec![0; head_room + chunk]);
                    let (len, error) = read_full(&mut *input, &mut bytes[head_room..]);
                    let last = len < chunk || error.is_some();
                    if let Some(cpu) = thread_cpu_time() {
                        thread_cpu.store(cpu.as_nanos() as u64, Ordering::Relaxed);
                    }
                    let read = Chunk {
                        bytes,
                        head_room,
                        len,
                        last,
                        error,
                    };
                    // A reader that stopped early (`-c`) has dropped its end: stop too.
                    if !send(&chunks_tx, read) || last {
                        return;
                    }
                }
            });
        match started {
            Ok(_) => {
                input_tx
                    .send(input)
                    .expect("the thread waits for its input");
                Ok(ReadAhead {
                    chunks,
                    returned,
                    size: head_room + chunk,
                    cpu_ns,
                })
            }
            Err(err) => Err((input, err)),
        }
    }

    /// The next bytes read. Call no more after a `last` one.
    pub(super) fn next(&mut self) -> Chunk {
        let soon = try_for(|| match self.chunks.try_recv() {
            Ok(chunk) => Some(Some(chunk)),
            Err(TryRecvError::Disconnected) => Some(None),
            Err(TryRecvError::Empty) => None,
        });
        let got = match soon {
            Some(got) => got,
            None => self.chunks.recv().ok(),
        };
        got.unwrap_or_else(|| Chunk {
            bytes: Vec::new(),
            head_room: 0,
            len: 0,
            last: true,
            error: Some(io::Error::other("the thread reading ahead ended")),
        })
    }

    /// Hands a buffer nobody reads any more back to be read into, if it is one of the
    /// thread's size and the thread wants more; otherwise it is freed.
    pub(super) fn give_back(&self, bytes: Vec<u8>) {
        if bytes.len() == self.size {
            // Full: the thread has enough to read into; gone: it has read everything.
            let _ = self.returned.try_send(bytes);
        }
    }

    /// CPU time the thread has spent so far.
    pub(super) fn cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed))
    }
}

/// Hands `chunk` to the reader; false if the reader is gone.
fn send(chunks: &SyncSender<Chunk>, chunk: Chunk) -> bool {
    let mut pending = Some(chunk);
    let soon = try_for(|| match chunks.try_send(pending.take()?) {
        Ok(()) => Some(true),
        Err(TrySendError::Disconnected(_)) => Some(false),
        Err(TrySendError::Full(chunk)) => {
            pending = Some(chunk);
            None
        }
    });
    match soon {
        Some(sent) => sent,
        None => pending.is_some_and(|chunk| chunks.send(chunk).is_ok()),
    }
}

/// What `attempt` gives within [`TRY_FOR`], if anything.
fn try_for<T>(mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
    let since = Instant::now();
    loop {
        if let Some(done) = attempt() {
            return Some(done);
        }
        if since.elapsed() >= TRY_FOR {
            return None;
        }
        std::thread::yield_now();
    }
}
