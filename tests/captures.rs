//! Captures recorded from real servers and clients in network namespaces
//! (`captures/record.sh`, described in `docs/captures.md`). Each capture's per-stream facts
//! must equal its tshark fixture (`captures/NAME.streams.csv`, made by
//! `captures/make_fixtures.sh`), and the behaviour each capture was recorded to show is
//! asserted on top.

mod common;

use common::binary::{kascope, stdout};
use common::{
    Analysis, Disagreement, Judged, analyze, compare, only, read_oracle, recorded,
    recorded_captures, repo, secs,
};
use kascope::http::{ConnectionTokens, Protocol};
use kascope::record::{Closer, Flag, HttpVersion};

fn capture(name: &str) -> Analysis {
    analyze(&recorded(&format!("{name}.pcap")))
}

const SPACE_BEFORE_COLON: &str = "`Content-Length : 840` (a space before the colon): tshark \
    does not take it for the length, assumes no body and counts the body's first line as a \
    second request; the server answered 400 and closed, so the body was never a request";

/// Where kascope and tshark disagree on a recorded capture, and why kascope is right.
const DISAGREEMENTS: &[Disagreement] = &[
    Disagreement {
        capture: "malformed-heads-nginx",
        stream: Some(1),
        field: "requests",
        kascope: "1",
        why: SPACE_BEFORE_COLON,
    },
    Disagreement {
        capture: "malformed-heads-nginx",
        stream: Some(1),
        field: "pipeline_depth",
        kascope: "1",
        why: SPACE_BEFORE_COLON,
    },
    Disagreement {
        capture: "malformed-heads-apache",
        stream: Some(1),
        field: "requests",
        kascope: "1",
        why: SPACE_BEFORE_COLON,
    },
    Disagreement {
        capture: "malformed-heads-apache",
        stream: Some(1),
        field: "pipeline_depth",
        kascope: "1",
        why: SPACE_BEFORE_COLON,
    },
];

#[test]
fn every_capture_matches_its_tshark_fixture() {
    let dir = repo().join("captures");
    let mut checked = 0;
    let mut problems = Vec::new();
    for (name, path) in recorded_captures() {
        let fixture = dir.join(format!("{name}.streams.csv"));
        assert!(fixture.exists(), "{name} has no fixture");
        let analysis = analyze(&path);
        problems.extend(compare(
            &name,
            &read_oracle(&fixture),
            &analysis.connections,
            DISAGREEMENTS,
        ));
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} captures found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn nginx_and_curl_reuse_connections() {
    let analysis = capture("nginx-keepalive-curl");
    assert_eq!(analysis.connections.len(), 2);
    for c in &analysis.connections {
        assert_eq!(
            (c.requests, c.responses, c.pipeline_depth),
            (Some(4), Some(4), Some(1))
        );
        assert_eq!(c.closer, Closer::ClientFin);
        assert_eq!(c.keep_alive_timeout_first, Some(10));
        assert_eq!(c.keep_alive_max_first, None, "nginx never advertises max");
        assert!(c.handshake && c.flags.is_empty(), "flags: {:?}", c.flags);
    }
}

#[test]
fn apache_counts_max_down_per_response() {
    let c = capture("apache-keepalive-curl");
    let c = only(&c);
    assert_eq!((c.requests, c.responses), (Some(3), Some(3)));
    assert_eq!(
        (c.keep_alive_max_first, c.keep_alive_max_last),
        (Some(100), Some(98))
    );
    assert_eq!(c.keep_alive_timeout_first, Some(5));
    assert!(c.client_connection.has(ConnectionTokens::KEEP_ALIVE));
}

#[test]
fn connection_close_client_gets_one_request_per_connection() {
    let analysis = capture("connection-close");
    assert_eq!(analysis.connections.len(), 2);
    for c in &analysis.connections {
        assert_eq!((c.requests, c.responses), (Some(1), Some(1)));
        assert_eq!(c.client_connection, ConnectionTokens::parse(b"close"));
        assert_eq!(c.closer, Closer::ServerFin);
        assert_eq!(c.close_after_request, Some(1));
    }
}

#[test]
fn five_pipelined_requests_in_one_write() {
    let analysis = capture("pipeline-5");
    let c = only(&analysis);
    assert_eq!(
        (c.requests, c.responses, c.pipeline_depth),
        (Some(5), Some(5), Some(5))
    );
    assert_eq!(c.pipelined_requests, Some(4));
    let targets: Vec<_> = analysis.transactions.iter().map(|t| t.position).collect();
    assert_eq!(
        targets,
        vec![1, 2, 3, 4, 5],
        "responses pair with requests in order"
    );
    assert!(
        analysis
            .transactions
            .iter()
            .all(|t| t.status == Some(200) && t.complete)
    );
}

#[test]
fn apache_pipelined_past_its_limit_drops_the_fifth() {
    let analysis = capture("pipeline-5-apache");
    let c = only(&analysis);
    assert_eq!(
        (c.requests, c.responses, c.unanswered_requests),
        (Some(5), Some(4), Some(1))
    );
    assert_eq!(c.pipeline_depth, Some(5));
    assert_eq!(
        (c.keep_alive_max_first, c.keep_alive_max_last),
        (Some(3), Some(1))
    );
    assert_eq!(
        c.close_announced_at,
        Some(4),
        "4th response says Connection: close"
    );
    assert_eq!(c.closer, Closer::ServerFin);
    let unanswered = analysis
        .transactions
        .iter()
        .find(|t| t.status.is_none())
        .unwrap();
    assert_eq!(unanswered.position, 5);
}

#[test]
fn apache_closes_after_max_keep_alive_requests_plus_one() {
    let c = capture("max-requests-apache");
    let c = only(&c);
    assert_eq!(c.responses, Some(4));
    assert_eq!(c.closer, Closer::ServerFin);
    assert_eq!(c.close_after_request, Some(4));
    assert_eq!(c.close_announced_at, Some(4));
    assert_eq!(
        (c.keep_alive_timeout_first, c.keep_alive_max_first),
        (Some(2), Some(3))
    );
}

#[test]
fn nginx_closes_after_keepalive_requests() {
    let c = capture("max-requests-nginx");
    let c = only(&c);
    assert_eq!(c.responses, Some(4));
    assert_eq!(c.close_announced_at, Some(4));
    assert!(matches!(c.closer, Closer::ServerFin | Closer::ServerRst));
    assert_eq!(c.keep_alive_timeout_first, Some(3));
}

#[test]
fn idle_connections_are_closed_at_the_advertised_timeout() {
    for (name, timeout) in [("idle-timeout-apache", 2.0), ("idle-timeout-nginx", 3.0)] {
        let c = capture(name);
        let c = only(&c);
        assert_eq!(c.closer, Closer::ServerFin, "{name}");
        assert_eq!(c.keep_alive_timeout_first, Some(timeout as u32), "{name}");
        let idle = c
            .idle_before_close_ns
            .map(secs)
            .expect("idle time before close");
        assert!(
            (timeout..timeout + 0.2).contains(&idle),
            "{name}: idle {idle}"
        );
    }
}

#[test]
fn chunked_bodies_are_framed() {
    for name in ["chunked", "chunked-trailer"] {
        let analysis = capture(name);
        let c = only(&analysis);
        assert_eq!((c.requests, c.responses), (Some(2), Some(2)), "{name}");
        assert!(c.flags.is_empty(), "{name}: {:?}", c.flags);
        assert!(analysis.transactions.iter().all(|t| t.complete), "{name}");
    }
    let trailer = capture("chunked-trailer");
    for t in &trailer.transactions {
        assert_eq!(t.response_body_bytes, Some(2800), "4 chunks of 700 bytes");
    }
}

#[test]
fn head_and_not_modified_have_no_body() {
    let analysis = capture("head-304");
    let c = only(&analysis);
    assert_eq!((c.requests, c.responses), (Some(3), Some(3)));
    let exchanges: Vec<_> = analysis
        .transactions
        .iter()
        .map(|t| (t.method.as_str(), t.status, t.response_body_bytes))
        .collect();
    assert_eq!(exchanges[0], ("HEAD", Some(200), Some(0)));
    assert_eq!(exchanges[1], ("GET", Some(304), Some(0)));
    assert_eq!(exchanges[2].1, Some(200));
    assert!(exchanges[2].2.unwrap() > 0);
}

#[test]
fn malformed_heads_count_once_on_real_servers() {
    // One connection per fault: NUL bytes in values, a space before the colon, a folded
    // Content-Length, a control byte in a name; each with an 840-byte body that starts like
    // a request. nginx refuses all four (400, then FIN); Apache refuses all but the folded
    // length, which it reads, and then answers the next GET on the same connection.
    for (name, accepted) in [
        ("malformed-heads-nginx", [false; 4]),
        ("malformed-heads-apache", [false, false, true, false]),
    ] {
        let analysis = capture(name);
        assert_eq!(analysis.connections.len(), 4, "{name}");
        for (c, accepted) in analysis.connections.iter().zip(accepted) {
            let requests = if accepted { 2 } else { 1 };
            assert_eq!(
                (c.requests, c.responses, c.parse_errors),
                (Some(requests), Some(requests), 1),
                "{name} stream {}",
                c.stream
            );
            assert!(
                c.flags.contains(Flag::ParseError),
                "{name} stream {}",
                c.stream
            );
            let refused = !accepted;
            assert_eq!(
                c.closer == Closer::ServerFin,
                refused,
                "{name} stream {}",
                c.stream
            );
            // Nothing was left unanswered: the body was never a request.
            assert_eq!(
                c.judged().dropped_after_close,
                0,
                "{name} stream {}",
                c.stream
            );
        }
        let mut statuses: Vec<Option<u16>> =
            analysis.transactions.iter().map(|t| t.status).collect();
        let mut expected: Vec<Option<u16>> = accepted
            .iter()
            .flat_map(|&ok| {
                if ok {
                    vec![Some(200); 2]
                } else {
                    vec![Some(400)]
                }
            })
            .collect();
        statuses.sort();
        expected.sort();
        assert_eq!(statuses, expected, "{name}");
        assert!(
            analysis
                .transactions
                .iter()
                .all(|t| t.method != "POST" || t.request_body_bytes == 840),
            "{name}: each body is stepped over whole"
        );
    }
}

#[test]
fn a_real_smtp_server_is_named_not_parsed() {
    // Python's smtpd greets first; smtplib sends one mail whose body has HTTP-looking lines.
    let analysis = capture("smtp-python");
    let c = only(&analysis);
    assert_eq!(c.protocol, Protocol::Smtp);
    assert_eq!(
        (c.requests, c.responses, c.pipeline_depth, c.parse_errors),
        (Some(0), Some(0), Some(0), 0)
    );
    assert!(c.flags.is_empty(), "{:?}", c.flags);
}

#[test]
fn http_1_0_server_closes_after_each_response() {
    let analysis = capture("python-http-server");
    assert_eq!(analysis.connections.len(), 2);
    for c in &analysis.connections {
        assert_eq!((c.requests, c.responses), (Some(1), Some(1)));
        assert_eq!(c.server_http, Some(HttpVersion::V1_0));
        assert_eq!(c.protocol, Protocol::Http);
    }
}

mod verdicts {
    use super::*;
    use kascope::verdict::{MaxVerdict, TimeoutVerdict};

    #[test]
    fn apache_limit_is_honoured_and_the_extra_request_dropped() {
        for name in ["max-requests-apache", "pipeline-5-apache"] {
            let analysis = capture(name);
            let c = only(&analysis);
            assert_eq!(
                c.implied_request_limit,
                Some(4),
                "{name}: max=3 on response 1"
            );
            assert_eq!(c.judged().max, MaxVerdict::Honoured, "{name}");
            assert_eq!(
                c.judged().timeout,
                TimeoutVerdict::Untested,
                "{name}: closed for its limit"
            );
            assert_eq!(c.judged().dropped_after_close, 1, "{name}");
            assert_eq!(c.judged().close_honoured, Some(true), "{name}");
            assert_eq!(c.judged().race_request, None, "{name}");
            assert!(
                !c.judged().unannounced_close && !c.judged().is_violation(),
                "{name}"
            );
        }
    }

    #[test]
    fn idle_timeouts_are_honoured() {
        for (name, seconds) in [("idle-timeout-apache", 2.0), ("idle-timeout-nginx", 3.0)] {
            let analysis = capture(name);
            let c = only(&analysis);
            assert_eq!(c.judged().timeout, TimeoutVerdict::Honoured, "{name}");
            let idle = c.judged().idle_close_ns.map(secs).unwrap();
            assert!((seconds..seconds + 0.1).contains(&idle), "{name}: {idle}");
            assert!(
                !c.judged().unannounced_close && !c.judged().is_violation(),
                "{name}"
            );
        }
        let apache = capture("idle-timeout-apache");
        assert_eq!(
            only(&apache).judged().max,
            MaxVerdict::Untested,
            "one request of four allowed says nothing about max"
        );
    }

    #[test]
    fn nginx_request_limit_is_announced_and_kept() {
        let analysis = capture("max-requests-nginx");
        let c = only(&analysis);
        assert_eq!(
            c.judged().max,
            MaxVerdict::None,
            "nginx does not advertise max"
        );
        assert_eq!(c.judged().close_honoured, Some(true));
        assert_eq!(c.judged().dropped_after_close, 1);
        assert!(!c.judged().is_violation());
    }

    #[test]
    fn client_closing_first_leaves_the_timeout_untested_with_a_lower_bound() {
        let analysis = capture("nginx-keepalive-curl");
        for c in &analysis.connections {
            assert_eq!(c.judged().timeout, TimeoutVerdict::Untested);
            assert!(c.judged().kept_open_at_least_ns.map(secs).is_some());
        }
    }

    #[test]
    fn asked_for_closes_are_expected() {
        for name in ["connection-close", "python-http-server"] {
            for c in &capture(name).connections {
                assert!(
                    !c.judged().unannounced_close && !c.judged().is_violation(),
                    "{name}"
                );
            }
        }
    }
}

mod promises {
    use super::*;
    use kascope::verdict::{MaxVerdict, TimeoutVerdict};

    #[test]
    fn a_lying_server_exceeds_max_and_closes_early() {
        // liar_server.py advertises timeout=10, max=2, answers 5 and closes idle ones at ~1 s.
        let analysis = capture("noncompliant-server");
        let [busy, idle] = analysis.connections.as_slice() else {
            panic!("two connections expected");
        };
        assert_eq!((busy.requests, busy.responses), (Some(5), Some(5)));
        assert_eq!(busy.implied_request_limit, Some(3));
        assert_eq!(busy.judged().max, MaxVerdict::Exceeded);
        for c in [busy, idle] {
            assert_eq!(c.judged().timeout, TimeoutVerdict::ClosedEarly);
            let seconds = c.judged().idle_close_ns.map(secs).unwrap();
            assert!((0.9..1.2).contains(&seconds), "{seconds}");
            assert!(c.judged().is_violation() && c.judged().unannounced_close);
        }
        assert_eq!(idle.judged().max, MaxVerdict::Untested);
        let path = recorded("noncompliant-server.pcap");
        let output = kascope(&[
            path.to_str().unwrap(),
            "--servers",
            "--fail-on",
            "violation",
        ]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "--fail-on violation fails the pipeline"
        );
        assert!(
            stdout(&output)
                .lines()
                .any(|l| l.starts_with("10.201.0.1:8002") && l.ends_with(" broken"))
        );
    }

    #[test]
    fn requests_crossing_the_idle_close_are_races() {
        for name in ["race-apache", "race-nginx"] {
            let analysis = capture(name);
            let c = &analysis.connections;
            assert_eq!(c.len(), 3, "{name}");
            // 1.990 s: answered just before the 2 s timeout; the client closes later.
            assert_eq!(c[0].judged().race_request, None, "{name}");
            assert_eq!(
                (c[0].requests, c[0].responses),
                (Some(2), Some(2)),
                "{name}"
            );
            // Around 2.002 s and at 2.010 s the second request crosses the server's close.
            for raced in &c[1..] {
                assert_eq!(
                    raced.judged().race_request,
                    Some(2),
                    "{name} stream {}",
                    raced.stream
                );
                assert_eq!(raced.unanswered_requests, Some(1), "{name}");
                assert_eq!(raced.judged().timeout, TimeoutVerdict::Honoured, "{name}");
                assert!(
                    !raced.judged().is_violation(),
                    "{name}: the server kept its promise"
                );
                assert_ne!(
                    raced.judged().max,
                    MaxVerdict::Honoured,
                    "{name}: max untested"
                );
            }
        }
        let path = recorded("race-nginx.pcap");
        let output = kascope(&[path.to_str().unwrap(), "-q", "--fail-on", "race"]);
        assert_eq!(output.status.code(), Some(1));
    }

    #[test]
    fn http_1_0_keep_alive_is_honoured_and_plain_1_0_closes() {
        let analysis = capture("http10-keepalive");
        let [kept, closed] = analysis.connections.as_slice() else {
            panic!("two connections expected");
        };
        assert_eq!((kept.requests, kept.responses), (Some(3), Some(3)));
        assert_eq!(kept.client_http, Some(HttpVersion::V1_0));
        assert_eq!(
            (kept.keep_alive_max_first, kept.keep_alive_max_last),
            (Some(100), Some(98))
        );
        assert_eq!(kept.closer, Closer::ClientFin);
        assert_eq!((closed.requests, closed.responses), (Some(1), Some(1)));
        assert_eq!(closed.closer, Closer::ServerFin);
        assert!(
            !closed.judged().unannounced_close && !closed.judged().is_violation(),
            "HTTP/1.0 asked for the close"
        );
    }
}
