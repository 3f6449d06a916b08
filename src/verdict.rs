//! Did the server keep the promises it advertised? Verdicts are a pure function of a few
//! per-connection facts ([`KeepAliveFacts`]), so every rule in `docs/verdicts.md` is tested
//! without packets.

/// Which side did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// The facts the verdicts are drawn from, gathered by the analysis stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeepAliveFacts {
    pub requests: u32,
    pub responses: u32,
    /// The tightest limit on the connection's total requests implied by `max=`: a response at
    /// position i advertising `max=k` allows i + k requests in all (Apache counts down).
    pub implied_limit: Option<u32>,
    /// The last `timeout=` advertised: the promise in force when the connection went idle.
    pub advertised_timeout_s: Option<u32>,
    /// Position of the first response that said `Connection: close`.
    pub close_announced_at: Option<u32>,
    /// The client asked for the close: `Connection: close`, or HTTP/1.0 without keep-alive.
    pub client_asked_close: bool,
    /// The connection became a tunnel (101, CONNECT): keep-alive no longer applies.
    pub tunnel: bool,
    /// Who sent the connection's first FIN or RST, and when (ns).
    pub first_close: Option<(Side, u64)>,
    /// The server sent a FIN or RST at some point.
    pub server_closed: bool,
    /// End of the last complete response (ns).
    pub last_response_end_ns: Option<u64>,
    /// Last packet of the connection (ns): how long it was seen open at least.
    pub last_packet_ns: u64,
    /// Requests never answered: (position, time sent in ns, sent after a response that
    /// announced `Connection: close` had been seen).
    pub unanswered: Vec<(u32, u64, bool)>,
    /// Requests the client sent after a response announcing `Connection: close` was seen.
    pub requests_after_close_announced: u32,
    /// Final responses the server sent after the one announcing `Connection: close`.
    pub responses_after_close_announced: u32,
}

/// How much measurement noise the verdicts forgive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// An idle close this much sooner than the advertised timeout still honours it
    /// (timestamp resolution, timer granularity, where the capture point sits).
    pub timeout_ns: u64,
    /// A request sent up to this long before the server's close, and never answered, is a
    /// keep-alive race (it was in flight when the server decided to close).
    pub race_window_ns: u64,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance {
            timeout_ns: 100_000_000,
            race_window_ns: 1_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxVerdict {
    /// Nothing advertised.
    None,
    /// The client went as far as the limit, or the server announced `Connection: close` at
    /// or before it, and the server stopped at or before it.
    Honoured,
    /// The server answered more requests than it advertised.
    Exceeded,
    /// The client stopped first, the capture ended, or the server closed for idleness before
    /// the client came near the limit.
    Untested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutVerdict {
    /// Nothing advertised.
    None,
    /// The server closed an idle connection at or after the timeout.
    Honoured,
    /// The server closed an idle connection sooner than the timeout.
    ClosedEarly,
    /// The client closed first, the capture ended, or the server closed for another reason
    /// (its request limit, `Connection: close`).
    Untested,
}

named_enum!(MaxVerdict {
    None => "none",
    Honoured => "honoured",
    Exceeded => "exceeded",
    Untested => "untested",
});

named_enum!(TimeoutVerdict {
    None => "none",
    Honoured => "honoured",
    ClosedEarly => "closed-early",
    Untested => "untested",
});

/// What a server's connections add up to, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerVerdict {
    /// Some promise was violated.
    Broken,
    /// No violation, but requests were lost to the server's idle close.
    Races,
    /// Something was tested, and it held.
    Kept,
    /// Nothing the server promised was put to the test.
    Untested,
}

named_enum!(ServerVerdict {
    Broken => "broken",
    Races => "races",
    Kept => "kept",
    Untested => "untested",
});

impl ServerVerdict {
    /// From a server's connection counts: with a broken promise, with a keep-alive race, and
    /// with a promise tested and held ([`Verdicts::kept_something`]).
    pub fn of(violations: u64, races: u64, kept: u64) -> ServerVerdict {
        if violations > 0 {
            ServerVerdict::Broken
        } else if races > 0 {
            ServerVerdict::Races
        } else if kept > 0 {
            ServerVerdict::Kept
        } else {
            ServerVerdict::Untested
        }
    }
}

/// Everything decided about one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdicts {
    pub max: MaxVerdict,
    pub timeout: TimeoutVerdict,
    /// Idle time before the server's close, when the server closed an idle connection.
    pub idle_close_ns: Option<u64>,
    /// That close was about idleness: the server closed first, after a complete response,
    /// without announcing it, without reaching its limit, and the client had not asked for
    /// it (the closes that show the server's real idle timeout).
    pub closed_for_idleness: bool,
    /// When the timeout is untested: the connection was seen open and idle this long at least.
    pub kept_open_at_least_ns: Option<u64>,
    /// Position of the first request caught in a keep-alive race, if any.
    pub race_request: Option<u32>,
    /// Requests left unanswered after the server announced `Connection: close` or reached
    /// its limit: dropped as RFC 9112 §9.6 says, the client must retry them.
    pub dropped_after_close: u32,
    /// The server closed with no `Connection: close`, no reached limit and no reached timeout.
    pub unannounced_close: bool,
    /// After announcing `Connection: close`: did the server close and stop answering?
    pub close_honoured: Option<bool>,
}

impl Verdicts {
    /// A broken promise: more requests than `max=`, an idle close before `timeout=`, or
    /// answers after `Connection: close`.
    pub fn is_violation(&self) -> bool {
        self.max == MaxVerdict::Exceeded
            || self.timeout == TimeoutVerdict::ClosedEarly
            || self.close_honoured == Some(false)
    }

    /// A promise was put to the test and held: `max` or `timeout` honoured, or
    /// `Connection: close` followed by the close.
    pub fn kept_something(&self) -> bool {
        self.max == MaxVerdict::Honoured
            || self.timeout == TimeoutVerdict::Honoured
            || self.close_honoured == Some(true)
    }
}

pub fn verdicts(facts: &KeepAliveFacts, tolerance: &Tolerance) -> Verdicts {
    let server_first = matches!(facts.first_close, Some((Side::Server, _)));
    let server_close_ns = match facts.first_close {
        Some((Side::Server, ts)) => Some(ts),
        _ => None,
    };
    let stopped_by_server = server_first || facts.close_announced_at.is_some();
    // A server that answered exactly its limit closed for it; one past its limit did not.
    let limit_reached = facts.implied_limit == Some(facts.responses);

    // The limit is tested when the client went as far as it, or when the server announced
    // `Connection: close` at or before it — it enforced a limit no greater than it promised,
    // whether or not another request was waiting. An idle close (even one a request raced)
    // after two requests of a hundred allowed says nothing of max.
    let announced_within = |limit: u32| facts.close_announced_at.is_some_and(|at| at <= limit);
    let max = match facts.implied_limit {
        None => MaxVerdict::None,
        Some(limit) if facts.responses > limit => MaxVerdict::Exceeded,
        Some(limit)
            if stopped_by_server && (facts.requests >= limit || announced_within(limit)) =>
        {
            MaxVerdict::Honoured
        }
        Some(_) => MaxVerdict::Untested,
    };

    // Only a close of an idle connection, not asked for and not announced, tests the timeout.
    let idle_close_ns = match (server_close_ns, facts.last_response_end_ns) {
        (Some(close), Some(end)) if close >= end => Some(close - end),
        _ => None,
    };
    let idle_close_tests_timeout = idle_close_ns.is_some()
        && !facts.tunnel
        && facts.close_announced_at.is_none()
        && !limit_reached
        && !facts.client_asked_close;
    let timeout = match facts.advertised_timeout_s {
        None => TimeoutVerdict::None,
        Some(timeout_s) if idle_close_tests_timeout => {
            let promised = u64::from(timeout_s) * 1_000_000_000;
            let idle = idle_close_ns.unwrap_or_default();
            if idle + tolerance.timeout_ns < promised {
                TimeoutVerdict::ClosedEarly
            } else {
                TimeoutVerdict::Honoured
            }
        }
        Some(_) => TimeoutVerdict::Untested,
    };
    let kept_open_at_least_ns = match (timeout, facts.first_close, facts.last_response_end_ns) {
        (TimeoutVerdict::Untested, Some((Side::Client, until)), Some(end)) => {
            Some(until.saturating_sub(end))
        }
        (TimeoutVerdict::Untested, None, Some(end)) => {
            Some(facts.last_packet_ns.saturating_sub(end))
        }
        _ => None,
    };

    let announced_or_limited = facts.close_announced_at.is_some() || limit_reached;
    let dropped_after_close = if announced_or_limited && facts.server_closed {
        facts.unanswered.len() as u32
    } else {
        0
    };
    let race_request = match server_close_ns {
        Some(close) if !announced_or_limited && !facts.client_asked_close && !facts.tunnel => facts
            .unanswered
            .iter()
            .find(|(_, sent, after_announce)| {
                !after_announce && sent.saturating_add(tolerance.race_window_ns) >= close
            })
            .map(|(position, _, _)| *position),
        _ => None,
    };

    let timeout_reached = matches!(
        (facts.advertised_timeout_s, idle_close_ns),
        (Some(t), Some(idle)) if idle + tolerance.timeout_ns >= u64::from(t) * 1_000_000_000
    );
    let unannounced_close = server_first
        && !facts.tunnel
        && facts.close_announced_at.is_none()
        && !limit_reached
        && !timeout_reached
        && !facts.client_asked_close;

    let close_honoured = facts
        .close_announced_at
        .map(|_| facts.server_closed && facts.responses_after_close_announced == 0);

    Verdicts {
        max,
        timeout,
        idle_close_ns,
        closed_for_idleness: idle_close_tests_timeout,
        kept_open_at_least_ns,
        race_request,
        dropped_after_close,
        unannounced_close,
        close_honoured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn facts() -> KeepAliveFacts {
        KeepAliveFacts {
            requests: 1,
            responses: 1,
            last_response_end_ns: Some(10 * S),
            last_packet_ns: 20 * S,
            ..KeepAliveFacts::default()
        }
    }

    fn judge(facts: &KeepAliveFacts) -> Verdicts {
        verdicts(facts, &Tolerance::default())
    }

    #[test]
    fn a_server_verdict_names_the_worst_that_was_seen() {
        assert_eq!(ServerVerdict::of(1, 2, 3), ServerVerdict::Broken);
        assert_eq!(ServerVerdict::of(0, 2, 3), ServerVerdict::Races);
        assert_eq!(ServerVerdict::of(0, 0, 3), ServerVerdict::Kept);
        assert_eq!(ServerVerdict::of(0, 0, 0), ServerVerdict::Untested);
    }

    #[test]
    fn nothing_advertised_gives_none() {
        let v = judge(&facts());
        assert_eq!((v.max, v.timeout), (MaxVerdict::None, TimeoutVerdict::None));
        assert!(!v.is_violation());
    }

    #[test]
    fn apache_stopping_at_its_limit_honours_max() {
        // MaxKeepAliveRequests 3: max=3,2,1 on responses 1..3, Connection: close on the 4th.
        let f = KeepAliveFacts {
            requests: 5,
            responses: 4,
            implied_limit: Some(4),
            advertised_timeout_s: Some(2),
            close_announced_at: Some(4),
            first_close: Some((Side::Server, 10 * S)),
            server_closed: true,
            unanswered: vec![(5, 10 * S, false)],
            ..facts()
        };
        let v = judge(&f);
        assert_eq!(v.max, MaxVerdict::Honoured);
        assert_eq!(
            v.timeout,
            TimeoutVerdict::Untested,
            "closed for its limit, not idleness"
        );
        assert_eq!(v.dropped_after_close, 1);
        assert_eq!(v.race_request, None);
        assert_eq!(v.close_honoured, Some(true));
        assert!(!v.unannounced_close && !v.is_violation());
    }

    #[test]
    fn announcing_close_at_or_before_the_limit_honours_max_with_nothing_waiting() {
        // max=3 on response 1 allows 4; the server says close on response 2 and the client
        // had nothing more to send.
        for announced_at in [1, 2, 4] {
            let f = KeepAliveFacts {
                requests: announced_at,
                responses: announced_at,
                implied_limit: Some(4),
                close_announced_at: Some(announced_at),
                first_close: Some((Side::Server, 10 * S)),
                server_closed: true,
                ..facts()
            };
            let v = judge(&f);
            assert_eq!(v.max, MaxVerdict::Honoured, "announced at {announced_at}");
            assert_eq!(v.close_honoured, Some(true));
        }
        // Announced only past the limit: the server answered more than it promised.
        let f = KeepAliveFacts {
            requests: 5,
            responses: 5,
            implied_limit: Some(4),
            close_announced_at: Some(5),
            first_close: Some((Side::Server, 10 * S)),
            server_closed: true,
            ..facts()
        };
        assert_eq!(judge(&f).max, MaxVerdict::Exceeded);
    }

    #[test]
    fn idle_close_far_below_the_limit_leaves_max_untested() {
        let f = KeepAliveFacts {
            implied_limit: Some(100),
            advertised_timeout_s: Some(5),
            first_close: Some((Side::Server, 15 * S)),
            server_closed: true,
            ..facts()
        };
        let v = judge(&f);
        assert_eq!(
            (v.max, v.timeout),
            (MaxVerdict::Untested, TimeoutVerdict::Honoured)
        );
        assert_eq!(v.kept_open_at_least_ns, None);
    }

    #[test]
    fn answering_past_the_limit_exceeds_max() {
        let f = KeepAliveFacts {
            requests: 5,
            responses: 5,
            implied_limit: Some(3),
            ..facts()
        };
        let v = judge(&f);
        assert_eq!(v.max, MaxVerdict::Exceeded);
        assert!(v.is_violation());
    }

    #[test]
    fn client_stopping_first_leaves_max_untested() {
        let f = KeepAliveFacts {
            implied_limit: Some(100),
            advertised_timeout_s: Some(5),
            first_close: Some((Side::Client, 12 * S)),
            ..facts()
        };
        let v = judge(&f);
        assert_eq!(
            (v.max, v.timeout),
            (MaxVerdict::Untested, TimeoutVerdict::Untested)
        );
        assert_eq!(v.kept_open_at_least_ns, Some(2 * S));
    }

    #[test]
    fn idle_close_at_the_timeout_honours_it() {
        for idle in [5 * S - 50_000_000, 5 * S, 10 * S] {
            let f = KeepAliveFacts {
                advertised_timeout_s: Some(5),
                first_close: Some((Side::Server, 10 * S + idle)),
                server_closed: true,
                ..facts()
            };
            let v = judge(&f);
            assert_eq!(v.timeout, TimeoutVerdict::Honoured, "idle {idle}");
            assert_eq!(v.idle_close_ns, Some(idle));
            assert!(!v.unannounced_close);
        }
    }

    #[test]
    fn idle_close_before_the_timeout_is_closed_early_and_unannounced() {
        let f = KeepAliveFacts {
            advertised_timeout_s: Some(10),
            first_close: Some((Side::Server, 11 * S)),
            server_closed: true,
            ..facts()
        };
        let v = judge(&f);
        assert_eq!(v.timeout, TimeoutVerdict::ClosedEarly);
        assert!(v.unannounced_close && v.is_violation());
    }

    #[test]
    fn capture_ending_first_gives_a_lower_bound() {
        let f = KeepAliveFacts {
            advertised_timeout_s: Some(60),
            ..facts()
        };
        let v = judge(&f);
        assert_eq!(v.timeout, TimeoutVerdict::Untested);
        assert_eq!(v.kept_open_at_least_ns, Some(10 * S));
    }

    #[test]
    fn request_crossing_an_idle_close_is_a_race() {
        let f = KeepAliveFacts {
            requests: 2,
            implied_limit: Some(100),
            advertised_timeout_s: Some(2),
            first_close: Some((Side::Server, 12 * S)),
            server_closed: true,
            unanswered: vec![(2, 12 * S + 300_000, false)],
            ..facts()
        };
        let v = judge(&f);
        assert_eq!(v.race_request, Some(2));
        assert_eq!(v.timeout, TimeoutVerdict::Honoured);
        assert_eq!(
            v.max,
            MaxVerdict::Untested,
            "an idle close says nothing of max"
        );
        assert_eq!(v.dropped_after_close, 0);
    }

    #[test]
    fn request_long_before_the_close_is_not_a_race() {
        // The server gave up on a slow request: an abort, not the keep-alive race.
        let f = KeepAliveFacts {
            requests: 2,
            first_close: Some((Side::Server, 40 * S)),
            server_closed: true,
            unanswered: vec![(2, 11 * S, false)],
            ..facts()
        };
        assert_eq!(judge(&f).race_request, None);
    }

    #[test]
    fn client_asking_for_close_is_expected() {
        let f = KeepAliveFacts {
            client_asked_close: true,
            advertised_timeout_s: Some(5),
            first_close: Some((Side::Server, 10 * S)),
            server_closed: true,
            ..facts()
        };
        let v = judge(&f);
        assert!(!v.unannounced_close);
        assert_eq!(v.timeout, TimeoutVerdict::Untested);
        assert!(!v.is_violation());
    }

    #[test]
    fn tunnels_are_not_judged_as_keep_alive() {
        let f = KeepAliveFacts {
            tunnel: true,
            advertised_timeout_s: Some(5),
            first_close: Some((Side::Server, 11 * S)),
            server_closed: true,
            unanswered: vec![(2, 11 * S, false)],
            ..facts()
        };
        let v = judge(&f);
        assert_eq!(v.timeout, TimeoutVerdict::Untested);
        assert!(!v.unannounced_close && v.race_request.is_none() && !v.is_violation());
    }

    #[test]
    fn answering_after_connection_close_is_a_violation() {
        let f = KeepAliveFacts {
            requests: 3,
            responses: 3,
            close_announced_at: Some(1),
            responses_after_close_announced: 2,
            requests_after_close_announced: 2,
            first_close: Some((Side::Client, 12 * S)),
            ..facts()
        };
        let v = judge(&f);
        assert_eq!(v.close_honoured, Some(false));
        assert!(v.is_violation());
    }
}
