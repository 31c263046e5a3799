//! `cwctl info` and `cwctl info peer` against one fake API server holding a scripted cluster
//! cl01 with two peers: cl02 (gateway client, remapped, Connected) and cl03 (gateway server,
//! remap failed, Connecting, a Connection without the peer label found by its gatewayRef).

use serde_json::json;

use super::{
    NET, Run, cwctl,
    fake::{Behaviour, Fake},
    kubeconfig,
};

/// The scripted cluster (no stand-in controller: every status is written here).
fn cluster() -> (Fake, String) {
    let fake = Fake::start(
        "cl01",
        Behaviour {
            crds: true,
            controller: false,
            key: [0; 32],
        },
    );
    let object = |kind: &str, ns: &str, name: &str, label: Option<&str>| {
        let mut metadata = json!({"name": name, "namespace": ns});
        if let Some(id) = label {
            metadata["labels"] = json!({"liqo.io/remote-cluster-id": id});
        }
        json!({"apiVersion": "networking.liqo.io/v1beta1", "kind": kind, "metadata": metadata})
    };
    let put = |plural: &str,
               ns: &str,
               name: &str,
               mut value: serde_json::Value,
               rest: serde_json::Value| {
        for (k, v) in rest.as_object().expect("object") {
            value[k] = v.clone();
        }
        fake.put(&format!("{NET}/namespaces/{ns}/{plural}/{name}"), value);
    };
    let t2 = "liqo-tenant-cl02";
    put(
        "configurations",
        t2,
        "cl02",
        object("Configuration", t2, "cl02", Some("cl02")),
        json!({"spec": {"remote": {"cidr": {"pod": ["10.243.0.0/16"], "external": ["10.70.0.0/16"]}}},
               "status": {"remote": {"cidr": {"pod": ["10.71.0.0/16"], "external": ["10.72.0.0/16"]}},
                          "conditions": [{"type": "NetworkCIDRsConfigured", "status": "True",
                                          "reason": "Configured", "message": "",
                                          "lastTransitionTime": "2025-01-01T00:00:00Z"}]}}),
    );
    put(
        "gatewayclients",
        t2,
        "cl02",
        object("GatewayClient", t2, "cl02", Some("cl02")),
        json!({"spec": {"mtu": 1340, "endpoint": {"addresses": ["172.19.0.9"], "port": 32701, "protocol": "UDP"}},
               "status": {"secretRef": {"name": "gw-cl02", "namespace": t2},
                          "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                                          "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}}),
    );
    put(
        "connections",
        t2,
        "gw-cl02",
        object("Connection", t2, "gw-cl02", Some("cl02")),
        json!({"spec": {"type": "Client", "gatewayRef": {"kind": "GatewayClient", "name": "cl02", "namespace": t2}},
               "status": {"value": "Connected",
                          "latency": {"value": "1.234ms", "timestamp": "2025-01-01T00:00:10Z"}}}),
    );
    let t3 = "liqo-tenant-cl03";
    put(
        "configurations",
        t3,
        "cl03",
        object("Configuration", t3, "cl03", Some("cl03")),
        json!({"spec": {"local": {"cidr": {"pod": ["10.243.0.0/16"]}},
                        "remote": {"cidr": {"pod": "10.0.0.0/8"}}},
               "status": {"conditions": [{"type": "NetworkCIDRsConfigured", "status": "False",
                                          "reason": "PoolsExhausted",
                                          "message": "no free /8 in the pools",
                                          "lastTransitionTime": "2025-01-01T00:00:00Z"}]}}),
    );
    put(
        "gatewayservers",
        t3,
        "cl03",
        object("GatewayServer", t3, "cl03", Some("cl03")),
        json!({"spec": {"mtu": 1340, "endpoint": {"port": 51840, "serviceType": "LoadBalancer"}},
               "status": {"endpoint": {"addresses": ["203.0.113.7"], "port": 51840, "protocol": "UDP"}}}),
    );
    put(
        "connections",
        t3,
        "gw-cl03",
        object("Connection", t3, "gw-cl03", None),
        json!({"spec": {"type": "Server", "gatewayRef": {"kind": "GatewayServer", "name": "cl03"}},
               "status": {"value": "Connecting"}}),
    );
    let config = kubeconfig("info", &fake.url).display().to_string();
    (fake, config)
}

fn info(config: &str, args: &[&str]) -> Run {
    let mut all = vec!["info", "--kubeconfig", config];
    all.extend_from_slice(args);
    cwctl(&all, "")
}

const TEXT: &str = "\
Local cluster
  Cluster ID: cl01
  Namespace: clusterwire
Peers: 2

Peer cl02
  Configuration liqo-tenant-cl02/cl02
    Status: Configured
    Remote pod CIDR: 10.243.0.0/16 -> remapped to 10.71.0.0/16
    Remote external CIDR: 10.70.0.0/16 -> remapped to 10.72.0.0/16
  Gateway client liqo-tenant-cl02/cl02
    Status: Ready
    Endpoint: 172.19.0.9:32701/UDP
    MTU: 1340
  Connection liqo-tenant-cl02/gw-cl02
    Status: Connected
    Latency: 1.234ms

Peer cl03
  Configuration liqo-tenant-cl03/cl03
    Status: PoolsExhausted (no free /8 in the pools)
    Remote pod CIDR: 10.0.0.0/8 (not remapped yet)
    Remote external CIDR: - (not remapped yet)
    Local pod CIDR: 10.243.0.0/16
    Local external CIDR: -
  Gateway server liqo-tenant-cl03/cl03
    Status: Ready
    Endpoint: 203.0.113.7:51840/UDP
    Service type: LoadBalancer
    MTU: 1340
  Connection liqo-tenant-cl03/gw-cl03
    Status: Connecting
    Latency: N/A
";

const PEER_CL02_YAML: &str = "\
configuration:
  namespace: liqo-tenant-cl02
  name: cl02
  remote:
    pod:
    - 10.243.0.0/16
    external:
    - 10.70.0.0/16
  remapped:
    pod:
    - 10.71.0.0/16
    external:
    - 10.72.0.0/16
  status: Configured
gateway:
  role: client
  namespace: liqo-tenant-cl02
  name: cl02
  endpoint:
    addresses:
    - \"172.19.0.9\"
    port: 32701
    protocol: UDP
  mtu: 1340
  status: Ready
connection:
  namespace: liqo-tenant-cl02
  name: gw-cl02
  type: Client
  status: Connected
  latency: 1.234ms
  latencyTimestamp: \"2025-01-01T00:00:10Z\"
";

#[test]
fn info_prints_the_cluster_id_and_each_peer_reading_only() {
    let (fake, config) = cluster();
    let out = info(&config, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, TEXT);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(fake.writes(), Vec::<String>::new(), "info must only read");
    // Lists across all namespaces.
    for plural in [
        "configurations",
        "gatewayservers",
        "gatewayclients",
        "connections",
    ] {
        let entry = format!("GET {NET}/{plural}");
        assert!(
            fake.log().contains(&entry),
            "no {entry} in {:#?}",
            fake.log()
        );
    }
}

#[test]
fn info_peer_prints_one_peer_as_yaml_and_json() {
    let (_fake, config) = cluster();
    let out = info(&config, &["peer", "cl02", "-o", "yaml"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, PEER_CL02_YAML);
    // The same data in JSON, and `info -o json` holds it under peers.cl02.
    let out = info(&config, &["peer", "cl02", "-o", "json"]);
    let peer: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let yaml: serde_json::Value = serde_saphyr::from_str(PEER_CL02_YAML).expect("YAML");
    assert_eq!(peer, yaml);
    let out = info(&config, &["-o", "json"]);
    let all: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(all["clusterID"], json!("cl01"));
    assert_eq!(all["peers"]["cl02"], peer);
    assert_eq!(all["peers"]["cl03"]["connection"]["name"], json!("gw-cl03"));
    // Several ids: a map keyed by id, text one block each.
    let out = info(&config, &["peer", "cl02", "cl03", "-o", "json"]);
    let two: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(two, all["peers"]);
    let out = info(&config, &["peer", "cl03"]);
    assert_eq!(out.stdout, TEXT.split("\n\n").nth(2).expect("cl03 block"));
}

#[test]
fn get_prints_one_field() {
    let (_fake, config) = cluster();
    for (args, expected) in [
        (&["--get", "peers.cl02.connection.latency"][..], "1.234ms\n"),
        (&["--get", "clusterID"][..], "cl01\n"),
        (
            &["peer", "cl03", "--get", "gateway.endpoint.port"][..],
            "51840\n",
        ),
        (
            &["peer", "cl03", "--get", "configuration.status"][..],
            "PoolsExhausted\n",
        ),
        (
            &["--get", "peers.cl02.configuration.remapped.pod.0"][..],
            "10.71.0.0/16\n",
        ),
        (
            &["--get", "peers.cl02.configuration.remapped"][..],
            "external:\n- 10.72.0.0/16\npod:\n- 10.71.0.0/16\n",
        ),
        (
            &[
                "--get",
                "peers.cl02.gateway.endpoint.addresses",
                "-o",
                "json",
            ][..],
            "[\n  \"172.19.0.9\"\n]\n",
        ),
    ] {
        let out = info(&config, args);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, expected, "{args:?}");
    }
}

#[test]
fn a_missing_field_or_peer_exits_1_saying_what_exists() {
    let (_fake, config) = cluster();
    for (args, expected) in [
        (
            &["--get", "peers.cl03.connection.latency"][..],
            "error: info: --get peers.cl03.connection.latency: no field \"latency\" in \
             peers.cl03.connection (it has: name, namespace, status, type)\n",
        ),
        (
            &["--get", "peers.cl09"][..],
            "error: info: --get peers.cl09: no field \"cl09\" in peers (it has: cl02, cl03)\n",
        ),
        (
            &["--get", "clusterID.x"][..],
            "error: info: --get clusterID.x: no field \"x\" in clusterID (it has none)\n",
        ),
        (
            &["peer", "cl09"][..],
            "error: info: no peer cl09 in this cluster (it has: cl02, cl03)\n",
        ),
    ] {
        let out = info(&config, args);
        assert_eq!(out.code, Some(1), "{args:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(out.stderr, expected, "{args:?}");
    }
}

#[test]
fn missing_crds_or_identity_exit_1() {
    let fake = Fake::start(
        "cl01",
        Behaviour {
            crds: false,
            controller: false,
            key: [0; 32],
        },
    );
    let config = kubeconfig("info-nocrd", &fake.url).display().to_string();
    let out = info(&config, &[]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "error: info: (local) the API networking.liqo.io/v1beta1 is not served: the clusterwire \
         (or Liqo) CRDs are not installed in this cluster (kubectl apply -k deploy/base)\n"
    );
    let (_fake, config) = cluster();
    let out = info(&config, &["--clusterwire-namespace", "liqo"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .starts_with("error: info: (local) no cluster identity: no ConfigMap labelled"),
        "{}",
        out.stderr
    );
}
