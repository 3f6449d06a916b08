//! The command line as a user meets it: bad inputs give one clear line and exit code 2,
//! damaged files give results plus a warning, and the CSV columns are the documented ones.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::binary::{KASCOPE, Table, TempPath, kascope, stderr, stdout};
use common::pcap::{CLIENT, Conv, Endpoint, SERVER};
use common::{recorded, repo};

/// A recorded capture as a command-line argument.
fn capture(name: &str) -> String {
    recorded(name).display().to_string()
}

fn assert_fails_clearly(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(output));
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "one line expected: {text}");
    assert!(text.contains(needle), "'{needle}' not in: {text}");
    assert!(!text.contains("panicked"));
}

#[test]
fn missing_file() {
    assert_fails_clearly(&kascope(&["/nonexistent/trace.pcap"]), "no such file");
}

#[test]
fn garbage_is_not_a_capture() {
    let path = TempPath::with("garbage.pcap", &[0x42; 4096]);
    assert_fails_clearly(&kascope(&[path.arg()]), "not a readable pcap");
}

#[test]
fn empty_file() {
    let path = TempPath::with("empty.pcap", b"");
    assert_fails_clearly(&kascope(&[path.arg()]), "empty file");
}

#[test]
fn bad_filter_expression() {
    let output = kascope(&[&capture("pipeline-5.pcap"), "tcp", "prot", "80"]);
    assert_fails_clearly(&output, "bad filter expression");
}

#[test]
fn filter_selects_traffic() {
    let output = kascope(&[
        &capture("nginx-keepalive-curl.pcap"),
        "tcp",
        "port",
        "81",
        "-q",
    ]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.starts_with("0 connections"), "{text}");
}

#[test]
fn truncated_last_record_gives_results_and_a_warning() {
    let whole = std::fs::read(recorded("pipeline-5.pcap")).unwrap();
    let path = TempPath::with("cut.pcap", &whole[..whole.len() - 40]);
    let output = kascope(&[path.arg(), "-q"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(stderr(&output).contains("warning") && stderr(&output).contains("cut short"));
    let text = stdout(&output);
    assert!(
        text.starts_with("1 connection (1 HTTP), 5 requests, 5 responses"),
        "{text}"
    );
}

#[test]
fn standard_input_and_several_files() {
    let file = std::fs::File::open(recorded("pipeline-5.pcap")).unwrap();
    let output = Command::new(KASCOPE)
        .args(["-", "-q"])
        .stdin(file)
        .output()
        .unwrap();
    assert!(stdout(&output).starts_with("1 connection (1 HTTP), 5 requests"));
    let output = kascope(&[
        "-r",
        &capture("pipeline-5.pcap"),
        "-r",
        &capture("connection-close.pcap"),
        "-q",
    ]);
    assert!(stdout(&output).starts_with("3 connections (3 HTTP), 7 requests"));
}

#[test]
fn csv_columns_are_the_documented_ones() {
    let connections = TempPath::new("c.csv");
    let transactions = TempPath::new("t.csv");
    let json = TempPath::new("c.jsonl");
    let servers = TempPath::new("s.csv");
    let output = kascope(&[
        "--servers-csv",
        servers.arg(),
        &capture("pipeline-5-apache.pcap"),
        "-q",
        "--csv",
        connections.arg(),
        "--transactions-csv",
        transactions.arg(),
        "--json",
        json.arg(),
    ]);
    assert!(output.status.success());
    let doc = std::fs::read_to_string(repo().join("docs/csv.md")).unwrap();
    let connection_table = Table::read(&connections);
    for column in connection_table
        .headers
        .iter()
        .chain(Table::read(&transactions).headers.iter())
    {
        assert!(
            doc.contains(&format!("`{column}`")),
            "column {column} is not documented"
        );
    }
    assert_eq!(connection_table.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&transactions)
            .unwrap()
            .lines()
            .count(),
        6
    );
    let line = std::fs::read_to_string(&json).unwrap();
    let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(value["requests"], 5);
    assert_eq!(value["closer"], "server-fin");
}

#[test]
fn fail_on_violation_sets_the_exit_status() {
    // Servers that kept their promises: exit 0 even with --fail-on.
    let kept = kascope(&[
        &capture("max-requests-apache.pcap"),
        "--servers",
        "--fail-on",
        "violation",
    ]);
    assert_eq!(kept.status.code(), Some(0), "stderr: {}", stderr(&kept));
    let text = stdout(&kept);
    assert!(
        text.contains("10.201.0.1:8080") && text.contains("kept"),
        "{text}"
    );
}

// ---- Pipes and standard output ------------------------------------------------------------

/// A capture of `n` half-open connections: more rows than a pipe holds.
fn many_connections(n: u16) -> TempPath {
    let mut conv = Conv::new().spaced_us(10);
    for i in 0..n {
        let client = Endpoint {
            port: 10_000 + i,
            ..CLIENT
        };
        conv.connection(client, SERVER).syn(u32::from(i) * 7919);
    }
    conv.write("many.pcap")
}

/// Runs kascope, reads a little of its standard output and closes it, as `| head` does.
fn read_a_little_and_close(args: &[&str]) -> Output {
    let mut child = Command::new(KASCOPE)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let capture = many_connections(3000);
    // Rows go out as connections end, so the pipe closes during the run, or (the report)
    // at its end.
    for extra in [&[][..], &["--csv", "-"], &["--json", "-"]] {
        let mut args = vec![capture.arg(), "--rows", "1000000"];
        args.extend_from_slice(extra);
        let output = read_a_little_and_close(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{extra:?}: {}",
            stderr(&output)
        );
        assert_eq!(stderr(&output), "", "{extra:?}: nothing said");
    }
}

#[test]
fn dash_sends_machine_output_to_stdout_and_the_report_to_stderr() {
    let dir = TempPath::new("cwd");
    std::fs::create_dir(&dir).unwrap();
    let run_in_dir = |args: &[&str]| {
        Command::new(KASCOPE)
            .args(args)
            .current_dir(&*dir)
            .output()
            .unwrap()
    };
    let json = run_in_dir(&[&capture("pipeline-5-apache.pcap"), "--json", "-"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let lines: Vec<String> = stdout(&json).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "one JSON line and nothing else: {lines:?}");
    let row: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(row["requests"], 5);
    assert!(stderr(&json).contains("1 connection (1 HTTP), 5 requests"));
    assert!(!dir.join("-").exists(), "no file named '-'");

    for args in [
        vec!["--csv", "/dev/stdout"],
        vec!["--csv", "-", "--servers-csv", "s.csv"],
    ] {
        let mut all = vec![capture("pipeline-5-apache.pcap")];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let csv = run_in_dir(&all);
        assert!(csv.status.success());
        let text = stdout(&csv);
        assert_eq!(text.lines().count(), 2, "header and one row only: {text}");
        assert!(text.starts_with("stream,client,server,"), "{text}");
    }

    // Standard output redirected to the file --csv names: the file is the CSV alone.
    let out = dir.join("out.csv");
    let redirected = Command::new(KASCOPE)
        .args([
            &capture("pipeline-5-apache.pcap"),
            "--csv",
            out.to_str().unwrap(),
        ])
        .stdout(std::fs::File::create(&out).unwrap())
        .output()
        .unwrap();
    assert!(redirected.status.success());
    let table = Table::read(&out);
    assert_eq!(table.len(), 1);
    assert_eq!(table.headers[0], "stream");
    assert!(stderr(&redirected).contains("1 connection"));
    let _ = std::fs::remove_dir_all(&*dir);
}

#[test]
fn an_output_that_cannot_be_written_is_named() {
    let output = kascope(&[&capture("pipeline-5.pcap"), "--csv", "/dev/full"]);
    assert_fails_clearly(&output, "/dev/full");
    assert!(
        stderr(&output).contains("No space left"),
        "{}",
        stderr(&output)
    );
}

// ---- Tables --------------------------------------------------------------------------------

fn with_columns(columns: &str, args: &[&str]) -> Output {
    Command::new(KASCOPE)
        .args(args)
        .env("COLUMNS", columns)
        .output()
        .unwrap()
}

#[test]
fn tables_fit_the_width_and_wide_shows_everything() {
    for name in [
        "race-nginx.pcap",
        "pipeline-5-apache.pcap",
        "max-requests-apache.pcap",
    ] {
        for width in [60, 80, 100, 132] {
            let output = with_columns(&width.to_string(), &[&capture(name)]);
            let text = stdout(&output);
            // The tables: from each header line to the blank line after it.
            let mut in_table = false;
            let mut tables = 0;
            for line in text.lines() {
                if line.starts_with("stream") || line.starts_with("server ") {
                    in_table = true;
                    tables += 1;
                }
                in_table &= !line.is_empty();
                assert!(
                    !in_table || line.chars().count() <= width,
                    "{name} at {width}: {line:?} is {} wide",
                    line.chars().count()
                );
            }
            assert_eq!(tables, 2, "{text}");
        }
        // --wide, or no terminal and no COLUMNS: every column.
        for output in [
            with_columns("80", &[&capture(name), "--wide"]),
            kascope(&[&capture(name)]),
        ] {
            let text = stdout(&output);
            let headers: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("stream") || l.starts_with("server "))
                .collect();
            assert_eq!(headers.len(), 2, "{text}");
            for header in kascope::report::table_headers() {
                assert!(
                    headers.iter().any(|h| h.contains(header)),
                    "{header} missing in {headers:?}"
                );
            }
            assert!(!text.contains("--wide shows them"), "{text}");
        }
    }
    let narrow = stdout(&with_columns("80", &[&capture("race-nginx.pcap")]));
    assert!(narrow.contains("hidden to fit 80 columns:"), "{narrow}");
}

#[test]
fn every_table_column_is_explained_in_help_and_docs() {
    let help = stdout(&kascope(&["--help"]));
    let docs = std::fs::read_to_string(repo().join("docs/tables.md")).unwrap();
    for header in kascope::report::table_headers() {
        assert!(
            help.contains(&format!("  {header}  ")),
            "--help lacks {header}"
        );
        assert!(
            docs.contains(&format!("| `{header}` |")),
            "docs/tables.md lacks {header}"
        );
    }
    // Short help stays short.
    assert!(!stdout(&kascope(&["-h"])).contains("Connection table columns"));
}

/// The stream numbers of the connection table's rows, in order.
fn table_streams(text: &str) -> Vec<u64> {
    text.lines()
        .skip_while(|line| !line.starts_with("stream"))
        .skip(1)
        .map_while(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn only_and_sort_pick_the_rows() {
    let race = capture("race-nginx.pcap");
    let csv = TempPath::new("race.csv");
    let all = kascope(&[&race, "--csv", csv.arg()]);
    assert_eq!(table_streams(&stdout(&all)), [0, 1, 2]);
    let rows = Table::read(&csv);
    let raced: Vec<u64> = (0..rows.len())
        .filter(|&i| !rows.column(i, "race_request").is_empty())
        .map(|i| rows.column(i, "stream").parse().unwrap())
        .collect();
    let only = stdout(&kascope(&[&race, "--only", "races"]));
    assert_eq!(table_streams(&only), raced, "{only}");
    assert!(
        only.contains("(2 of 3 connections match --only races)"),
        "{only}"
    );
    let none = stdout(&kascope(&[&race, "--only", "violations"]));
    assert_eq!(table_streams(&none), Vec::<u64>::new());

    // --sort dur: longest first, as the CSV's duration_s says.
    let mut by_duration: Vec<(f64, u64)> = (0..rows.len())
        .map(|i| {
            (
                rows.column(i, "duration_s").parse().unwrap(),
                rows.column(i, "stream").parse().unwrap(),
            )
        })
        .collect();
    by_duration.sort_by(|a, b| b.0.total_cmp(&a.0));
    let expected: Vec<u64> = by_duration.iter().map(|(_, s)| *s).collect();
    let sorted = stdout(&kascope(&[&race, "--sort", "dur", "--rows", "2"]));
    assert_eq!(table_streams(&sorted), expected[..2], "{sorted}");
    assert!(
        sorted.contains("... 1 more connection not shown"),
        "{sorted}"
    );
    let bad = kascope(&[&race, "--sort", "bogus"]);
    assert_fails_clearly(&bad, "possible values");
}

// ---- tcpdump habits ------------------------------------------------------------------------

#[test]
fn tcpdump_flags_are_accepted() {
    let file = capture("pipeline-5.pcap");
    let plain = kascope(&[&file]);
    let numeric = kascope(&["-n", &file]);
    assert!(numeric.status.success());
    assert_eq!(stdout(&numeric), stdout(&plain), "-n changes nothing");
    assert!(kascope(&["-nn", "-vv", &file]).status.success());

    // -c applies to files too.
    let counted = kascope(&["-c", "7", &file, "-q"]);
    assert!(
        stdout(&counted).contains("; 7 frames,"),
        "{}",
        stdout(&counted)
    );

    let verbose = kascope(&["-v", &file, "-q"]);
    let said = stderr(&verbose);
    assert!(
        said.contains(&format!("reading {file}")) && said.contains("read 30 frames"),
        "{said}"
    );

    let version = stdout(&kascope(&["--version"]));
    assert!(
        version.starts_with("kascope ") && version.contains("libpcap version"),
        "{version}"
    );

    let unknown = kascope(&["-X", &file]);
    assert_fails_clearly(&unknown, "'-X'");
    assert!(!stderr(&unknown).contains("-- -X"), "no advice to use --");
}

#[test]
fn a_wireshark_display_filter_gets_the_bpf_equivalent() {
    let file = capture("pipeline-5.pcap");
    for (words, bpf) in [
        (&["tcp.port==80"][..], "tcp port 80"),
        (&["tcp.port", "==", "80"], "tcp port 80"),
        (
            &["ip.src == 10.201.0.2 && tcp.dstport == 80"],
            "src host 10.201.0.2 and tcp dst port 80",
        ),
    ] {
        let mut args = vec![file.as_str()];
        args.extend_from_slice(words);
        let output = kascope(&args);
        assert_fails_clearly(&output, &format!("write '{bpf}'"));
        assert!(stderr(&output).contains("BPF"));
        // And the equivalent works.
        let mut fixed = vec![file.as_str()];
        fixed.extend(bpf.split(' '));
        assert!(kascope(&fixed).status.success(), "{bpf}");
    }
}

// ---- Files and filter words ----------------------------------------------------------------

#[test]
fn files_and_filter_words_follow_one_rule() {
    let file = capture("pipeline-5.pcap");
    let other = capture("chunked.pcap");
    assert_fails_clearly(&kascope(&[&file, "-r", &other]), "with -r");
    assert_fails_clearly(
        &kascope(&["mistyped", "port", "80"]),
        "mistyped: no such file",
    );
    assert_fails_clearly(
        &kascope(&[&file, "trace2.pcap"]),
        "trace2.pcap: no such file",
    );
    assert_fails_clearly(&kascope(&[]), "no capture file given");

    // A file named like a filter word in the current folder does not take its place.
    let dir = TempPath::new("words");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("port"), b"not a capture").unwrap();
    let output = Command::new(KASCOPE)
        .args([&file, "port", "80", "-q"])
        .current_dir(&*dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("1 connection (1 HTTP)"),
        "{}",
        stdout(&output)
    );
    let _ = std::fs::remove_dir_all(&*dir);
}

// ---- Options -------------------------------------------------------------------------------

#[test]
fn numeric_options_out_of_range_are_refused() {
    let file = capture("pipeline-5.pcap");
    for (option, value) in [
        ("--max-memory", "1K"),
        ("--max-memory", "2000T"),
        ("--max-memory", "99999999999999999999"),
        ("--reassembly-limit", "1"),
        ("--reassembly-limit", "4GiB"),
        ("--idle-timeout", "0"),
        ("--idle-timeout", "400d"),
        ("--duration", "100000000000000000000"),
        ("--duration", "1e300"),
        ("--duration", "0"),
        ("-c", "0"),
        ("-c", "-5"),
        ("--rows", "0"),
        ("--rows", "99999999999"),
        ("-s", "10"),
        ("-s", "1MiB"),
        ("--timeout-tolerance", "-1"),
        ("--timeout-tolerance", "inf"),
        ("--race-window", "2h"),
        ("--race-window", "NaN"),
    ] {
        let output = kascope(&[&file, option, value]);
        assert_fails_clearly(&output, option);
        assert!(
            stderr(&output).contains(value),
            "{option} {value}: {}",
            stderr(&output)
        );
    }
    for (option, value) in [
        ("--reassembly-limit", "4MiB"),
        ("--max-memory", "64MiB"),
        ("--idle-timeout", "5m"),
        ("--timeout-tolerance", "100ms"),
        ("--race-window", "0"),
        ("-c", "1_000"),
        ("-s", "0"),
    ] {
        let output = kascope(&[&file, option, value, "-q"]);
        assert!(
            output.status.success(),
            "{option} {value}: {}",
            stderr(&output)
        );
    }
    assert_fails_clearly(&kascope(&[&file, "--duration", "5s"]), "live capture");
}

#[test]
fn quiet_and_servers_print_different_parts() {
    let file = capture("max-requests-apache.pcap");
    let is_table_header = |line: &str| line.starts_with("stream ") || line.starts_with("server ");
    let quiet = stdout(&kascope(&["-q", &file]));
    assert!(quiet.starts_with("1 connection (1 HTTP)"), "{quiet}");
    assert!(
        !quiet.lines().any(is_table_header),
        "-q: no tables: {quiet}"
    );
    let servers = stdout(&kascope(&["--servers", &file]));
    let headers: Vec<&str> = servers.lines().filter(|l| is_table_header(l)).collect();
    assert_eq!(
        headers.len(),
        1,
        "--servers: the server table only: {servers}"
    );
    assert!(headers[0].starts_with("server "));
    assert!(
        !servers.contains(" HTTP), ") && !servers.contains("findings"),
        "{servers}"
    );
}

#[test]
fn outputs_are_refused_or_not_created_when_the_run_cannot_start() {
    let dir = TempPath::new("outs");
    std::fs::create_dir(&dir).unwrap();
    let csv = dir.join("x.csv");
    let csv = csv.to_str().unwrap();
    assert_fails_clearly(
        &kascope(&["/nonexistent.pcap", "--csv", csv]),
        "no such file",
    );
    let file = capture("pipeline-5.pcap");
    assert_fails_clearly(
        &kascope(&[&file, "--csv", csv, "tcp", "prot", "80"]),
        "bad filter",
    );
    assert!(!Path::new(csv).exists(), "no empty x.csv left behind");

    assert_fails_clearly(&kascope(&[&file, "--csv", csv, "--json", csv]), "own file");
    assert_fails_clearly(&kascope(&[&file, "--csv", "-", "--json", "-"]), "own file");
    let copy = dir.join("copy.pcap");
    std::fs::copy(recorded("pipeline-5.pcap"), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let copy = copy.to_str().unwrap();
    assert_fails_clearly(&kascope(&[copy, "--servers-csv", copy]), "is an input");
    assert_eq!(
        std::fs::read(copy).unwrap(),
        before,
        "the input is untouched"
    );
    let _ = std::fs::remove_dir_all(&*dir);
}

#[test]
fn counts_are_spelled_in_the_singular_for_one() {
    let one = stdout(&kascope(&[&capture("pipeline-5-apache.pcap")]));
    assert!(
        one.contains("1 connection (1 HTTP), 5 requests, 4 responses"),
        "{one}"
    );
    assert!(!one.contains("1 connections"));
    let frame = stdout(&kascope(&[
        "-c",
        "1",
        "-q",
        &capture("pipeline-5-apache.pcap"),
    ]));
    assert!(frame.contains("; 1 frame, 1 TCP segment\n"), "{frame}");
    let three = stdout(&kascope(&["-q", &capture("race-nginx.pcap")]));
    assert!(
        three.starts_with("3 connections (3 HTTP), 6 requests, 4 responses"),
        "{three}"
    );
}

// ---- Time in outputs -----------------------------------------------------------------------

/// `date -u` for epoch seconds with microseconds: `2026-11-25T17:38:35.273867Z`.
fn date_utc(epoch: &str) -> String {
    let (seconds, micros) = epoch.split_once('.').unwrap();
    let output = Command::new("date")
        .args(["-u", "-d", &format!("@{seconds}"), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .unwrap();
    format!("{}.{micros}Z", stdout(&output).trim())
}

#[test]
fn iso_times_in_csv_and_numbers_in_json() {
    let file = capture("race-nginx.pcap");
    let (epoch, iso, tx, json) = (
        TempPath::new("e.csv"),
        TempPath::new("i.csv"),
        TempPath::new("t.csv"),
        TempPath::new("j.jsonl"),
    );
    assert!(
        kascope(&[&file, "-q", "--csv", epoch.arg(), "--json", json.arg()])
            .status
            .success()
    );
    let run = kascope(&[
        &file,
        "-q",
        "--time-format",
        "iso",
        "--csv",
        iso.arg(),
        "--transactions-csv",
        tx.arg(),
    ]);
    assert!(run.status.success());
    let (epoch, iso) = (Table::read(&epoch), Table::read(&iso));
    assert_eq!(epoch.len(), iso.len());
    for row in 0..epoch.len() {
        for column in ["first_ts", "last_ts", "syn_ts", "close_ts", "server_fin_ts"] {
            let seconds = epoch.column(row, column);
            if !seconds.is_empty() {
                assert_eq!(iso.column(row, column), date_utc(seconds), "{column}");
            }
        }
        // Durations stay seconds.
        assert_eq!(
            iso.column(row, "duration_s"),
            epoch.column(row, "duration_s")
        );
    }
    let tx = Table::read(&tx);
    assert!(
        tx.column(0, "request_ts").ends_with('Z'),
        "{}",
        tx.column(0, "request_ts")
    );
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&json)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        first["first_ts"].as_f64(),
        epoch.column(0, "first_ts").parse().ok(),
        "JSON times are epoch numbers"
    );
    assert!(first["duration_s"].is_f64() && first["flags"].is_array());
}

// ---- Man page and completions --------------------------------------------------------------

/// The generated files and what the command-line definition makes of them now.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut files = Vec::new();
    let mut man = Vec::new();
    clap_mangen::Man::new(kascope::cli::Cli::command())
        .render(&mut man)
        .unwrap();
    files.push((repo().join("man/kascope.1"), man));
    for (shell, name) in [
        (Shell::Bash, "kascope.bash"),
        (Shell::Zsh, "_kascope"),
        (Shell::Fish, "kascope.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(
            shell,
            &mut kascope::cli::Cli::command(),
            "kascope",
            &mut script,
        );
        files.push((repo().join("completions").join(name), script));
    }
    files
}

/// `KASCOPE_REGENERATE=1 cargo test --release --test cli generated` rewrites them.
#[test]
fn generated_man_page_and_completions_are_current() {
    let regenerate = std::env::var_os("KASCOPE_REGENERATE").is_some();
    for (path, now) in generated() {
        if regenerate {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &now).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == now,
            "{} is out of date: run KASCOPE_REGENERATE=1 cargo test --release --test cli generated",
            path.display()
        );
    }
}

#[test]
fn the_man_page_renders() {
    let output = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(repo().join("man/kascope.1"))
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .output()
        .expect("man (man-db) is installed by scripts/install-deps.sh");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "", "groff warnings");
    let text = stdout(&output);
    for needle in [
        "NAME",
        "SYNOPSIS",
        "--max-memory",
        "Connection table columns",
        "idle-cls",
    ] {
        assert!(text.contains(needle), "{needle} not in the rendered page");
    }
    let bash = Command::new("bash")
        .arg("-n")
        .arg(repo().join("completions/kascope.bash"))
        .output()
        .unwrap();
    assert!(bash.status.success(), "bash completion: {}", stderr(&bash));
}
