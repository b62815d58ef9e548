//! What to do after an attempt failed once connected: retry the request on another upstream,
//! and take the upstream out of rotation, decided over plain facts of the attempt.

/// How the attempt failed, from the upstream's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The upstream closed or reset the connection, or reading/writing it failed.
    Died,
    /// The upstream said nothing for `timeouts.read`: a black hole, or an answer that slow.
    Silent,
    /// Anything else (a client error, a protocol error).
    Other,
}

/// The facts of one failed attempt.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    /// How it failed.
    pub failure: Failure,
    /// The method may be sent twice (GET, HEAD, PUT, DELETE, ...) and its body, if any, is
    /// still buffered for a second send.
    pub replayable: bool,
    /// It ran on a pooled keep-alive connection rather than a fresh one.
    pub reused: bool,
    /// Part of the answer already went to the client.
    pub answered: bool,
    /// Attempts made so far, this one included.
    pub attempts: u8,
    /// Another upstream of the workload (either pool) is healthy right now.
    pub healthy_elsewhere: bool,
}

/// Whether the request is sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// On another upstream (the next pick prefers the other pool).
    Yes,
    /// Not at all.
    No,
    /// Only if the connection was a reused one that the upstream had closed meanwhile
    /// (Pingora's own rule: routine for idle keep-alive connections).
    IfReused,
}

/// The decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Take the upstream out of rotation for the ejection time, and count the failure against
    /// its pool (a retry will hide it from the client, not from the guard).
    pub eject: bool,
    /// Send the request again?
    pub retry: Retry,
}

/// Tries per request: the first and one retry.
const MAX_ATTEMPTS: u8 = 2;

/// The verdict on a failed attempt.
///
/// - An upstream that dies after part of the answer went out cannot be hidden from that
///   client, but it is ejected so the next requests do not meet it (nginx's `max_fails`).
/// - A fresh connection that died, or an upstream that stayed silent past the read timeout,
///   before any of the answer: ejected and the request retried elsewhere when it may be sent
///   twice (nginx's `proxy_next_upstream error timeout`). A silent upstream is only given up on
///   when there is somewhere else to go: a workload's only upstream being slow is a 504, not
///   an ejection that would turn every later request into a 503.
/// - A reused connection that died: the upstream closing an idle keep-alive connection is
///   routine, so no ejection, and Pingora's retry-on-reuse.
pub fn judge(a: &Attempt) -> Verdict {
    let no = Verdict {
        eject: false,
        retry: Retry::No,
    };
    if a.failure == Failure::Died && a.answered {
        return Verdict {
            eject: true,
            retry: Retry::No,
        };
    }
    if !a.replayable {
        return no;
    }
    let again = if a.attempts < MAX_ATTEMPTS {
        Retry::Yes
    } else {
        Retry::No
    };
    match a.failure {
        Failure::Died if !a.reused && !a.answered => Verdict {
            eject: true,
            retry: again,
        },
        Failure::Silent if !a.answered && a.healthy_elsewhere => Verdict {
            eject: true,
            retry: again,
        },
        _ => Verdict {
            eject: false,
            retry: Retry::IfReused,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(failure: Failure) -> Attempt {
        Attempt {
            failure,
            replayable: true,
            reused: false,
            answered: false,
            attempts: 1,
            healthy_elsewhere: true,
        }
    }

    #[test]
    fn a_fresh_connection_dying_before_the_answer_is_retried_and_ejected() {
        let v = judge(&attempt(Failure::Died));
        assert_eq!(
            v,
            Verdict {
                eject: true,
                retry: Retry::Yes
            }
        );
        let second = Attempt {
            attempts: 2,
            ..attempt(Failure::Died)
        };
        assert_eq!(judge(&second).retry, Retry::No, "one retry only");
    }

    #[test]
    fn a_silent_upstream_is_retried_elsewhere_only_when_there_is_an_elsewhere() {
        assert_eq!(
            judge(&attempt(Failure::Silent)),
            Verdict {
                eject: true,
                retry: Retry::Yes
            }
        );
        let alone = Attempt {
            healthy_elsewhere: false,
            ..attempt(Failure::Silent)
        };
        assert_eq!(
            judge(&alone),
            Verdict {
                eject: false,
                retry: Retry::IfReused
            },
            "the only upstream being slow is a 504, not an ejection"
        );
    }

    #[test]
    fn a_death_mid_answer_ejects_but_cannot_be_retried() {
        for replayable in [true, false] {
            let v = judge(&Attempt {
                answered: true,
                replayable,
                ..attempt(Failure::Died)
            });
            assert_eq!(
                v,
                Verdict {
                    eject: true,
                    retry: Retry::No
                }
            );
        }
        let slow_mid_body = Attempt {
            answered: true,
            ..attempt(Failure::Silent)
        };
        assert!(!judge(&slow_mid_body).eject);
    }

    #[test]
    fn non_idempotent_requests_are_never_sent_twice() {
        for failure in [Failure::Died, Failure::Silent, Failure::Other] {
            let v = judge(&Attempt {
                replayable: false,
                ..attempt(failure)
            });
            assert_eq!(v.retry, Retry::No, "{failure:?}");
            assert!(!v.eject, "{failure:?}");
        }
    }

    #[test]
    fn a_reused_connection_closing_is_routine() {
        let v = judge(&Attempt {
            reused: true,
            ..attempt(Failure::Died)
        });
        assert_eq!(
            v,
            Verdict {
                eject: false,
                retry: Retry::IfReused
            }
        );
        assert_eq!(judge(&attempt(Failure::Other)).retry, Retry::IfReused);
    }
}
