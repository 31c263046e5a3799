//! The Connection `gw-<name>` a gateway keeps up to date, built from its health [`Tracker`].
//!
//! As in the reference: the object is named `gw-<gateway name>` in the gateway's namespace and
//! labelled with the remote cluster id; `spec.type` is `Server` or `Client`; `status.value` is
//! `Connecting` until the first pong, `Connected` while pongs arrive, `Error` after the loss
//! window; `status.latency.value` is [`format_latency`] of the last round trip (`N/A` when
//! down) and `status.latency.timestamp` when it was measured. The status is written when the
//! value changes, or when the last written measurement is more than 10 s old
//! ([`should_write`]). One difference: `spec.gatewayRef` names the `GatewayServer` or
//! `GatewayClient` itself (the reference's names the `WgGatewayServer`/`WgGatewayClient`
//! rendered from its template, which clusterwire does not create).
//!
//! [`Tracker`]: crate::health::Tracker

use std::collections::BTreeMap;

use clusterwire_api::{
    common::REMOTE_CLUSTER_ID_LABEL,
    networking::{
        Connection,
        connection::{
            ConnectionLatency, ConnectionSpec, ConnectionStatus, ConnectionStatusValue,
            ConnectionType,
        },
    },
};
use k8s_openapi::{
    api::core::v1::ObjectReference,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    jiff::{SignedDuration, Timestamp},
};

use crate::{
    desired::{GatewayId, Role},
    health::{State, Tracker, format_latency},
};

/// How old the written measurement may get before the status is rewritten (the reference's
/// `--ping-update-status-interval` default).
pub const STATUS_REFRESH: SignedDuration = SignedDuration::from_secs(10);

/// The name of the Connection of gateway `gateway_name`.
pub fn connection_name(gateway_name: &str) -> String {
    format!("gw-{gateway_name}")
}

/// The Connection of gateway `id` toward `remote_cluster_id`, without status.
pub fn connection(
    id: &GatewayId,
    remote_cluster_id: &str,
    gateway_uid: Option<&str>,
) -> Connection {
    let (type_, kind) = match id.role {
        Role::Server => (ConnectionType::Server, "GatewayServer"),
        Role::Client => (ConnectionType::Client, "GatewayClient"),
    };
    let namespace = (!id.key.namespace.is_empty()).then(|| id.key.namespace.clone());
    Connection {
        metadata: ObjectMeta {
            name: Some(connection_name(&id.key.name)),
            namespace: namespace.clone(),
            labels: Some(BTreeMap::from([(
                REMOTE_CLUSTER_ID_LABEL.to_owned(),
                remote_cluster_id.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: ConnectionSpec {
            type_,
            gateway_ref: ObjectReference {
                api_version: Some("networking.liqo.io/v1beta1".to_owned()),
                kind: Some(kind.to_owned()),
                name: Some(id.key.name.clone()),
                namespace,
                uid: gateway_uid.map(str::to_owned),
                ..ObjectReference::default()
            },
        },
        status: None,
    }
}

/// The status for a tracker's state.
pub fn status(tracker: &Tracker) -> ConnectionStatus {
    let (value, latency) = match (tracker.state(), tracker.latency()) {
        (State::Connecting, _) => (ConnectionStatusValue::Connecting, None),
        (State::Connected, latency) => (
            ConnectionStatusValue::Connected,
            Some(ConnectionLatency {
                value: Some(format_latency(latency.unwrap_or(SignedDuration::ZERO))),
                timestamp: Some(Time(tracker.last_heard())),
            }),
        ),
        (State::Error, _) => (
            ConnectionStatusValue::Error,
            Some(ConnectionLatency {
                value: Some(format_latency(SignedDuration::ZERO)),
                timestamp: None,
            }),
        ),
    };
    ConnectionStatus {
        value: Some(value),
        latency,
        ..ConnectionStatus::default()
    }
}

/// Whether `next` must be written over `written` (the status last written, if any): the value
/// changed, or `next`'s measurement is more than [`STATUS_REFRESH`] newer than the written one.
pub fn should_write(written: Option<&ConnectionStatus>, next: &ConnectionStatus) -> bool {
    let Some(written) = written else {
        return true;
    };
    let measured = |s: &ConnectionStatus| -> Option<Timestamp> {
        s.latency.as_ref()?.timestamp.as_ref().map(|t| t.0)
    };
    if written.value != next.value {
        return true;
    }
    match (measured(written), measured(next)) {
        (Some(old), Some(new)) => new.duration_since(old) > STATUS_REFRESH,
        (None, Some(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use clusterwire_api::validation::ManifestValidator;

    use super::*;
    use crate::{health::MsgType, snapshot::Key};

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_millisecond(1_795_935_300_000 + millis).unwrap()
    }

    fn pong(sent_ms: i64) -> crate::health::Message {
        crate::health::Message {
            cluster_id: "cl02".to_owned(),
            msg_type: MsgType::Pong,
            timestamp: at(sent_ms),
        }
    }

    #[test]
    fn connection_object_matches_the_reference_shape_and_validates() {
        let id = GatewayId {
            role: Role::Client,
            key: Key::new("liqo-tenant-cl02", "cl02"),
        };
        let mut conn = connection(&id, "cl02", Some("1234"));
        let mut tracker = Tracker::new("cl02", at(0));
        tracker.on_message(&pong(2000), at(2001));
        conn.status = Some(status(&tracker));
        let json = serde_json::to_value(&conn).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "networking.liqo.io/v1beta1",
                "kind": "Connection",
                "metadata": {
                    "name": "gw-cl02",
                    "namespace": "liqo-tenant-cl02",
                    "labels": { "liqo.io/remote-cluster-id": "cl02" }
                },
                "spec": {
                    "type": "Client",
                    "gatewayRef": {
                        "apiVersion": "networking.liqo.io/v1beta1",
                        "kind": "GatewayClient",
                        "name": "cl02",
                        "namespace": "liqo-tenant-cl02",
                        "uid": "1234"
                    }
                },
                "status": {
                    "value": "Connected",
                    "latency": { "value": "1ms", "timestamp": "2026-11-29T06:55:02Z" }
                }
            })
        );
        let validator = ManifestValidator::for_api().unwrap();
        assert_eq!(validator.validate(&json), Ok(()));
        let server = GatewayId {
            role: Role::Server,
            key: Key::new("t", "cl03"),
        };
        let conn = connection(&server, "cl03", None);
        assert_eq!(conn.spec.type_, ConnectionType::Server);
        assert_eq!(conn.spec.gateway_ref.kind.as_deref(), Some("GatewayServer"));
    }

    #[test]
    fn status_follows_the_tracker() {
        let mut tracker = Tracker::new("cl02", at(0));
        let connecting = status(&tracker);
        assert_eq!(connecting.value, Some(ConnectionStatusValue::Connecting));
        assert_eq!(connecting.latency, None);

        tracker.on_message(&pong(2000), at(2000) + SignedDuration::from_micros(850));
        let connected = status(&tracker);
        assert_eq!(connected.value, Some(ConnectionStatusValue::Connected));
        assert_eq!(
            connected.latency,
            Some(ConnectionLatency {
                value: Some("850\u{3bc}s".to_owned()),
                timestamp: Some(Time(at(2000) + SignedDuration::from_micros(850))),
            })
        );

        assert_eq!(tracker.tick(at(12_001)), Some(State::Error));
        let error = status(&tracker);
        assert_eq!(error.value, Some(ConnectionStatusValue::Error));
        assert_eq!(
            error.latency,
            Some(ConnectionLatency {
                value: Some("N/A".to_owned()),
                timestamp: None
            })
        );
    }

    #[test]
    fn written_on_change_or_when_the_measurement_is_older_than_10s() {
        let mut tracker = Tracker::new("cl02", at(0));
        let connecting = status(&tracker);
        assert!(should_write(None, &connecting));
        assert!(!should_write(Some(&connecting), &connecting));

        tracker.on_message(&pong(2000), at(2001));
        let first = status(&tracker);
        assert!(should_write(Some(&connecting), &first), "value changed");
        tracker.on_message(&pong(12_000), at(12_001));
        assert!(
            !should_write(Some(&first), &status(&tracker)),
            "exactly 10 s newer: not yet"
        );
        tracker.on_message(&pong(12_002), at(12_002));
        assert!(
            should_write(Some(&first), &status(&tracker)),
            "more than 10 s newer"
        );

        tracker.tick(at(30_000));
        let down = status(&tracker);
        assert!(should_write(Some(&first), &down));
        assert!(!should_write(Some(&down), &down), "Error is written once");
    }
}
