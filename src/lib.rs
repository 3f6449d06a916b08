//! kascope: HTTP/1.x connection reuse, pipelining and keep-alive behaviour from packet captures.
//!
//! One streaming pipeline, each stage in its own module, data flowing one way:
//!
//! ```text
//! source ──Frame──▶ decode ──Segment──▶ tcp ──StreamEvent──▶ http ──HttpEvent──▶ analysis ──Record──▶ report
//! ```
//!
//! - [`source`]: where frames come from ([`source::FrameSource`]: files, live interfaces).
//! - [`decode`]: link layers, IP and TCP down to a [`decode::Segment`].
//! - [`tcp`]: per-connection handshake and teardown, per-direction reassembly.
//! - [`http`]: HTTP/1.x framing per direction.
//! - [`analysis`]: the per-connection ledger that becomes a [`ConnectionRecord`].
//! - [`verdict`]: Keep-Alive verdicts as pure functions.
//! - [`report`]: the sinks that write records (terminal, CSV, JSON lines).
//!
//! [`pipeline::Analyzer`] holds the connection table that runs a connection's stages;
//! [`driver::run`] reads any source through it into the sinks. See `docs/architecture.md`.

#[macro_use]
pub mod named;

pub mod analysis;
pub mod cli;
pub mod decode;
pub mod driver;
pub mod flows;
pub mod http;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod sharded;
pub mod source;
pub mod tcp;
pub mod verdict;

pub use pipeline::{Analyzer, Config, FrameCounts, Output};
pub use record::{ConnectionRecord, TransactionRecord};
