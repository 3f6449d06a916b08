//! `--html`: the self-contained report is rendered by a real browser (headless Chromium,
//! Debian package `chromium`, installed by scripts/install-deps.sh), and the rendered DOM —
//! after its script drew the charts — must show the expected servers, lanes and findings.
//! Without Chromium the tests say so and pass, except under CI=true, where its absence fails.

mod common;

use std::process::Command;

use common::binary::{TempPath, kascope};
use common::pcap::{C, CLIENT, Conv, Endpoint, S, SERVER};
use common::recorded;

/// Chromium, or `None` with a note (a failure under CI).
fn chromium() -> Option<&'static str> {
    let found = Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("chromium");
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("chromium is missing (scripts/install-deps.sh installs it; required under CI=true)");
    }
    eprintln!("note: chromium not found; HTML rendering tests skipped");
    None
}

/// The DOM after the page's scripts ran.
fn rendered_dom(browser: &str, html: &TempPath) -> String {
    let profile = TempPath::new("chromium-profile");
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.arg()),
            "--dump-dom",
            &format!("file://{}", html.arg()),
        ])
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&*profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn html_report(capture: &std::path::Path) -> TempPath {
    let html = TempPath::new("report.html");
    let output = kascope(&[capture.to_str().unwrap(), "-q", "--html", html.arg()]);
    assert!(output.status.success());
    html
}

/// `<g class="lane…" data-stream="N">` elements the script drew, with their classes.
fn lanes(dom: &str) -> Vec<(u64, String)> {
    dom.match_indices("<g class=\"lane")
        .map(|(at, _)| {
            let tag = &dom[at..at + dom[at..].find('>').unwrap()];
            let class = tag.split('"').nth(1).unwrap().to_string();
            let stream = tag.split("data-stream=\"").nth(1).unwrap();
            let stream = stream[..stream.find('"').unwrap()].parse().unwrap();
            (stream, class)
        })
        .collect()
}

#[test]
fn the_race_report_renders_lanes_and_the_finding() {
    let Some(browser) = chromium() else { return };
    let html = html_report(&recorded("race-nginx.pcap"));
    let page = std::fs::read_to_string(&*html).unwrap();
    // Self-contained: no stylesheet, script, image or font from elsewhere.
    for outside in ["<link", "src=\"http", "src='http", "url(http", "@import"] {
        assert!(!page.contains(outside), "{outside} in the page");
    }
    let dom = rendered_dom(browser, &html);
    assert!(dom.contains("data-rendered=\"yes\""), "the script ran");
    assert_eq!(
        lanes(&dom),
        [
            (0, "lane".to_string()),
            (1, "lane race".to_string()),
            (2, "lane race".to_string())
        ]
    );
    assert!(dom.contains(
        "class=\"finding critical\" data-kind=\"keep-alive-race\" data-subject=\"10.201.0.1:80\" data-streams=\"1,2\""
    ));
    assert!(dom.contains("tcp.stream eq 1 || tcp.stream eq 2"));
    assert!(dom.contains("<tr data-server=\"10.201.0.1:80\">"));
    assert!(dom.contains("<td class=\"verdict races\">races</td>"));
    // Three connections of two requests each: one bar.
    assert!(dom.contains("data-bucket=\"2\" data-count=\"3\""));
    // Each lost request is drawn as such, and the hover text names stream and times.
    assert_eq!(dom.matches("class=\"lost\"").count(), 2);
    assert!(dom.contains("tcp.stream 1: 10.201.0.2:46790 → 10.201.0.1:80"));
    // The idle closes, against the advertised timeout=2.
    assert!(dom.contains("timeout=2</text>"));
    assert_eq!(dom.matches("<circle class=\"dot server\"").count(), 2);
}

#[test]
fn the_liar_report_marks_its_broken_promises() {
    let Some(browser) = chromium() else { return };
    let dom = rendered_dom(browser, &html_report(&recorded("noncompliant-server.pcap")));
    assert_eq!(
        lanes(&dom),
        [
            (0, "lane violation".to_string()),
            (1, "lane violation".to_string())
        ]
    );
    assert!(dom.contains("data-kind=\"timeout-broken\""));
    assert!(dom.contains("data-kind=\"max-exceeded\""));
    assert!(dom.contains("<td class=\"verdict broken\">broken</td>"));
    assert!(dom.find("timeout-broken").unwrap() < dom.find("max-exceeded").unwrap());
}

#[test]
fn a_large_capture_keeps_the_flagged_connections_and_stays_light() {
    let Some(browser) = chromium() else { return };
    // 300 one-request connections; 12 of them closed by the server without warning.
    let mut c = Conv::new();
    let flagged = 250..262;
    for i in 0..300u16 {
        let client = Endpoint {
            port: 20000 + i,
            ..CLIENT
        };
        c.connection(client, SERVER)
            .handshake(1000, 5000)
            .send(C, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .close_by(if flagged.contains(&i) { S } else { C });
    }
    let capture = c.write("many");
    let html = html_report(&capture);
    let size = std::fs::metadata(&*html).unwrap().len();
    assert!(size < 300_000, "{size} bytes");
    let dom = rendered_dom(browser, &html);
    let lanes = lanes(&dom);
    assert_eq!(
        lanes.len(),
        200 + flagged.len(),
        "200 lanes, then only flagged ones"
    );
    for stream in flagged.clone() {
        assert!(
            lanes.iter().any(|(s, _)| *s == u64::from(stream)),
            "stream {stream}"
        );
    }
    assert!(dom.contains("showing 212 of 300 connections"));
    assert!(
        dom.contains("data-bucket=\"1\" data-count=\"300\""),
        "the histogram counts all"
    );
    assert!(dom.contains("data-kind=\"unannounced-close\""));
}

/// Per server, the idle closes and the clients' reuse gaps on one axis, the observed
/// timeout as a line and the margin as a band coloured by how it stands.
#[test]
fn the_margin_chart_sets_idle_closes_against_reuse_gaps() {
    let Some(browser) = chromium() else { return };
    for (capture, state, bands) in [("pool-risk", "risk", 2), ("pool-race", "races", 2)] {
        let dom = rendered_dom(browser, &html_report(&recorded(&format!("{capture}.pcap"))));
        assert_eq!(
            dom.matches(&format!("class=\"margin-band {state}\""))
                .count(),
            bands,
            "{capture}"
        );
        // Every idle close and every reused connection is a tick (tshark: the fixtures).
        let oracle = common::read_oracle(&recorded(&format!("{capture}.streams.csv")));
        let idle_closes = oracle
            .iter()
            .filter(|row| row["first_closer"].starts_with("server"))
            .filter(|row| !row["conn_hdr_server"].contains("close"))
            .count();
        assert_eq!(
            dom.matches("class=\"tick close\"").count(),
            idle_closes,
            "{capture}"
        );
        let reused = common::read_oracle(&recorded("reuse-gaps.csv"))
            .iter()
            .filter(|row| row["capture"] == format!("{capture}.pcap"))
            .count();
        assert_eq!(
            dom.matches("class=\"tick gap\"").count(),
            reused,
            "{capture}"
        );
        assert!(dom.contains("timeout 2.001 s</text>"), "{capture}");
    }
}
