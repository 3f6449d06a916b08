//! What servers and clients really do: TCP keep-alive probes against tshark, and the
//! inferred idle timeouts, request limits, reuse gaps and race margins on recordings of real
//! nginx and Apache servers driven by real client pools (`captures/record.sh`), plus the
//! edge cases no real stack produces on demand, built with `common::pcap::Conv`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{analyze, corpus, read_oracle, recorded, repo};

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
