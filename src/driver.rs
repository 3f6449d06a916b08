//! The one loop that runs any [`FrameSource`] through the pipeline into the sinks.
//!
//! Files and live interfaces differ only in what their source yields (ticks and kernel drop
//! counts come from live captures) and in the [`Limits`] the command line sets.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::pipeline::{Analyzer, FrameCounts};
use crate::report::Report;
use crate::source::{Delivery, FrameSource, SourceError, SourceEvent};

/// When to stop before the input ends.
#[derive(Debug, Default, Clone)]
pub struct Limits {
    /// Stop after this many frames (`-c`).
    pub max_frames: Option<u64>,
    /// Stop at this moment (`--duration`), checked at each tick.
    pub deadline: Option<Instant>,
    /// Stop once this is set (a signal), checked at each tick.
    pub stop: Option<Arc<AtomicBool>>,
    /// Flush every sink after each batch of records (live: rows are visible at once).
    pub flush_each: bool,
}

impl Limits {
    /// A signal came, or the deadline passed (checked at each tick).
    pub fn stop_requested(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Where a run stands, for a progress bar or status line.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub frames: u64,
    /// Input bytes consumed so far and in all, when known.
    pub bytes: (u64, Option<u64>),
    pub open_connections: usize,
    pub finished_connections: u64,
    pub kernel_drops: u64,
}

/// Watches a run: a progress bar, a status line, or nothing.
pub trait Observer {
    /// Called every few thousand frames and at every tick.
    fn update(&mut self, status: &Status);
    /// The input is over (clear the bar before the report prints).
    fn done(&mut self) {}
}

/// Watches nothing.
pub struct Unobserved;

impl Observer for Unobserved {
    fn update(&mut self, _status: &Status) {}
}

/// What happened in a run besides the records.
#[derive(Debug, Default)]
pub struct RunStats {
    pub frames: u64,
    pub elapsed: Duration,
    pub kernel_drops: u64,
    /// Bytes a live source saw and delivered to user space.
    pub delivery: Option<Delivery>,
    /// Damage to the input and other things the user should know, one line each.
    pub warnings: Vec<String>,
    /// The CPU time each thread of the run spent, by name (the reader and merger first).
    pub thread_cpu: Vec<(String, Duration)>,
}

/// The CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`, to the
/// nanosecond): unlike the wall clock it does not grow while other processes have the CPU.
/// `None` if the clock cannot be read.
pub fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill in.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return None;
    }
    Some(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

#[derive(Debug)]
pub enum RunError {
    /// The input could not be read at all.
    Source(SourceError),
    /// An output could not be written.
    Write(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Source(err) => write!(f, "{err}"),
            RunError::Write(err) => write!(f, "writing output: {err}"),
        }
    }
}

/// Frames between two progress updates.
const UPDATE_EVERY: u64 = 8192;

/// Reads `source` until it ends or a limit is reached, runs every frame through `analyzer`
/// and hands the records to `report`; at the end every connection still open is written.
pub fn run(
    source: &mut dyn FrameSource,
    analyzer: &mut Analyzer,
    report: &mut Report,
    limits: &Limits,
    observer: &mut dyn Observer,
) -> Result<RunStats, RunError> {
    let started = Instant::now();
    let mut stats = RunStats::default();
    let status = |stats: &RunStats, analyzer: &Analyzer, report: &Report, bytes| Status {
        frames: stats.frames,
        bytes,
        open_connections: analyzer.open_connections(),
        finished_connections: report.totals().connections,
        kernel_drops: stats.kernel_drops,
    };
    while let Some(event) = source.next_event().map_err(RunError::Source)? {
        let mut stop = false;
        let mut tick = None;
        match event {
            SourceEvent::Frame(frame) => {
                stats.frames += 1;
                analyzer.process_frame(&frame);
                stop = limits.max_frames.is_some_and(|max| stats.frames >= max);
                if stats.frames.is_multiple_of(UPDATE_EVERY) {
                    observer.update(&status(&stats, analyzer, report, source.progress()));
                }
            }
            SourceEvent::Tick(now_ns) => {
                analyzer.tick(now_ns);
                tick = Some(now_ns);
                observer.update(&status(&stats, analyzer, report, source.progress()));
                stop = limits.stop_requested();
            }
            SourceEvent::KernelDrops(total) => {
                stats.kernel_drops = total;
                analyzer.mark_kernel_drops();
            }
            SourceEvent::Damage(message) => stats.warnings.push(message),
            SourceEvent::Pending => {}
        }
        // The one value that flows back up: what payload the source may shed.
        for hint in analyzer.take_shed_hints() {
            source.shed(&hint);
        }
        let mut wrote = false;
        for output in analyzer.take_output() {
            report.take(output).map_err(RunError::Write)?;
            wrote = true;
        }
        if wrote && limits.flush_each {
            report.flush().map_err(RunError::Write)?;
        }
        if let Some(now_ns) = tick {
            report.tick(now_ns).map_err(RunError::Write)?;
        }
        if stop {
            break;
        }
    }
    observer.done();
    stats.elapsed = started.elapsed();
    stats.delivery = source.delivery();
    let mut write_error = None;
    analyzer.finish_all(|output| {
        if let Err(err) = report.take(output)
            && write_error.is_none()
        {
            write_error = Some(err);
        }
    });
    if let Some(err) = write_error {
        return Err(RunError::Write(err));
    }
    report.flush().map_err(RunError::Write)?;
    end_of_run_warnings(&mut stats, analyzer.counts());
    stats.thread_cpu = vec![("analysis".into(), thread_cpu_time().unwrap_or_default())];
    Ok(stats)
}

/// What the user must be told at the end of a run besides the damage met on the way.
pub fn end_of_run_warnings(stats: &mut RunStats, counts: &FrameCounts) {
    if stats.kernel_drops > 0 {
        stats.warnings.push(format!(
            "the kernel dropped {} packets: connections open meanwhile are flagged \
             kernel-drops and their verdicts are uncertain",
            stats.kernel_drops
        ));
    }
    if !counts.unsupported_link_types.is_empty() {
        let types: Vec<String> = counts
            .unsupported_link_types
            .iter()
            .map(|link| link.to_string())
            .collect();
        stats.warnings.push(format!(
            "{} frames of unsupported link type(s) [{}] were not analysed",
            counts.unsupported_link,
            types.join(", ")
        ));
    }
}
