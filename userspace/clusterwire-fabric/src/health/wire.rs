//! The health check datagram: `{"clusterID":"<id>","msgType":"PING","timeStamp":"<RFC3339Nano>"}`.
//!
//! Encoding matches what the reference's Go `encoding/json` produces for its message struct:
//! the three fields in that order, no spaces, the timestamp as `time.RFC3339Nano` in UTC, and
//! `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`-style sequences (Go escapes them for
//! HTML safety; `serde_json` does not).
//!
//! A pong always carries the timestamp in UTC (`Z`); the reference re-marshals the parsed time
//! and so keeps a sender's `+hh:mm` offset. The instant is the same, which is all the sender
//! reads from it.
//!
//! Decoding is as lenient as Go's `json.Unmarshal` into that struct: field names match
//! case-insensitively, unknown fields are ignored. Unlike Go, a missing field is an error
//! rather than a zero value, and a message type other than `PING`/`PONG` is reported (Go's
//! receiver silently ignores it).

use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value};

use super::time::{TimestampError, format_rfc3339_nano, parse_rfc3339};

/// Kind of a health check message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// A request, sent every interval to the peer's tunnel address.
    Ping,
    /// The answer: the ping sent back unchanged except for the type.
    Pong,
}

impl MsgType {
    /// The wire text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ping => "PING",
            Self::Pong => "PONG",
        }
    }
}

/// One health check message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The cluster id the sender put in the ping: the id of the cluster being probed (the
    /// reference sends the *remote* cluster id, and the pong carries it back unchanged).
    pub cluster_id: String,
    /// Ping or pong.
    pub msg_type: MsgType,
    /// When the ping was sent (the sender's wall clock); copied into the pong.
    pub timestamp: Timestamp,
}

/// A datagram that is not a health check message, or a message that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not JSON, or not a JSON object.
    #[error("health check datagram is not a JSON object: {0}")]
    NotJson(String),
    /// A required field is absent (or not a string).
    #[error("health check message has no string field {0:?}")]
    Missing(&'static str),
    /// `msgType` is neither `PING` nor `PONG`.
    #[error("health check message type {0:?} is neither PING nor PONG")]
    UnknownType(String),
    /// `timeStamp` is not RFC 3339.
    #[error("health check message timeStamp: {0}")]
    Timestamp(#[from] TimestampError),
    /// The timestamp's year is outside 0..=9999 (Go cannot marshal it either).
    #[error("timestamp {0} cannot be written as RFC 3339 (year outside 0..=9999)")]
    YearOutOfRange(Timestamp),
}

impl Message {
    /// A ping probing `cluster_id`, stamped `now`.
    pub fn ping(cluster_id: impl Into<String>, now: Timestamp) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            msg_type: MsgType::Ping,
            timestamp: now,
        }
    }

    /// The answer to this message: a pong with the same cluster id and timestamp for a ping,
    /// nothing for a pong.
    pub fn answer(&self) -> Option<Self> {
        (self.msg_type == MsgType::Ping).then(|| Self {
            msg_type: MsgType::Pong,
            ..self.clone()
        })
    }

    /// The datagram bytes.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let time =
            format_rfc3339_nano(self.timestamp).ok_or(WireError::YearOutOfRange(self.timestamp))?;
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(b"{\"clusterID\":");
        push_go_string(&mut out, &self.cluster_id);
        out.extend_from_slice(b",\"msgType\":\"");
        out.extend_from_slice(self.msg_type.as_str().as_bytes());
        out.extend_from_slice(b"\",\"timeStamp\":\"");
        out.extend_from_slice(time.as_bytes());
        out.extend_from_slice(b"\"}");
        Ok(out)
    }

    /// Parses a datagram.
    pub fn decode(datagram: &[u8]) -> Result<Self, WireError> {
        let value: Value =
            serde_json::from_slice(datagram).map_err(|e| WireError::NotJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(WireError::NotJson("not an object".to_owned()));
        };
        let cluster_id = field(&fields, "clusterID")?.to_owned();
        let msg_type = match field(&fields, "msgType")? {
            "PING" => MsgType::Ping,
            "PONG" => MsgType::Pong,
            other => return Err(WireError::UnknownType(other.to_owned())),
        };
        let timestamp = parse_rfc3339(field(&fields, "timeStamp")?)?;
        Ok(Self {
            cluster_id,
            msg_type,
            timestamp,
        })
    }
}

/// Go's `json.Unmarshal` matching: an exact key first, else the first case-insensitive one.
fn field<'a>(fields: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, WireError> {
    fields
        .get(name)
        .or_else(|| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .and_then(Value::as_str)
        .ok_or(WireError::Missing(name))
}

/// A JSON string as Go's `encoding/json` writes it (HTML-safe escaping).
fn push_go_string(out: &mut Vec<u8>, s: &str) {
    let mut buf = Vec::new();
    // Writing a &str into a Vec cannot fail.
    if serde_json::to_writer(&mut buf, s).is_err() {
        buf.clear();
    }
    let json = String::from_utf8_lossy(&buf);
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            _ => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, nanos: i32) -> Timestamp {
        Timestamp::new(secs, nanos).unwrap()
    }

    // A recorded reference exchange. How the bytes were derived (from the reference's Go
    // sources, liqotech/liqo `pkg/gateway/connection/conncheck`): the sender marshals a struct
    // with fields ClusterID (tag `json:"clusterID"`), MsgType (`json:"msgType"`) and TimeStamp
    // (a time.Time, `json:"timeStamp"`) holding (remote cluster id, "PING",
    // time.Now()) with json.Marshal, which writes the fields in declaration order with no
    // whitespace and the time through Time.MarshalJSON (RFC3339Nano; a gateway container runs
    // in UTC, so the zone is `Z`). The receiver unmarshals it, sets the type to "PONG" and
    // marshals the same struct back. For cluster id `cl02` and a ping sent at
    // 2026-11-29T06:55:01.0453Z that gives the two datagrams below.
    const REFERENCE_PING: &[u8] =
        br#"{"clusterID":"cl02","msgType":"PING","timeStamp":"2026-11-29T06:55:01.0453Z"}"#;
    const REFERENCE_PONG: &[u8] =
        br#"{"clusterID":"cl02","msgType":"PONG","timeStamp":"2026-11-29T06:55:01.0453Z"}"#;

    #[test]
    fn reference_ping_pong_exchange() {
        let sent = at(1_795_935_301, 45_300_000);
        let ping = Message::ping("cl02", sent);
        assert_eq!(
            ping.encode().unwrap(),
            REFERENCE_PING,
            "our ping, byte for byte"
        );

        let received = Message::decode(REFERENCE_PING).unwrap();
        assert_eq!(received, ping);
        let pong = received.answer().expect("a ping is answered");
        assert_eq!(
            pong.encode().unwrap(),
            REFERENCE_PONG,
            "our pong, byte for byte"
        );

        let back = Message::decode(REFERENCE_PONG).unwrap();
        assert_eq!(
            back,
            Message {
                cluster_id: "cl02".to_owned(),
                msg_type: MsgType::Pong,
                timestamp: sent
            }
        );
        assert_eq!(back.answer(), None, "a pong is not answered");
    }

    #[test]
    fn whole_seconds_have_no_fraction() {
        let ping = Message::ping("a", at(1_795_935_301, 0));
        assert_eq!(
            ping.encode().unwrap(),
            br#"{"clusterID":"a","msgType":"PING","timeStamp":"2026-11-29T06:55:01Z"}"#
        );
    }

    #[test]
    fn cluster_id_escaped_like_go() {
        let ping = Message::ping("a<b>&\"c\u{2028}", at(0, 0));
        assert_eq!(
            String::from_utf8(ping.encode().unwrap()).unwrap(),
            r#"{"clusterID":"a\u003cb\u003e\u0026\"c\u2028","msgType":"PING","timeStamp":"1970-01-01T00:00:00Z"}"#
        );
        assert_eq!(Message::decode(&ping.encode().unwrap()).unwrap(), ping);
    }

    #[test]
    fn decodes_leniently_like_go() {
        let text = br#" {"CLUSTERID":"cl03","msgtype":"PONG","timeStamp":"2026-11-29T07:55:01.5+01:00","extra":1} "#;
        assert_eq!(
            Message::decode(text).unwrap(),
            Message {
                cluster_id: "cl03".to_owned(),
                msg_type: MsgType::Pong,
                timestamp: at(1_795_935_301, 500_000_000)
            }
        );
    }

    #[test]
    fn rejects_bad_datagrams_with_the_reason() {
        assert!(matches!(
            Message::decode(b"PING"),
            Err(WireError::NotJson(_))
        ));
        assert_eq!(
            Message::decode(b"[1]"),
            Err(WireError::NotJson("not an object".to_owned()))
        );
        assert_eq!(
            Message::decode(br#"{"msgType":"PING","timeStamp":"2026-11-29T06:55:01Z"}"#),
            Err(WireError::Missing("clusterID"))
        );
        assert_eq!(
            Message::decode(br#"{"clusterID":"a","msgType":"HELLO","timeStamp":"x"}"#),
            Err(WireError::UnknownType("HELLO".to_owned()))
        );
        assert!(matches!(
            Message::decode(br#"{"clusterID":"a","msgType":"PING","timeStamp":"yesterday"}"#),
            Err(WireError::Timestamp(_))
        ));
    }
}
