//! The controller's test kit: the scripted mock API server of `clusterwire-kube-mock`, a fixed
//! clock, the local cluster's config and a context with events kept in memory.
#![allow(dead_code, reason = "each test binary uses part of the kit")]

pub mod gateway;

use std::sync::{Arc, Mutex};

use clusterwire_controller::{Context, ControllerConfig, Events, Published};
use clusterwire_ipam::IpamConfig;
pub use clusterwire_kube_mock::{Exchange, mock};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// The fixed clock of the tests: 2025-01-01T00:00:00Z.
pub fn clock() -> Timestamp {
    Timestamp::from_second(1_735_689_600).expect("valid time")
}

/// The condition time the fixed clock gives.
pub const NOW: &str = "2025-01-01T00:00:00Z";

/// Local cluster of the tests: pod 10.0.0.0/16, service 10.96.0.0/12, defaults for the rest.
pub fn config() -> ControllerConfig {
    ControllerConfig::from(IpamConfig::new(
        vec!["10.0.0.0/16".parse().expect("cidr")],
        vec!["10.96.0.0/12".parse().expect("cidr")],
    ))
}

/// A context over `client` with an empty IPAM of `config`, events kept in memory.
pub fn context(
    client: kube::Client,
    config: &ControllerConfig,
) -> (Arc<Context>, Arc<Mutex<Vec<Published>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ipam = config.ipam().expect("valid IPAM config");
    let ctx = Context::new(client, ipam, Events::Memory(Arc::clone(&events)), clock);
    (Arc::new(ctx), events)
}

/// Deserializes a JSON literal into a typed object.
pub fn object<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}
