//! Live capture against real traffic: two network namespaces joined by a veth pair (MTU
//! 1500), nginx in one, curl and the raw-socket clients of `captures/clients` in the other,
//! kascope capturing on the server-side veth while tcpdump records the same traffic.
//!
//! These need root (CI runs as root). Without it they say so and pass, except under
//! `CI=true`, where missing privileges fail the run. Namespaces and processes are removed by
//! a guard even when an assertion fails.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::binary::{KASCOPE, Table, kascope, stderr};
use common::repo;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// True when the test can run; false (with a note) when it must be skipped.
fn privileged(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root under CI");
    }
    eprintln!("note: {test} skipped: needs root (network namespaces, live capture)");
    false
}

fn sh(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(status.success(), "{args:?} failed");
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

/// Two namespaces with nginx on the server side; everything started is stopped on drop.
struct Lab {
    server_ns: String,
    client_ns: String,
    server_if: String,
    dir: PathBuf,
    children: Vec<Child>,
}

const SERVER_IP: &str = "10.202.0.1";
const CLIENT_IP: &str = "10.202.0.2";

impl Lab {
    fn new(tag: &str) -> Lab {
        let id = std::process::id() % 100_000;
        let lab = Lab {
            server_ns: format!("ks{tag}{id}s"),
            client_ns: format!("ks{tag}{id}c"),
            server_if: format!("k{tag}{id}s"),
            dir: std::env::temp_dir().join(format!("kascope-live-{tag}-{id}")),
            children: Vec::new(),
        };
        lab.cleanup_namespaces();
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(lab.dir.join("www")).unwrap();
        let client_if = format!("k{tag}{id}c");
        let (s, c) = (lab.server_ns.as_str(), lab.client_ns.as_str());
        sh(&["ip", "netns", "add", s]);
        sh(&["ip", "netns", "add", c]);
        sh(&[
            "ip",
            "link",
            "add",
            &lab.server_if,
            "netns",
            s,
            "type",
            "veth",
            "peer",
            "name",
            &client_if,
            "netns",
            c,
        ]);
        for (ns, dev, ip) in [
            (s, lab.server_if.as_str(), SERVER_IP),
            (c, client_if.as_str(), CLIENT_IP),
        ] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                dev,
            ]);
            sh(&["ip", "-n", ns, "link", "set", dev, "mtu", "1500", "up"]);
            // Real wire-sized segments; ethtool may be missing on a minimal machine.
            let _ = Command::new("ip")
                .args([
                    "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro",
                    "off",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        lab
    }

    fn cleanup_namespaces(&self) {
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }

    fn start_nginx(&mut self) {
        let www = self.dir.join("www");
        std::fs::write(www.join("tiny.txt"), "x".repeat(200)).unwrap();
        std::fs::write(www.join("index.html"), "<html>".repeat(700)).unwrap();
        for path in [&self.dir, &www] {
            sh(&["chmod", "755", path.to_str().unwrap()]);
        }
        let conf = self.dir.join("nginx.conf");
        let tmp = self.dir.display();
        std::fs::write(
            &conf,
            format!(
                "daemon off; master_process off; worker_processes 1;\n\
                 pid {tmp}/nginx.pid; error_log {tmp}/error.log warn;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{ access_log off;\n\
                   client_body_temp_path {tmp}/t1; proxy_temp_path {tmp}/t2;\n\
                   fastcgi_temp_path {tmp}/t3; uwsgi_temp_path {tmp}/t4; scgi_temp_path {tmp}/t5;\n\
                   keepalive_timeout 2 2; keepalive_requests 100;\n\
                   server {{ listen {SERVER_IP}:80; root {}; }} }}\n",
                www.display()
            ),
        )
        .unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server_ns,
                "nginx",
                "-c",
                conf.to_str().unwrap(),
            ])
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        self.children.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.client(&[
            "curl",
            "-sf",
            "-o",
            "/dev/null",
            &format!("http://{SERVER_IP}/tiny.txt"),
        ]) {
            assert!(Instant::now() < deadline, "nginx did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fetches `path` from nginx on a connection of its own (`Connection: close`); true if
    /// it succeeded.
    fn fetch_and_close(&self, path: &str) -> bool {
        self.client(&[
            "curl",
            "-sf",
            "-o",
            "/dev/null",
            "-H",
            "Connection: close",
            &format!("http://{SERVER_IP}{path}"),
        ])
    }

    /// Runs a command in the client namespace; true if it succeeded.
    fn client(&self, args: &[&str]) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.client_ns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts a capture process in the server namespace and waits for its ready line.
    fn start_in_server(&mut self, args: &[&str], ready: &str) -> u32 {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.server_ns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let wanted = ready.to_string();
        std::thread::spawn(move || {
            let mut announced = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !announced && line.contains(&wanted) {
                    announced = true;
                    let _ = sender.send(());
                }
            }
        });
        receiver
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{args:?} never said '{ready}'"));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Starts kascope capturing on the server-side veth, writing connections to `csv`.
    fn start_kascope(&mut self, csv: &Path, extra: &[&str]) -> u32 {
        let interface = self.server_if.clone();
        let mut args = vec![
            KASCOPE,
            "-i",
            &interface,
            "--no-progress",
            "--csv",
            csv.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.start_in_server(&args, "capturing on")
    }

    fn wait_for(&mut self, pid: u32, limit: Duration) -> Option<i32> {
        let child = self.children.iter_mut().find(|c| c.id() == pid)?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pipeline_client(&self) -> String {
        repo()
            .join("captures/clients/pipeline.py")
            .display()
            .to_string()
    }

    fn sequential_client(&self) -> String {
        repo()
            .join("captures/clients/sequential.py")
            .display()
            .to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.cleanup_namespaces();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A lab named `tag` with nginx up, or `None` when `test` must be skipped.
fn nginx_lab(test: &str, tag: &str) -> Option<Lab> {
    if !privileged(test) {
        return None;
    }
    let mut lab = Lab::new(tag);
    lab.start_nginx();
    Some(lab)
}

/// Per client address: the facts live and offline analysis must agree on.
fn rows(path: &Path) -> BTreeMap<String, Vec<String>> {
    let table = Table::read(path);
    let fields = [
        "requests",
        "responses",
        "pipeline_depth",
        "closer",
        "max_verdict",
        "timeout_verdict",
        "race_request",
        "unanswered_requests",
    ];
    (0..table.len())
        .map(|row| {
            let key = table.column(row, "client").to_string();
            (
                key,
                fields
                    .iter()
                    .map(|f| table.column(row, f).to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn live_capture_matches_tcpdump_of_the_same_traffic() {
    let Some(mut lab) = nginx_lab("live_capture_matches_tcpdump_of_the_same_traffic", "l") else {
        return;
    };
    let pcap = lab.dir.join("same.pcap");
    let live_csv = lab.dir.join("live.csv");
    let offline_csv = lab.dir.join("offline.csv");
    let interface = lab.server_if.clone();
    let tcpdump = lab.start_in_server(
        &[
            "tcpdump",
            "-i",
            &interface,
            "-s",
            "0",
            "--immediate-mode",
            "-U",
            "-w",
            pcap.to_str().unwrap(),
            "tcp",
        ],
        "listening on",
    );
    // -w saves what kascope captured while it analyses it.
    let saved = lab.dir.join("saved.pcap");
    let capturing = lab.start_kascope(&live_csv, &["-w", saved.to_str().unwrap()]);

    let url = |path: &str| format!("http://{SERVER_IP}{path}");
    assert!(lab.client(&[
        "curl",
        "-sf",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        &url("/tiny.txt"),
        &url("/index.html"),
        &url("/tiny.txt")
    ]));
    assert!(lab.fetch_and_close("/tiny.txt"));
    let pipeline = lab.pipeline_client();
    assert!(lab.client(&[
        "python3", &pipeline, "--host", SERVER_IP, "--port", "80", "--count", "5"
    ]));
    // Idle past nginx's 2 s keepalive_timeout: the server closes.
    let sequential = lab.sequential_client();
    assert!(lab.client(&[
        "python3",
        &sequential,
        "/tiny.txt",
        "1",
        "--host",
        SERVER_IP,
        "--port",
        "80",
        "--idle",
        "3"
    ]));
    std::thread::sleep(Duration::from_millis(1500));

    signal(capturing, "INT");
    assert_eq!(
        lab.wait_for(capturing, Duration::from_secs(10)),
        Some(0),
        "kascope exit status after SIGINT"
    );
    signal(tcpdump, "INT");
    lab.wait_for(tcpdump, Duration::from_secs(10));

    let offline = kascope(&[
        pcap.to_str().unwrap(),
        "-q",
        "--csv",
        offline_csv.to_str().unwrap(),
    ]);
    assert!(offline.status.success());
    let live = rows(&live_csv);
    let recorded = rows(&offline_csv);
    assert_eq!(live, recorded, "live and tcpdump-based analysis disagree");
    assert_eq!(live.len(), 4, "connections: {live:#?}");
    let depths: Vec<&str> = live.values().map(|r| r[2].as_str()).collect();
    assert!(depths.contains(&"5"), "the pipelined connection: {live:#?}");
    let reused: Vec<&str> = live.values().map(|r| r[0].as_str()).collect();
    assert!(
        reused.contains(&"3"),
        "curl reused its connection: {live:#?}"
    );
    assert!(
        live.values()
            .any(|r| r[3] == "server-fin" && r[5] == "honoured"),
        "the idle connection closed by nginx at its timeout: {live:#?}"
    );

    // The file -w saved holds the packets tcpdump saw, and reads back to the same rows.
    assert_eq!(
        packet_count(&saved),
        packet_count(&pcap),
        "packets in kascope -w and tcpdump -w files"
    );
    let saved_csv = lab.dir.join("saved.csv");
    let reread = kascope(&[
        saved.to_str().unwrap(),
        "-q",
        "--csv",
        saved_csv.to_str().unwrap(),
    ]);
    assert!(reread.status.success(), "{}", stderr(&reread));
    assert_eq!(rows(&saved_csv), live, "the saved capture analysed offline");
}

/// Packets in a capture file, as tshark counts them.
fn packet_count(path: &Path) -> usize {
    let output = Command::new("tshark")
        .args([
            "-r",
            path.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("tshark is installed by scripts/install-deps.sh");
    assert!(output.status.success(), "tshark -r {}", path.display());
    String::from_utf8_lossy(&output.stdout).lines().count()
}

#[test]
fn rows_written_before_sigkill_survive() {
    let Some(mut lab) = nginx_lab("rows_written_before_sigkill_survive", "k") else {
        return;
    };
    let csv_path = lab.dir.join("live.csv");
    let capturing = lab.start_kascope(&csv_path, &[]);
    for _ in 0..3 {
        assert!(lab.fetch_and_close("/tiny.txt"));
    }
    std::thread::sleep(Duration::from_millis(800));
    signal(capturing, "KILL");
    lab.wait_for(capturing, Duration::from_secs(5));
    let written = rows(&csv_path);
    assert_eq!(written.len(), 3, "rows: {written:#?}");
    for row in written.values() {
        assert_eq!((row[0].as_str(), row[1].as_str()), ("1", "1"));
    }
}

#[test]
fn unprivileged_capture_says_what_is_missing() {
    if !privileged("unprivileged_capture_says_what_is_missing") {
        return;
    }
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            KASCOPE,
            "-i",
            "lo",
        ])
        .output()
        .expect("setpriv (util-linux)");
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("CAP_NET_RAW") && stderr.contains("setcap"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn unknown_interface_lists_the_real_ones() {
    let output = kascope(&["-i", "nosuchif0"]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nosuchif0") && stderr.contains("interfaces:") && stderr.contains("lo"),
        "{stderr}"
    );
}
