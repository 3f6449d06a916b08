//! The operator's report on the recorded captures (`docs/captures.md`): the findings
//! (`--findings-json`, and the terminal section), the per-server verdict words
//! (`--servers-csv`), and what reuse saved. Expected numbers come from the tshark fixtures
//! (`captures/NAME.streams.csv`: requests, responses, who closed, the idle time before the
//! server's close) and from how each capture was recorded.

mod common;

use common::binary::{Table, TempPath, kascope, stdout};
use common::{read_oracle, recorded};
use serde_json::Value;

struct Report {
    findings: Vec<Value>,
    servers: Table,
    text: String,
}

fn report(capture: &str) -> Report {
    let (findings, servers) = (
        TempPath::new("findings.jsonl"),
        TempPath::new("servers.csv"),
    );
    let path = recorded(&format!("{capture}.pcap"));
    // The whole report: the per-server table and the findings.
    let output = kascope(&[
        path.to_str().unwrap(),
        "--findings-json",
        findings.arg(),
        "--servers-csv",
        servers.arg(),
    ]);
    assert!(output.status.success(), "{capture}");
    let findings = std::fs::read_to_string(&*findings)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let servers = Table::read(&servers);
    assert_eq!(servers.len(), 1, "{capture}: one server");
    Report {
        findings,
        servers,
        text: stdout(&output),
    }
}

fn measure(finding: &Value, name: &str) -> f64 {
    finding["measures"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("no measure {name} in {finding}"))
}

fn streams(finding: &Value) -> Vec<u64> {
    finding["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect()
}

/// tshark's view of the streams the server closed with a request left unanswered.
fn oracle_lost(capture: &str) -> (Vec<u64>, u64, Vec<f64>) {
    let rows = read_oracle(&recorded(&format!("{capture}.streams.csv")));
    let mut streams = Vec::new();
    let mut lost = 0;
    let mut idle = Vec::new();
    for row in &rows {
        let requests: u64 = row["n_requests"].parse().unwrap();
        let responses: u64 = row["n_responses"].parse().unwrap();
        if row["first_closer"].starts_with("server") && requests > responses {
            streams.push(row["tcp_stream"].parse().unwrap());
            lost += requests - responses;
            idle.push(row["idle_last_resp_to_server_close_s"].parse().unwrap());
        }
    }
    (streams, lost, idle)
}

#[test]
fn a_keep_alive_race_says_whose_idle_timeout_to_shorten_and_to_what() {
    for (capture, knob) in [
        ("race-nginx", "nginx `keepalive_timeout`"),
        ("race-apache", "Apache `KeepAliveTimeout`"),
    ] {
        let r = report(capture);
        assert_eq!(r.findings.len(), 1, "{capture}: {:#?}", r.findings);
        let f = &r.findings[0];
        assert_eq!(f["kind"], "keep-alive-race", "{capture}");
        assert_eq!(f["severity"], "critical");
        let (lost_streams, lost, idle) = oracle_lost(capture);
        assert_eq!(streams(f), lost_streams, "{capture}: tshark's streams");
        assert_eq!(measure(f, "lost_requests"), lost as f64, "{capture}");
        // The server's idle close as tshark measured it (to the millisecond).
        let server_idle = measure(f, "server_idle_close_s");
        assert!(
            idle.iter().any(|t| (t - server_idle).abs() <= 0.001),
            "{capture}: {server_idle} vs tshark {idle:?}"
        );
        // The client slept 2.010 s before its last reuse (docs/captures.md).
        let client_idle = measure(f, "client_idle_max_s");
        assert!(
            (2.010..2.012).contains(&client_idle),
            "{capture}: {client_idle}"
        );
        assert_eq!(measure(f, "suggested_client_idle_s"), 1.0);
        let advice = f["advice"].as_str().unwrap();
        for knob in [
            "shorter than the server's 2.00 s",
            "`upstream` block",
            "HAProxy `timeout http-keep-alive`",
            "Envoy `idle_timeout`",
            "IdleConnTimeout",
            "freeSocketTimeout",
            "keepAliveTimeout",
            "urllib3",
            "AWS ALB",
            knob,
            "retry idempotent",
        ] {
            assert!(
                advice.contains(knob),
                "{capture}: {knob} missing from {advice}"
            );
        }
        assert!(r.text.contains("findings (1), most serious first:"));
        assert!(r.text.contains("[critical] keep-alive race at 10.201.0.1:"));
        assert_eq!(r.servers.column(0, "verdict"), "races", "{capture}");
    }
}

#[test]
fn a_lying_server_is_caught_on_timeout_and_max() {
    // liar_server.py advertises timeout=10, max=2, answers 5 and closes idle ones at ~1 s.
    let r = report("noncompliant-server");
    let kinds: Vec<&str> = r
        .findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["timeout-broken", "max-exceeded"],
        "most serious first"
    );
    let timeout = &r.findings[0];
    assert_eq!(timeout["severity"], "critical");
    assert_eq!(streams(timeout), [0, 1]);
    assert_eq!(measure(timeout, "advertised_timeout_s"), 10.0);
    let oracle = read_oracle(&recorded("noncompliant-server.streams.csv"));
    let shortest = oracle
        .iter()
        .map(|row| {
            row["idle_last_resp_to_server_close_s"]
                .parse::<f64>()
                .unwrap()
        })
        .fold(f64::MAX, f64::min);
    assert!((measure(timeout, "idle_close_min_s") - shortest).abs() <= 0.001);
    assert_eq!(measure(timeout, "suggested_client_idle_s"), 0.5);
    assert!(
        timeout["title"]
            .as_str()
            .unwrap()
            .contains("advertised timeout=10 but closed idle connections after 1.00 s")
    );
    let max = &r.findings[1];
    assert_eq!(max["severity"], "warning");
    assert_eq!(streams(max), [0]);
    let busy = oracle.iter().find(|row| row["tcp_stream"] == "0").unwrap();
    assert_eq!(
        measure(max, "responses"),
        busy["n_responses"].parse::<f64>().unwrap()
    );
    // max=2 on response 1: 1 + 2 = 3 requests allowed.
    assert_eq!(measure(max, "limit"), 3.0);
    assert_eq!(r.servers.column(0, "verdict"), "broken");
}

#[test]
fn a_request_limit_reports_the_request_sent_behind_it() {
    for capture in ["max-requests-apache", "max-requests-nginx"] {
        let r = report(capture);
        assert_eq!(r.findings.len(), 1, "{capture}: {:#?}", r.findings);
        let f = &r.findings[0];
        assert_eq!(f["kind"], "dropped-at-limit", "{capture}");
        let (lost_streams, lost, _) = oracle_lost(capture);
        assert_eq!(streams(f), lost_streams, "{capture}");
        assert_eq!(measure(f, "lost_requests"), lost as f64);
        // Apache: MaxKeepAliveRequests 3 serves 4; nginx: keepalive_requests 4.
        assert_eq!(measure(f, "close_after_requests"), 4.0, "{capture}");
        assert!(
            f["advice"]
                .as_str()
                .unwrap()
                .contains("raise the server's limit above 4")
        );
        assert_eq!(
            r.servers.column(0, "verdict"),
            "kept",
            "{capture}: max or close honoured"
        );
    }
}

#[test]
fn honoured_idle_timeouts_give_no_findings() {
    for capture in ["idle-timeout-apache", "idle-timeout-nginx"] {
        let r = report(capture);
        assert!(r.findings.is_empty(), "{capture}: {:#?}", r.findings);
        assert!(r.text.contains("findings: none"), "{capture}");
        let (timeout, idle) = match capture {
            "idle-timeout-apache" => ("timeout=2", "2.00 s"), // KeepAliveTimeout 2: 2.003 s
            _ => ("timeout=3", "3.00 s"),                     // keepalive_timeout 3 3: 3.003 s
        };
        let kept = format!(
            "10.201.0.1:{}: {timeout} honoured (1 connection, closed idle after {idle})",
            if capture.ends_with("apache") {
                8080
            } else {
                80
            }
        );
        assert!(r.text.contains(&kept), "{capture}: {}", r.text);
        assert_eq!(r.servers.column(0, "verdict"), "kept", "{capture}");
    }
}

#[test]
fn a_server_where_nothing_was_tested_is_untested() {
    // curl closes first and nginx advertises no max: nothing was put to the test.
    let r = report("nginx-keepalive-curl");
    assert_eq!(r.servers.column(0, "verdict"), "untested");
    assert!(
        r.text
            .lines()
            .any(|l| l.starts_with("10.201.0.1:80") && l.ends_with(" untested"))
    );
}

#[test]
fn clients_that_ask_for_the_close_are_named() {
    let r = report("connection-close");
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f["kind"], "client-asks-close");
    assert_eq!(f["client"], "10.201.0.2");
    assert_eq!(streams(f), [0, 1]);
    assert_eq!(measure(f, "connections"), 2.0);
}

#[test]
fn what_reuse_saved_is_counted_per_server() {
    // race-nginx: 3 connections of 2 requests; streams 1 and 2 lost their second request.
    let r = report("race-nginx");
    let s = &r.servers;
    assert_eq!(s.column(0, "handshakes_avoided"), "1");
    assert_eq!(
        s.column(0, "peak_connections"),
        "1",
        "the client ran one connection at a time"
    );
    assert_eq!(s.column(0, "status_2xx"), "4");
    assert_eq!(s.column(0, "status_5xx"), "0");
    // Idle: ~1.99 s + ~2.00 s + ~2.01 s between responses and requests (or the close).
    let idle: f64 = s.column(0, "idle_connection_s").parse().unwrap();
    assert!((5.99..6.02).contains(&idle), "{idle}");
    let saved: f64 = s.column(0, "rtt_saved_s").parse().unwrap();
    let rtt: f64 = s.column(0, "handshake_rtt_median_s").parse().unwrap();
    assert!(
        (saved - rtt).abs() < 2e-6,
        "one avoided handshake saves one round trip"
    );
}

#[test]
fn fail_on_keeps_working_with_the_findings() {
    let race = recorded("race-apache.pcap");
    let output = kascope(&[race.to_str().unwrap(), "-q", "--fail-on", "race"]);
    assert_eq!(output.status.code(), Some(1));
    let kept = recorded("idle-timeout-nginx.pcap");
    let output = kascope(&[kept.to_str().unwrap(), "-q", "--fail-on", "any"]);
    assert_eq!(output.status.code(), Some(0));
}
