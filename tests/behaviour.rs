//! What servers and clients really do: TCP keep-alive probes against tshark, and the
//! inferred idle timeouts, request limits, reuse gaps and race margins on recordings of real
//! nginx and Apache servers driven by real client pools (`captures/record.sh`), plus the
//! edge cases no real stack produces on demand, built with `common::pcap::Conv`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::binary::{Table, TempPath, kascope, stderr};
use common::pcap::{ACK, C, CLIENT, Conv, Endpoint, S, SERVER, Side};
use common::{Analysis, analyze, corpus, read_oracle, recorded, repo, secs};
use kascope::report::{ClientBehaviour, IdleTimeout, ServerRecord};

/// Every capture of `captures/` and of the corpus, by the name the fixture gives it.
fn every_capture() -> Vec<(String, PathBuf)> {
    let mut captures = Vec::new();
    for entry in std::fs::read_dir(repo().join("captures")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pcap") {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            captures.push((name, path));
        }
    }
    if let Some(corpus) = corpus() {
        let mut dirs = vec![corpus.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.to_str().unwrap();
                if path.is_dir() {
                    dirs.push(path);
                } else if [".pcap", ".pcapng", ".pcap.gz"]
                    .iter()
                    .any(|ext| name.ends_with(ext))
                {
                    let relative = path.strip_prefix(&corpus).unwrap().to_str().unwrap();
                    captures.push((format!("corpus/{relative}"), path));
                }
            }
        }
    }
    captures.sort();
    captures
}

#[test]
fn keepalive_probes_and_their_acks_agree_with_tshark_on_every_capture() {
    let mut expected: BTreeMap<(String, u64), (u32, u32)> = BTreeMap::new();
    for row in read_oracle(&recorded("keepalive.csv")) {
        let number = |column: &str| -> u32 { row[column].parse().unwrap() };
        let key = (row["capture"].clone(), u64::from(number("tcp_stream")));
        expected.insert(key, (number("keep_alive"), number("keep_alive_ack")));
    }
    let mut problems = Vec::new();
    let mut probes_seen = 0;
    for (name, path) in every_capture() {
        let mut mine: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
        for c in analyze(&path).connections {
            let entry = mine.entry(c.stream).or_default();
            entry.0 += c.keepalive_client.probes + c.keepalive_server.probes;
            entry.1 += c.keepalive_client.acks + c.keepalive_server.acks;
        }
        let streams: Vec<u64> = mine.keys().copied().collect();
        for stream in streams {
            let want = expected.remove(&(name.clone(), stream)).unwrap_or_default();
            let got = mine[&stream];
            probes_seen += got.0;
            if got != want {
                problems.push(format!(
                    "{name} stream {stream}: kascope (probes, acks) {got:?}, tshark {want:?}"
                ));
            }
        }
    }
    for ((name, stream), want) in expected {
        problems.push(format!(
            "{name} stream {stream}: kascope has no row, tshark {want:?}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        probes_seen >= 10,
        "only {probes_seen} probes in all captures"
    );
}

/// The idle gap before each reuse equals tshark's (response frame to next request frame)
/// on every recorded capture.
#[test]
fn reuse_gaps_agree_with_tshark_on_every_recorded_capture() {
    let mut expected: BTreeMap<(String, u64), f64> = BTreeMap::new();
    for row in read_oracle(&recorded("reuse-gaps.csv")) {
        let key = (row["capture"].clone(), row["tcp_stream"].parse().unwrap());
        expected.insert(key, row["max_reuse_idle_s"].parse().unwrap());
    }
    let mut problems = Vec::new();
    let mut compared = 0;
    for (name, path) in every_capture() {
        if name.starts_with("corpus/") {
            continue;
        }
        for c in analyze(&path).connections {
            let want = expected.remove(&(name.clone(), c.stream));
            let got = c.max_idle_ns.map(secs);
            match (got, want) {
                (Some(got), Some(want)) if (got - want).abs() < 2e-6 => compared += 1,
                (None, None) => {}
                _ => problems.push(format!(
                    "{name} stream {}: kascope {got:?}, tshark {want:?}",
                    c.stream
                )),
            }
        }
    }
    problems.extend(
        expected
            .keys()
            .map(|k| format!("{k:?}: kascope has no row")),
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(compared >= 50, "only {compared} gaps compared");
}

/// nginx (`keepalive_timeout 2`, no Keep-Alive header; `keepalive_requests 4`) and Apache
/// (`KeepAliveTimeout 3`, `MaxKeepAliveRequests 4`) at once, driven by pools whose gaps are
/// comfortably below, just under, and past the timeout (`captures/record.sh`).
const NGINX: &str = "10.201.0.1:80";
const APACHE: &str = "10.201.0.1:8080";

struct Expected {
    capture: &'static str,
    server: &'static str,
    timeout_s: f64,
    /// `None`: no connection reached the limit in this capture.
    limit: Option<u32>,
    /// The bounds of the race margin, seconds.
    margin: (f64, f64),
    races: u64,
}

const POOLS: &[Expected] = &[
    Expected {
        capture: "pool-safe",
        server: NGINX,
        timeout_s: 2.0,
        limit: Some(4),
        margin: (1.0, 1.5),
        races: 0,
    },
    Expected {
        capture: "pool-safe",
        server: APACHE,
        timeout_s: 3.0,
        limit: Some(5),
        margin: (1.0, 2.25),
        races: 0,
    },
    Expected {
        capture: "pool-risk",
        server: NGINX,
        timeout_s: 2.0,
        limit: Some(4),
        margin: (0.0, 0.2),
        races: 0,
    },
    Expected {
        capture: "pool-risk",
        server: APACHE,
        timeout_s: 3.0,
        limit: Some(5),
        margin: (0.0, 0.3),
        races: 0,
    },
    Expected {
        capture: "pool-race",
        server: NGINX,
        timeout_s: 2.0,
        limit: Some(4),
        margin: (-0.6, 0.0),
        races: 5,
    },
    Expected {
        capture: "pool-race",
        server: APACHE,
        timeout_s: 3.0,
        // The races cut every connection short of Apache's fifth request.
        limit: None,
        margin: (-0.8, 0.0),
        races: 9,
    },
];

fn server<'a>(analysis: &'a Analysis, address: &str) -> &'a ServerRecord {
    analysis
        .servers
        .iter()
        .find(|s| s.server.to_string() == address)
        .unwrap_or_else(|| panic!("no server {address}"))
}

#[test]
fn pools_show_each_servers_real_timeout_limit_and_race_margin() {
    for e in POOLS {
        let analysis = analyze(&recorded(&format!("{}.pcap", e.capture)));
        let s = server(&analysis, e.server);
        let what = format!("{} {}", e.capture, e.server);
        let b = &s.behaviour;
        let timeout = b
            .idle_timeout
            .inferred_ns()
            .unwrap_or_else(|| panic!("{what}: {:?}", b.idle_timeout));
        assert!(
            (secs(timeout) - e.timeout_s).abs() < 0.05,
            "{what}: inferred {timeout} ns, configured {} s",
            e.timeout_s
        );
        assert_eq!(b.request_limit, e.limit, "{what}");
        // The margin is the inferred timeout less the longest reuse gap tshark measured.
        let tshark_gap = tshark_max_gap(e.capture, &analysis, e.server);
        assert!((secs(s.reuse_idle_max_ns.unwrap()) - tshark_gap).abs() < 2e-6);
        let margin = b.race_margin_ns.unwrap() as f64 / 1e9;
        assert!(
            (margin - (secs(timeout) - tshark_gap)).abs() < 2e-6,
            "{what}"
        );
        assert!(
            e.margin.0 < margin && margin < e.margin.1,
            "{what}: margin {margin}"
        );
        assert_eq!((s.races, s.lost_to_races), (e.races, e.races), "{what}");
    }
}

/// The longest reuse gap of `server`'s streams in the tshark fixture.
fn tshark_max_gap(capture: &str, analysis: &Analysis, server: &str) -> f64 {
    let streams: Vec<u64> = analysis
        .connections
        .iter()
        .filter(|c| c.server.to_string() == server)
        .map(|c| c.stream)
        .collect();
    read_oracle(&recorded("reuse-gaps.csv"))
        .into_iter()
        .filter(|row| row["capture"] == format!("{capture}.pcap"))
        .filter(|row| streams.contains(&row["tcp_stream"].parse().unwrap()))
        .map(|row| row["max_reuse_idle_s"].parse::<f64>().unwrap())
        .fold(f64::MIN, f64::max)
}

/// The idle closes the timeout is inferred from are tshark's "last response to the server's
/// close" of the streams the server closed first without announcing it.
#[test]
fn idle_closes_are_tsharks_unannounced_server_closes() {
    for capture in ["pool-safe", "pool-risk", "pool-race", "tcp-keepalive"] {
        let analysis = analyze(&recorded(&format!("{capture}.pcap")));
        let oracle = read_oracle(&recorded(&format!("{capture}.streams.csv")));
        for s in &analysis.servers {
            let mut want: Vec<f64> = oracle
                .iter()
                .filter(|row| row["server"] == s.server.to_string())
                .filter(|row| row["first_closer"].starts_with("server"))
                .filter(|row| !row["conn_hdr_server"].contains("close"))
                .map(|row| row["idle_last_resp_to_server_close_s"].parse().unwrap())
                .collect();
            want.sort_by(f64::total_cmp);
            let got: Vec<f64> = s.idle_closes.values().iter().map(|ns| secs(*ns)).collect();
            assert_eq!(got.len(), want.len(), "{capture} {}", s.server);
            for (got, want) in got.iter().zip(&want) {
                assert!((got - want).abs() <= 0.0006, "{capture}: {got} vs {want}");
            }
        }
    }
}

/// A second pool on the client of `pool-safe` closes its idle connections after 0.6 s,
/// before nginx would: per address the two pools are one client, per `User-Agent` family
/// each shows its own habits.
/// A client address's row: its connections and what its pool did.
fn by_address(analysis: &Analysis, address: &str) -> (u64, ClientBehaviour) {
    let c = analysis
        .clients
        .iter()
        .find(|c| c.client.to_string() == address)
        .unwrap_or_else(|| panic!("no client {address}"));
    (c.connections, c.behaviour.clone())
}

/// A `User-Agent` family's row.
fn by_agent(analysis: &Analysis, family: &str) -> (u64, ClientBehaviour) {
    let a = analysis
        .agents
        .iter()
        .find(|a| a.family.as_deref() == Some(family))
        .unwrap_or_else(|| panic!("no family {family}: {:?}", analysis.agents));
    (a.connections, a.behaviour.clone())
}

#[test]
fn a_pool_that_closes_first_shows_its_own_idle_timeout_per_user_agent() {
    let analysis = analyze(&recorded("pool-safe.pcap"));
    let (short_connections, short) = by_agent(&analysis, "kascope-shortpool");
    let own = short.pool_idle_timeout.inferred_ns().unwrap();
    assert!((secs(own) - 0.6).abs() < 0.05, "{own}");
    assert_eq!((short_connections, short.most_requests), (2, 3));
    let (pool_connections, pool) = by_agent(&analysis, "kascope-pool");
    assert_eq!(pool.pool_idle_timeout, IdleTimeout::Untested);
    assert!(secs(pool.max_reuse_idle_ns.unwrap()) > secs(short.max_reuse_idle_ns.unwrap()));
    let (connections, address) = by_address(&analysis, "10.201.0.2");
    assert_eq!(connections, pool_connections + short_connections);
    assert_eq!(address.max_reuse_idle_ns, pool.max_reuse_idle_ns);
    assert_eq!(address.pool_idle_timeout.inferred_ns(), Some(own));
}

#[test]
fn probing_sides_are_told_apart() {
    let analysis = analyze(&recorded("tcp-keepalive.pcap"));
    let probing = |port: u16| {
        let s = server(&analysis, &format!("10.201.0.1:{port}"));
        (
            s.behaviour.probing.probes,
            s.behaviour.probing.shortest_interval_ns.map(secs),
        )
    };
    let (probes, interval) = probing(81);
    assert_eq!(probes, 3);
    assert!((interval.unwrap() - 1.0).abs() < 0.1, "{interval:?}");
    assert_eq!(probing(80), (0, None));
    assert_eq!(by_agent(&analysis, "kascope-keepalive").1.probing.probes, 6);
    assert_eq!(by_agent(&analysis, "kascope-plain").1.probing.probes, 0);
}

fn get(agent: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n\r\n").into_bytes()
}

fn ok(keep_alive: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: edge/1.0\r\n{keep_alive}\r\nok")
        .into_bytes()
}

/// One connection of `client`: a request, then a request after each gap, then
/// `idle_ms` of idle before `closer` closes.
fn connection(
    conv: &mut Conv,
    client: Endpoint,
    agent: &str,
    gaps_ms: &[u64],
    idle_ms: u64,
    closer: Side,
) {
    conv.connection(client, SERVER);
    conv.handshake(1000, 5000);
    let advert = "Keep-Alive: timeout=7\r\n";
    conv.send(C, &get(agent)).send(S, &ok(advert)).ack(C);
    for gap in gaps_ms {
        conv.wait_ms(*gap);
        conv.send(C, &get(agent)).send(S, &ok(advert)).ack(C);
    }
    conv.wait_ms(idle_ms);
    conv.close_by(closer);
}

fn client_at(port: u16) -> Endpoint {
    Endpoint { port, ..CLIENT }
}

#[test]
fn a_server_that_never_idle_closes_is_untested_with_a_lower_bound() {
    let mut conv = Conv::new();
    connection(&mut conv, client_at(40000), "a/1", &[1000, 5000], 20_000, C);
    connection(&mut conv, client_at(40001), "a/1", &[], 12_000, C);
    let analysis = conv.analyze("never-idle-closes");
    let b = &analysis.servers[0].behaviour;
    assert_eq!(b.idle_timeout, IdleTimeout::Untested);
    let at_least = secs(b.idle_timeout_at_least_ns().unwrap());
    assert!((at_least - 20.0).abs() < 0.01, "{at_least}");
    assert_eq!(b.race_margin_ns, None);
    assert!((secs(analysis.servers[0].reuse_idle_max_ns.unwrap()) - 5.0).abs() < 0.01);
}

#[test]
fn a_server_advertising_7_and_closing_at_10_is_judged_by_what_it_does() {
    // nginx `keepalive_timeout 10 7`: `Keep-Alive: timeout=7`, idle close at 10 s.
    let mut conv = Conv::new();
    for (port, gaps) in [
        (40000, &[6500u64][..]),
        (40001, &[]),
        (40002, &[3000, 6900]),
    ] {
        connection(&mut conv, client_at(port), "a/1", gaps, 10_000, S);
    }
    let analysis = conv.analyze("two-timeouts");
    let s = &analysis.servers[0];
    let b = &s.behaviour;
    let timeout = secs(b.idle_timeout.inferred_ns().unwrap());
    assert!((timeout - 10.0).abs() < 0.01, "{timeout}");
    assert_eq!(s.keep_alive_timeouts, [7]);
    // Clients that trust the advertised 7 s are safe by 3 s; the margin is taken from what
    // the server does, not from what it says.
    let margin = b.race_margin_ns.unwrap() as f64 / 1e9;
    assert!((margin - (10.0 - 6.9)).abs() < 0.01, "{margin}");
    assert_eq!(
        s.timeout_verdicts
            .get(kascope::verdict::TimeoutVerdict::Honoured),
        3
    );
}

#[test]
fn clients_behind_one_nat_address_are_one_address_and_several_user_agents() {
    // Two pools behind 10.9.0.2: "alpha" reuses after up to 1 s and closes its idle
    // connections after 3 s; "beta" reuses after 4 s and leaves the close to the server.
    let mut conv = Conv::new();
    connection(
        &mut conv,
        client_at(40000),
        "alpha/1.0",
        &[500, 1000],
        3000,
        C,
    );
    connection(&mut conv, client_at(40001), "alpha/1.0", &[800], 3000, C);
    connection(
        &mut conv,
        client_at(40002),
        "beta/2.0 (x)",
        &[4000],
        10_000,
        S,
    );
    let analysis = conv.analyze("nat");
    let (connections, address) = by_address(&analysis, "10.9.0.2");
    let (alpha_connections, alpha) = by_agent(&analysis, "alpha");
    let (beta_connections, beta) = by_agent(&analysis, "beta");
    assert_eq!(
        (connections, alpha_connections, beta_connections),
        (3, 2, 1)
    );
    assert!((secs(address.max_reuse_idle_ns.unwrap()) - 4.0).abs() < 0.01);
    assert!((secs(alpha.max_reuse_idle_ns.unwrap()) - 1.0).abs() < 0.01);
    let own = secs(alpha.pool_idle_timeout.inferred_ns().unwrap());
    assert!((own - 3.0).abs() < 0.01, "{own}");
    assert_eq!(beta.pool_idle_timeout, IdleTimeout::Untested);
    assert_eq!((analysis.clients.len(), analysis.agents.len()), (1, 2));
}

/// A pipelining client that goes past `max=`: Apache-style adverts count down, and the
/// requests sent after the last allowed one are the client's fault.
#[test]
fn requests_beyond_the_advertised_max_are_counted_for_the_client() {
    let mut conv = Conv::new();
    conv.handshake(1000, 5000);
    conv.send(C, &get("eager/1"));
    conv.send(S, &ok("Keep-Alive: timeout=5, max=1\r\n"));
    // Response 1 allows one more: requests 3 and 4 go beyond it.
    let three = [get("eager/1"), get("eager/1"), get("eager/1")].concat();
    conv.send(C, &three);
    conv.send(S, &ok("Connection: close\r\n"));
    conv.close_by(S);
    let analysis = conv.analyze("beyond-max");
    assert_eq!(analysis.connections[0].requests_beyond_max, 2);
    let (_, eager) = by_agent(&analysis, "eager");
    assert_eq!(
        (eager.requests_beyond_max, eager.connections_beyond_max),
        (2, 1)
    );
}

#[test]
fn the_servers_csv_ends_with_what_each_server_really_does() {
    let csv = TempPath::new("behaviour-servers.csv");
    let output = kascope(&[
        "-q",
        recorded("pool-risk.pcap").to_str().unwrap(),
        "--servers-csv",
        csv.arg(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = Table::read(&csv);
    let tail: Vec<&str> = table
        .headers
        .iter()
        .rev()
        .take(7)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "observed_idle_timeout_s",
            "idle_timeout_evidence",
            "idle_timeout_at_least_s",
            "observed_request_limit",
            "max_reuse_idle_s",
            "race_margin_s",
            "tcp_keepalive_interval_s"
        ]
    );
    let row = (0..table.len())
        .find(|&row| table.column(row, "server") == NGINX)
        .unwrap();
    let number = |name: &str| -> f64 { table.column(row, name).parse().unwrap() };
    assert!((number("observed_idle_timeout_s") - 2.0).abs() < 0.05);
    assert_eq!(table.column(row, "idle_timeout_evidence"), "inferred");
    assert_eq!(table.column(row, "idle_timeout_at_least_s"), "");
    assert_eq!(table.column(row, "observed_request_limit"), "4");
    assert_eq!(table.column(row, "idle_closes"), "3");
    let margin = number("observed_idle_timeout_s") - number("max_reuse_idle_s");
    assert!((number("race_margin_s") - margin).abs() < 2e-6);
    assert_eq!(table.column(row, "tcp_keepalive_interval_s"), "");
}

/// The findings of a capture (`--findings-json`), as JSON values.
fn findings(path: &std::path::Path) -> Vec<serde_json::Value> {
    let out = TempPath::new("behaviour-findings.jsonl");
    let output = kascope(&[path.to_str().unwrap(), "-q", "--findings-json", out.arg()]);
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::read_to_string(&*out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn of_kind<'a>(found: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    found.iter().filter(|f| f["kind"] == kind).collect()
}

#[test]
fn a_margin_below_a_round_trip_plus_tolerance_is_a_race_risk_before_any_race() {
    let risk = findings(&recorded("pool-risk.pcap"));
    let risks = of_kind(&risk, "race-risk");
    let mut servers: Vec<&str> = risks
        .iter()
        .map(|f| f["server"].as_str().unwrap())
        .collect();
    servers.sort();
    assert_eq!(servers, [NGINX, APACHE]);
    for f in risks {
        let m = |name: &str| f["measures"][name].as_f64().unwrap();
        let configured = if f["server"] == NGINX { 2.0 } else { 3.0 };
        assert!((m("server_idle_close_s") - configured).abs() < 0.05);
        assert!(
            (m("race_margin_s") - (m("server_idle_close_s") - m("client_idle_max_s"))).abs() < 2e-6
        );
        assert!(
            m("race_margin_s") > 0.0
                && m("race_margin_s") < m("handshake_rtt_s") + configured / 10.0
        );
        assert!(m("suggested_client_idle_s") < m("client_idle_max_s"));
        assert_eq!(f["severity"], "warning");
        assert!(f["seen"].as_str().unwrap().contains("No request was lost"));
    }
    assert!(of_kind(&risk, "keep-alive-race").is_empty());
    // Comfortably below the timeout: no risk.
    assert!(of_kind(&findings(&recorded("pool-safe.pcap")), "race-risk").is_empty());
}

#[test]
fn races_seen_are_explained_by_a_negative_margin() {
    let race = findings(&recorded("pool-race.pcap"));
    assert!(of_kind(&race, "race-risk").is_empty(), "the races say it");
    let races = of_kind(&race, "keep-alive-race");
    assert_eq!(races.len(), 2);
    for f in races {
        let m = |name: &str| f["measures"][name].as_f64().unwrap();
        assert!(m("race_margin_s") < 0.0, "{f}");
        assert!(
            (m("race_margin_s") - (m("server_idle_close_s") - m("client_idle_max_s"))).abs()
                < 0.002
        );
        assert!(
            f["seen"]
                .as_str()
                .unwrap()
                .contains("which explains these races")
        );
    }
}

/// `timeout=75` (nginx's default `keepalive_timeout 75`) with idle connections kept past
/// 60 s: without probes that outlives common middlebox limits; with the client's probes it
/// holds.
#[test]
fn a_long_idle_timeout_without_tcp_keepalive_is_a_middlebox_finding() {
    let build = |probes: bool| {
        let mut conv = Conv::new();
        conv.handshake(1000, 5000);
        conv.send(C, &get("long/1"))
            .send(S, &ok("Keep-Alive: timeout=75\r\n"))
            .ack(C);
        if probes {
            for _ in 0..3 {
                conv.wait_ms(20_000);
                let seq = conv.next(C).wrapping_sub(1);
                conv.segment(C, seq, ACK, b"");
                conv.ack(S);
            }
            conv.wait_ms(15_000);
        } else {
            conv.wait_ms(75_000);
        }
        conv.close_by(S);
        conv.write(if probes { "probed" } else { "unprobed" })
    };
    let unprobed = findings(&build(false));
    let found = of_kind(&unprobed, "idle-beyond-middlebox");
    assert_eq!(found.len(), 1, "{unprobed:?}");
    assert_eq!(found[0]["measures"]["middlebox_idle_s"], 60.0);
    assert!(found[0]["measures"]["server_idle_s"].as_f64().unwrap() >= 75.0);
    assert_eq!(found[0]["severity"], "notice");
    let probed = build(true);
    let analysis = analyze(&probed);
    assert_eq!(analysis.connections[0].keepalive_client.probes, 3);
    assert_eq!(analysis.connections[0].keepalive_server.acks, 3);
    assert!(of_kind(&findings(&probed), "idle-beyond-middlebox").is_empty());
    // The recordings keep connections seconds, not minutes.
    for capture in [
        "pool-safe",
        "pool-risk",
        "pool-race",
        "tcp-keepalive",
        "nginx-keepalive-curl",
    ] {
        let found = findings(&recorded(&format!("{capture}.pcap")));
        assert!(
            of_kind(&found, "idle-beyond-middlebox").is_empty(),
            "{capture}"
        );
    }
}

/// A server that closes right after its responses has no idle timeout to race; a margin
/// contradicted by an answered reuse past the inferred timeout is no risk either.
#[test]
fn no_race_risk_without_a_real_idle_timeout() {
    let mut conv = Conv::new();
    for port in 40000..40004 {
        connection(&mut conv, client_at(port), "a/1", &[], 1, S);
    }
    connection(&mut conv, client_at(40010), "a/1", &[100], 1, S);
    let path = conv.write("closes-at-once");
    let analysis = analyze(&path);
    let b = &analysis.servers[0].behaviour;
    assert!(b.idle_timeout.inferred_ns().is_some_and(|t| t < 10_000_000));
    assert_eq!(b.race_margin_ns, None);
    assert!(of_kind(&findings(&path), "race-risk").is_empty());
    // Idle closes at 2 s, yet one client was answered after 2.5 s idle.
    let mut conv = Conv::new();
    for port in 40000..40003 {
        connection(&mut conv, client_at(port), "a/1", &[], 2000, S);
    }
    connection(&mut conv, client_at(40010), "a/1", &[2500], 2000, S);
    let path = conv.write("contradicted");
    assert!(analyze(&path).servers[0].behaviour.race_margin_ns.unwrap() < 0);
    assert!(of_kind(&findings(&path), "race-risk").is_empty());
}
