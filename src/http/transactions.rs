//! The requests of one connection on their way to being answered, oldest first (Zeek's
//! `trans_depth`). Responses come in request order (RFC 9112 §9.3.2), so each response head
//! pairs with the oldest request that has no final response yet; a request leaves the queue
//! when its final response ends. This queue is the one record of what is in flight: the
//! response framing reads a request's kind from it, and the analysis its depth.

use std::collections::VecDeque;

use super::RequestHead;

/// What a request means for the framing of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestKind {
    Normal,
    Head,
    Connect,
    Upgrade,
    /// An HTTP/0.9 simple request: the answer is a bare body up to the close.
    Http09,
}

/// When a final response began and when its head was complete, and its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseStart {
    pub status: u16,
    /// The segment that completed the head.
    pub ts: u64,
    /// The segment that carried the head's first byte.
    pub first_byte_ts: u64,
}

/// What a connection keeps of its finished transactions for the transactions output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// Nothing: no transaction records.
    #[default]
    Nothing,
    /// Times, status and sizes, without the request's text.
    Timing,
    /// Also the method, target and Host of each request.
    Everything,
}

/// A request and what became of it. Times are capture times (ns since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// 1-based position of the request on its connection.
    pub position: u32,
    kind: RequestKind,
    /// Kept only when transactions are reported (empty otherwise).
    pub method: Box<str>,
    pub target: Box<str>,
    pub host: Box<str>,
    pub request_ts: u64,
    pub request_end_ts: Option<u64>,
    pub request_body_bytes: u64,
    /// Sent while an earlier request was still in flight.
    pub pipelined: bool,
    pub interim_responses: u32,
    /// Some answer (interim or final) has begun.
    answer_started: bool,
    pub response: Option<ResponseStart>,
    pub response_end_ts: Option<u64>,
    pub response_body_bytes: Option<u64>,
    /// The response ended whole (false when it was cut, or never came).
    pub response_complete: bool,
}

/// Requests kept in flight; past this many they are counted but not queued (zeek#1705:
/// requests nobody answers must not grow memory without end), and later responses may pair
/// with the wrong request.
const MAX_IN_FLIGHT: usize = 100_000;

/// Target bytes kept per request for the transactions output.
const MAX_TARGET: usize = 512;
/// Host bytes kept per request.
const MAX_HOST: usize = 256;

/// Method bytes kept per request (the longest registered method has 17).
const MAX_METHOD: usize = 32;

/// What the allocator keeps beside each allocation (glibc: 8 bytes, rounded to 16).
const MALLOC_OVERHEAD: usize = 16;

#[derive(Debug, Default)]
pub(super) struct Transactions {
    queue: VecDeque<Transaction>,
    /// Requests seen so far: the position of the latest.
    requests: u32,
    /// What finished transactions keep (only the transactions outputs need them).
    keep: Keep,
    /// The most requests in flight at once.
    depth: u32,
    /// A request was not queued because too many were in flight.
    overflowed: bool,
    /// Transactions whose response ended, waiting to be taken (not with `Keep::Nothing`).
    finished: Vec<Transaction>,
    /// Heap bytes of the methods, targets and hosts kept in `queue` and `finished`.
    detail_bytes: usize,
}

impl Transactions {
    pub(super) fn new(keep: Keep) -> Transactions {
        Transactions {
            keep,
            ..Transactions::default()
        }
    }

    /// A request head: queued for its answer. Returns how many earlier requests were still
    /// in flight.
    pub(super) fn request(&mut self, kind: RequestKind, head: &RequestHead<'_>, ts: u64) -> u32 {
        self.requests += 1;
        let in_flight = self.queue.len() as u32;
        if self.queue.len() >= MAX_IN_FLIGHT {
            self.overflowed = true;
            return in_flight;
        }
        let (method, target, host): (Box<str>, Box<str>, Box<str>) =
            if self.keep == Keep::Everything {
                let host = String::from_utf8_lossy(head.host.unwrap_or_default());
                let method = truncate(head.method, MAX_METHOD);
                let target = truncate(head.target, MAX_TARGET);
                let host = truncate(&host, MAX_HOST);
                self.detail_bytes += detail_cost(method) + detail_cost(target) + detail_cost(host);
                (method.into(), target.into(), host.into())
            } else {
                (Box::default(), Box::default(), Box::default())
            };
        self.queue.push_back(Transaction {
            position: self.requests,
            kind,
            method,
            target,
            host,
            request_ts: ts,
            request_end_ts: None,
            request_body_bytes: 0,
            pipelined: in_flight > 0,
            interim_responses: 0,
            answer_started: false,
            response: None,
            response_end_ts: None,
            response_body_bytes: None,
            response_complete: false,
        });
        self.depth = self.depth.max(self.queue.len() as u32);
        in_flight
    }

    /// The latest request, if it is still queued.
    fn latest(&mut self) -> Option<&mut Transaction> {
        let latest = self.requests;
        self.queue.back_mut().filter(|t| t.position == latest)
    }

    /// The latest request's body ended.
    pub(super) fn request_end(&mut self, body_bytes: u64, ts: u64) {
        if let Some(request) = self.latest() {
            request.request_end_ts = Some(ts);
            request.request_body_bytes = body_bytes;
        }
    }

    /// The kind of the latest request while nothing has answered it yet (what follows it
    /// may have to wait for its answer).
    pub(super) fn latest_unanswered_kind(&mut self) -> Option<RequestKind> {
        self.latest().filter(|t| !t.answer_started).map(|t| t.kind)
    }

    /// The kind of the request the next response head answers, unless an interim answer to
    /// it has already begun.
    pub(super) fn next_unanswered_kind(&self) -> Option<RequestKind> {
        self.queue
            .iter()
            .find(|t| t.response.is_none())
            .filter(|t| !t.answer_started)
            .map(|t| t.kind)
    }

    /// Some request still waits for its final response.
    pub(super) fn awaiting_answer(&self) -> bool {
        self.queue.iter().any(|t| t.response.is_none())
    }

    /// A response head (interim or final): pairs it with the oldest request without a final
    /// response. Returns that request's kind (`Normal` when none, a response nobody asked
    /// for) and position.
    /// `first_byte_ts` is when the head began, `ts` when it was complete.
    pub(super) fn response(
        &mut self,
        status: u16,
        interim: bool,
        first_byte_ts: u64,
        ts: u64,
    ) -> (RequestKind, Option<u32>) {
        let Some(request) = self.queue.iter_mut().find(|t| t.response.is_none()) else {
            return (RequestKind::Normal, None);
        };
        request.answer_started = true;
        if interim {
            request.interim_responses += 1;
        } else {
            request.response = Some(ResponseStart {
                status,
                ts,
                first_byte_ts,
            });
        }
        (request.kind, Some(request.position))
    }

    /// A final response ended: its request leaves the queue.
    pub(super) fn response_end(&mut self, body_bytes: u64, complete: bool, ts: u64) {
        if self.queue.front().is_some_and(|t| t.response.is_some())
            && let Some(mut done) = self.queue.pop_front()
        {
            done.response_end_ts = Some(ts);
            done.response_body_bytes = Some(body_bytes);
            done.response_complete = complete;
            if self.keep != Keep::Nothing {
                self.finished.push(done);
            }
        }
    }

    /// End of the connection: what is still in flight is finished as it stands.
    pub(super) fn finish(&mut self) {
        let left = std::mem::take(&mut self.queue);
        if self.keep != Keep::Nothing {
            self.finished.extend(left);
        }
    }

    pub(super) fn take_finished(&mut self) -> std::vec::Drain<'_, Transaction> {
        let leaving: usize = self
            .finished
            .iter()
            .map(|t| detail_cost(&t.method) + detail_cost(&t.target) + detail_cost(&t.host))
            .sum();
        self.detail_bytes = self.detail_bytes.saturating_sub(leaving);
        self.finished.drain(..)
    }

    pub(super) fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Requests with no final response: (position, when sent).
    pub(super) fn unanswered(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.queue
            .iter()
            .filter(|t| t.response.is_none())
            .map(|t| (t.position, t.request_ts))
    }

    pub(super) fn depth(&self) -> u32 {
        self.depth
    }

    pub(super) fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Memory held, for the memory budget: the queues by capacity, and the kept text.
    pub(super) fn buffered_bytes(&self) -> usize {
        (self.queue.capacity() + self.finished.capacity()) * std::mem::size_of::<Transaction>()
            + self.detail_bytes
    }
}

/// Heap memory of one kept string.
fn detail_cost(text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        text.len() + MALLOC_OVERHEAD
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head<'a>(method: &'a str, target: &'a str) -> RequestHead<'a> {
        RequestHead {
            method,
            target,
            version: 1,
            connection: Default::default(),
            host: Some(b"example.org"),
            user_agent: None,
            head_bytes: 0,
        }
    }

    #[test]
    fn responses_pair_with_requests_in_order_and_interims_with_the_same_request() {
        let mut t = Transactions::new(Keep::Everything);
        assert_eq!(t.request(RequestKind::Normal, &head("GET", "/a"), 1), 0);
        assert_eq!(t.request(RequestKind::Head, &head("HEAD", "/b"), 2), 1);
        assert_eq!(t.depth(), 2);
        assert_eq!(t.response(100, true, 3, 3), (RequestKind::Normal, Some(1)));
        assert_eq!(t.response(200, false, 4, 4), (RequestKind::Normal, Some(1)));
        t.response_end(10, true, 5);
        assert_eq!(t.response(200, false, 5, 6), (RequestKind::Head, Some(2)));
        t.response_end(0, true, 7);
        assert_eq!(t.response(200, false, 8, 8), (RequestKind::Normal, None));
        let done: Vec<Transaction> = t.take_finished().collect();
        assert_eq!(done.len(), 2);
        assert_eq!(
            (
                done[0].interim_responses,
                done[0].response_body_bytes,
                done[0].pipelined
            ),
            (1, Some(10), false)
        );
        assert_eq!((&*done[1].method, done[1].pipelined), ("HEAD", true));
        assert_eq!(&*done[1].host, "example.org");
        assert_eq!(
            done[1].response.map(|r| (r.first_byte_ts, r.ts)),
            Some((5, 6))
        );
    }

    #[test]
    fn a_request_answered_before_its_body_ended_keeps_its_answer() {
        let mut t = Transactions::new(Keep::Nothing);
        t.request(RequestKind::Normal, &head("POST", "/"), 1);
        t.response(413, false, 2, 2);
        t.response_end(0, true, 3);
        // The body's end refers to a request that has left the queue: nothing to change.
        t.request_end(100, 4);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.take_finished().count(), 0, "nothing is kept");
    }

    #[test]
    fn requests_past_the_bound_are_counted_not_queued() {
        let mut t = Transactions::new(Keep::Nothing);
        for _ in 0..MAX_IN_FLIGHT + 3 {
            t.request(RequestKind::Normal, &head("GET", "/"), 1);
        }
        assert_eq!(t.in_flight(), MAX_IN_FLIGHT);
        assert!(t.overflowed());
        assert_eq!(t.unanswered().count(), MAX_IN_FLIGHT);
    }
}
