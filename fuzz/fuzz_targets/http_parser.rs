//! Arbitrary bytes through one `HttpConnection`, cut into chunks of arbitrary sizes, in both
//! directions, with gaps, FINs and late client knowledge mixed in.
//!
//! Input layout: `[config] [n] [n × (op, len)] data…`. Each op picks a direction (bit 0) and an
//! action; the ops are applied round-robin until the data is used up.
//!
//! `config` bit 7 selects a 64-byte head limit, so that heads over the limit are cheap to
//! reach. (`AVOID_KNOWN_HANG` turns that off again should a hang like the one fixed in
//! 11c467f come back and block the search for other bugs; docs/fuzzing.md.)
#![no_main]

use kascope::http::{DEFAULT_MAX_HEAD, HttpConnection, HttpEvent, Keep};
use kascope::tcp::{Dir, StreamEvent};
use libfuzzer_sys::fuzz_target;

const AVOID_KNOWN_HANG: bool = false;

fuzz_target!(|input: &[u8]| {
    let Some((&config, rest)) = input.split_first() else {
        return;
    };
    let Some((&n, rest)) = rest.split_first() else {
        return;
    };
    let n = usize::from(n % 32) + 1;
    if rest.len() < 2 * n {
        return;
    }
    let (ops, mut data) = rest.split_at(2 * n);
    let mut client = match config % 3 {
        0 => Some(Dir::A),
        1 => Some(Dir::B),
        _ => None,
    };
    let max_head = if config & 0x80 != 0 && !AVOID_KNOWN_HANG {
        64
    } else {
        DEFAULT_MAX_HEAD
    };
    let mut http = HttpConnection::new(max_head, Keep::Everything);
    let mut sink = |event: HttpEvent<'_>| {
        std::hint::black_box(format!("{event:?}"));
    };
    let mut other_events = 0;
    let mut idle_rounds = 0;
    while !data.is_empty() {
        let mut fed = false;
        for op in ops.chunks_exact(2) {
            let (action, len) = (op[0], op[1]);
            let dir = if action & 1 == 0 { Dir::A } else { Dir::B };
            match (action >> 1) % 8 {
                0..=4 => {
                    let take = if len == 0 {
                        data.len()
                    } else {
                        usize::from(len).min(data.len())
                    };
                    let (chunk, after) = data.split_at(take);
                    data = after;
                    fed |= take > 0;
                    http.on_stream_event(dir, StreamEvent::Data(chunk), 0, client, &mut sink);
                }
                kind if other_events < 64 => {
                    other_events += 1;
                    match kind {
                        5 => {
                            let bytes = u64::from(len) << (action >> 4);
                            http.on_stream_event(
                                dir,
                                StreamEvent::Gap(bytes),
                                0,
                                client,
                                &mut sink,
                            );
                        }
                        6 => http.on_stream_event(dir, StreamEvent::Fin, 0, client, &mut sink),
                        // The handshake told the client late (a SYN-ACK after data, say).
                        _ => client = client.or(Some(dir)),
                    }
                }
                _ => {}
            }
            if data.is_empty() {
                break;
            }
        }
        if !fed {
            idle_rounds += 1;
            if idle_rounds > 2 {
                http.on_stream_event(Dir::A, StreamEvent::Data(data), 0, client, &mut sink);
                break;
            }
        }
    }
    std::hint::black_box(http.buffered_bytes());
    http.finish(0, client, &mut sink);
});
