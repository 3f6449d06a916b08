//! Inputs that once crashed or hung kascope (found by fuzzing, `fuzz/regressions/`), replayed
//! through the binary on stable. The byte-level HTTP ones are unit tests in `src/http.rs`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::binary::KASCOPE;

#[test]
fn fuzz_found_captures_finish() {
    let dir = common::repo().join("fuzz/regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".pcap.gz") {
            continue;
        }
        let mut child = Command::new(KASCOPE)
            .arg(&path)
            .arg("-q")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{} still running after 60 s: the hang is back",
                    path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{}: {status}", path.display());
        replayed += 1;
    }
    assert!(replayed >= 2, "only {replayed} regression captures");
}
