//! Which positional words are capture files and which are the filter.
//!
//! The rule, said in the error messages too: without `-r`, the first word is a capture file,
//! and so is every word up to the first one that is a BPF keyword (`tcp`, `port`, `host`,
//! `not`, …) or begins with `(` or `!`; from there on every word is the filter and none is
//! looked up as a file. With `-r` (or `-i`) every word is the filter. A file that does not
//! exist is named as such, before anything is read or written.

use std::path::{Path, PathBuf};

use super::Cli;

/// The capture files and the filter a command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub files: Vec<PathBuf>,
    pub filter: Option<String>,
}

/// Words that begin a BPF expression (pcap-filter(7)): qualifiers, protocols, operators.
const BPF_WORDS: &[&str] = &[
    "aarp",
    "action",
    "addr1",
    "addr2",
    "addr3",
    "addr4",
    "ah",
    "and",
    "arp",
    "atalk",
    "broadcast",
    "carp",
    "clnp",
    "decnet",
    "dir",
    "dst",
    "esis",
    "esp",
    "ether",
    "fddi",
    "gateway",
    "geneve",
    "greater",
    "host",
    "icmp",
    "icmp6",
    "ifname",
    "igmp",
    "igrp",
    "inbound",
    "ip",
    "ip6",
    "ipx",
    "isis",
    "iso",
    "lat",
    "len",
    "less",
    "link",
    "llc",
    "mopdl",
    "moprc",
    "mpls",
    "multicast",
    "net",
    "netbeui",
    "not",
    "on",
    "or",
    "outbound",
    "pim",
    "port",
    "portrange",
    "ppp",
    "pppoed",
    "pppoes",
    "proto",
    "protochain",
    "ra",
    "rarp",
    "reason",
    "rnr",
    "rset",
    "rulenum",
    "sca",
    "sctp",
    "slip",
    "src",
    "srnr",
    "stp",
    "subtype",
    "ta",
    "tcp",
    "tr",
    "type",
    "udp",
    "vlan",
    "vrrp",
    "vxlan",
    "wlan",
];

/// Whether `word` begins a filter: a BPF keyword alone or followed by an operator or an
/// index (`tcp[13]`, `port==80`), or a word starting with `(` or `!`.
fn starts_filter(word: &str) -> bool {
    if word.starts_with('(') || word.starts_with('!') {
        return true;
    }
    let lead_len = word
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(word.len());
    let (lead, rest) = word.split_at(lead_len);
    BPF_WORDS.contains(&lead.to_ascii_lowercase().as_str())
        && (rest.is_empty() || rest.starts_with(['[', '(', '&', '|', '=', '!', '<', '>']))
}

/// Splits the command line's words into files and filter, and checks that the files exist.
pub fn split_inputs(cli: &Cli) -> Result<Inputs, String> {
    let inputs = split_words(&cli.read, &cli.args, cli.interface.is_some())?;
    for file in &inputs.files {
        // A missing positional file may be the start of a filter the user meant.
        let meant = cli.args.iter().position(|word| Path::new(word) == file);
        let words = meant.map(|at| cli.args[at..].join(" "));
        check_file(file, words.as_deref())?;
    }
    Ok(inputs)
}

fn split_words(read: &[PathBuf], words: &[String], live: bool) -> Result<Inputs, String> {
    let filter = |words: &[String]| (!words.is_empty()).then(|| words.join(" "));
    if live {
        if let Some(file) = read.first() {
            return Err(format!(
                "{}: give either -i INTERFACE or capture files, not both",
                file.display()
            ));
        }
        if let Some(first) = words.first()
            && !starts_filter(first)
            && Path::new(first).is_file()
        {
            return Err(format!(
                "{first}: give either -i INTERFACE or capture files, not both \
                 (with -i every word after the options is the filter)"
            ));
        }
        return Ok(Inputs {
            files: Vec::new(),
            filter: filter(words),
        });
    }
    if !read.is_empty() {
        if let Some(first) = words.first()
            && !starts_filter(first)
            && Path::new(first).exists()
        {
            return Err(format!(
                "{first}: with -r, give every capture file with -r \
                 (kascope -r A -r B [FILTER]), or none with -r (kascope A B [FILTER])"
            ));
        }
        return Ok(Inputs {
            files: read.to_vec(),
            filter: filter(words),
        });
    }
    let Some((first, rest)) = words.split_first() else {
        return Err(
            "no capture file given (kascope FILE... [FILTER], -r FILE, or -i INTERFACE)".into(),
        );
    };
    let files_end = rest
        .iter()
        .position(|word| starts_filter(word))
        .unwrap_or(rest.len());
    let files = std::iter::once(first)
        .chain(&rest[..files_end])
        .map(PathBuf::from)
        .collect();
    Ok(Inputs {
        files,
        filter: filter(&rest[files_end..]),
    })
}

/// A file that does not exist is named before anything is opened or written; `words` are
/// the command line's words from it on, when it was one.
fn check_file(path: &Path, words: Option<&str>) -> Result<(), String> {
    if path == Path::new("-") || path.exists() {
        return Ok(());
    }
    let word = path.display().to_string();
    let hint = if let Some(hint) = words.and_then(display_filter_hint) {
        format!(" ({hint})")
    } else if words.is_some() && !word.contains(['/', '.']) {
        " (a filter starts with a BPF word such as tcp, port, host, net, src, dst or not)"
            .to_string()
    } else {
        String::new()
    };
    Err(format!("{word}: no such file{hint}"))
}

/// Wireshark protocols whose dotted field names (`tcp.port`, `ip.addr`) show a display
/// filter.
const DISPLAY_PROTOCOLS: &[&str] = &[
    "eth", "frame", "http", "ip", "ipv6", "sll", "tcp", "tls", "udp", "vlan", "dns",
];

/// When `expr` looks like a Wireshark display filter (`tcp.port==80`, `ip.addr == 10.0.0.1`):
/// a hint that the filter words are BPF, with the equivalent expression when it is obvious.
pub fn display_filter_hint(expr: &str) -> Option<String> {
    let tokens = tokens(expr);
    let dotted = tokens.iter().any(|token| {
        token.split_once('.').is_some_and(|(proto, field)| {
            DISPLAY_PROTOCOLS.contains(&proto)
                && field.starts_with(|c: char| c.is_ascii_alphabetic())
        })
    });
    if !dotted && !tokens.contains(&"==") {
        return None;
    }
    let mut hint = "the filter is a BPF expression as in tcpdump, not a Wireshark display \
                    filter"
        .to_string();
    if let Some(bpf) = equivalent(&tokens) {
        hint.push_str(&format!(": write '{bpf}'"));
    } else {
        hint.push_str(" (see man pcap-filter)");
    }
    Some(hint)
}

/// Words and operators of a display filter.
fn tokens(expr: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut rest = expr.trim_start();
    while !rest.is_empty() {
        let len = ["==", "!=", "&&", "||", ">=", "<=", "(", ")", "!", "<", ">"]
            .iter()
            .find(|op| rest.starts_with(*op))
            .map(|op| op.len())
            .unwrap_or_else(|| {
                rest.find(|c: char| c.is_whitespace() || "=!&|<>()".contains(c))
                    .unwrap_or(rest.len())
                    .max(1)
            });
        tokens.push(&rest[..len]);
        rest = rest[len..].trim_start();
    }
    tokens
}

/// The BPF words for a display filter made of `field == value` comparisons joined by
/// and/or/not, when every field has an obvious BPF counterpart.
fn equivalent(tokens: &[&str]) -> Option<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let token = tokens[at];
        let word = match token {
            "&&" | "and" => "and".to_string(),
            "||" | "or" => "or".to_string(),
            "!" | "not" => "not".to_string(),
            "(" | ")" => token.to_string(),
            field => {
                let op = tokens.get(at + 1)?;
                let value = tokens.get(at + 2)?;
                if !matches!(*op, "==" | "eq") {
                    return None;
                }
                at += 2;
                format!("{} {value}", bpf_field(field)?)
            }
        };
        out.push(word);
        at += 1;
    }
    Some(out.join(" ").replace("( ", "(").replace(" )", ")"))
}

fn bpf_field(field: &str) -> Option<&'static str> {
    Some(match field {
        "tcp.port" => "tcp port",
        "tcp.srcport" => "tcp src port",
        "tcp.dstport" => "tcp dst port",
        "udp.port" => "udp port",
        "udp.srcport" => "udp src port",
        "udp.dstport" => "udp dst port",
        "ip.addr" | "ipv6.addr" | "ip.host" => "host",
        "ip.src" | "ipv6.src" => "src host",
        "ip.dst" | "ipv6.dst" => "dst host",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(read: &[&str], words: &[&str]) -> Result<Inputs, String> {
        let read: Vec<PathBuf> = read.iter().map(PathBuf::from).collect();
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        split_words(&read, &words, false)
    }

    fn inputs(files: &[&str], filter: Option<&str>) -> Inputs {
        Inputs {
            files: files.iter().map(PathBuf::from).collect(),
            filter: filter.map(str::to_string),
        }
    }

    #[test]
    fn files_end_at_the_first_bpf_word() {
        assert_eq!(
            split(&[], &["a.pcap", "b", "tcp", "port", "80"]),
            Ok(inputs(&["a.pcap", "b"], Some("tcp port 80")))
        );
        // A file named like a BPF word never takes the word's place in the filter.
        assert_eq!(
            split(&[], &["trace", "port", "80"]),
            Ok(inputs(&["trace"], Some("port 80")))
        );
        assert_eq!(
            split(&[], &["x.pcap", "tcp[13]&2!=0"]),
            Ok(inputs(&["x.pcap"], Some("tcp[13]&2!=0")))
        );
        assert_eq!(
            split(&[], &["x.pcap", "(port", "80)"]),
            Ok(inputs(&["x.pcap"], Some("(port 80)")))
        );
        assert_eq!(
            split(&[], &["tcp.pcap", "udp.pcap"]),
            Ok(inputs(&["tcp.pcap", "udp.pcap"], None))
        );
        assert!(split(&[], &[]).unwrap_err().contains("no capture file"));
    }

    #[test]
    fn with_read_every_word_is_the_filter() {
        assert_eq!(
            split(&["a.pcap"], &["port", "80"]),
            Ok(inputs(&["a.pcap"], Some("port 80")))
        );
        let here = env!("CARGO_MANIFEST_DIR").to_string() + "/Cargo.toml";
        assert!(
            split(&["a.pcap"], &[&here])
                .unwrap_err()
                .contains("with -r")
        );
    }

    #[test]
    fn display_filters_get_a_bpf_hint() {
        let hint = |expr| display_filter_hint(expr).unwrap_or_default();
        assert!(hint("tcp.port==80").ends_with("write 'tcp port 80'"));
        assert!(
            hint("ip.src == 10.0.0.1 && tcp.dstport == 8080")
                .ends_with("write 'src host 10.0.0.1 and tcp dst port 8080'")
        );
        assert!(hint("!(tcp.port==22)").ends_with("write 'not (tcp port 22)'"));
        assert!(hint("http.request.method == \"GET\"").contains("pcap-filter"));
        assert_eq!(display_filter_hint("tcp port 80"), None);
        assert_eq!(display_filter_hint("host example.com"), None);
        assert_eq!(display_filter_hint("tcp[13] & 2 != 0"), None);
    }
}
