//! A lab for live-capture tests: two network namespaces joined by a veth pair (MTU 1500,
//! offloads off), nginx in the server one, clients run in the client one. Names are unique
//! to the test (`tag`) and the process; everything started is stopped, and the namespaces
//! removed, on drop, even when an assertion fails.
//!
//! These need root (CI runs as root). Without it the tests say so and pass, except under
//! `CI=true`, where missing privileges fail the run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::binary::KASCOPE;
use super::repo;

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// True when the test can run; false (with a note) when it must be skipped.
pub fn privileged(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root under CI");
    }
    eprintln!("note: {test} skipped: needs root (network namespaces, live capture)");
    false
}

pub fn sh(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(status.success(), "{args:?} failed");
}

pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

/// Two namespaces with nginx on the server side; everything started is stopped on drop.
pub struct Lab {
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    pub dir: PathBuf,
    children: Vec<Child>,
}

/// What two captures of the same traffic must report alike, per connection.
pub const SAME_TRAFFIC_FACTS: [&str; 8] = [
    "requests",
    "responses",
    "pipeline_depth",
    "closer",
    "max_verdict",
    "timeout_verdict",
    "race_request",
    "unanswered_requests",
];

pub const SERVER_IP: &str = "10.202.0.1";
pub const CLIENT_IP: &str = "10.202.0.2";

impl Lab {
    pub fn new(tag: &str) -> Lab {
        let id = std::process::id() % 100_000;
        let lab = Lab {
            server_ns: format!("ks{tag}{id}s"),
            client_ns: format!("ks{tag}{id}c"),
            server_if: format!("k{tag}{id}s"),
            client_if: format!("k{tag}{id}c"),
            dir: std::env::temp_dir().join(format!("kascope-live-{tag}-{id}")),
            children: Vec::new(),
        };
        lab.cleanup_namespaces();
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(lab.dir.join("www")).unwrap();
        let client_if = lab.client_if.clone();
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

    pub fn cleanup_namespaces(&self) {
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Starts nginx serving `tiny.txt` (200 bytes), `index.html` (4,200 bytes) and whatever
    /// was put in `www` (see [`Lab::serve`]).
    pub fn start_nginx(&mut self) {
        self.start_nginx_with("");
    }

    /// A file nginx serves, written into its root before it starts.
    pub fn serve(&self, name: &str, contents: &[u8]) {
        let path = self.dir.join("www").join(name);
        std::fs::write(&path, contents).unwrap();
        sh(&["chmod", "644", path.to_str().unwrap()]);
    }

    /// Starts nginx with `http_extra` (directives) added to its `http` block.
    pub fn start_nginx_with(&mut self, http_extra: &str) {
        let www = self.dir.join("www");
        self.serve("tiny.txt", &[b'x'; 200]);
        self.serve("index.html", "<html>".repeat(700).as_bytes());
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
                   keepalive_timeout 2 2; keepalive_requests 100; {http_extra}\n\
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
    pub fn fetch_and_close(&self, path: &str) -> bool {
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

    /// Fetches `paths` from nginx on one connection with curl (and `extra` options),
    /// asserting it succeeded.
    pub fn curl(&self, paths: &[&str], extra: &[&str]) {
        let urls: Vec<String> = paths
            .iter()
            .map(|path| format!("http://{SERVER_IP}{path}"))
            .collect();
        let mut args = vec!["curl", "-sf"];
        args.extend_from_slice(extra);
        for url in &urls {
            args.extend(["-o", "/dev/null", url.as_str()]);
        }
        assert!(self.client(&args), "curl {paths:?}");
    }

    /// Four connections: curl reusing one for 3 requests; one request with `Connection:
    /// close`; 5 requests pipelined in one write; one request, then idle past nginx's 2 s
    /// `keepalive_timeout`, so that the server closes. Takes about 3.5 s.
    pub fn reuse_traffic(&self) {
        self.curl(&["/tiny.txt", "/index.html", "/tiny.txt"], &[]);
        assert!(self.fetch_and_close("/tiny.txt"));
        let pipeline = self.pipeline_client();
        let sequential = self.sequential_client();
        for args in [
            &[
                "python3", &pipeline, "--host", SERVER_IP, "--port", "80", "--count", "5",
            ][..],
            &[
                "python3",
                &sequential,
                "/tiny.txt",
                "1",
                "--host",
                SERVER_IP,
                "--port",
                "80",
                "--idle",
                "3",
            ],
        ] {
            assert!(self.client(args), "{args:?}");
        }
    }

    /// Runs a command in the client namespace; true if it succeeded.
    pub fn client(&self, args: &[&str]) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.client_ns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts a capture process in the server namespace and waits for its ready line.
    pub fn start_in_server(&mut self, args: &[&str], ready: &str) -> u32 {
        self.start_in_server_with_log(args, ready, None)
    }

    /// The same, copying the process's standard error into `log` line by line.
    pub fn start_in_server_logged(&mut self, args: &[&str], ready: &str, log: &Path) -> u32 {
        self.start_in_server_with_log(args, ready, Some(log))
    }

    fn start_in_server_with_log(&mut self, args: &[&str], ready: &str, log: Option<&Path>) -> u32 {
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
        let mut log = log.map(|path| std::fs::File::create(path).expect("create the log"));
        std::thread::spawn(move || {
            let mut announced = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
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
    pub fn start_kascope(&mut self, csv: &Path, extra: &[&str]) -> u32 {
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

    pub fn wait_for(&mut self, pid: u32, limit: Duration) -> Option<i32> {
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

    pub fn pipeline_client(&self) -> String {
        repo()
            .join("captures/clients/pipeline.py")
            .display()
            .to_string()
    }

    pub fn sequential_client(&self) -> String {
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
pub fn nginx_lab(test: &str, tag: &str) -> Option<Lab> {
    if !privileged(test) {
        return None;
    }
    let mut lab = Lab::new(tag);
    lab.start_nginx();
    Some(lab)
}
