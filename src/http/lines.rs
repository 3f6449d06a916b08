//! The text protocols whose lines a loose sniff takes for HTTP requests: SMTP, FTP, POP3 and
//! IMAP. Their servers speak first (`220 `, `+OK`, `* OK`), their clients send upper-case
//! commands (`EHLO`, `USER`, `a1 LOGIN`); a connection showing either is one of them, and
//! nothing on it is HTTP. Some lines fit several of them (`220 ` is the greeting of SMTP and
//! FTP, `USER` a command of FTP and POP3): each line names the protocols it could be, and the
//! lines of both directions together narrow it down.

use super::Protocol;

/// The line protocols some lines could be, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidates(u8);

const SMTP: u8 = 1;
const FTP: u8 = 2;
const POP3: u8 = 4;
const IMAP: u8 = 8;

/// The protocols of a set, in the order a set that still holds several is named by.
const NAMES: [(u8, Protocol); 4] = [
    (SMTP, Protocol::Smtp),
    (FTP, Protocol::Ftp),
    (POP3, Protocol::Pop3),
    (IMAP, Protocol::Imap),
];

impl Candidates {
    /// What both say; when they contradict each other, the earlier evidence stands.
    pub(super) fn narrowed_by(self, later: Candidates) -> Candidates {
        match self.0 & later.0 {
            0 => self,
            both => Candidates(both),
        }
    }

    /// The protocol the set is reported as: the first of the order SMTP, FTP, POP3, IMAP.
    pub(super) fn protocol(self) -> Protocol {
        NAMES
            .iter()
            .find(|(bit, _)| self.0 & bit != 0)
            .map_or(Protocol::Unknown, |(_, protocol)| *protocol)
    }
}

/// Commands that name their protocols by themselves (SMTP's are also those of LMTP).
const COMMANDS: &[(&[u8], u8)] = &[
    (b"EHLO", SMTP),
    (b"HELO", SMTP),
    (b"LHLO", SMTP),
    (b"STARTTLS", SMTP),
    (b"VRFY", SMTP),
    (b"EXPN", SMTP),
    (b"FEAT", FTP),
    (b"SYST", FTP),
    (b"PASV", FTP),
    (b"EPSV", FTP),
    (b"PORT", FTP),
    (b"EPRT", FTP),
    (b"TYPE", FTP),
    (b"CWD", FTP),
    (b"CDUP", FTP),
    (b"PWD", FTP),
    (b"XPWD", FTP),
    (b"MKD", FTP),
    (b"RMD", FTP),
    (b"STOR", FTP),
    (b"NLST", FTP),
    (b"MLSD", FTP),
    (b"MLST", FTP),
    (b"SIZE", FTP),
    (b"MDTM", FTP),
    (b"OPTS", FTP),
    (b"ACCT", FTP),
    (b"CAPA", POP3),
    (b"APOP", POP3),
    (b"STLS", POP3),
    (b"UIDL", POP3),
    (b"STAT", POP3),
    (b"USER", FTP | POP3),
    (b"PASS", FTP | POP3),
    (b"RETR", FTP | POP3),
    (b"LIST", FTP | POP3),
    (b"DELE", FTP | POP3),
    (b"AUTH", SMTP | FTP | POP3),
    (b"QUIT", SMTP | FTP | POP3),
    (b"NOOP", SMTP | FTP | POP3),
    (b"RSET", SMTP | POP3),
    (b"HELP", SMTP | FTP),
];

/// IMAP commands, which follow a tag (`a001 LOGIN`).
const IMAP_COMMANDS: &[&[u8]] = &[
    b"CAPABILITY",
    b"LOGIN",
    b"AUTHENTICATE",
    b"STARTTLS",
    b"LOGOUT",
    b"NOOP",
    b"ID",
    b"ENABLE",
    b"SELECT",
    b"EXAMINE",
    b"LIST",
    b"LSUB",
    b"STATUS",
    b"FETCH",
    b"UID",
    b"IDLE",
];

/// The line protocols the first line of a direction (its line end excluded) could belong
/// to, or `None` when it looks like none of them.
pub(super) fn candidates(line: &[u8]) -> Option<Candidates> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    greeting(line).or_else(|| command(line)).map(Candidates)
}

/// What servers say: SMTP and FTP replies (`220 mail.example.com ESMTP`, `220-`, `421 `),
/// POP3's `+OK` and `-ERR`, IMAP's untagged `* OK`, `* PREAUTH`, `* BYE`.
fn greeting(line: &[u8]) -> Option<u8> {
    let code = line
        .get(..3)
        .is_some_and(|c| c.iter().all(u8::is_ascii_digit))
        && matches!(line.get(3), None | Some(b' ' | b'-'));
    if code && (b'1'..=b'5').contains(&line[0]) {
        return Some(if contains_ignore_case(line, b"SMTP") {
            SMTP
        } else if contains_ignore_case(line, b"FTP") {
            FTP
        } else {
            SMTP | FTP
        });
    }
    let word = |prefix: &[u8]| {
        starts_with_ignore_case(line, prefix) && matches!(line.get(prefix.len()), None | Some(b' '))
    };
    if word(b"+OK") || word(b"-ERR") {
        return Some(POP3);
    }
    if word(b"* OK") || word(b"* PREAUTH") || word(b"* BYE") {
        return Some(IMAP);
    }
    None
}

/// What clients send: a command of one of them, or an IMAP tag and command.
fn command(line: &[u8]) -> Option<u8> {
    let (first, rest) = split_word(line);
    if let Some((_, protocols)) = COMMANDS
        .iter()
        .find(|(name, _)| first.eq_ignore_ascii_case(name))
    {
        return Some(*protocols);
    }
    let mail = first.eq_ignore_ascii_case(b"MAIL") && starts_with_ignore_case(rest, b"FROM:");
    let rcpt = first.eq_ignore_ascii_case(b"RCPT") && starts_with_ignore_case(rest, b"TO:");
    if mail || rcpt {
        return Some(SMTP);
    }
    let tag_ok = !first.is_empty()
        && first.len() <= 32
        && first
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(b));
    let (imap_command, _) = split_word(rest);
    let imap = IMAP_COMMANDS
        .iter()
        .any(|name| imap_command.eq_ignore_ascii_case(name));
    (tag_ok && imap).then_some(IMAP)
}

/// The first space-separated word of a line, and the rest after that space.
fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &[]),
    }
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// Whether `word` occurs in `line`, in any case (`ESMTP` and `vsFTPd` count).
fn contains_ignore_case(line: &[u8], word: &[u8]) -> bool {
    line.windows(word.len())
        .any(|window| window.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(line: &[u8]) -> Option<Protocol> {
        candidates(line).map(Candidates::protocol)
    }

    #[test]
    fn greetings_name_their_protocol() {
        assert_eq!(
            named(b"220 mail.example.com ESMTP Postfix (Debian/GNU)\r"),
            Some(Protocol::Smtp)
        );
        assert_eq!(named(b"220 (vsFTPd 3.0.3)"), Some(Protocol::Ftp));
        assert_eq!(
            named(b"220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------"),
            Some(Protocol::Ftp)
        );
        assert_eq!(named(b"+OK Dovecot (Debian) ready."), Some(Protocol::Pop3));
        assert_eq!(
            named(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready."),
            Some(Protocol::Imap)
        );
        assert_eq!(named(b"HTTP/1.1 200 OK"), None);
        assert_eq!(named(b"2200 bytes follow"), None);
    }

    #[test]
    fn commands_name_their_protocol() {
        assert_eq!(named(b"EHLO [192.168.1.2]"), Some(Protocol::Smtp));
        assert_eq!(named(b"ehlo client"), Some(Protocol::Smtp));
        assert_eq!(named(b"MAIL FROM:<a@example.com>"), Some(Protocol::Smtp));
        assert_eq!(named(b"MAIL me"), None);
        assert_eq!(named(b"FEAT"), Some(Protocol::Ftp));
        assert_eq!(named(b"CAPA"), Some(Protocol::Pop3));
        assert_eq!(named(b"a001 LOGIN user pass"), Some(Protocol::Imap));
        assert_eq!(named(b"GET / HTTP/1.1"), None);
        assert_eq!(named(b"a001 GET /"), None);
    }

    #[test]
    fn both_directions_narrow_the_protocol_down() {
        let of = |line: &[u8]| candidates(line).unwrap();
        // A greeting that names neither, then a command only FTP has.
        let greeting = of(b"220 Welcome");
        assert_eq!(greeting.protocol(), Protocol::Smtp);
        assert_eq!(
            greeting.narrowed_by(of(b"USER anonymous")).protocol(),
            Protocol::Ftp
        );
        // USER alone is FTP or POP3; the POP3 greeting settles it.
        assert_eq!(of(b"USER bob").protocol(), Protocol::Ftp);
        assert_eq!(
            of(b"USER bob").narrowed_by(of(b"+OK")).protocol(),
            Protocol::Pop3
        );
        // Contradicting evidence leaves what was known first.
        assert_eq!(
            of(b"+OK").narrowed_by(of(b"EHLO x")).protocol(),
            Protocol::Pop3
        );
    }
}
