//! What the user watches while a run goes: a progress bar for files, a status line for live
//! capture, both on stderr.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::driver::{Observer, Status};

/// A bar of input bytes read, for files of known size.
pub struct FileProgress {
    bar: ProgressBar,
}

impl FileProgress {
    pub fn new(total_bytes: u64) -> FileProgress {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        FileProgress { bar }
    }
}

impl Observer for FileProgress {
    fn update(&mut self, status: &Status) {
        self.bar.set_position(status.bytes.0);
    }

    fn done(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A spinner with packets, packet rate, open and finished connections, kernel drops.
pub struct LiveStatus {
    bar: ProgressBar,
    /// When the rate was last measured, and the frame count then.
    rate_mark: (Instant, u64),
}

impl LiveStatus {
    pub fn new() -> LiveStatus {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        LiveStatus {
            bar,
            rate_mark: (Instant::now(), 0),
        }
    }
}

impl Default for LiveStatus {
    fn default() -> LiveStatus {
        LiveStatus::new()
    }
}

impl Observer for LiveStatus {
    fn update(&mut self, status: &Status) {
        let (since, frames_then) = self.rate_mark;
        if since.elapsed() < Duration::from_secs(1) {
            return;
        }
        let rate = (status.frames - frames_then) as f64 / since.elapsed().as_secs_f64();
        self.rate_mark = (Instant::now(), status.frames);
        self.bar.set_message(format!(
            "{} packets, {rate:.0}/s, {} open, {} finished, {} kernel drops",
            status.frames,
            status.open_connections,
            status.finished_connections,
            status.kernel_drops
        ));
        self.bar.tick();
    }

    fn done(&mut self) {
        self.bar.finish_and_clear();
    }
}
