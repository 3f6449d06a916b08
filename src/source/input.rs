//! The bytes of one input: a file or standard input, decompressed on the fly when its first
//! bytes are the magic of gzip, zstd or xz (whatever the file is called), never held whole.

use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How an input is compressed, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
}

impl Compression {
    fn of(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
        }
    }
}

/// Counts the bytes read from the file itself (compressed ones, when it is compressed), for
/// the progress bar.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened input: its decompressed bytes, how it was compressed, and a counter of the raw
/// bytes read so far.
pub(super) struct Input {
    pub(super) bytes: Box<dyn Read + Send>,
    pub(super) compression: Compression,
    pub(super) raw_read: Arc<AtomicU64>,
}

/// Opens `path` (`-` is standard input).
pub(super) fn open(path: &Path) -> io::Result<Input> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    Ok(wrap(raw))
}

/// Decompresses `raw` if its first bytes say it is compressed.
pub(super) fn wrap(raw: Box<dyn Read + Send>) -> Input {
    let raw_read = Arc::new(AtomicU64::new(0));
    let mut counted = Counted {
        inner: raw,
        count: Arc::clone(&raw_read),
    };
    // Peek at the magic without seeking (standard input cannot), then put it back in front.
    // A read error here comes back on the first real read.
    let mut magic = [0u8; 6];
    let (got, _) = read_full(&mut counted, &mut magic);
    let compression = Compression::of(&magic[..got]);
    let whole = Cursor::new(magic[..got].to_vec()).chain(counted);
    let bytes: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(whole),
        // Multi-member: `cat a.gz b.gz` and pigz output are one stream.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => match zstd::Decoder::new(whole) {
            Ok(decoder) => Box::new(decoder),
            Err(err) => Box::new(Failing(Some(err))),
        },
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(whole)),
    };
    Input {
        bytes,
        compression,
        raw_read,
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read, and the error that
/// stopped it early, if one did (the bytes before it are good).
pub(super) fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return (filled, Some(err)),
        }
    }
    (filled, None)
}

/// A stream whose first read fails with the error that prevented opening it.
struct Failing(Option<io::Error>);

impl Read for Failing {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(err) => Err(err),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decompressed(bytes: Vec<u8>) -> (Compression, Vec<u8>) {
        let mut input = wrap(Box::new(Cursor::new(bytes)));
        let mut out = Vec::new();
        input.bytes.read_to_end(&mut out).unwrap();
        (input.compression, out)
    }

    #[test]
    fn compression_is_told_by_magic_bytes_and_undone() {
        use std::io::Write;
        let plain = b"\xd4\xc3\xb2\xa1 a capture, or so it says".to_vec();
        assert_eq!(
            decompressed(plain.clone()),
            (Compression::None, plain.clone())
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        assert_eq!(
            decompressed(gz.finish().unwrap()),
            (Compression::Gzip, plain.clone())
        );
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        assert_eq!(decompressed(zst), (Compression::Zstd, plain.clone()));
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&plain).unwrap();
        assert_eq!(
            decompressed(xz.finish().unwrap()),
            (Compression::Xz, plain.clone())
        );
        // Shorter than any magic: passed through as it is.
        assert_eq!(
            decompressed(b"\x1f".to_vec()),
            (Compression::None, b"\x1f".to_vec())
        );
    }
}
