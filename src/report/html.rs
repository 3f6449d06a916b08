//! `--html FILE`: one self-contained page (inline CSS, JS and SVG; nothing loaded from
//! elsewhere) to open in a browser or attach to a ticket. Per server: a timeline with one
//! lane per connection (requests and responses as marks, idle gaps, the advertised timeout
//! after each response, the close coloured by who closed, races and violations highlighted,
//! the stream number and times on hover), a histogram of requests per connection,
//! idle-before-close against the advertised timeout, and the server's idle closes against
//! its clients' reuse gaps on one axis (the race margin); then the findings.
//!
//! The tables and findings are written as HTML; the charts are drawn in the browser from a
//! JSON block, by the script in `html.js`. Large captures stay light: past [`MAX_LANES`]
//! connections a server's timeline shows only the flagged ones (races, violations,
//! unannounced closes, lost requests) up to as many again, and the distributions cover all.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;

use serde::Serialize;

use crate::named::Named;
use crate::record::{Closer, ConnectionRecord, EpochNs, TransactionRecord};

use super::behaviour::MarginChart;
use super::cells::seconds;
use super::findings::{Finding, Subject};
use super::servers::{ServerRecord, millis};
use super::summary::{REUSE_BUCKETS, reuse_bucket};
use super::{RunEnd, Sink};

/// Lanes drawn per server before only flagged connections are kept.
pub const MAX_LANES: usize = 200;
/// Request/response marks drawn per lane.
const MAX_MARKS: usize = 100;
/// Marks held at once for connections still open (32 bytes each).
const MAX_PENDING_MARKS: usize = 1 << 20;
/// Idle-before-close points kept per server.
const MAX_POINTS: usize = 1_000;
/// Servers charted (the first seen); the others are in the table only.
pub const MAX_CHARTED_SERVERS: usize = 50;

/// One request on a lane: when it was sent, and when its response began and ended.
#[derive(Debug, Clone, Copy, Serialize)]
struct Mark {
    /// Times in ns since the first packet of the capture, filled at the end.
    #[serde(rename = "q")]
    request: EpochNs,
    #[serde(rename = "a")]
    response_first: Option<EpochNs>,
    #[serde(rename = "e")]
    response_end: Option<EpochNs>,
    #[serde(rename = "s")]
    status: Option<u16>,
}

#[derive(Debug, Clone, Serialize)]
struct Lane {
    stream: u64,
    client: String,
    start: EpochNs,
    end: EpochNs,
    closer: &'static str,
    close: Option<EpochNs>,
    /// The last `timeout=` advertised, seconds.
    timeout: Option<u32>,
    requests: u32,
    responses: u32,
    race: bool,
    violation: bool,
    unannounced: bool,
    dropped: u32,
    marks: Vec<Mark>,
    /// Marks not drawn (past `MAX_MARKS`).
    more_marks: u32,
}

impl Lane {
    fn flagged(&self) -> bool {
        self.race || self.violation || self.unannounced || self.dropped > 0
    }
}

/// What one server's charts need, gathered as records arrive.
#[derive(Debug, Default, Serialize)]
struct ServerCharts {
    lanes: Vec<Lane>,
    /// Connections not drawn.
    omitted: u64,
    /// Connections per `REUSE_BUCKETS` entry.
    reuse: Vec<u64>,
    /// (idle before close in s, advertised timeout in s, closed by the server, stream).
    idle: Vec<(f64, Option<u32>, bool, u64)>,
    /// Lanes in `lanes` that are not flagged.
    #[serde(skip)]
    unflagged: usize,
}

/// The `--html` sink.
pub struct HtmlReport {
    out: Box<dyn Write>,
    title: String,
    /// Marks of connections whose record has not come yet, by stream, and how many that is.
    pending: HashMap<u64, (Vec<Mark>, u32)>,
    pending_marks: usize,
    charts: HashMap<SocketAddr, ServerCharts>,
    origin: Option<EpochNs>,
}

impl HtmlReport {
    /// `title` names what was read (the capture files).
    pub fn new(out: Box<dyn Write>, title: String) -> HtmlReport {
        HtmlReport {
            out,
            title,
            pending: HashMap::new(),
            pending_marks: 0,
            charts: HashMap::new(),
            origin: None,
        }
    }
}

impl Sink for HtmlReport {
    fn transaction(&mut self, t: &TransactionRecord) -> io::Result<()> {
        let (marks, more) = self.pending.entry(t.stream).or_default();
        if marks.len() < MAX_MARKS && self.pending_marks < MAX_PENDING_MARKS {
            self.pending_marks += 1;
            marks.push(Mark {
                request: t.request_ts,
                response_first: t.response_first_ts,
                response_end: t.response_end_ts,
                status: t.status,
            });
        } else {
            *more += 1;
        }
        Ok(())
    }

    fn connection(&mut self, r: &ConnectionRecord) -> io::Result<()> {
        let (mut marks, more_marks) = self.pending.remove(&r.stream).unwrap_or_default();
        self.pending_marks = self.pending_marks.saturating_sub(marks.len());
        if r.protocol != crate::http::Protocol::Http {
            return Ok(());
        }
        self.origin = Some(self.origin.map_or(r.first_ts, |o| o.min(r.first_ts)));
        if !self.charts.contains_key(&r.server) && self.charts.len() >= MAX_CHARTED_SERVERS {
            return Ok(());
        }
        let charts = self.charts.entry(r.server).or_insert_with(|| ServerCharts {
            reuse: vec![0; REUSE_BUCKETS.len()],
            ..ServerCharts::default()
        });
        charts.reuse[reuse_bucket(r.requests.unwrap_or(0))] += 1;
        let server_closed = matches!(r.closer, Closer::ServerFin | Closer::ServerRst);
        // The server's idle close (even one a request raced), else the client's.
        let idle = match r.verdicts.as_ref().and_then(|v| v.idle_close_ns) {
            Some(idle) if server_closed => Some(idle),
            _ => r.idle_before_close_ns,
        };
        if let Some(idle) = idle
            && charts.idle.len() < MAX_POINTS
        {
            charts.idle.push((
                seconds(idle),
                r.keep_alive_timeout_last,
                server_closed,
                r.stream,
            ));
        }
        marks.sort_by_key(|m| m.request);
        let lane = Lane {
            stream: r.stream,
            client: r.client.to_string(),
            start: r.first_ts,
            end: r.last_ts,
            closer: r.closer.as_str(),
            close: r.close_ts,
            timeout: r.keep_alive_timeout_last,
            requests: r.requests.unwrap_or(0),
            responses: r.responses.unwrap_or(0),
            race: r
                .verdicts
                .as_ref()
                .is_some_and(|v| v.race_request.is_some()),
            violation: r.is_violation(),
            unannounced: r.verdicts.as_ref().is_some_and(|v| v.unannounced_close),
            dropped: r.verdicts.as_ref().map_or(0, |v| v.dropped_after_close),
            marks,
            more_marks,
        };
        let flagged = lane.flagged();
        if charts.lanes.len() < MAX_LANES || (flagged && charts.lanes.len() < 2 * MAX_LANES) {
            charts.unflagged += usize::from(!flagged);
            charts.lanes.push(lane);
        } else if flagged
            && charts.unflagged > 0
            && let Some(at) = charts.lanes.iter().rposition(|l| !l.flagged())
        {
            // Make room for a flagged connection: an unflagged lane gives way.
            charts.lanes.swap_remove(at);
            charts.lanes.push(lane);
            charts.unflagged -= 1;
            charts.omitted += 1;
        } else {
            charts.omitted += 1;
        }
        Ok(())
    }

    fn finish(&mut self, end: &RunEnd<'_>) -> io::Result<()> {
        let origin = self.origin.unwrap_or(0);
        let rel = |ts: EpochNs| ts.saturating_sub(origin);
        for charts in self.charts.values_mut() {
            charts.lanes.sort_by_key(|l| l.stream);
            for lane in &mut charts.lanes {
                lane.start = rel(lane.start);
                lane.end = rel(lane.end);
                lane.close = lane.close.map(rel);
                for mark in &mut lane.marks {
                    mark.request = rel(mark.request);
                    mark.response_first = mark.response_first.map(rel);
                    mark.response_end = mark.response_end.map(rel);
                }
            }
        }
        let page = page(&self.title, end, &self.charts, origin);
        let mut out = BufWriter::new(&mut self.out);
        out.write_all(page.as_bytes())?;
        out.flush()
    }
}

/// Text safe inside HTML elements and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `code` spans for the backquoted parts of a finding's text.
fn esc_text(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(text).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

#[derive(Serialize)]
struct PageData<'a> {
    buckets: Vec<&'static str>,
    servers: Vec<ServerData<'a>>,
}

#[derive(Serialize)]
struct ServerData<'a> {
    server: String,
    id: String,
    charts: &'a ServerCharts,
    margin: MarginChart,
}

fn server_id(server: &SocketAddr) -> String {
    let id: String = server
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("server-{id}")
}

fn finding_html(out: &mut String, f: &Finding) {
    let subject = match f.subject {
        Subject::Server(server) => server.to_string(),
        Subject::Client(client) => client.to_string(),
    };
    let streams: Vec<String> = f.streams.iter().map(u64::to_string).collect();
    let _ = write!(
        out,
        r#"<article class="finding {sev}" data-kind="{kind}" data-subject="{subject}" data-streams="{streams}">
<h3><span class="sev">{sev}</span> {title}</h3>
<dl><dt>seen</dt><dd>{seen}</dd><dt>means</dt><dd>{means}</dd><dt>change</dt><dd>{advice}</dd></dl>
<p class="filter">Wireshark: <code>{filter}</code></p>
</article>
"#,
        sev = f.severity,
        kind = f.kind,
        subject = esc(&subject),
        streams = streams.join(","),
        title = esc_text(&f.title),
        seen = esc_text(&f.seen),
        means = esc_text(&f.means),
        advice = esc_text(&f.advice),
        filter = esc(&streams
            .iter()
            .map(|s| format!("tcp.stream eq {s}"))
            .collect::<Vec<_>>()
            .join(" || ")),
    );
}

fn server_row(out: &mut String, r: &ServerRecord) {
    let [s2, s3, s4, s5] = r.status_classes;
    let ttfb = match (r.ttfb.median(), r.ttfb.percentile(95)) {
        (Some(m), Some(p)) => format!("{} / {}", millis(m), millis(p)),
        _ => "–".to_string(),
    };
    let timeouts: Vec<String> = r.keep_alive_timeouts.iter().map(u32::to_string).collect();
    let _ = writeln!(
        out,
        r##"<tr data-server="{server}"><td><a href="#{id}">{server}</a></td><td class="verdict {verdict}">{verdict}</td><td>{software}</td><td>{conns}</td><td>{reqs}</td><td>{reuse:.1} / {reuse_max}</td><td>{timeouts}</td><td>{s2} / {s3} / {s4} / {s5}</td><td>{ttfb}</td><td>{avoided}</td><td>{saved}</td><td>{idle:.1}</td><td>{peak}</td><td>{races}</td></tr>"##,
        server = esc(&r.name()),
        id = server_id(&r.server),
        software = esc(&r.server_software.join(", ")),
        conns = r.connections,
        reqs = r.requests,
        reuse = r.reuse_mean,
        reuse_max = r.reuse_max,
        timeouts = if timeouts.is_empty() {
            "–".to_string()
        } else {
            timeouts.join(", ")
        },
        avoided = r.handshakes_avoided,
        saved = r.rtt_saved_ns.map_or_else(|| "–".to_string(), millis),
        idle = seconds(r.idle_ns),
        peak = r.peak_connections,
        races = r.races,
        verdict = r.verdict,
    );
}

fn page(
    title: &str,
    end: &RunEnd<'_>,
    charts: &HashMap<SocketAddr, ServerCharts>,
    origin: EpochNs,
) -> String {
    let totals = end.totals;
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kascope: {title}</title>
<style>{css}</style></head>
<body>
<header><h1>kascope report</h1><p class="inputs">{title}</p>
<p class="totals">{conns} connections ({http} HTTP), {reqs} requests, {resps} responses; first packet at {origin:.6} (Unix time); times below are seconds from it.</p></header>
"#,
        title = esc(title),
        css = CSS,
        conns = totals.connections,
        http = totals.http_connections,
        reqs = totals.requests,
        resps = totals.responses,
        origin = origin as f64 / 1e9,
    );
    let _ = writeln!(
        html,
        "<section id=\"findings\"><h2>Findings ({})</h2>",
        end.findings.len()
    );
    if end.findings.is_empty() {
        html.push_str("<p class=\"none\">No race, no broken promise, no lost request.</p>\n");
    }
    for f in end.findings {
        finding_html(&mut html, f);
    }
    html.push_str("</section>\n");
    html.push_str(
        "<section id=\"servers\"><h2>Servers</h2>\n<div class=\"scroll\"><table class=\"servers\"><thead><tr><th>server</th><th>verdict</th><th>software</th><th>conns</th><th>reqs</th><th>reuse mean / max</th><th>timeout=</th><th>2xx / 3xx / 4xx / 5xx</th><th>TTFB median / p95</th><th>handshakes avoided</th><th>round trips saved</th><th>idle conn-s</th><th>peak conns</th><th>races</th></tr></thead><tbody>\n",
    );
    for r in end.servers {
        server_row(&mut html, r);
    }
    html.push_str("</tbody></table></div></section>\n");
    let mut data = PageData {
        buckets: REUSE_BUCKETS.iter().map(|(_, label)| *label).collect(),
        servers: Vec::new(),
    };
    if charts.len() < end.servers.len() {
        let _ = writeln!(
            html,
            "<p class=\"note\">Charts for the first {} servers seen; the others are in the table.</p>",
            charts.len()
        );
    }
    for r in end.servers {
        let Some(c) = charts.get(&r.server) else {
            continue;
        };
        let id = server_id(&r.server);
        let shown = c.lanes.len();
        let note = if c.omitted > 0 {
            format!(
                "showing {shown} of {} connections: every flagged one (up to {}) and the first others; the distributions cover all",
                shown as u64 + c.omitted,
                2 * MAX_LANES
            )
        } else {
            format!("{shown} connections")
        };
        let _ = write!(
            html,
            r#"<section class="server" id="{id}" data-server="{server}">
<h2>{server} <span class="verdict {verdict}">{verdict}</span></h2>
<p class="note">{note}. Lanes: grey = open, blue tick = request, green bar = response, dashed = advertised timeout after a response, end mark = first close (orange server, blue client, red RST); red lanes lost a request to a race, purple ones broke a promise. Hover for details.</p>
<div class="timeline" data-for="{id}"></div>
<div class="charts"><figure><figcaption>requests per connection</figcaption><div class="histogram" data-for="{id}"></div></figure>
<figure><figcaption>idle before close vs advertised timeout</figcaption><div class="idle" data-for="{id}"></div></figure>
<figure><figcaption>the server's idle closes against the clients' reuse gaps</figcaption><div class="margin" data-for="{id}"></div></figure></div>
</section>
"#,
            server = esc(&r.name()),
            verdict = r.verdict,
            note = esc(&note),
        );
        data.servers.push(ServerData {
            server: r.name(),
            id,
            charts: c,
            margin: MarginChart::of(r),
        });
    }
    // `</` cannot end the data block early once escaped.
    let json = serde_json::to_string(&data)
        .unwrap_or_else(|_| "{}".to_string())
        .replace("</", "<\\/");
    let _ = write!(
        html,
        "<script type=\"application/json\" id=\"kascope-data\">{json}</script>\n<script>{JS}</script>\n</body></html>\n"
    );
    html
}

const CSS: &str = include_str!("html.css");
const JS: &str = include_str!("html.js");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_code_marked() {
        assert_eq!(esc("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        assert_eq!(esc_text("set `a<b` now"), "set <code>a&lt;b</code> now");
    }
}
