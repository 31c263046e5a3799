//! The tunnel health check, wire-compatible with the reference's gateway.
//!
//! Each gateway listens on UDP [`PORT`] (12345) on its tunnel address and sends a
//! [`Message`] of type `PING` every [`INTERVAL`] (2 s) to the peer's tunnel address
//! (169.254.18.2 from the server, 169.254.18.1 from the client); every ping received is sent
//! back to its source as a `PONG` ([`Message::answer`]). A [`Tracker`] turns pongs and time into
//! the Connection state; the peer is down after [`LOSS_THRESHOLD`] (5) intervals without a pong.
//! [`format_latency`] gives the `status.latency.value` text.

mod time;
mod tracker;
mod wire;

use k8s_openapi::jiff::SignedDuration;

pub use time::{TimestampError, format_latency, format_rfc3339_nano, parse_rfc3339};
pub use tracker::{Clock, PongOutcome, State, SystemClock, Tracker};
pub use wire::{Message, MsgType, WireError};

/// UDP port of the health check.
pub const PORT: u16 = 12345;
/// Time between two pings.
pub const INTERVAL: SignedDuration = SignedDuration::from_secs(2);
/// Intervals without a pong after which the peer is down.
pub const LOSS_THRESHOLD: u32 = 5;
/// Largest datagram the reference reads (its receive buffer).
pub const MAX_DATAGRAM: usize = 1024;
