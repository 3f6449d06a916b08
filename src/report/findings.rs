//! Findings: what an operator should act on, drawn from the per-server and per-client
//! aggregates. Each kind of finding is one function over a [`ServerRecord`] or a
//! [`ClientRecord`] that returns a typed [`Finding`] — what was seen, with numbers from the
//! capture and the `tcp.stream` numbers to open in Wireshark, what it means, and what to
//! change, with values derived from the capture. The terminal, JSON-lines and HTML writers
//! all render the same findings.
//!
//! To add a kind: a [`FindingKind`] variant, the [`Measure`]s it reports, and a function in
//! [`SERVER_FINDINGS`] or [`CLIENT_FINDINGS`] (marking what it needs in `sightings.rs`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use crate::named::Named;

use super::RunEnd;
use super::Sink;
use super::behaviour::{MIDDLEBOX_IDLE_NS, race_risk_tolerance_ns, signed_seconds};
use super::cells::seconds;
use super::clients::ClientRecord;
use super::plural;
use super::servers::{ServerRecord, millis};
use super::sightings::Seen;

/// How much a finding matters, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Requests are lost, or a promise clients rely on is broken.
    Critical,
    /// Something a client can trip over.
    Warning,
    /// A cost worth knowing (handshakes that reuse would save).
    Notice,
}

named_enum!(Severity {
    Critical => "critical",
    Warning => "warning",
    Notice => "notice",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    KeepAliveRace,
    TimeoutBroken,
    MaxExceeded,
    AnsweredAfterClose,
    UnannouncedClose,
    DroppedAtLimit,
    NoReuse,
    ClientAsksClose,
    Http10WithoutKeepAlive,
    RaceRisk,
    IdleBeyondMiddlebox,
}

named_enum!(FindingKind {
    KeepAliveRace => "keep-alive-race",
    TimeoutBroken => "timeout-broken",
    MaxExceeded => "max-exceeded",
    AnsweredAfterClose => "answered-after-close",
    UnannouncedClose => "unannounced-close",
    DroppedAtLimit => "dropped-at-limit",
    NoReuse => "no-reuse",
    ClientAsksClose => "client-asks-close",
    Http10WithoutKeepAlive => "http10-without-keep-alive",
    RaceRisk => "race-risk",
    IdleBeyondMiddlebox => "idle-beyond-middlebox",
});

/// A number a finding rests on; the JSON lines carry them under these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Connections the finding is about.
    Connections,
    /// The server's measured idle close (median), seconds.
    ServerIdleCloseS,
    /// The longest idle gap after which a client sent another request, seconds.
    ClientIdleMaxS,
    /// Requests lost (never answered).
    LostRequests,
    /// The `timeout=` the server advertised, seconds.
    AdvertisedTimeoutS,
    /// The shortest idle close before that timeout, seconds.
    IdleCloseMinS,
    /// Responses on the connection that went furthest past `max=`, and the limit it implied.
    Responses,
    Limit,
    /// Requests the client sent after seeing `Connection: close`.
    SentAfterClose,
    /// The response position that announced `Connection: close` (the smallest seen).
    CloseAfterRequests,
    /// Median handshake round trip, seconds, and what the handshakes of the finding cost.
    HandshakeRttS,
    HandshakeCostS,
    /// A suggested client/proxy idle timeout, seconds.
    SuggestedClientIdleS,
    /// The server's observed idle timeout less the clients' longest reuse gap, seconds.
    RaceMarginS,
    /// The longest the server keeps (or promises to keep) an idle connection, and the
    /// middlebox idle limit it outlives, seconds.
    ServerIdleS,
    MiddleboxIdleS,
}

named_enum!(Measure {
    Connections => "connections",
    ServerIdleCloseS => "server_idle_close_s",
    ClientIdleMaxS => "client_idle_max_s",
    LostRequests => "lost_requests",
    AdvertisedTimeoutS => "advertised_timeout_s",
    IdleCloseMinS => "idle_close_min_s",
    Responses => "responses",
    Limit => "limit",
    SentAfterClose => "sent_after_close",
    CloseAfterRequests => "close_after_requests",
    HandshakeRttS => "handshake_rtt_s",
    HandshakeCostS => "handshake_cost_s",
    SuggestedClientIdleS => "suggested_client_idle_s",
    RaceMarginS => "race_margin_s",
    ServerIdleS => "server_idle_s",
    MiddleboxIdleS => "middlebox_idle_s",
});

/// Whom a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Server(SocketAddr),
    Client(IpAddr),
}

/// One problem found, with its evidence and advice.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub subject: Subject,
    /// `Server` header values of the server, when known.
    pub software: Vec<String>,
    /// The first `tcp.stream` numbers concerned (see `sightings::MAX_STREAMS`).
    pub streams: Vec<u64>,
    /// Connections concerned in all (more than `streams` lists when there are many).
    pub connections: u64,
    pub measures: Vec<(Measure, f64)>,
    /// One line: what was found.
    pub title: String,
    /// What was seen, with numbers.
    pub seen: String,
    /// What it means.
    pub means: String,
    /// What to change.
    pub advice: String,
}

impl Finding {
    pub fn measure(&self, measure: Measure) -> Option<f64> {
        self.measures
            .iter()
            .find(|(m, _)| *m == measure)
            .map(|(_, v)| *v)
    }
}

/// The kinds of findings about a server, each a function of its aggregate.
pub const SERVER_FINDINGS: &[fn(&ServerRecord) -> Option<Finding>] = &[
    keep_alive_race,
    timeout_broken,
    max_exceeded,
    answered_after_close,
    unannounced_close,
    dropped_at_limit,
    server_no_reuse,
    race_risk,
    idle_beyond_middlebox,
];

/// The kinds of findings about a client host.
pub const CLIENT_FINDINGS: &[fn(&ClientRecord) -> Option<Finding>] = &[
    client_asks_close,
    http10_without_keep_alive,
    client_no_reuse,
];

/// Every finding, most serious first, then those about the most connections.
pub fn findings(servers: &[ServerRecord], clients: &[ClientRecord]) -> Vec<Finding> {
    // The row of folded servers is no server: nothing is found of it as of one.
    let mut found: Vec<Finding> = servers
        .iter()
        .filter(|server| server.folded == 0)
        .flat_map(|server| SERVER_FINDINGS.iter().filter_map(move |f| f(server)))
        .chain(
            clients
                .iter()
                .flat_map(|client| CLIENT_FINDINGS.iter().filter_map(move |f| f(client))),
        )
        .collect();
    found.sort_by(|a, b| {
        (a.severity, a.kind.index())
            .cmp(&(b.severity, b.kind.index()))
            .then(b.connections.cmp(&a.connections))
    });
    found
}

/// `2.00 s`
fn secs_text(ns: u64) -> String {
    format!("{:.2} s", seconds(ns))
}

/// `stream 3` / `streams 1, 2, 5, …`
fn streams_text(streams: &[u64], total: u64) -> String {
    let list: Vec<String> = streams.iter().map(u64::to_string).collect();
    let more = if total > streams.len() as u64 {
        ", …"
    } else {
        ""
    };
    match list.len() {
        1 if more.is_empty() => format!("stream {}", list[0]),
        _ => format!("streams {}{more}", list.join(", ")),
    }
}

/// `10.0.0.1:80 (nginx/1.22.1)`; the software as text safe for a terminal.
fn server_name(server: &ServerRecord) -> String {
    match server.server_software.first() {
        Some(software) => format!("{} ({})", server.server, super::printable(software)),
        None => server.server.to_string(),
    }
}

/// Which server software it is, for naming its knobs.
#[derive(Clone, Copy, PartialEq)]
enum Software {
    Apache,
    Nginx,
    Other,
}

fn software(server: &ServerRecord) -> Software {
    let names = server.server_software.join(" ").to_ascii_lowercase();
    if names.contains("apache") {
        Software::Apache
    } else if names.contains("nginx") {
        Software::Nginx
    } else {
        Software::Other
    }
}

/// The server's own idle-timeout knob, named for its software.
fn server_timeout_knob(server: &ServerRecord) -> &'static str {
    match software(server) {
        Software::Apache => "Apache `KeepAliveTimeout`",
        Software::Nginx => "nginx `keepalive_timeout`",
        Software::Other => "Apache `KeepAliveTimeout`, nginx `keepalive_timeout`",
    }
}

/// The usual client and proxy idle-timeout knobs.
const CLIENT_IDLE_KNOBS: &str = "nginx `keepalive_timeout` in the `upstream` block, HAProxy \
    `timeout http-keep-alive`, Envoy `idle_timeout` (common_http_protocol_options), Go \
    `http.Transport.IdleConnTimeout`, Node.js agent `freeSocketTimeout` (agentkeepalive) or the \
    upstream server's `keepAliveTimeout`, Python urllib3/requests pools (no idle timeout: use \
    `Retry` for idempotent requests); an AWS ALB's idle timeout (60 s by default) must be \
    shorter than its targets' keep-alive timeout";

/// A client idle timeout safely below a server's idle close of `ns`: a second less, or a
/// tenth less for long timeouts, and never below half of it.
fn suggested_client_idle_s(ns: u64) -> f64 {
    let t = ns as f64 / 1e9;
    let margin = (t * 0.1).max(1.0);
    let suggested = if t - margin >= t / 2.0 {
        t - margin
    } else {
        t / 2.0
    };
    (suggested * 10.0).floor() / 10.0
}

/// A finding about `server` built on what it `seen`: `None` when nothing was; else the
/// finding with its streams and connections, and the streams as text.
fn server_finding(
    server: &ServerRecord,
    kind: FindingKind,
    severity: Severity,
    seen: Seen,
) -> Option<(Finding, String)> {
    let count = server.seen.count(seen);
    (count > 0).then(|| {
        finding(
            Subject::Server(server.server),
            server.server_software.clone(),
            server.seen.streams(seen),
            count,
            kind,
            severity,
        )
    })
}

fn finding(
    subject: Subject,
    software: Vec<String>,
    streams: Vec<u64>,
    count: u64,
    kind: FindingKind,
    severity: Severity,
) -> (Finding, String) {
    let text = streams_text(&streams, count);
    let f = Finding {
        kind,
        severity,
        subject,
        software,
        streams,
        connections: count,
        measures: vec![(Measure::Connections, count as f64)],
        title: String::new(),
        seen: String::new(),
        means: String::new(),
        advice: String::new(),
    };
    (f, text)
}

fn keep_alive_race(server: &ServerRecord) -> Option<Finding> {
    let (mut f, streams) = server_finding(
        server,
        FindingKind::KeepAliveRace,
        Severity::Critical,
        Seen::Race,
    )?;
    let idle_close = server.idle_closes.median();
    let client_idle = server.reuse_idle_max_ns;
    f.measures
        .push((Measure::LostRequests, server.lost_to_races as f64));
    let mut seen = String::new();
    if let Some(t) = idle_close {
        f.measures.push((Measure::ServerIdleCloseS, seconds(t)));
        let _ = write!(
            seen,
            "{} closes idle connections after {} (median of {}); ",
            server_name(server),
            secs_text(t),
            plural(server.idle_closes.len(), "idle close", "idle closes")
        );
    } else {
        let _ = write!(seen, "{}: ", server_name(server));
    }
    if let Some(u) = client_idle {
        f.measures.push((Measure::ClientIdleMaxS, seconds(u)));
        let _ = write!(
            seen,
            "clients reused connections idle up to {}; ",
            secs_text(u)
        );
    }
    let _ = write!(
        seen,
        "{} sent as the server closed and never answered ({streams}).",
        plural(
            server.lost_to_races,
            "request on a reused connection was",
            "requests on reused connections were"
        )
    );
    if let Some(margin) = server.behaviour.race_margin_ns {
        f.measures
            .push((Measure::RaceMarginS, signed_seconds(margin)));
        let _ = write!(
            seen,
            " The race margin (the server's idle timeout less the longest reuse gap) is {:.3} s{}.",
            signed_seconds(margin),
            if margin < 0 {
                ": the clients wait longer than the server keeps idle connections, which \
                 explains these races"
            } else {
                ": within a round trip of the close, the requests crossed the server's FIN"
            }
        );
    }
    f.title = format!(
        "keep-alive race at {}: {} lost to the server's idle close",
        server.server,
        plural(server.lost_to_races, "request", "requests")
    );
    f.seen = seen;
    f.means = "The client (or proxy) kept a pooled connection idle longer than the server \
        does, and sent a request into the server's close: the request is lost with a RST or \
        an EOF. Behind a load balancer this is a 502 or a connection reset; a client sees \
        'connection reset' or 'server closed the connection' on a request it may not be \
        able to retry."
        .to_string();
    let mut advice = String::new();
    match idle_close {
        Some(t) => {
            let suggested = suggested_client_idle_s(t);
            f.measures.push((Measure::SuggestedClientIdleS, suggested));
            let _ = write!(
                advice,
                "Make the client/proxy pool's idle timeout shorter than the server's {} \
                 (e.g. {suggested:.1} s): {CLIENT_IDLE_KNOBS}. ",
                secs_text(t)
            );
        }
        None => {
            let _ = write!(
                advice,
                "Make the client/proxy pool's idle timeout shorter than the server's: \
                 {CLIENT_IDLE_KNOBS}. "
            );
        }
    }
    let longer = client_idle.map_or_else(String::new, |u| {
        format!(" (longer than the {} clients waited here)", secs_text(u))
    });
    let _ = write!(
        advice,
        "Or make the server's idle timeout longer than the clients'{longer}: {}. \
         And/or retry idempotent requests that fail on a reused connection.",
        server_timeout_knob(server)
    );
    f.advice = advice;
    Some(f)
}

fn timeout_broken(server: &ServerRecord) -> Option<Finding> {
    let (mut f, streams) = server_finding(
        server,
        FindingKind::TimeoutBroken,
        Severity::Critical,
        Seen::ClosedEarly,
    )?;
    let early = f.connections;
    let promised = server.early_close_promised_s;
    let shortest = server.early_closes.min();
    let promised_text =
        promised.map_or_else(|| "a timeout".to_string(), |t| format!("timeout={t}"));
    if let Some(t) = promised {
        f.measures.push((Measure::AdvertisedTimeoutS, f64::from(t)));
    }
    if let Some(y) = shortest {
        f.measures.push((Measure::IdleCloseMinS, seconds(y)));
    }
    if let Some(median) = server.early_closes.median() {
        f.measures
            .push((Measure::ServerIdleCloseS, seconds(median)));
    }
    let shortest_text = shortest.map_or_else(|| "sooner".to_string(), secs_text);
    f.title = format!(
        "broken promise at {}: advertised {promised_text} but closed idle connections after {shortest_text}",
        server.server
    );
    f.seen = format!(
        "{} advertised `Keep-Alive: {promised_text}` but closed {} after {} idle ({streams}).",
        server_name(server),
        plural(early, "idle connection", "idle connections"),
        match (shortest, server.early_closes.max()) {
            (Some(a), Some(b)) if b - a >= 1_000_000 =>
                format!("{}–{}", secs_text(a), secs_text(b)),
            (Some(a), _) => secs_text(a),
            _ => "less than that".to_string(),
        }
    );
    f.means = "`timeout` is a minimum: a client that trusts it keeps the connection in its \
        pool and reuses it after the server has closed it — the keep-alive race, with lost \
        requests, is only a matter of timing."
        .to_string();
    let mut advice = format!(
        "Fix the server: advertise what it enforces, or keep idle connections open as long \
         as advertised ({}). ",
        server_timeout_knob(server)
    );
    if let Some(y) = shortest {
        let suggested = suggested_client_idle_s(y);
        f.measures.push((Measure::SuggestedClientIdleS, suggested));
        let _ = write!(
            advice,
            "Until then keep client/proxy idle timeouts below {} (e.g. {suggested:.1} s), \
             whatever the header says.",
            secs_text(y)
        );
    }
    f.advice = advice;
    Some(f)
}

fn max_exceeded(server: &ServerRecord) -> Option<Finding> {
    let (responses, limit) = server.worst_excess?;
    let (mut f, streams) = server_finding(
        server,
        FindingKind::MaxExceeded,
        Severity::Warning,
        Seen::MaxExceeded,
    )?;
    let over = f.connections;
    f.measures.push((Measure::Responses, f64::from(responses)));
    f.measures.push((Measure::Limit, f64::from(limit)));
    f.title = format!(
        "broken promise at {}: served {responses} requests on a connection whose `max=` allowed {limit}",
        server.server
    );
    f.seen = format!(
        "{} advertised `Keep-Alive: max=` allowing {limit} requests per connection but \
         answered up to {responses} ({}, {streams}).",
        server_name(server),
        plural(over, "connection", "connections")
    );
    f.means = "The advertised limit is not the one enforced: clients that plan their \
        connection use around `max` (or monitor it) are misled. Harmless to the requests \
        themselves, but the same server's other promises deserve doubt."
        .to_string();
    f.advice = format!(
        "Make the server advertise the limit it enforces (Apache `MaxKeepAliveRequests`, \
         nginx `keepalive_requests`); until then do not rely on `max` from {}.",
        server.server
    );
    Some(f)
}

fn answered_after_close(server: &ServerRecord) -> Option<Finding> {
    let (mut f, streams) = server_finding(
        server,
        FindingKind::AnsweredAfterClose,
        Severity::Warning,
        Seen::AnsweredAfterClose,
    )?;
    let n = f.connections;
    f.measures
        .push((Measure::SentAfterClose, server.sent_after_close as f64));
    f.title = format!(
        "broken promise at {}: kept answering after `Connection: close`",
        server.server
    );
    f.seen = format!(
        "{} said `Connection: close` and then answered further requests on {} ({streams}); \
         clients sent {} after the announcement.",
        server_name(server),
        plural(n, "connection", "connections"),
        plural(server.sent_after_close, "request", "requests")
    );
    f.means = "After `Connection: close` a client must not send more, and a server must not \
        answer more (RFC 9112 §9.6): this server and its clients both ignore it, and any \
        intermediary that follows the rules will cut them off."
        .to_string();
    f.advice = "Make the server close after the response that says `Connection: close`, and \
        the client open a new connection after reading it."
        .to_string();
    Some(f)
}

fn unannounced_close(server: &ServerRecord) -> Option<Finding> {
    let (mut f, streams) = server_finding(
        server,
        FindingKind::UnannouncedClose,
        Severity::Warning,
        Seen::UnannouncedClose,
    )?;
    let n = f.connections;
    let idle = server.idle_closes.min();
    if let Some(y) = idle {
        f.measures.push((Measure::IdleCloseMinS, seconds(y)));
    }
    f.title = format!(
        "unannounced close at {}: {} closed with no warning on the wire",
        server.server,
        plural(n, "connection", "connections")
    );
    f.seen = format!(
        "{} closed {} without `Connection: close`, without reaching a limit and with no \
         `Keep-Alive: timeout=` on the wire ({streams}){}.",
        server_name(server),
        plural(n, "connection", "connections"),
        idle.map_or_else(String::new, |y| format!(
            "; its idle closes came after {} at the soonest",
            secs_text(y)
        ))
    );
    f.means = "Clients cannot know when the server will close, so they cannot expire pooled \
        connections first: every reuse near that moment risks the keep-alive race."
        .to_string();
    let mut advice = format!(
        "Have the server advertise its idle timeout (`Keep-Alive: timeout=`; {}). ",
        match software(server) {
            Software::Nginx => "nginx sends it with `keepalive_timeout T T`",
            Software::Apache => "Apache sends it when the client asks for keep-alive",
            Software::Other => "Apache sends it, nginx with `keepalive_timeout T T`",
        }
    );
    if let Some(y) = idle {
        let suggested = suggested_client_idle_s(y);
        f.measures.push((Measure::SuggestedClientIdleS, suggested));
        let _ = write!(
            advice,
            "Meanwhile set client/proxy idle timeouts below the measured {} (e.g. \
             {suggested:.1} s).",
            secs_text(y)
        );
    }
    f.advice = advice;
    Some(f)
}

fn dropped_at_limit(server: &ServerRecord) -> Option<Finding> {
    let (mut f, streams) = server_finding(
        server,
        FindingKind::DroppedAtLimit,
        Severity::Warning,
        Seen::DroppedAfterClose,
    )?;
    f.measures
        .push((Measure::LostRequests, server.dropped_after_close as f64));
    f.measures
        .push((Measure::SentAfterClose, server.sent_after_close as f64));
    let at = server.close_announced_at.first().copied();
    if let Some(at) = at {
        f.measures
            .push((Measure::CloseAfterRequests, f64::from(at)));
    }
    f.title = format!(
        "{} dropped behind the request limit of {}",
        plural(server.dropped_after_close, "request", "requests"),
        server.server
    );
    f.seen = format!(
        "{} {}; {} never answered ({streams}){}.",
        server_name(server),
        at.map_or_else(
            || "closed connections at its request limit".to_string(),
            |at| format!(
                "closes a connection after {} (`Connection: close` on response {at})",
                plural(u64::from(at), "request", "requests")
            )
        ),
        plural(
            server.dropped_after_close,
            "request sent on the same connection was",
            "requests sent on the same connection were"
        ),
        if server.sent_after_close > 0 {
            format!(
                "; {} of them sent after the client had seen `Connection: close`",
                server.sent_after_close
            )
        } else {
            String::new()
        }
    );
    f.means = "Requests sent (or pipelined) behind the one that carried `Connection: close` \
        are not processed (RFC 9112 §9.6): a client that does not retry them on a new \
        connection loses them."
        .to_string();
    f.advice = format!(
        "Clients must stop sending on a connection after `Connection: close` (and count down \
         `max=`), and retry what was left unanswered on a new connection. Or raise the \
         server's limit{} (Apache `MaxKeepAliveRequests`, nginx `keepalive_requests`; 1000 \
         is nginx's default) so it is reached less often.",
        at.map_or_else(String::new, |at| format!(" above {at}"))
    );
    Some(f)
}

/// What `connections` new handshakes cost at a median round trip of `rtt` ns.
fn handshake_cost(f: &mut Finding, connections: u64, rtt: Option<u64>) -> String {
    match rtt {
        Some(rtt) => {
            let cost = rtt.saturating_mul(connections);
            f.measures.push((Measure::HandshakeRttS, seconds(rtt)));
            f.measures.push((Measure::HandshakeCostS, seconds(cost)));
            format!(
                "{} cost {} of round trips at the median {} handshake, before slow start",
                plural(connections, "handshake", "handshakes"),
                millis(cost),
                millis(rtt)
            )
        }
        None => format!(
            "{} (one round trip each, and slow start)",
            plural(connections, "handshake", "handshakes")
        ),
    }
}

fn server_no_reuse(server: &ServerRecord) -> Option<Finding> {
    let single = server.seen.count(Seen::OneRequest);
    let asked = server.seen.count(Seen::AskedClose);
    // When the clients asked for every close, the client findings say so.
    if server.connections < 2 || single < server.connections || asked >= single {
        return None;
    }
    let (mut f, streams) = server_finding(
        server,
        FindingKind::NoReuse,
        Severity::Notice,
        Seen::OneRequest,
    )?;
    let cost = handshake_cost(&mut f, single, server.handshake_rtts.median());
    let closes_first = server.close_announced_at.first() == Some(&1);
    f.title = format!(
        "no reuse at {}: every one of {} carried one request",
        server.server,
        plural(server.connections, "connection", "connections")
    );
    f.seen = format!(
        "Every connection to {} carried a single request ({streams}){}: {cost}.",
        server_name(server),
        if closes_first {
            "; the server announced the close on its first response"
        } else {
            ""
        }
    );
    f.means = "Each request pays a TCP handshake (and TLS, where used) and starts in slow \
        start; persistent connections exist to save exactly this."
        .to_string();
    f.advice = if closes_first {
        "Enable keep-alive on the server (Apache `KeepAlive On`, nginx `keepalive_timeout` \
         above 0, Python `BaseHTTPRequestHandler.protocol_version = \"HTTP/1.1\"`)."
            .to_string()
    } else {
        "Reuse connections in the clients: one session or pooled client per process \
         (requests.Session, a shared Go http.Client, a keep-alive agent in Node.js)."
            .to_string()
    };
    Some(f)
}

/// Clients reuse connections idle almost as long as the server keeps them: no race yet,
/// but the margin is below one round trip plus a tolerance.
fn race_risk(server: &ServerRecord) -> Option<Finding> {
    let behaviour = &server.behaviour;
    let margin = behaviour.race_margin_ns?;
    let timeout = behaviour.idle_timeout.inferred_ns()?;
    let reuse = server.reuse_idle_max_ns?;
    let rtt = server.handshake_rtts.median().unwrap_or(0);
    let tolerance = race_risk_tolerance_ns(timeout);
    // With races the race finding explains them; a negative margin without any means a
    // client was answered after idling past the inferred timeout, which contradicts it.
    if server.races > 0 || margin < 0 || margin >= (rtt + tolerance) as i64 {
        return None;
    }
    // Connections reused after idling within that of the close.
    let near = timeout.saturating_sub(rtt + tolerance);
    let close_calls = behaviour
        .reuse_gaps
        .values()
        .iter()
        .filter(|g| **g >= near)
        .count() as u64;
    let longest = behaviour.longest_reuse.map(|(_, s)| s);
    let (mut f, _) = finding(
        Subject::Server(server.server),
        server.server_software.clone(),
        longest.into_iter().collect(),
        close_calls.max(1),
        FindingKind::RaceRisk,
        Severity::Warning,
    );
    let suggested = suggested_client_idle_s(timeout.saturating_sub(rtt));
    f.measures.extend([
        (Measure::ServerIdleCloseS, seconds(timeout)),
        (Measure::ClientIdleMaxS, seconds(reuse)),
        (Measure::RaceMarginS, signed_seconds(margin)),
        (Measure::HandshakeRttS, seconds(rtt)),
        (Measure::SuggestedClientIdleS, suggested),
    ]);
    f.title = format!(
        "keep-alive race risk at {}: clients reuse connections idle up to {}, the server closes them at {}",
        server.server,
        secs_text(reuse),
        secs_text(timeout)
    );
    f.seen = format!(
        "{} closes idle connections after {} ({}); clients reused connections idle up to {}{} \
         ({} within {} of the close). The margin, {:.3} s, is less than a round trip ({}) plus \
         {} of tolerance. No request was lost in this capture.",
        server_name(server),
        secs_text(timeout),
        match behaviour.idle_timeout {
            super::IdleTimeout::Inferred { closes, .. } => format!(
                "median of {} of {}",
                closes,
                plural(server.idle_closes.len(), "idle close", "idle closes")
            ),
            _ => "its idle closes".to_string(),
        },
        secs_text(reuse),
        longest.map_or_else(String::new, |s| format!(" on stream {s}")),
        plural(
            close_calls,
            "connection was reused",
            "connections were reused"
        ),
        secs_text(rtt + tolerance),
        signed_seconds(margin),
        millis(rtt),
        millis(tolerance),
    );
    f.means = "A client that waits a little longer — a scheduling delay, a slower response, \
        a longer quiet spell — sends its request into the server's close: the keep-alive \
        race, a lost request (a 502 behind a load balancer). It has not happened here yet; at \
        this margin it is a matter of time."
        .to_string();
    f.advice = format!(
        "Keep the clients' pool idle timeout under the server's {} less a round trip ({}), \
         e.g. {suggested:.1} s: {CLIENT_IDLE_KNOBS}. Or raise the server's idle timeout well \
         above the {} clients wait ({}).",
        secs_text(timeout),
        millis(rtt),
        secs_text(reuse),
        server_timeout_knob(server)
    );
    Some(f)
}

/// The server keeps (or promises to keep) idle connections longer than NATs, firewalls and
/// load balancers commonly keep an idle flow, and nobody sends TCP keep-alive probes.
fn idle_beyond_middlebox(server: &ServerRecord) -> Option<Finding> {
    let behaviour = &server.behaviour;
    let advertised = server
        .keep_alive_timeouts
        .iter()
        .max()
        .map(|t| u64::from(*t) * 1_000_000_000);
    let kept = behaviour
        .idle_timeout
        .inferred_ns()
        .or(behaviour.longest_idle_open_ns);
    let longest = advertised.max(kept)?;
    if longest <= MIDDLEBOX_IDLE_NS
        || behaviour.probing.connections > 0
        || behaviour.client_probing.connections > 0
    {
        return None;
    }
    let (mut f, _) = finding(
        Subject::Server(server.server),
        server.server_software.clone(),
        Vec::new(),
        server.connections,
        FindingKind::IdleBeyondMiddlebox,
        Severity::Notice,
    );
    f.measures.extend([
        (Measure::ServerIdleS, seconds(longest)),
        (Measure::MiddleboxIdleS, seconds(MIDDLEBOX_IDLE_NS)),
    ]);
    let mut what = Vec::new();
    if let Some(t) = advertised.filter(|t| *t > MIDDLEBOX_IDLE_NS) {
        what.push(format!(
            "advertises `Keep-Alive: timeout={}`",
            t / 1_000_000_000
        ));
    }
    match (behaviour.idle_timeout.inferred_ns(), kept) {
        (Some(t), _) if t > MIDDLEBOX_IDLE_NS => {
            what.push(format!("closes idle connections after {}", secs_text(t)))
        }
        (None, Some(t)) if t > MIDDLEBOX_IDLE_NS => {
            what.push(format!("kept a connection idle {}", secs_text(t)))
        }
        _ => {}
    }
    f.title = format!(
        "idle connections at {} outlive common middlebox idle limits, without TCP keep-alive",
        server.server
    );
    f.seen = format!(
        "{} {}, longer than {}; neither it nor its clients sent a TCP keep-alive probe on its {}.",
        server_name(server),
        what.join(" and "),
        secs_text(MIDDLEBOX_IDLE_NS),
        plural(server.connections, "connection", "connections")
    );
    f.means = "NATs, firewalls and load balancers drop flows idle longer than their own \
        limit — often 60 to 350 s — without telling either end: the connection still looks \
        open, and the next request on it is lost or hangs until a retransmission timeout. An \
        HTTP idle timeout longer than that only holds if TCP keep-alive probes keep the path \
        open."
        .to_string();
    f.advice = format!(
        "Keep the server's idle timeout under the shortest idle limit on the path ({}; 60 s \
         is common: AWS ALB, many firewalls), or turn on TCP keep-alive with an idle time \
         below it (nginx `listen … so_keepalive=30s::`, Linux `net.ipv4.tcp_keepalive_time` \
         for Apache; on clients SO_KEEPALIVE with TCP_KEEPIDLE).",
        server_timeout_knob(server)
    );
    Some(f)
}

/// A finding about `client` built on what it `seen`, as [`server_finding`].
fn client_finding(
    client: &ClientRecord,
    kind: FindingKind,
    severity: Severity,
    seen: Seen,
) -> Option<(Finding, String)> {
    let count = client.seen.count(seen);
    (count > 0).then(|| {
        finding(
            Subject::Client(client.client),
            Vec::new(),
            client.seen.streams(seen),
            count,
            kind,
            severity,
        )
    })
}

fn client_servers(client: &ClientRecord) -> String {
    let list: Vec<String> = client.servers.iter().map(SocketAddr::to_string).collect();
    list.join(", ")
}

/// What a client host does that closes every connection it opens, for
/// [`client_closes_each_connection`].
struct ClientCloses {
    seen: Seen,
    kind: FindingKind,
    /// `sends \`Connection: close\``
    does: &'static str,
    /// `sent \`Connection: close\``
    did: &'static str,
    means: &'static str,
    advice: &'static str,
}

fn client_closes_each_connection(client: &ClientRecord, what: &ClientCloses) -> Option<Finding> {
    let (mut f, streams) = client_finding(client, what.kind, Severity::Notice, what.seen)?;
    let n = f.connections;
    let cost = handshake_cost(&mut f, n, client.handshake_rtts.median());
    let connections = plural(n, "connection", "connections");
    f.title = format!("client {} {} ({connections})", client.client, what.does);
    f.seen = format!(
        "{} {} to {} on {connections} ({streams}): {cost}.",
        client.client,
        what.did,
        client_servers(client)
    );
    f.means = what.means.to_string();
    f.advice = what.advice.to_string();
    Some(f)
}

fn client_asks_close(client: &ClientRecord) -> Option<Finding> {
    client_closes_each_connection(
        client,
        &ClientCloses {
            seen: Seen::AskedClose,
            kind: FindingKind::ClientAsksClose,
            does: "sends `Connection: close`",
            did: "sent `Connection: close`",
            means: "The client gives up each connection after one request, whatever the \
                server offers.",
            advice: "Drop the `Connection: close` header from the client (curl `-H \
                'Connection: close'`, a library option, a proxy's `proxy_set_header Connection \
                close`) and reuse one pooled client.",
        },
    )
}

fn http10_without_keep_alive(client: &ClientRecord) -> Option<Finding> {
    client_closes_each_connection(
        client,
        &ClientCloses {
            seen: Seen::Http10Close,
            kind: FindingKind::Http10WithoutKeepAlive,
            does: "speaks HTTP/1.0 without keep-alive",
            did: "sent HTTP/1.0 requests without `Connection: keep-alive`",
            means: "HTTP/1.0 closes after every response unless both sides say keep-alive \
                (RFC 9112 §9.3).",
            advice: "Use HTTP/1.1 in the client (nginx `proxy_http_version 1.1` with \
                `proxy_set_header Connection \"\"`; ab and old tools default to 1.0), or send \
                `Connection: keep-alive`.",
        },
    )
}

fn client_no_reuse(client: &ClientRecord) -> Option<Finding> {
    let single = client.seen.count(Seen::OneRequest);
    let explained = client.seen.count(Seen::AskedClose)
        + client.seen.count(Seen::Http10Close)
        + client.seen.count(Seen::ServerSaidClose);
    if client.connections < 2 || single < client.connections || explained > 0 {
        return None;
    }
    let (mut f, streams) = client_finding(
        client,
        FindingKind::NoReuse,
        Severity::Notice,
        Seen::OneRequest,
    )?;
    let cost = handshake_cost(&mut f, single, client.handshake_rtts.median());
    f.title = format!(
        "no reuse by client {}: {} with one request each",
        client.client,
        plural(client.connections, "connection", "connections")
    );
    f.seen = format!(
        "{} opened a new connection for every request to {} ({streams}): {cost}.",
        client.client,
        client_servers(client)
    );
    f.means = "The client does not pool connections: the servers left them open.".to_string();
    f.advice = "Reuse one pooled client per process (requests.Session, a shared Go \
        http.Client, a keep-alive agent in Node.js, curl with several URLs in one command)."
        .to_string();
    Some(f)
}

/// Servers listed by name when there are no findings.
const MAX_KEPT_LINES: usize = 10;

/// What a server was seen to keep: `timeout=2 honoured (closed idle after 2.00 s)`, ….
fn kept_summary(server: &ServerRecord) -> String {
    use crate::verdict::{MaxVerdict, TimeoutVerdict};
    let mut kept = Vec::new();
    let honoured = server.timeout_verdicts.get(TimeoutVerdict::Honoured);
    if honoured > 0 {
        let timeouts: Vec<String> = server
            .keep_alive_timeouts
            .iter()
            .map(u32::to_string)
            .collect();
        let idle = server.idle_closes.median().map_or_else(String::new, |t| {
            format!(", closed idle after {}", secs_text(t))
        });
        kept.push(format!(
            "timeout={} honoured ({}{idle})",
            timeouts.join(","),
            plural(honoured, "connection", "connections")
        ));
    }
    let max = server.max_verdicts.get(MaxVerdict::Honoured);
    if max > 0 {
        kept.push(format!(
            "max honoured ({})",
            plural(max, "connection", "connections")
        ));
    }
    if kept.is_empty() {
        kept.push("`Connection: close` honoured".to_string());
    }
    kept.join("; ")
}

/// The findings section of the terminal report.
pub struct FindingsText {
    out: Box<dyn Write>,
}

impl FindingsText {
    pub fn new(out: Box<dyn Write>) -> FindingsText {
        FindingsText { out }
    }
}

/// `text` wrapped at `width` columns, each line after the first indented by `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    // The first line starts after a label as wide as the indent.
    let mut line = indent.len();
    let mut first = true;
    for word in text.split_whitespace() {
        if !first && line + 1 + word.chars().count() > width {
            out.push('\n');
            out.push_str(indent);
            line = indent.len();
        } else if !first {
            out.push(' ');
            line += 1;
        }
        first = false;
        out.push_str(word);
        line += word.chars().count();
    }
    out
}

impl Sink for FindingsText {
    fn finish(&mut self, end: &RunEnd<'_>) -> io::Result<()> {
        let out = &mut self.out;
        if end.findings.is_empty() && end.servers.is_empty() {
            return Ok(()); // no HTTP: nothing was judged
        }
        writeln!(out)?;
        if end.findings.is_empty() {
            let tested = end.servers.iter().filter(|s| s.kept > 0).count();
            writeln!(
                out,
                "findings: none (no race, no broken promise, no lost request; {} of {} kept what was tested)",
                tested,
                plural(end.servers.len() as u64, "server", "servers")
            )?;
            for server in end
                .servers
                .iter()
                .filter(|s| s.kept > 0)
                .take(MAX_KEPT_LINES)
            {
                writeln!(out, "  {}: {}", server.server, kept_summary(server))?;
            }
            return Ok(());
        }
        writeln!(
            out,
            "findings ({}), most serious first:",
            end.findings.len()
        )?;
        const WIDTH: usize = 100;
        const INDENT: &str = "            ";
        for (i, f) in end.findings.iter().enumerate() {
            writeln!(out, "{:>2}. [{}] {}", i + 1, f.severity, f.title)?;
            writeln!(out, "    seen:   {}", wrap(&f.seen, WIDTH, INDENT))?;
            writeln!(out, "    means:  {}", wrap(&f.means, WIDTH, INDENT))?;
            writeln!(out, "    change: {}", wrap(&f.advice, WIDTH, INDENT))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggested_client_idle_leaves_a_margin() {
        let s = 1_000_000_000;
        assert_eq!(suggested_client_idle_s(2 * s), 1.0);
        assert_eq!(suggested_client_idle_s(60 * s), 54.0);
        assert_eq!(suggested_client_idle_s(s), 0.5);
    }

    #[test]
    fn text_wraps_at_words() {
        assert_eq!(wrap("aa bb cc", 7, "  "), "aa bb\n  cc");
    }

    #[test]
    fn stream_lists_say_when_there_are_more() {
        assert_eq!(streams_text(&[3], 1), "stream 3");
        assert_eq!(streams_text(&[1, 2], 3), "streams 1, 2, …");
    }
}
