//! kascope against the public corpus in `../shared/corpus`: per TCP stream, the request and
//! response counts, FIN/RST counts by side, client/server and pipelining depth must agree
//! with the tshark oracle (`oracle/*.streams.csv`), except where a disagreement below says
//! why kascope is right instead; kascope's value is asserted there too.

mod common;

use common::{Disagreement, Judged, analyze, compare, corpus, read_oracle};
use kascope::record::{Flag, HttpVersion};

const HEAD_SEEN: &str = "the response head is in the capture but part of its body is not \
    (capture loss or the capture ends); tshark counts only responses it reassembles whole, \
    kascope counts every response the server sent a head for (the oracle's header-only \
    column agrees), so that request is answered rather than outstanding";

const HTTP_09: &str = "HTTP/0.9 simple requests (`GET /path` with no version) answered by a \
    bare body up to the close: tshark decodes neither; kascope counts the request and its \
    response (status 0, client_http and server_http 0.9)";

const DISAGREEMENTS: &[Disagreement] = &[
    Disagreement {
        capture: "zeek__http__http_09",
        stream: None,
        field: "requests",
        kascope: "1",
        why: HTTP_09,
    },
    Disagreement {
        capture: "zeek__http__http_09",
        stream: None,
        field: "responses",
        kascope: "1",
        why: HTTP_09,
    },
    Disagreement {
        capture: "zeek__http__http_09",
        stream: None,
        field: "pipeline_depth",
        kascope: "1",
        why: HTTP_09,
    },
    Disagreement {
        capture: "zeek__ipv6-http-atomic-frag",
        stream: None,
        field: "requests",
        kascope: "1",
        why: HTTP_09,
    },
    Disagreement {
        capture: "zeek__ipv6-http-atomic-frag",
        stream: None,
        field: "responses",
        kascope: "1",
        why: HTTP_09,
    },
    Disagreement {
        capture: "zeek__ipv6-http-atomic-frag",
        stream: None,
        field: "pipeline_depth",
        kascope: "1",
        why: HTTP_09,
    },
    Disagreement {
        capture: "zeek__mixed-vlan-mpls",
        stream: Some(2),
        field: "responses",
        kascope: "1",
        why: "`GET /` without a version (HTTP/0.9, which tshark counts as a request here) is \
              answered by a bare body: kascope counts that response too",
    },
    Disagreement {
        capture: "arkime__twovlan",
        stream: Some(0),
        field: "responses",
        kascope: "1",
        why: HEAD_SEEN,
    },
    Disagreement {
        capture: "sv__http-gap-simple__input",
        stream: Some(0),
        field: "responses",
        kascope: "3",
        why: HEAD_SEEN,
    },
    Disagreement {
        capture: "sv__http-gap-simple__input",
        stream: Some(0),
        field: "pipeline_depth",
        kascope: "1",
        why: HEAD_SEEN,
    },
    Disagreement {
        capture: "sv__http-pipeline-files-with-gap__input",
        stream: Some(0),
        field: "responses",
        kascope: "3",
        why: HEAD_SEEN,
    },
    Disagreement {
        capture: "sv__http-pipeline-files-with-gap__input",
        stream: Some(0),
        field: "pipeline_depth",
        kascope: "1",
        why: HEAD_SEEN,
    },
    Disagreement {
        capture: "zeek__http__bro.org",
        stream: Some(2),
        field: "responses",
        kascope: "6",
        why: HEAD_SEEN,
    },
    Disagreement {
        capture: "zeek__http__bro.org",
        stream: Some(2),
        field: "pipeline_depth",
        kascope: "1",
        why: HEAD_SEEN,
    },
    Disagreement {
        capture: "sv__http-range-file__input",
        stream: Some(0),
        field: "responses",
        kascope: "15",
        why: "tshark flags a lost segment and never completes the 15th 206 response; kascope \
              buffers the out-of-order segment and frames all 15 bodies to their Content-Length",
    },
    Disagreement {
        capture: "sv__http-range-file__input",
        stream: Some(0),
        field: "pipeline_depth",
        kascope: "1",
        why: "follows from the 15th response: no request is left outstanding",
    },
    Disagreement {
        capture: "zeek__http__concurrent-range-requests",
        stream: Some(1),
        field: "responses",
        kascope: "1",
        why: "as in sv/http-range-file: tshark gives up reassembly after its lost-segment flag; \
              kascope frames the whole 10001-byte body",
    },
    Disagreement {
        capture: "zeek__http__methods",
        stream: None,
        field: "requests",
        kascope: "1",
        why: "requests with malformed request lines (`OPTIONSHTTP/1.1`, `GET/ HTTP/1.1`, a bad \
              version) are not HTTP to tshark, but the server answered each one (400): kascope \
              counts them as requests, flagged parse-error, as Zeek logs them",
    },
    Disagreement {
        capture: "zeek__http__methods",
        stream: None,
        field: "pipeline_depth",
        kascope: "1",
        why: "follows from counting those requests",
    },
];

#[test]
fn corpus_agrees_with_tshark_oracle() {
    let Some(dir) = corpus() else { return };
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("oracle/_meta.json")).unwrap())
            .unwrap();
    let entries = meta.as_array().expect("_meta.json is a list");
    assert!(entries.len() >= 59, "corpus has {} captures", entries.len());
    let mut problems = Vec::new();
    for entry in entries {
        let name = entry["name"].as_str().unwrap();
        let file = entry["file"].as_str().unwrap();
        let analysis = analyze(&dir.join(file));
        let oracle = read_oracle(&dir.join(format!("oracle/{name}.streams.csv")));
        problems.extend(compare(name, &oracle, &analysis.connections, DISAGREEMENTS));
    }
    for d in DISAGREEMENTS {
        assert!(!d.why.is_empty());
        assert!(
            entries.iter().any(|e| e["name"] == d.capture),
            "unknown capture {}",
            d.capture
        );
    }
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn connection_of(file: &str) -> common::Analysis {
    let dir = corpus().expect("checked by caller");
    analyze(&dir.join(file))
}

#[test]
fn deep_pipeline_is_measured() {
    if corpus().is_none() {
        return;
    }
    let analysis = connection_of("sv/http-protocol-nodup__input.pcap");
    let c = &analysis.connections[0];
    assert_eq!(
        (c.requests, c.responses, c.pipeline_depth),
        (Some(40), Some(40), Some(25))
    );
    assert_eq!(c.pipelined_requests, Some(39));
    // Every response pairs with its own request, in order, with a status.
    assert_eq!(analysis.transactions.len(), 40);
    assert!(analysis.transactions.iter().all(|t| t.status == Some(404)));
}

#[test]
fn gzip_capture_is_read_and_the_dropped_response_is_found() {
    if corpus().is_none() {
        return;
    }
    let analysis = connection_of("zeek/http__1000-requests-one-dropped-response.pcap.gz");
    let c = &analysis.connections[0];
    assert_eq!((c.requests, c.responses), (Some(1000), Some(999)));
    assert_eq!(c.unanswered_requests, Some(1));
}

#[test]
fn persistent_connection_recovers_after_loss() {
    if corpus().is_none() {
        return;
    }
    // Zeek gives up on persistent HTTP after loss (zeek#3607); kascope resynchronises.
    let analysis = connection_of("sv/http-gap-simple__input.pcap");
    let c = &analysis.connections[0];
    assert!(c.gaps > 0, "the capture has a gap");
    assert_eq!(c.requests, Some(3));
    let statuses: Vec<_> = analysis.transactions.iter().map(|t| t.status).collect();
    assert_eq!(statuses, vec![Some(200), Some(200), Some(200)]);
    assert!(
        !analysis.transactions[1].complete,
        "the gap ate part of response 2"
    );
}

#[test]
fn file_cut_mid_packet_gives_results_and_a_warning() {
    if corpus().is_none() {
        return;
    }
    let analysis = connection_of("sv/http-mime-truncated__input.pcap");
    assert_eq!(analysis.connections[0].requests, Some(8));
    assert!(
        analysis.warnings.iter().any(|w| w.contains("cut short")),
        "warnings: {:?}",
        analysis.warnings
    );
}

#[test]
fn socks_preamble_does_not_hide_http() {
    if corpus().is_none() {
        return;
    }
    let analysis = connection_of("zeek/socks.pcap");
    let c = &analysis.connections[0];
    assert_eq!((c.requests, c.responses), (Some(7), Some(7)));
}

#[test]
fn tunnels_and_http_0_9_are_recognised() {
    if corpus().is_none() {
        return;
    }
    for file in [
        "zeek/http__connect-with-header.pcap",
        "zeek/http__websocket.pcap",
    ] {
        let analysis = connection_of(file);
        let c = &analysis.connections[0];
        assert!(c.flags.contains(Flag::Tunnel), "{file}: {:?}", c.flags);
        assert!(
            !c.judged().is_violation() && !c.judged().unannounced_close,
            "{file}: keep-alive rules do not apply"
        );
    }
    let analysis = connection_of("zeek/http__http_09.pcap");
    let c = &analysis.connections[0];
    assert_eq!((c.requests, c.responses), (Some(1), Some(1)));
    assert_eq!(
        (c.client_http, c.server_http),
        (Some(HttpVersion::V0_9), Some(HttpVersion::V0_9))
    );
    assert_eq!(analysis.transactions[0].target, "/zeek.html");
}

#[test]
fn interim_and_close_delimited_responses() {
    if corpus().is_none() {
        return;
    }
    let analysis = connection_of("zeek/http__100-continue.pcap");
    assert_eq!(analysis.connections[0].interim_responses, Some(1));
    let analysis = connection_of("sv/http-multiple100__input.pcap");
    assert!(analysis.connections[0].interim_responses >= Some(2));
    let analysis = connection_of("arkime/http-no-length.pcap");
    let t = &analysis.transactions[0];
    assert!(
        t.complete && t.response_body_bytes.unwrap() > 0,
        "body runs to the server's FIN"
    );
}
