//! Traffic from elsewhere that no stack here produces on demand, built in code: tunnels
//! (IP-in-IP, GRE, ERSPAN, VXLAN, Geneve), damaged TCP headers, one-sided captures, the text
//! protocols that look like HTTP (SMTP, FTP, POP3, IMAP) and heads httparse refuses.
//!
//! Each capture is also committed as `tests/built/NAME.pcap` with what tshark makes of it:
//! `NAME.streams.csv` (the corpus oracle tool) and `NAME.frames.csv` (`tcp.stream` and
//! `frame.protocols` of every frame), both written by `tests/built/make_fixtures.sh`. The
//! builders must still produce the committed bytes, so the fixtures are of what is tested.

mod common;

use std::path::PathBuf;

use common::binary::{kascope, stdout};
use common::pcap::{C, CLIENT, Conv, Endpoint, S, SERVER, Side};
use common::tunnel;
use common::{Analysis, Disagreement, Judged, OracleRow, analyze, compare, read_oracle, repo};
use kascope::decode::Encapsulation;
use kascope::http::Protocol;
use kascope::named::Named;
use kascope::record::{ConnectionRecord, Flag};

fn dir() -> PathBuf {
    repo().join("tests/built")
}

fn client(port: u16) -> Endpoint {
    Endpoint { port, ..CLIENT }
}

fn server(port: u16) -> Endpoint {
    Endpoint { port, ..SERVER }
}

/// The client port of a frame `Conv` built (Ethernet, IPv4 without options, TCP).
fn client_port(frame: &[u8]) -> u16 {
    let ports = [
        u16::from_be_bytes([frame[34], frame[35]]),
        u16::from_be_bytes([frame[36], frame[37]]),
    ];
    ports[0].max(ports[1])
}

fn from_server(frame: &[u8]) -> bool {
    frame[26..30] == SERVER.ip
}

/// One GET and its response on a connection of its own, opened and closed cleanly.
fn get(c: &mut Conv, port: u16, path: &str) {
    get_body(c, port, path, &format!("<p>{path}</p>\n"));
}

/// [`get`] with the response's `body`.
fn get_body(c: &mut Conv, port: u16, path: &str, body: &str) {
    c.connection(client(port), SERVER)
        .handshake(1000, 5000)
        .send(
            C,
            format!("GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n").as_bytes(),
        )
        .send(
            S,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .ack(C)
        .close_by(C);
}

/// One connection per port, each a GET, wrapped by `wrap(port, frame)`.
fn tunnelled(ports: &[u16], mut wrap: impl FnMut(u16, &[u8]) -> Vec<Vec<u8>>) -> Vec<u8> {
    let mut c = Conv::new();
    for &port in ports {
        get(&mut c, port, &format!("/via/{port}"));
    }
    c.rewritten(|frame| wrap(client_port(frame), frame))
}

fn tunnel_ip_in_ip() -> Vec<u8> {
    tunnelled(&[41001, 41002, 41003, 41004], |port, frame| {
        let (outer_v6, inner_v6) = match port {
            41001 => (false, false),
            41002 => (false, true),
            41003 => (true, false),
            _ => (true, true),
        };
        vec![tunnel::ip_in_ip(frame, outer_v6, inner_v6)]
    })
}

fn tunnel_gre() -> Vec<u8> {
    let mut sequence = 0;
    tunnelled(&[42001, 42002, 42003], |port, frame| {
        sequence += 1;
        vec![match port {
            42001 => tunnel::gre_ip(frame),
            42002 => tunnel::gre_ethernet(frame, sequence),
            _ => tunnel::pptp(frame, sequence),
        }]
    })
}

fn tunnel_erspan() -> Vec<u8> {
    let mut sequence = 0;
    tunnelled(&[43001, 43002, 43003, 43004], |port, frame| {
        sequence += 1;
        let (version, subheader) = match port {
            43001 => (1, false),
            43002 => (2, false),
            43003 => (3, false),
            _ => (3, true),
        };
        vec![tunnel::erspan(frame, version, sequence, subheader)]
    })
}

/// An ARP request, to show that a tunnelled frame without TCP is counted too.
const ARP: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1, 2,
    0, 0, 0, 0, 2, 10, 9, 0, 2, 0, 0, 0, 0, 0, 0, 10, 9, 0, 1,
];

fn tunnel_vxlan() -> Vec<u8> {
    let mut first = true;
    tunnelled(&[44001, 44002], |_, frame| {
        let mut frames = Vec::new();
        if std::mem::take(&mut first) {
            frames.push(tunnel::vxlan(ARP));
        }
        frames.push(tunnel::vxlan(frame));
        frames
    })
}

fn tunnel_geneve() -> Vec<u8> {
    tunnelled(&[45001, 45002], |port, frame| {
        vec![tunnel::geneve(frame, port == 45002)]
    })
}

/// TCP segments (and a tunnel's packets) sent in IP fragments, as hosts send them past a
/// link of smaller MTU without path-MTU discovery: a GET and a 1,200-byte response per port;
/// every frame with more than 100 bytes of IP payload goes in pieces of 512 bytes (`piece`
/// 504 on the tunnel, whose outer packet is cut). By port: IPv4 in order; IPv4 last piece
/// first; IPv6 (Fragment header) in order; VXLAN with the outer IPv4 in fragments; IPv4
/// with one piece of the response lost, so that its datagram never completes.
fn ip_fragments() -> Vec<u8> {
    let mut c = Conv::new();
    for port in 46001..=46005u16 {
        get_body(&mut c, port, "/big", &"x".repeat(1200));
    }
    let mut id = 0u16;
    c.rewritten(|frame| {
        let port = client_port(frame);
        let ip_payload = usize::from(u16::from_be_bytes([frame[16], frame[17]])) - 20;
        if ip_payload <= 100 {
            return vec![match port {
                46003 => tunnel::ipv6_frame(frame),
                46004 => tunnel::vxlan(frame),
                _ => frame.to_vec(),
            }];
        }
        id += 1;
        match port {
            46001 => tunnel::ipv4_fragments(frame, 512, id),
            46002 => {
                let mut pieces = tunnel::ipv4_fragments(frame, 512, id);
                pieces.rotate_right(1);
                pieces
            }
            46003 => tunnel::ipv6_fragments(frame, 512, u32::from(id)),
            46004 => tunnel::ipv4_fragments(&tunnel::vxlan(frame), 504, id),
            _ => {
                let mut pieces = tunnel::ipv4_fragments(frame, 512, id);
                if from_server(frame) {
                    pieces.remove(1);
                }
                pieces
            }
        }
    })
}

/// Offset of the TCP data-offset byte in a frame `Conv` built.
const DATA_OFFSET: usize = 14 + 20 + 12;

fn tcp_damaged() -> Vec<u8> {
    let mut c = Conv::new();
    // Stream 0: a request sent twice, the second copy with a data offset of 4 words.
    c.connection(client(46001), SERVER).handshake(1000, 5000);
    let seq = c.next(C);
    let request = b"GET /damaged HTTP/1.1\r\nHost: example.com\r\n\r\n";
    c.send_at(C, seq, request)
        .send_at(C, seq, request)
        .edit_last(|frame| frame[DATA_OFFSET] = 0x40)
        .send(S, b"HTTP/1.1 204 No Content\r\n\r\n")
        .ack(C);
    // Stream 1: a SYN with a bogus data offset, alone on its 4-tuple.
    c.connection(client(46002), SERVER)
        .syn(7000)
        .edit_last(|frame| frame[DATA_OFFSET] = 0x10);
    // No stream: 10 bytes of TCP header captured; a total length shorter than the IP header.
    c.connection(client(46003), SERVER)
        .syn(7000)
        .cut_last_to(14 + 20 + 10);
    c.connection(client(46004), SERVER)
        .syn(7000)
        .edit_last(|frame| frame[16..18].copy_from_slice(&10u16.to_be_bytes()));
    // Stream 2: 16 bytes of TCP header captured, enough for tshark to number it.
    c.connection(client(46005), SERVER)
        .syn(7000)
        .cut_last_to(14 + 20 + 16);
    // Stream 0's 4-tuple again: a SYN with a new sequence number whose header claims more
    // than the segment holds starts stream 3 (as tshark splits it) without setting its base
    // sequence number, so the valid SYN after it continues stream 3.
    c.connection(client(46001), SERVER)
        .syn(9000)
        .edit_last(|frame| frame[DATA_OFFSET] = 0x60);
    c.handshake(9100, 6000)
        .send(C, b"GET /again HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .send(S, b"HTTP/1.1 204 No Content\r\n\r\n")
        .close_by(C);
    c.pcap().to_vec()
}

/// Three connections, each three requests one after the other's response; the first is
/// captured on the client's side only, the second on the server's side only, the third
/// whole with its second and third request pipelined.
fn one_sided() -> Vec<u8> {
    let mut c = Conv::new();
    let request = |n: u32| format!("GET /{n} HTTP/1.1\r\nHost: example.com\r\n\r\n").into_bytes();
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for port in [47001, 47002] {
        c.connection(client(port), SERVER).handshake(1000, 5000);
        for n in 1..=3 {
            c.send(C, &request(n)).send(S, response).ack(C);
        }
        c.close_by(C);
    }
    c.connection(client(47003), SERVER)
        .handshake(1000, 5000)
        .send(C, &request(1))
        .send(S, response)
        .send(C, &[request(2), request(3)].concat())
        .send(S, response)
        .send(S, response)
        .close_by(C);
    c.rewritten(|frame| {
        let port = client_port(frame);
        let dropped =
            (port == 47001 && from_server(frame)) || (port == 47002 && !from_server(frame));
        if dropped {
            vec![]
        } else {
            vec![frame.to_vec()]
        }
    })
}

/// A conversation of lines: `(side, line)` in order, each its own segment.
fn dialogue(c: &mut Conv, lines: &[(Side, &str)]) {
    for (side, line) in lines {
        c.send(*side, line.as_bytes());
    }
}

/// A new connection between the client and server `ports`, its lines, and its close by
/// `closer`.
fn session(c: &mut Conv, ports: (u16, u16), lines: &[(Side, &str)], closer: Side) {
    c.connection(client(ports.0), server(ports.1))
        .handshake(1000, 5000);
    dialogue(c, lines);
    c.close_by(closer);
}

fn smtp() -> Vec<u8> {
    let mut c = Conv::new();
    // A mail sent: the server greets first; the body holds lines that look like HTTP.
    session(
        &mut c,
        (48001, 25),
        &[
            (S, "220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n"),
            (C, "EHLO [192.168.1.5]\r\n"),
            (
                S,
                "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
            ),
            (C, "MAIL FROM:<alice@example.com>\r\n"),
            (S, "250 2.1.0 Ok\r\n"),
            (C, "RCPT TO:<bob@example.org>\r\n"),
            (S, "250 2.1.5 Ok\r\n"),
            (C, "DATA\r\n"),
            (S, "354 End data with <CR><LF>.<CR><LF>\r\n"),
            (
                C,
                "Subject: the proxy log\r\n\r\nGET /index.html HTTP/1.1\r\nHTTP/1.1 502 Bad Gateway\r\n.\r\n",
            ),
            (S, "250 2.0.0 Ok: queued as 4F1A2\r\n"),
            (C, "QUIT\r\n"),
            (S, "221 2.0.0 Bye\r\n"),
        ],
        C,
    );
    // A scanner's HTTP/0.9 line sent before the greeting: the answer is SMTP, so is the line.
    session(
        &mut c,
        (48002, 25),
        &[
            (C, "GET /index.html\r\n"),
            (S, "220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n"),
            (S, "502 5.5.2 Error: command not recognized\r\n"),
        ],
        S,
    );
    // Joined mid-session, no greeting: the client's commands say what it is.
    c.connection(client(48003), server(25))
        .mid_stream(1000, 5000);
    dialogue(
        &mut c,
        &[
            (C, "RCPT TO:<carol@example.org>\r\n"),
            (S, "250 2.1.5 Ok\r\n"),
            (C, "RSET\r\n"),
            (S, "250 2.0.0 Ok\r\n"),
        ],
    );
    c.close_by(C);
    c.pcap().to_vec()
}

fn ftp() -> Vec<u8> {
    let mut c = Conv::new();
    // A greeting that names no protocol: the client's USER settles it.
    session(
        &mut c,
        (49001, 21),
        &[
            (S, "220 Welcome to the archive\r\n"),
            (C, "USER anonymous\r\n"),
            (S, "331 Please specify the password.\r\n"),
            (C, "PASS guest@\r\n"),
            (S, "230 Login successful.\r\n"),
            (C, "PASV\r\n"),
            (S, "227 Entering Passive Mode (10,9,0,1,195,80).\r\n"),
            (C, "LIST\r\n"),
            (
                S,
                "150 Here comes the directory listing.\r\n226 Directory send OK.\r\n",
            ),
            (C, "QUIT\r\n"),
            (S, "221 Goodbye.\r\n"),
        ],
        S,
    );
    c.pcap().to_vec()
}

fn pop3() -> Vec<u8> {
    let mut c = Conv::new();
    session(
        &mut c,
        (50001, 110),
        &[
            (S, "+OK Dovecot (Debian) ready.\r\n"),
            (C, "CAPA\r\n"),
            (S, "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n"),
            (C, "USER bob\r\n"),
            (S, "+OK\r\n"),
            (C, "PASS secret\r\n"),
            (S, "+OK Logged in.\r\n"),
            (C, "RETR 1\r\n"),
            (
                S,
                "+OK 64 octets\r\nSubject: hi\r\n\r\nPOST /api HTTP/1.1\r\nHTTP/1.1 200 OK\r\n.\r\n",
            ),
            (C, "QUIT\r\n"),
            (S, "+OK Logging out.\r\n"),
        ],
        S,
    );
    c.pcap().to_vec()
}

fn imap() -> Vec<u8> {
    let mut c = Conv::new();
    session(
        &mut c,
        (51001, 143),
        &[
            (
                S,
                "* OK [CAPABILITY IMAP4rev1 ID ENABLE IDLE STARTTLS AUTH=PLAIN] Dovecot ready.\r\n",
            ),
            (C, "a001 CAPABILITY\r\n"),
            (
                S,
                "* CAPABILITY IMAP4rev1 ID ENABLE IDLE STARTTLS AUTH=PLAIN\r\na001 OK Pre-login capabilities listed.\r\n",
            ),
            (C, "a002 LOGIN bob secret\r\n"),
            (S, "a002 OK Logged in\r\n"),
            (C, "a003 SELECT INBOX\r\n"),
            (
                S,
                "* 1 EXISTS\r\na003 OK [READ-WRITE] Select completed.\r\n",
            ),
            (C, "a004 LOGOUT\r\n"),
            (S, "* BYE Logging out\r\na004 OK Logout completed.\r\n"),
        ],
        S,
    );
    c.pcap().to_vec()
}

/// An 840-byte form body whose first line looks like a request.
fn form_body() -> Vec<u8> {
    let mut body = b"GET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();
    body.resize(840, b'a');
    body
}

const BAD_REQUEST: &str = "HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request";
const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn malformed_heads() -> Vec<u8> {
    let mut c = Conv::new();
    // Header lines as servers see them from broken clients, before Content-Length: 840.
    let heads: [&[u8]; 4] = [
        b"User-Agent: Mozilla/4.0\0\0\0(compatible)\r\nX-Session: \0\x01\0\r\nContent-Length: 840\r\n",
        b"Content-Length : 840\r\n",
        b"Content-Length:\r\n 840\r\n",
        b"X-Fo\x01o: bar\r\nContent-Length: 840\r\n",
    ];
    for (n, lines) in heads.iter().enumerate() {
        let mut request = b"POST /cgi-bin/form HTTP/1.1\r\nHost: example.com\r\n".to_vec();
        request.extend_from_slice(lines);
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(&form_body());
        c.connection(client(52001 + n as u16), SERVER)
            .handshake(1000, 5000)
            .send_stream(C, &request)
            .send(S, BAD_REQUEST.as_bytes())
            .close_by(S);
    }
    // A lenient server answers the NUL-byte request and the next one on the same connection.
    let mut request = b"POST /cgi-bin/form HTTP/1.1\r\nHost: example.com\r\nX-Token: a\0b\r\nContent-Length: 840\r\n\r\n".to_vec();
    request.extend_from_slice(&form_body());
    c.connection(client(52010), SERVER)
        .handshake(1000, 5000)
        .send_stream(C, &request)
        .send(S, OK.as_bytes())
        .send(C, b"GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .send(S, OK.as_bytes())
        .close_by(C);
    c.pcap().to_vec()
}

/// Every built capture by name.
fn built() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("tunnel-ip-in-ip", tunnel_ip_in_ip()),
        ("tunnel-gre", tunnel_gre()),
        ("tunnel-erspan", tunnel_erspan()),
        ("tunnel-vxlan", tunnel_vxlan()),
        ("tunnel-geneve", tunnel_geneve()),
        ("tcp-damaged", tcp_damaged()),
        ("one-sided", one_sided()),
        ("smtp", smtp()),
        ("ftp", ftp()),
        ("pop3", pop3()),
        ("imap", imap()),
        ("malformed-heads", malformed_heads()),
        ("ip-fragments", ip_fragments()),
    ]
}

/// Writes the built captures into `tests/built/`; `tests/built/make_fixtures.sh` runs it
/// before it asks tshark for the fixtures.
#[test]
#[ignore]
fn write_built_captures() {
    std::fs::create_dir_all(dir()).unwrap();
    for (name, pcap) in built() {
        std::fs::write(dir().join(format!("{name}.pcap")), pcap).unwrap();
    }
}

#[test]
fn the_builders_still_make_the_committed_captures() {
    for (name, pcap) in built() {
        let committed = std::fs::read(dir().join(format!("{name}.pcap")))
            .unwrap_or_else(|err| panic!("{name}.pcap: {err}"));
        assert!(
            committed == pcap,
            "{name}.pcap differs from what its builder makes: run tests/built/make_fixtures.sh"
        );
    }
}

/// Where kascope and tshark disagree on a built capture, and why kascope is right.
const DISAGREEMENTS: &[Disagreement] = &[
    Disagreement {
        capture: "malformed-heads",
        stream: Some(1),
        field: "requests",
        kascope: "1",
        why: "`Content-Length : 840` (a space before the colon): tshark does not take it for \
              the Content-Length, assumes no body and counts the body's first line as a \
              second request; servers either read the length or refuse the head (nginx \
              answers 400 and closes), and in neither case is the body a request",
    },
    Disagreement {
        capture: "malformed-heads",
        stream: Some(1),
        field: "pipeline_depth",
        kascope: "1",
        why: "follows from the body tshark took for a second request",
    },
    Disagreement {
        capture: "one-sided",
        stream: Some(0),
        field: "pipeline_depth",
        kascope: "0",
        why: "only the client's side was captured: tshark counts the three requests as \
              outstanding at once; kascope leaves the depth empty (compared as 0), since it \
              says only that the answers are missing from the capture",
    },
];

fn built_analysis(name: &str) -> Analysis {
    analyze(&dir().join(format!("{name}.pcap")))
}

fn oracle(name: &str) -> Vec<OracleRow> {
    read_oracle(&dir().join(format!("{name}.streams.csv")))
}

/// `tcp.stream` and `frame.protocols` of every frame, from tshark.
fn frames(name: &str) -> Vec<(Option<u64>, String)> {
    let table = common::binary::Table::read(&dir().join(format!("{name}.frames.csv")));
    (0..table.len())
        .map(|row| {
            (
                table.column(row, "tcp.stream").parse().ok(),
                table.column(row, "frame.protocols").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_built_capture_matches_its_tshark_fixtures() {
    let mut problems = Vec::new();
    for (name, _) in built() {
        let analysis = built_analysis(name);
        let oracle = oracle(name);
        problems.extend(compare(name, &oracle, &analysis.connections, DISAGREEMENTS));
        // `tcp.stream eq N` finds the row's packets, damaged ones included.
        for row in &oracle {
            let stream: u64 = row["tcp_stream"].parse().unwrap();
            let packets: u64 = analysis
                .connections
                .iter()
                .filter(|r| r.stream == stream)
                .map(|r| r.packets)
                .sum();
            if packets.to_string() != row["packets"] {
                problems.push(format!(
                    "{name} stream {stream}: {packets} packets, tshark {}",
                    row["packets"]
                ));
            }
        }
        // Frames per encapsulation, as tshark decodes them: a layer of `frame.protocols`
        // (IP in IP: an IP layer right after another; `ipv6.fraghdr` is not one).
        for encapsulation in Encapsulation::ALL {
            let carried = |protocols: &str| {
                let layers: Vec<&str> = protocols.split(':').collect();
                let ip = |layer: &str| layer == "ip" || layer == "ipv6";
                match encapsulation {
                    Encapsulation::IpInIp => layers.windows(2).any(|w| ip(w[0]) && ip(w[1])),
                    Encapsulation::Gre => layers.contains(&"gre"),
                    Encapsulation::Erspan => layers.contains(&"erspan"),
                    Encapsulation::Vxlan => layers.contains(&"vxlan"),
                    Encapsulation::Geneve => layers.contains(&"geneve"),
                }
            };
            let tshark = frames(name)
                .iter()
                .filter(|(_, protocols)| carried(protocols))
                .count() as u64;
            let kascope = analysis.counts.encapsulated.get(*encapsulation);
            if kascope != tshark {
                problems.push(format!(
                    "{name}: {kascope} frames in {encapsulation}, tshark {tshark}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn flagged(record: &ConnectionRecord, flag: Flag) -> bool {
    record.flags.contains(flag)
}

#[test]
fn tunnelled_connections_are_their_inner_four_tuples() {
    let analysis = built_analysis("tunnel-ip-in-ip");
    let ends: Vec<(String, String)> = analysis
        .connections
        .iter()
        .map(|r| (r.client.to_string(), r.server.to_string()))
        .collect();
    assert_eq!(
        ends,
        [
            ("10.9.0.2:41001".into(), "10.9.0.1:80".into()),
            (
                "[2001:db8::a09:2]:41002".into(),
                "[2001:db8::a09:1]:80".into()
            ),
            ("10.9.0.2:41003".into(), "10.9.0.1:80".into()),
            (
                "[2001:db8::a09:2]:41004".into(),
                "[2001:db8::a09:1]:80".into()
            ),
        ]
    );
    for name in [
        "tunnel-ip-in-ip",
        "tunnel-gre",
        "tunnel-erspan",
        "tunnel-vxlan",
        "tunnel-geneve",
    ] {
        let analysis = built_analysis(name);
        assert_eq!(analysis.counts.not_tcp, 0, "{name}");
        for r in &analysis.connections {
            assert_eq!(
                (r.protocol, r.requests, r.responses),
                (Protocol::Http, Some(1), Some(1)),
                "{name} {}",
                r.client
            );
            assert!(r.flags.is_empty(), "{name}: {:?}", r.flags);
        }
    }
    // The ARP request inside VXLAN is a tunnelled frame without IP.
    let vxlan = built_analysis("tunnel-vxlan");
    assert_eq!(vxlan.counts.not_ip, 1);
    // The summary says how many frames each tunnel carried (tshark: 19 VXLAN frames).
    let path = dir().join("tunnel-vxlan.pcap");
    let summary = stdout(&kascope(&["-q", path.to_str().unwrap()]));
    assert!(
        summary.contains("\ntunnelled frames: vxlan: 19\n"),
        "{summary}"
    );
}

#[test]
fn damaged_segments_keep_their_place_in_the_stream_numbering() {
    let analysis = built_analysis("tcp-damaged");
    let rows: Vec<(u64, u16, u64, bool)> = analysis
        .connections
        .iter()
        .map(|r| {
            (
                r.stream,
                r.client.port().max(r.server.port()),
                r.packets,
                flagged(r, Flag::BadTcpHeader),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (0, 46001, 7, true),
            (1, 46002, 1, true),
            (2, 46005, 1, true),
            (3, 46001, 9, true),
        ]
    );
    assert_eq!(analysis.counts.damaged_segments, 4);
    let path = dir().join("tcp-damaged.pcap");
    let summary = stdout(&kascope(&["-q", path.to_str().unwrap()]));
    assert!(
        summary.contains("TCP segments with an unusable header: 4 (")
            && summary.contains("frames skipped: 1 cut inside a header, 1 bad IP header"),
        "{summary}"
    );
    assert_eq!(
        (analysis.counts.truncated, analysis.counts.bad_ip_headers),
        (1, 1)
    );
    // The damaged copy of the request changed nothing: one request, answered.
    let first = &analysis.connections[0];
    assert_eq!((first.requests, first.responses), (Some(1), Some(1)));
    assert_eq!(first.retransmissions, 0);
}

#[test]
fn one_sided_rows_leave_what_needs_the_other_side_empty() {
    let analysis = built_analysis("one-sided");
    let [client_only, server_only, whole] = &analysis.connections[..] else {
        panic!("{:#?}", analysis.connections);
    };
    assert!(flagged(client_only, Flag::OneSided) && flagged(server_only, Flag::OneSided));
    assert!(!flagged(whole, Flag::OneSided));
    assert_eq!(
        (
            client_only.requests,
            client_only.responses,
            client_only.pipeline_depth
        ),
        (Some(3), None, None)
    );
    assert_eq!(
        (
            server_only.requests,
            server_only.responses,
            server_only.pipeline_depth
        ),
        (None, Some(3), None)
    );
    for one_sided in [client_only, server_only] {
        assert_eq!(one_sided.verdicts, None);
        assert_eq!(
            (one_sided.unanswered_requests, one_sided.pipelined_requests),
            (None, None)
        );
    }
    assert_eq!(
        (whole.requests, whole.responses, whole.pipeline_depth),
        (Some(3), Some(3), Some(2))
    );
    assert!(!whole.judged().is_violation());
    // Only the connection seen whole counts as pipelined.
    assert_eq!(
        (
            analysis.totals.pipelined_connections,
            analysis.totals.deepest_pipeline
        ),
        (1, 2)
    );
}

#[test]
fn line_protocols_are_named_as_tshark_decodes_them() {
    for (name, protocol, tshark) in [
        ("smtp", Protocol::Smtp, "smtp"),
        ("ftp", Protocol::Ftp, "ftp"),
        ("pop3", Protocol::Pop3, "pop"),
        ("imap", Protocol::Imap, "imap"),
    ] {
        let analysis = built_analysis(name);
        for r in &analysis.connections {
            assert_eq!(r.protocol, protocol, "{name} stream {}", r.stream);
            assert_eq!(
                (r.requests, r.responses, r.pipeline_depth),
                (Some(0), Some(0), Some(0)),
                "{name} stream {}",
                r.stream
            );
            let decoded = frames(name).iter().any(|(stream, protocols)| {
                *stream == Some(r.stream) && protocols.ends_with(&format!(":{tshark}"))
            });
            assert!(
                decoded,
                "tshark decodes {name} stream {} as {tshark}",
                r.stream
            );
        }
        assert_eq!(analysis.totals.http_connections, 0, "{name}");
        assert_eq!(analysis.totals.pipelined_connections, 0, "{name}");
    }
}

#[test]
fn malformed_heads_count_once_and_their_bodies_are_stepped_over() {
    let analysis = built_analysis("malformed-heads");
    let requests: Vec<(u16, Option<u32>, u32)> = analysis
        .connections
        .iter()
        .map(|r| (r.client.port(), r.requests, r.parse_errors))
        .collect();
    assert_eq!(
        requests,
        [
            (52001, Some(1), 1),
            (52002, Some(1), 1),
            (52003, Some(1), 1),
            (52004, Some(1), 1),
            (52010, Some(2), 1),
        ]
    );
    for r in &analysis.connections {
        assert!(flagged(r, Flag::ParseError), "{}", r.client);
        assert_eq!(r.unanswered_requests, Some(0), "{}", r.client);
    }
    assert!(
        analysis
            .transactions
            .iter()
            .all(|t| t.target != "/smuggled" && (t.method != "POST" || t.request_body_bytes == 840)),
        "{:#?}",
        analysis.transactions
    );
}

#[test]
fn ip_fragments_are_put_back_together() {
    let analysis = built_analysis("ip-fragments");
    // Four responses in three fragments each (IPv4 in and out of order, IPv6, VXLAN's outer
    // IPv4); the fifth lost its middle piece, so its two others are never completed.
    assert_eq!(analysis.counts.reassembled, 4);
    assert_eq!(analysis.counts.fragments_lost, 2);
    let responses: Vec<Option<u32>> = analysis.connections.iter().map(|r| r.responses).collect();
    assert_eq!(responses, [Some(1), Some(1), Some(1), Some(1), Some(0)]);
    let capture = dir().join("ip-fragments.pcap");
    let summary = stdout(&kascope(&[capture.to_str().unwrap(), "-q"]));
    assert!(
        summary.contains("IP datagrams put back together from fragments: 4 (of 12 fragments)")
            && summary.contains("frames skipped: 2 IP fragments of datagrams never completed"),
        "{summary}"
    );
}
