//! Connection state from pongs and the passing of time, driven by an injected clock.
//!
//! The rule is the reference's: a pong whose (echoed) timestamp is not older than the newest one
//! accepted so far marks the peer connected, with latency = receive time - ping timestamp (the
//! round trip); a pong older than that is dropped as out of order. The peer is down when more
//! than `interval * loss_threshold` (10 s by default) passed since the last accepted pong
//! arrived, or since the tracker started if none did. Before the first pong the state is
//! `Connecting`; going down makes it `Error` and clears the latency.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::wire::{Message, MsgType};
use super::{INTERVAL, LOSS_THRESHOLD};

/// Health of the tunnel (the values of `Connection.status.value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No pong yet, not yet timed out.
    Connecting,
    /// The peer answers.
    Connected,
    /// No answer for longer than the loss window.
    Error,
}

/// A source of wall-clock time; tests pass timestamps explicitly instead.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        since
            .ok()
            .and_then(|d| {
                let secs = i64::try_from(d.as_secs()).ok()?;
                let nanos = i32::try_from(d.subsec_nanos()).ok()?;
                Timestamp::new(secs, nanos).ok()
            })
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// What a pong did to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PongOutcome {
    /// Accepted: the state is `Connected` with this latency.
    Accepted {
        /// Round trip of this pong.
        latency: SignedDuration,
        /// The state before, if it changed.
        changed_from: Option<State>,
    },
    /// Older than the newest accepted pong: ignored.
    OutOfOrder,
    /// Not a pong, or a pong for another cluster: ignored.
    NotOurs,
}

/// The health of one peer.
#[derive(Debug, Clone)]
pub struct Tracker {
    cluster_id: String,
    window: SignedDuration,
    state: State,
    latency: Option<SignedDuration>,
    /// Timestamp carried by the newest accepted pong (initially the start time).
    newest_stamp: Timestamp,
    /// When the newest accepted pong arrived (initially the start time).
    last_heard: Timestamp,
}

impl Tracker {
    /// A tracker for the peer `cluster_id` (the id put in pings), started at `now`, with the
    /// reference's interval (2 s) and loss threshold (5).
    pub fn new(cluster_id: impl Into<String>, now: Timestamp) -> Self {
        Self::with_window(cluster_id, now, INTERVAL, LOSS_THRESHOLD)
    }

    /// A tracker with another interval and loss threshold.
    pub fn with_window(
        cluster_id: impl Into<String>,
        now: Timestamp,
        interval: SignedDuration,
        loss_threshold: u32,
    ) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            window: interval * i32::try_from(loss_threshold).unwrap_or(i32::MAX),
            state: State::Connecting,
            latency: None,
            newest_stamp: now,
            last_heard: now,
        }
    }

    /// The ping to send at `now`.
    pub fn ping(&self, now: Timestamp) -> Message {
        Message::ping(self.cluster_id.clone(), now)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The latency of the newest accepted pong, while connected.
    pub fn latency(&self) -> Option<SignedDuration> {
        self.latency
    }

    /// When the newest accepted pong arrived (the start time before any).
    pub fn last_heard(&self) -> Timestamp {
        self.last_heard
    }

    /// Feeds a received message at `now`.
    pub fn on_message(&mut self, message: &Message, now: Timestamp) -> PongOutcome {
        if message.msg_type != MsgType::Pong || message.cluster_id != self.cluster_id {
            return PongOutcome::NotOurs;
        }
        if message.timestamp < self.newest_stamp {
            return PongOutcome::OutOfOrder;
        }
        let latency = now.duration_since(message.timestamp);
        self.newest_stamp = message.timestamp;
        self.last_heard = now;
        self.latency = Some(latency);
        let before = std::mem::replace(&mut self.state, State::Connected);
        PongOutcome::Accepted {
            latency,
            changed_from: (before != State::Connected).then_some(before),
        }
    }

    /// Advances time to `now`; returns the new state if the peer just went down.
    pub fn tick(&mut self, now: Timestamp) -> Option<State> {
        if self.state == State::Error || now.duration_since(self.last_heard) <= self.window {
            return None;
        }
        self.state = State::Error;
        self.latency = None;
        Some(State::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_795_935_300;

    fn at(millis: i64) -> Timestamp {
        Timestamp::new(
            START + millis / 1000,
            i32::try_from(millis % 1000).unwrap() * 1_000_000,
        )
        .unwrap()
    }

    fn pong(sent_ms: i64) -> Message {
        Message {
            cluster_id: "cl02".to_owned(),
            msg_type: MsgType::Pong,
            timestamp: at(sent_ms),
        }
    }

    #[test]
    fn connecting_until_the_first_pong_then_connected_with_the_round_trip() {
        let mut t = Tracker::new("cl02", at(0));
        assert_eq!((t.state(), t.latency()), (State::Connecting, None));
        let ping = t.ping(at(2000));
        assert_eq!(
            (ping.msg_type, ping.cluster_id.as_str()),
            (MsgType::Ping, "cl02")
        );
        assert_eq!(ping.timestamp, at(2000));
        assert_eq!(
            t.on_message(&ping.answer().unwrap(), at(2003)),
            PongOutcome::Accepted {
                latency: SignedDuration::from_millis(3),
                changed_from: Some(State::Connecting)
            }
        );
        assert_eq!(t.state(), State::Connected);
        assert_eq!(t.latency(), Some(SignedDuration::from_millis(3)));
        assert_eq!(
            t.on_message(&pong(4000), at(4001)),
            PongOutcome::Accepted {
                latency: SignedDuration::from_millis(1),
                changed_from: None
            }
        );
    }

    #[test]
    fn down_strictly_after_five_intervals_without_a_pong() {
        let mut t = Tracker::new("cl02", at(0));
        assert_eq!(
            t.tick(at(10_000)),
            None,
            "exactly 10 s is still within the window"
        );
        assert_eq!(t.state(), State::Connecting);
        assert_eq!(t.tick(at(10_001)), Some(State::Error));
        assert_eq!(t.tick(at(12_000)), None, "reported once");
        assert_eq!((t.state(), t.latency()), (State::Error, None));

        assert_eq!(
            t.on_message(&pong(12_000), at(12_002)),
            PongOutcome::Accepted {
                latency: SignedDuration::from_millis(2),
                changed_from: Some(State::Error)
            }
        );
        assert_eq!(t.tick(at(22_002)), None);
        assert_eq!(t.tick(at(22_003)), Some(State::Error));
        assert_eq!(t.latency(), None);
    }

    #[test]
    fn old_and_foreign_pongs_are_ignored() {
        let mut t = Tracker::new("cl02", at(1000));
        assert_eq!(
            t.on_message(&pong(500), at(1001)),
            PongOutcome::OutOfOrder,
            "a ping sent before the tracker started"
        );
        assert!(matches!(
            t.on_message(&pong(4000), at(4010)),
            PongOutcome::Accepted { .. }
        ));
        assert_eq!(t.on_message(&pong(2000), at(4020)), PongOutcome::OutOfOrder);
        assert_eq!(t.latency(), Some(SignedDuration::from_millis(10)));
        let mut other = pong(6000);
        other.cluster_id = "cl03".to_owned();
        assert_eq!(t.on_message(&other, at(6001)), PongOutcome::NotOurs);
        assert_eq!(
            t.on_message(&t.ping(at(6000)), at(6001)),
            PongOutcome::NotOurs,
            "a ping is answered, not tracked"
        );
        assert_eq!(t.last_heard(), at(4010));
    }

    #[test]
    fn custom_window() {
        let mut t = Tracker::with_window("cl02", at(0), SignedDuration::from_secs(1), 3);
        assert_eq!(t.tick(at(3000)), None);
        assert_eq!(t.tick(at(3001)), Some(State::Error));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now().as_second() > 1_577_836_800);
    }
}
