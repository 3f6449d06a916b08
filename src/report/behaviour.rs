//! What each server and client really does, inferred from its connections instead of taken
//! from what it advertises: a server's idle timeout (from the idle closes it made) and its
//! request limit (from where it announced the close), how long its clients let a pooled
//! connection sit before reusing it, and the margin between the two — the keep-alive race
//! risk before any race happened. Clients are followed per address and per `User-Agent`
//! family; servers per address:port here (one [`ServerBehaviour`] in each
//! [`ServerRecord`](super::ServerRecord)) and grouped by `Server` software in the text.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use crate::http::Protocol;
use crate::record::{Closer, ConnectionRecord, Flag};
use crate::tcp::KeepAliveProbes;

use super::cells::seconds;
use super::clients::asked_close;
use super::samples::Samples;
use super::servers::{keep_distinct, max_option, min_option};
use super::{RunEnd, ServerRecord, Sink, plural};

/// Idle closes within this of each other are taken for one timer: nginx and Apache close
/// within a few ms of their setting, and 100 ms is the default `--timeout-tolerance`.
pub const CLUSTER_WIDTH_NS: u64 = 100_000_000;
/// The idle limit of NATs, firewalls and load balancers a server's idle timeout is compared
/// with: the shortest common one (AWS ALB and many firewalls 60 s; Azure load balancers 4
/// min, AWS NAT gateways 350 s).
pub const MIDDLEBOX_IDLE_NS: u64 = 60_000_000_000;

/// How much more than a round trip a race margin must be to be safe: a tenth of the
/// server's idle timeout (client timers, scheduling and quiet spells vary), at least the
/// default timeout tolerance of 0.1 s.
pub fn race_risk_tolerance_ns(timeout_ns: u64) -> u64 {
    (timeout_ns / 10).max(CLUSTER_WIDTH_NS)
}

/// A client that closes sooner than this after its last response is done with the
/// connection, not timing out an idle one in its pool; a server that does has no idle
/// timeout a client could race.
const DONE_WITHIN_NS: u64 = 100_000_000;
/// Distinct close positions kept per server.
const MAX_POSITIONS: usize = 64;
/// `User-Agent` families followed one by one; the rest are added up in one row, so a
/// capture of many clients cannot grow memory without bound.
pub const MAX_AGENTS: usize = 1_000;

/// What idle closes say about an idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdleTimeout {
    /// Most closes came within [`CLUSTER_WIDTH_NS`] of each other: their median (ns), and
    /// how many closes agreed.
    Inferred { ns: u64, closes: usize },
    /// Closes were seen, but no majority of them agrees on one value.
    Scattered,
    /// No idle close was seen.
    #[default]
    Untested,
}

/// The name of an [`IdleTimeout`] in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    Inferred,
    Scattered,
    Untested,
}

named_enum!(Evidence {
    Inferred => "inferred",
    Scattered => "scattered",
    Untested => "untested",
});

impl IdleTimeout {
    /// From idle times in ascending order: the median of the largest group of closes that
    /// lie within [`CLUSTER_WIDTH_NS`] of each other, when that group is a majority.
    pub fn of(sorted: &[u64]) -> IdleTimeout {
        if sorted.is_empty() {
            return IdleTimeout::Untested;
        }
        let (mut best_start, mut best_len, mut start) = (0, 0, 0);
        for end in 0..sorted.len() {
            while sorted[end] - sorted[start] > CLUSTER_WIDTH_NS {
                start += 1;
            }
            if end + 1 - start > best_len {
                (best_start, best_len) = (start, end + 1 - start);
            }
        }
        if best_len * 2 <= sorted.len() {
            return IdleTimeout::Scattered;
        }
        IdleTimeout::Inferred {
            ns: sorted[best_start + best_len / 2],
            closes: best_len,
        }
    }

    pub fn inferred_ns(self) -> Option<u64> {
        match self {
            IdleTimeout::Inferred { ns, .. } => Some(ns),
            IdleTimeout::Scattered | IdleTimeout::Untested => None,
        }
    }

    pub fn evidence(self) -> Evidence {
        match self {
            IdleTimeout::Inferred { .. } => Evidence::Inferred,
            IdleTimeout::Scattered => Evidence::Scattered,
            IdleTimeout::Untested => Evidence::Untested,
        }
    }
}

/// Whether and how often one side sent TCP keep-alive probes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probing {
    /// Connections on which it probed.
    pub connections: u64,
    pub probes: u64,
    /// The shortest time between two of its probes on one connection.
    pub shortest_interval_ns: Option<u64>,
}

impl Probing {
    fn add(&mut self, side: KeepAliveProbes) {
        if side.probes > 0 {
            self.connections += 1;
            self.probes += u64::from(side.probes);
        }
        self.shortest_interval_ns =
            min_option(self.shortest_interval_ns, side.shortest_interval_ns);
    }

    fn merge(&mut self, other: &Probing) {
        self.connections += other.connections;
        self.probes += other.probes;
        self.shortest_interval_ns =
            min_option(self.shortest_interval_ns, other.shortest_interval_ns);
    }
}

/// How a server ended the connections it closed first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Closes {
    pub fin: u64,
    pub rst: u64,
    /// Connections where it had announced `Connection: close`.
    pub announced: u64,
    /// ... and then kept answering requests (pipelined ones, typically).
    pub answered_after_announcing: u64,
    /// ... and then left requests unanswered, as RFC 9112 §9.6 says.
    pub stopped_after_announcing: u64,
}

/// What one server (or one server software) really did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerBehaviour {
    /// How often the server announced `Connection: close` on the response at each position,
    /// when the client had not asked for it.
    announced_at: BTreeMap<u32, u64>,
    /// The most final responses the server sent on one connection.
    pub most_responses: u32,
    /// Distinct total-request limits implied by `max=` (up to 8), ascending.
    pub advertised_limits: Vec<u32>,
    /// The longest a connection sat idle and the server kept it open.
    pub longest_idle_open_ns: Option<u64>,
    /// Each connection's longest idle gap before a reuse (ns), ascending once finished.
    pub reuse_gaps: Samples,
    /// The longest of them and its `tcp.stream`.
    pub longest_reuse: Option<(u64, u64)>,
    pub closes: Closes,
    /// TCP keep-alive probes the server sent, and those its clients sent on its connections.
    pub probing: Probing,
    pub client_probing: Probing,
    /// Inferred when the row is finished, from the server's idle closes.
    pub idle_timeout: IdleTimeout,
    /// Inferred when the row is finished, from where the server announced the close.
    pub request_limit: Option<u32>,
    /// The inferred idle timeout less the longest idle gap after which a client reused a
    /// connection (ns; negative: clients reuse connections the server has already closed).
    pub race_margin_ns: Option<i64>,
}

impl ServerBehaviour {
    pub fn add(&mut self, record: &ConnectionRecord) {
        if let Some(at) = record.close_announced_at
            && asked_close(record).is_none()
            && !record.flags.contains(Flag::Tunnel)
            && (self.announced_at.len() < MAX_POSITIONS || self.announced_at.contains_key(&at))
        {
            *self.announced_at.entry(at).or_default() += 1;
        }
        self.most_responses = self.most_responses.max(record.responses.unwrap_or(0));
        if let Some(limit) = record.implied_request_limit {
            keep_distinct(&mut self.advertised_limits, limit);
        }
        self.longest_idle_open_ns =
            max_option(self.longest_idle_open_ns, record.longest_idle_open_ns);
        if let Some(gap) = record.max_idle_ns {
            self.reuse_gaps.push(gap);
            if self.longest_reuse.is_none_or(|(longest, _)| gap > longest) {
                self.longest_reuse = Some((gap, record.stream));
            }
        }
        match record.closer {
            Closer::ServerFin => self.closes.fin += 1,
            Closer::ServerRst => self.closes.rst += 1,
            _ => {}
        }
        if record.close_announced_at.is_some() {
            self.closes.announced += 1;
            // A one-sided row has no verdicts: what followed the announcement is not known.
            match &record.verdicts {
                Some(verdicts) if verdicts.close_honoured == Some(false) => {
                    self.closes.answered_after_announcing += 1
                }
                Some(verdicts) if verdicts.dropped_after_close > 0 => {
                    self.closes.stopped_after_announcing += 1
                }
                _ => {}
            }
        }
        self.probing.add(record.keepalive_server);
        self.client_probing.add(record.keepalive_client);
    }

    /// Heap memory held, for the per-server aggregation's memory budget: the positions map
    /// (a B-tree node per few entries, counted at 64 bytes an entry), the limits, the gaps.
    pub fn heap_bytes(&self) -> usize {
        self.announced_at.len() * 64
            + self.advertised_limits.capacity() * std::mem::size_of::<u32>()
            + self.reuse_gaps.heap_bytes()
    }

    /// Adds another server's behaviour (for a group by software); `finish` again after.
    pub fn merge(&mut self, other: &ServerBehaviour) {
        for (at, count) in &other.announced_at {
            if self.announced_at.len() < MAX_POSITIONS || self.announced_at.contains_key(at) {
                *self.announced_at.entry(*at).or_default() += count;
            }
        }
        self.most_responses = self.most_responses.max(other.most_responses);
        for limit in &other.advertised_limits {
            keep_distinct(&mut self.advertised_limits, *limit);
        }
        self.longest_idle_open_ns =
            max_option(self.longest_idle_open_ns, other.longest_idle_open_ns);
        for gap in other.reuse_gaps.values() {
            self.reuse_gaps.push(*gap);
        }
        if other
            .longest_reuse
            .is_some_and(|(gap, _)| self.longest_reuse.is_none_or(|(longest, _)| gap > longest))
        {
            self.longest_reuse = other.longest_reuse;
        }
        let (a, b) = (&mut self.closes, &other.closes);
        a.fin += b.fin;
        a.rst += b.rst;
        a.announced += b.announced;
        a.answered_after_announcing += b.answered_after_announcing;
        a.stopped_after_announcing += b.stopped_after_announcing;
        self.probing.merge(&other.probing);
        self.client_probing.merge(&other.client_probing);
    }

    /// Draws the inferences: the idle timeout from the idle closes (ascending), the request
    /// limit from the close announcements, the race margin against the longest reuse gap.
    pub fn finish(&mut self, idle_closes: &[u64], max_reuse_idle_ns: Option<u64>) {
        self.reuse_gaps = self.reuse_gaps.sorted();
        self.idle_timeout = IdleTimeout::of(idle_closes);
        // A server that closes at once after its responses has no idle timeout to race.
        self.race_margin_ns = self
            .idle_timeout
            .inferred_ns()
            .filter(|timeout| *timeout >= DONE_WITHIN_NS)
            .zip(max_reuse_idle_ns)
            .map(|(timeout, reuse)| timeout as i64 - reuse as i64);
        // The limit is the furthest position at which the close was announced more than once,
        // provided no connection went past it; earlier announcements are other closes (an
        // error answer, say).
        self.request_limit = self
            .announced_at
            .iter()
            .rev()
            .find(|(_, count)| **count >= 2)
            .map(|(at, _)| *at)
            .filter(|limit| self.most_responses <= *limit);
    }

    /// The lower bound on the idle timeout when none was observed.
    pub fn idle_timeout_at_least_ns(&self) -> Option<u64> {
        match self.idle_timeout {
            IdleTimeout::Untested => self.longest_idle_open_ns,
            IdleTimeout::Inferred { .. } | IdleTimeout::Scattered => None,
        }
    }
}

/// What one client (an address, or a `User-Agent` family) really did with its pool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientBehaviour {
    pub most_requests: u32,
    /// The longest idle gap after which it reused a connection: its pool keeps connections
    /// at least this long.
    pub max_reuse_idle_ns: Option<u64>,
    /// Idle times after which it closed connections itself (its pool idle timeout), when it
    /// closed first with nothing outstanding and was not simply done at once.
    pub own_idle_closes: Samples,
    /// Connections it closed at once after its last response (it was done with them).
    pub closed_when_done: u64,
    /// Requests it sent when the server's `max=` allowed no more, and on how many connections.
    pub requests_beyond_max: u64,
    pub connections_beyond_max: u64,
    /// Connections on which a request of its was lost to a keep-alive race.
    pub races: u64,
    pub probing: Probing,
    /// Inferred when the row is finished, from its own idle closes.
    pub pool_idle_timeout: IdleTimeout,
}

impl ClientBehaviour {
    pub fn add(&mut self, record: &ConnectionRecord) {
        self.most_requests = self.most_requests.max(record.requests.unwrap_or(0));
        self.max_reuse_idle_ns = max_option(self.max_reuse_idle_ns, record.max_idle_ns);
        if matches!(record.closer, Closer::ClientFin | Closer::ClientRst)
            && let Some(idle) = record.idle_before_close_ns
        {
            if idle < DONE_WITHIN_NS {
                self.closed_when_done += 1;
            } else {
                self.own_idle_closes.push(idle);
            }
        }
        if record.requests_beyond_max > 0 {
            self.requests_beyond_max += u64::from(record.requests_beyond_max);
            self.connections_beyond_max += 1;
        }
        self.races += u64::from(
            record
                .verdicts
                .as_ref()
                .is_some_and(|v| v.race_request.is_some()),
        );
        self.probing.add(record.keepalive_client);
    }

    /// The finished row: its own idle closes sorted, its pool idle timeout inferred.
    pub fn finished(&self) -> ClientBehaviour {
        let own_idle_closes = self.own_idle_closes.sorted();
        ClientBehaviour {
            pool_idle_timeout: IdleTimeout::of(own_idle_closes.values()),
            own_idle_closes,
            ..self.clone()
        }
    }
}

/// The clients of one `User-Agent` family (see [`agent_family`]); empty for requests without
/// one, `None` for the families past [`MAX_AGENTS`], added up.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub family: Option<String>,
    pub connections: u64,
    pub requests: u64,
    pub behaviour: ClientBehaviour,
}

/// The per-`User-Agent`-family aggregation, fed one connection record at a time.
#[derive(Debug, Default)]
pub struct Agents {
    by_family: HashMap<Option<String>, AgentRecord>,
}

impl Agents {
    pub fn add(&mut self, record: &ConnectionRecord) {
        let Some(requests) = record.requests.filter(|&n| n > 0) else {
            return;
        };
        if record.protocol != Protocol::Http {
            return;
        }
        let family = Some(agent_family(&record.user_agent).to_string());
        let known = self.by_family.contains_key(&family);
        let key = if known || self.by_family.len() < MAX_AGENTS {
            family
        } else {
            None
        };
        let row = self
            .by_family
            .entry(key)
            .or_insert_with_key(|family| AgentRecord {
                family: family.clone(),
                connections: 0,
                requests: 0,
                behaviour: ClientBehaviour::default(),
            });
        row.connections += 1;
        row.requests += u64::from(requests);
        row.behaviour.add(record);
    }

    /// Rows, most connections first (then by name); the families past the bound last.
    pub fn records(&self) -> Vec<AgentRecord> {
        let mut rows: Vec<AgentRecord> = self
            .by_family
            .values()
            .map(|row| AgentRecord {
                behaviour: row.behaviour.finished(),
                ..row.clone()
            })
            .collect();
        rows.sort_by(|a, b| {
            a.family
                .is_none()
                .cmp(&b.family.is_none())
                .then(b.connections.cmp(&a.connections))
                .then(a.family.cmp(&b.family))
        });
        rows
    }
}

/// A `User-Agent`'s family: its first product name (`curl/8.5.0` → `curl`), and for the
/// `Mozilla/5.0 (…)` of browsers the browser named further on (Edge, Opera, Chrome, Firefox,
/// Safari). Empty without a `User-Agent`.
pub fn agent_family(agent: &str) -> &str {
    let first = agent
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .unwrap_or("");
    if first != "Mozilla" {
        return first;
    }
    const BROWSERS: [(&str, &str); 5] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Chrome/", "Chrome"),
        ("Firefox/", "Firefox"),
        ("Safari/", "Safari"),
    ];
    BROWSERS
        .iter()
        .find(|(token, _)| agent.contains(token))
        .map_or(first, |(_, name)| name)
}

/// Signed seconds with microseconds (a race margin may be negative).
pub fn signed_seconds(ns: i64) -> f64 {
    (ns as f64 / 1e3).round() / 1e6
}

/// Points drawn per row of the margin chart: past that, evenly spaced ones of the sorted
/// values (the extremes always among them).
const MAX_CHART_POINTS: usize = 500;

/// What the HTML report's margin chart draws for one server: its idle closes and each
/// connection's longest reuse gap (seconds), the inferred timeout, and how the margin stands.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MarginChart {
    pub closes: Vec<f64>,
    pub gaps: Vec<f64>,
    pub timeout: Option<f64>,
    /// `safe`, `risk` (below a round trip plus the tolerance) or `races` (negative).
    pub state: &'static str,
}

impl MarginChart {
    pub fn of(server: &ServerRecord) -> MarginChart {
        let behaviour = &server.behaviour;
        let timeout = behaviour.idle_timeout.inferred_ns();
        let rtt = server.handshake_rtts.median().unwrap_or(0);
        let state = match (behaviour.race_margin_ns, timeout) {
            (Some(margin), _) if margin < 0 => "races",
            (Some(margin), Some(t)) if margin < (rtt + race_risk_tolerance_ns(t)) as i64 => "risk",
            _ => "safe",
        };
        MarginChart {
            closes: thinned(server.idle_closes.values()),
            gaps: thinned(behaviour.reuse_gaps.values()),
            timeout: timeout.map(seconds),
            state,
        }
    }
}

/// Sorted values in seconds, at most [`MAX_CHART_POINTS`] of them.
fn thinned(sorted: &[u64]) -> Vec<f64> {
    if sorted.len() <= MAX_CHART_POINTS {
        return sorted.iter().map(|v| seconds(*v)).collect();
    }
    let last = sorted.len() - 1;
    (0..MAX_CHART_POINTS)
        .map(|i| seconds(sorted[i * last / (MAX_CHART_POINTS - 1)]))
        .collect()
}

/// The terminal section: what servers (by address and by software) and clients (by address
/// and by `User-Agent` family) really do.
pub struct BehaviourText {
    out: Box<dyn Write>,
    limit: usize,
}

impl BehaviourText {
    pub fn new(out: Box<dyn Write>, limit: usize) -> BehaviourText {
        BehaviourText { out, limit }
    }
}

/// What the text says about a server, or about a group of servers of one software.
pub struct ServerView {
    pub behaviour: ServerBehaviour,
    /// Idle closes, ascending.
    pub idle_closes: Vec<u64>,
    pub reuse_idle_max_ns: Option<u64>,
    pub advertised_timeouts: Vec<u32>,
    pub races: u64,
    pub lost_to_races: u64,
}

impl ServerView {
    pub fn of(server: &ServerRecord) -> ServerView {
        ServerView {
            behaviour: server.behaviour.clone(),
            idle_closes: server.idle_closes.values().to_vec(),
            reuse_idle_max_ns: server.reuse_idle_max_ns,
            advertised_timeouts: server.keep_alive_timeouts.clone(),
            races: server.races,
            lost_to_races: server.lost_to_races,
        }
    }
}

/// Servers grouped by their first `Server` header value (in the order of `servers`), each
/// group's behaviour merged and inferred again from all its idle closes.
pub fn by_software(servers: &[ServerRecord]) -> Vec<(String, usize, ServerView)> {
    let mut groups: Vec<(String, usize, ServerView)> = Vec::new();
    for server in servers {
        let software = server.server_software.first().cloned().unwrap_or_default();
        let Some(group) = groups.iter_mut().find(|(name, _, _)| *name == software) else {
            groups.push((software, 1, ServerView::of(server)));
            continue;
        };
        group.1 += 1;
        let view = &mut group.2;
        view.behaviour.merge(&server.behaviour);
        view.idle_closes
            .extend_from_slice(server.idle_closes.values());
        view.reuse_idle_max_ns = max_option(view.reuse_idle_max_ns, server.reuse_idle_max_ns);
        for timeout in &server.keep_alive_timeouts {
            keep_distinct(&mut view.advertised_timeouts, *timeout);
        }
        view.races += server.races;
        view.lost_to_races += server.lost_to_races;
    }
    for (_, _, view) in &mut groups {
        view.idle_closes.sort_unstable();
        view.behaviour
            .finish(&view.idle_closes, view.reuse_idle_max_ns);
    }
    groups
}

fn secs(ns: u64) -> String {
    format!("{:.3}s", seconds(ns))
}

/// "idle timeout 2.001s (median of 3 of 3 idle closes, 2.000s-2.005s)", or why there is none.
fn idle_timeout_text(timeout: IdleTimeout, closes: &[u64], at_least: Option<u64>) -> String {
    let range = match (closes.first(), closes.last()) {
        (Some(a), Some(b)) => format!("{}-{}", secs(*a), secs(*b)),
        _ => String::new(),
    };
    match timeout {
        IdleTimeout::Inferred {
            ns,
            closes: agreeing,
        } => format!(
            "idle timeout {} (median of {agreeing} of {}, {range})",
            secs(ns),
            plural(closes.len() as u64, "idle close", "idle closes")
        ),
        IdleTimeout::Scattered => format!(
            "idle timeout unclear ({}, {range})",
            plural(closes.len() as u64, "idle close", "idle closes")
        ),
        IdleTimeout::Untested => match at_least {
            Some(ns) => format!(
                "idle timeout untested (kept connections idle {} at least)",
                secs(ns)
            ),
            None => "idle timeout untested".to_string(),
        },
    }
}

fn joined(values: &[u32], prefix: &str) -> String {
    let text: Vec<String> = values.iter().map(|v| format!("{prefix}{v}")).collect();
    text.join("/")
}

fn server_text(view: &ServerView) -> String {
    let behaviour = &view.behaviour;
    let mut idle = idle_timeout_text(
        behaviour.idle_timeout,
        &view.idle_closes,
        behaviour.idle_timeout_at_least_ns(),
    );
    if !view.advertised_timeouts.is_empty() {
        idle.push_str(&format!(
            ", advertises {}",
            joined(&view.advertised_timeouts, "timeout=")
        ));
    }
    let mut parts = vec![idle];
    let advertised = match behaviour.advertised_limits.as_slice() {
        [] => "max= not advertised".to_string(),
        limits => format!("max= implies {}", joined(limits, "")),
    };
    let announced: Vec<u32> = behaviour.announced_at.keys().copied().collect();
    parts.push(match behaviour.request_limit {
        Some(limit) => format!("request limit {limit} ({advertised})"),
        None if announced.is_empty() => format!(
            "request limit not reached (up to {} on a connection; {advertised})",
            behaviour.most_responses
        ),
        None => format!(
            "request limit unclear (close announced after {} requests, not repeated; up to {} \
             on a connection; {advertised})",
            joined(&announced, ""),
            behaviour.most_responses
        ),
    });
    let c = &behaviour.closes;
    let mut how = format!("closes first with FIN {}, RST {}", c.fin, c.rst);
    if c.announced > 0 {
        how.push_str(&format!(", announced Connection: close on {}", c.announced));
    }
    if c.answered_after_announcing > 0 {
        how.push_str(&format!(
            ", kept answering after announcing it on {}",
            c.answered_after_announcing
        ));
    }
    if c.stopped_after_announcing > 0 {
        how.push_str(&format!(
            ", left later requests unanswered after announcing it on {}",
            c.stopped_after_announcing
        ));
    }
    parts.push(how);
    if let Some(reuse) = view.reuse_idle_max_ns {
        let margin = behaviour.race_margin_ns.map_or(String::new(), |m| {
            format!(", race margin {:.3}s", signed_seconds(m))
        });
        parts.push(format!(
            "clients reuse after up to {} idle{margin}",
            secs(reuse)
        ));
    }
    if view.races > 0 {
        parts.push(format!(
            "{} lost {}",
            plural(view.races, "race", "races"),
            plural(view.lost_to_races, "request", "requests")
        ));
    }
    parts.push(probing_text(&behaviour.probing));
    parts.join("; ")
}

fn probing_text(probing: &Probing) -> String {
    match probing.shortest_interval_ns {
        _ if probing.connections == 0 => "no TCP keep-alive probes".to_string(),
        Some(interval) => format!(
            "TCP keep-alive probes on {}, every {}",
            plural(probing.connections, "connection", "connections"),
            secs(interval)
        ),
        None => format!(
            "TCP keep-alive probes on {}",
            plural(probing.connections, "connection", "connections")
        ),
    }
}

fn client_text(connections: u64, requests: u64, behaviour: &ClientBehaviour) -> String {
    let mut parts = vec![format!(
        "{}, {:.1} requests each (most {})",
        plural(connections, "connection", "connections"),
        requests as f64 / connections.max(1) as f64,
        behaviour.most_requests
    )];
    parts.push(match behaviour.max_reuse_idle_ns {
        Some(ns) => format!("reuses connections idle up to {}", secs(ns)),
        None => "never reuses an idle connection".to_string(),
    });
    let own = behaviour.own_idle_closes.len();
    parts.push(match behaviour.pool_idle_timeout {
        IdleTimeout::Inferred { ns, closes } => format!(
            "closes idle connections itself after {} ({closes} of {own} closes)",
            secs(ns)
        ),
        IdleTimeout::Scattered => {
            format!("closes idle connections itself after various times ({own} closes)")
        }
        IdleTimeout::Untested => "never closes an idle connection itself".to_string(),
    });
    if behaviour.requests_beyond_max > 0 {
        parts.push(format!(
            "{} beyond the server's max= on {}",
            plural(behaviour.requests_beyond_max, "request", "requests"),
            plural(
                behaviour.connections_beyond_max,
                "connection",
                "connections"
            )
        ));
    }
    if behaviour.races > 0 {
        parts.push(format!(
            "lost requests to races on {}",
            plural(behaviour.races, "connection", "connections")
        ));
    }
    parts.push(probing_text(&behaviour.probing));
    parts.join("; ")
}

impl Sink for BehaviourText {
    fn finish(&mut self, end: &RunEnd<'_>) -> io::Result<()> {
        if end.servers.is_empty() {
            return Ok(());
        }
        let out = &mut self.out;
        writeln!(out)?;
        writeln!(out, "what servers really do:")?;
        for server in end.servers.iter().take(self.limit) {
            writeln!(
                out,
                "  {}: {}",
                server.name(),
                server_text(&ServerView::of(server))
            )?;
        }
        let groups = by_software(end.servers);
        if groups.iter().any(|(_, servers, _)| *servers > 1) {
            writeln!(out, "by server software:")?;
            for (software, servers, view) in groups.iter().take(self.limit) {
                let name = if software.is_empty() {
                    "(no Server header)".into()
                } else {
                    super::printable(software)
                };
                writeln!(out, "  {name} ({servers} servers): {}", server_text(view))?;
            }
        }
        writeln!(out, "what clients really do:")?;
        for client in end.clients.iter().take(self.limit) {
            writeln!(
                out,
                "  {}: {}",
                client.client,
                client_text(client.connections, client.requests, &client.behaviour)
            )?;
        }
        for agent in end.agents.iter().take(self.limit) {
            let name = match agent.family.as_deref() {
                Some("") => "no User-Agent".to_string(),
                Some(family) => format!("User-Agent {}", super::printable(family)),
                None => format!("User-Agents past the first {MAX_AGENTS}"),
            };
            writeln!(
                out,
                "  {name}: {}",
                client_text(agent.connections, agent.requests, &agent.behaviour)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_majority_of_closes_within_the_width_gives_their_median() {
        let closes = [2000 * MS, 2001 * MS, 2003 * MS, 2005 * MS, 7000 * MS];
        assert_eq!(
            IdleTimeout::of(&closes),
            IdleTimeout::Inferred {
                ns: 2003 * MS,
                closes: 4
            }
        );
        assert_eq!(
            IdleTimeout::of(&[5000 * MS]),
            IdleTimeout::Inferred {
                ns: 5000 * MS,
                closes: 1
            }
        );
    }

    #[test]
    fn closes_without_a_majority_are_scattered_and_none_is_untested() {
        assert_eq!(
            IdleTimeout::of(&[1000 * MS, 3000 * MS]),
            IdleTimeout::Scattered
        );
        let spread: Vec<u64> = (0..10).map(|i| i * 500 * MS).collect();
        assert_eq!(IdleTimeout::of(&spread), IdleTimeout::Scattered);
        assert_eq!(IdleTimeout::of(&[]), IdleTimeout::Untested);
    }

    #[test]
    fn user_agent_families() {
        assert_eq!(agent_family("curl/8.5.0"), "curl");
        assert_eq!(agent_family("python-requests/2.31.0"), "python-requests");
        assert_eq!(agent_family("Go-http-client/1.1"), "Go-http-client");
        assert_eq!(
            agent_family(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0.0.0 Safari/537.36"
            ),
            "Chrome"
        );
        assert_eq!(
            agent_family("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
            "Firefox"
        );
        assert_eq!(
            agent_family("Mozilla/4.0 (compatible; MSIE 6.0)"),
            "Mozilla"
        );
        assert_eq!(agent_family(""), "");
    }
}
