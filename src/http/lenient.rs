//! Heads read line by line, for what httparse refuses or skips: NUL and other control bytes
//! in names or values, spaces before the colon, obs-fold continuation lines, a mangled start
//! line. A real server may still answer such a request, or a client read such a response,
//! and its framing headers still say where its body ends: losing them would turn the body
//! into the next message.
//!
//! A field is a line with a colon: the name is what comes before it (trailing spaces and tabs
//! dropped), the value what comes after, running on over continuation lines (those that start
//! with a space or a tab). Lines without a colon are not fields.

/// The header fields of a whole head (its start line first, its blank line last), as
/// (name, value) byte slices borrowed from it.
pub(super) fn fields(head: &[u8]) -> Fields<'_> {
    let at = memchr::memchr(b'\n', head).map_or(head.len(), |nl| nl + 1);
    Fields { head, at }
}

/// The start line of a head, without its line end.
pub(super) fn start_line(head: &[u8]) -> &[u8] {
    let end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    head[..end].strip_suffix(b"\r").unwrap_or(&head[..end])
}

/// `HTTP/1.x NNN` at the start of a status line: the minor version and the status code.
pub(super) fn status_line(line: &[u8]) -> Option<(u8, u16)> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let minor = rest.first().filter(|b| b.is_ascii_digit())? - b'0';
    let code = rest[1..].trim_ascii_start();
    let digits = code.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit))?;
    let status = digits
        .iter()
        .fold(0u16, |status, d| status * 10 + u16::from(d - b'0'));
    Some((minor, status))
}

/// The minor version a request line ends with (`HTTP/1.0` → 0), 1 when it has none.
pub(super) fn request_version(line: &[u8]) -> u8 {
    match line.trim_ascii_end().strip_suffix(b"HTTP/1.0") {
        Some(_) => 0,
        None => 1,
    }
}

/// The fields of a head, one at a time (see [`fields`]).
pub(super) struct Fields<'h> {
    head: &'h [u8],
    /// Start of the next line.
    at: usize,
}

impl<'h> Fields<'h> {
    /// The line starting at `at`: its content (line end excluded) and where the next begins.
    fn line(&self, at: usize) -> Option<(&'h [u8], usize)> {
        let rest = self.head.get(at..).filter(|rest| !rest.is_empty())?;
        let (content, next) = match memchr::memchr(b'\n', rest) {
            Some(nl) => (&rest[..nl], at + nl + 1),
            None => (rest, self.head.len()),
        };
        Some((content.strip_suffix(b"\r").unwrap_or(content), next))
    }
}

fn continues(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

impl<'h> Iterator for Fields<'h> {
    type Item = (&'h [u8], &'h [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let start = self.at;
            let (line, next) = self.line(start)?;
            if line.is_empty() {
                // The blank line: the head ends.
                self.at = self.head.len();
                return None;
            }
            self.at = next;
            let Some(colon) = memchr::memchr(b':', line).filter(|_| !continues(line)) else {
                continue;
            };
            let mut value_end = start + line.len();
            while let Some((more, after)) = self.line(self.at).filter(|(l, _)| continues(l)) {
                value_end = self.at + more.len();
                self.at = after;
            }
            let name = line[..colon].trim_ascii_end();
            let value = self.head[start + colon + 1..value_end].trim_ascii();
            return Some((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_survive_what_httparse_refuses() {
        let head =
            b"POST /form HTTP/1.1\r\nHost: h\r\nX-Junk: a\0b\x01c\r\nContent-Length : 840\r\n\
            Transfer-Encoding: gzip,\r\n chunked\r\nno colon here\r\n\r\n";
        let found: Vec<(&[u8], &[u8])> = fields(head).collect();
        assert_eq!(
            found,
            [
                (&b"Host"[..], &b"h"[..]),
                (b"X-Junk", b"a\0b\x01c"),
                (b"Content-Length", b"840"),
                (b"Transfer-Encoding", b"gzip,\r\n chunked"),
            ]
        );
        assert_eq!(start_line(head), b"POST /form HTTP/1.1");
    }

    #[test]
    fn start_lines_are_read_leniently() {
        assert_eq!(status_line(b"HTTP/1.1 200 OK"), Some((1, 200)));
        assert_eq!(status_line(b"HTTP/1.0  404"), Some((0, 404)));
        assert_eq!(status_line(b"HTTP/1.1 OK"), None);
        assert_eq!(request_version(b"GET /\x00 HTTP/1.0"), 0);
        assert_eq!(request_version(b"GET / HTTP/1."), 1);
    }
}
