//! Gateway replicas (`--leader-elect`, `--lease-file`): one active, the others standing by.
//!
//! A replica elects itself through `clusterwire_election`: in Kubernetes mode the reference's
//! Lease `<name>.<namespace>.<server|client>.connections.liqo.io`, in file mode an exclusive
//! lock on the lease file. While it waits it is a **standby**: it serves its metrics (leader 0,
//! not ready), drops the active label from its pod and deletes a WireGuard link a previous run
//! left in the pod (a client standby's peer would dial the server and steal the active
//! replica's endpoint), and brings nothing up. Once elected it labels its pod
//! `networking.liqo.io/active=true` (the Service selects it; the controller follows its IP), or
//! in file mode writes its pod address into the `InternalFabric` file (`--fabric-file`), then
//! runs the normal startup. A Lease that is lost ends the process non-zero after the label is
//! removed, so Kubernetes restarts it as a standby, as the reference does.
use std::{net::Ipv4Addr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clusterwire_daemon::net::Net;
use clusterwire_election::{Election, FileLease, Leadership, LeaseElection, Lost, lease::TIMING};
use clusterwire_fabric::desired::{GatewayId, Role, TUNNEL_INTERFACE};
use k8s_openapi::api::{coordination::v1::Lease, core::v1::Pod};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::fabric_file;

/// The label of the active replica's pod.
pub const ACTIVE_LABEL: &str = "networking.liqo.io/active";

/// How long a step-down request (label, lease release) may take before the process goes on.
const STEP_DOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How the replicas of this gateway elect the active one (validated flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ha {
    /// `--leader-elect`: the Lease in the gateway's namespace; `pod` is the identity and the
    /// pod labelled when active.
    Lease { pod: String },
    /// `--lease-file PATH`: a lock on the file; `identity` is written into it (`--pod-name`,
    /// else `--instance`); `fabric` (`--fabric-file`) gets the pod address when active.
    File {
        lease: PathBuf,
        identity: String,
        fabric: Option<PathBuf>,
    },
}

/// The Lease of gateway `id`, named as the reference names it.
pub fn lease_name(id: &GatewayId) -> String {
    let mode = match id.role {
        Role::Server => "server",
        Role::Client => "client",
    };
    format!(
        "{}.{}.{mode}.connections.liqo.io",
        id.key.name, id.key.namespace
    )
}

/// The merge patch that sets (`"true"`) or removes (`null`) the active label.
pub fn label_patch(active: bool) -> Value {
    let value = if active { json!("true") } else { Value::Null };
    json!({"metadata": {"labels": {ACTIVE_LABEL: value}}})
}

/// This replica's pod, labelled active or not.
#[derive(Clone)]
pub struct PodLabel {
    api: Api<Pod>,
    name: String,
}

impl PodLabel {
    /// Pod `name` in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
        }
    }

    /// Sets or removes the active label (a JSON merge patch on `pods/<name>`).
    pub async fn set(&self, active: bool) -> Result<(), kube::Error> {
        self.api
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(label_patch(active)),
            )
            .await
            .map(drop)
    }
}

/// A replica before the election.
pub struct Replica {
    election: Election,
    label: Option<PodLabel>,
    fabric: Option<PathBuf>,
}

/// The active replica.
pub struct Active {
    leadership: Leadership,
    label: Option<PodLabel>,
}

/// How a standby ended.
pub enum Outcome {
    /// Elected.
    Active(Box<Active>),
    /// Stopped (SIGINT or SIGTERM) while standing by.
    Stopped,
}

impl Replica {
    /// The replica of gateway `id` for `ha`; `client` is the API client (Kubernetes mode).
    pub fn new(ha: &Ha, id: &GatewayId, client: Option<&kube::Client>) -> anyhow::Result<Self> {
        Ok(match ha {
            Ha::Lease { pod } => {
                let client = client.context("--leader-elect needs the Kubernetes client")?;
                let namespace = &id.key.namespace;
                let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
                let election = LeaseElection::new(api, lease_name(id), pod.clone(), TIMING);
                Self {
                    election: Election::Lease(Box::new(election)),
                    label: Some(PodLabel::new(client.clone(), namespace, pod)),
                    fabric: None,
                }
            }
            Ha::File {
                lease,
                identity,
                fabric,
            } => {
                if let Some(dir) = lease.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                Self {
                    election: Election::File(FileLease::new(lease, identity)),
                    label: None,
                    fabric: fabric.clone(),
                }
            }
        })
    }

    /// Stands by until elected (or stopped by `stop`), then does what the active replica
    /// does before starting: labels its pod, or writes its pod address (that of
    /// `underlay_dev`) into the `InternalFabric` file.
    pub async fn elect(
        self,
        underlay_dev: &str,
        stop: impl Future<Output = ()>,
    ) -> anyhow::Result<Outcome> {
        let Self {
            election,
            label,
            fabric,
        } = self;
        let identity = election.identity().to_owned();
        let (standby_tx, mut standby_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let acquire = election.acquire(move |holder| {
            let _ = standby_tx.send(holder.to_owned());
        });
        tokio::pin!(acquire);
        tokio::pin!(stop);
        let mut retired = false;
        let leadership = loop {
            tokio::select! {
                leadership = &mut acquire => break leadership?,
                Some(holder) = standby_rx.recv() => {
                    info!("standby: waiting for the lease held by {holder}");
                    if !retired {
                        retired = true;
                        retire(label.as_ref()).await;
                    }
                }
                () = &mut stop => {
                    info!("stopping while standing by");
                    return Ok(Outcome::Stopped);
                }
            }
        };
        info!(identity = %identity, "became active");
        let active = Active { leadership, label };
        if let Err(e) = active.announce(fabric.as_deref(), underlay_dev).await {
            active.step_down().await;
            return Err(e);
        }
        Ok(Outcome::Active(Box::new(active)))
    }
}

/// What a standby clears: its pod's active label (a restarted container keeps its pod's
/// labels) and a kernel WireGuard link of an earlier run in this pod's namespace.
async fn retire(label: Option<&PodLabel>) {
    if let Some(label) = label
        && let Err(e) = label.set(false).await
    {
        warn!("standby: removing the label {ACTIVE_LABEL} from this pod: {e}");
    }
    match Net::connect() {
        Ok(net) => match net.link_index(TUNNEL_INTERFACE).await {
            Ok(Some(_)) => {
                info!("standby: deleting {TUNNEL_INTERFACE} left by an earlier run");
                if let Err(e) = net.delete_link(TUNNEL_INTERFACE).await {
                    warn!("standby: {e}");
                }
            }
            Ok(None) => {}
            Err(e) => warn!("standby: {e}"),
        },
        Err(e) => warn!("standby: rtnetlink: {e}"),
    }
}

/// The pod address: the IPv4 address of its device toward its node.
async fn pod_ip(underlay_dev: &str) -> anyhow::Result<Ipv4Addr> {
    let net = Net::connect().context("rtnetlink")?;
    let (_, ip) = net.underlay(underlay_dev).await?;
    Ok(ip)
}

impl Active {
    /// Makes the world follow this replica: the pod label (Kubernetes), the `InternalFabric`
    /// file's `spec.gatewayIP` (file mode).
    async fn announce(
        &self,
        fabric: Option<&std::path::Path>,
        underlay_dev: &str,
    ) -> anyhow::Result<()> {
        if let Some(label) = &self.label {
            label
                .set(true)
                .await
                .with_context(|| format!("labelling this pod {ACTIVE_LABEL}=true"))?;
            info!("labelled this pod {ACTIVE_LABEL}=true");
        }
        if let Some(path) = fabric {
            let ip = pod_ip(underlay_dev).await?;
            if fabric_file::write_gateway_ip(path, ip)? {
                info!("wrote gatewayIP {ip} into {}", path.display());
            }
        }
        Ok(())
    }

    /// Keeps the leadership (renewing a Lease); returns when it is lost (never for a file).
    pub async fn lost(&self) -> Lost {
        self.leadership.hold().await
    }

    /// Stops being active: removes the pod label, then releases the lease (each bounded by a
    /// timeout: the API server may be what failed).
    pub async fn step_down(self) {
        let Self { leadership, label } = self;
        if let Some(label) = label {
            match tokio::time::timeout(STEP_DOWN_TIMEOUT, label.set(false)).await {
                Ok(Ok(())) => info!("removed the label {ACTIVE_LABEL} from this pod"),
                Ok(Err(e)) => warn!("removing the label {ACTIVE_LABEL}: {e}"),
                Err(_) => warn!("removing the label {ACTIVE_LABEL}: no answer"),
            }
        }
        if tokio::time::timeout(STEP_DOWN_TIMEOUT, leadership.release())
            .await
            .is_err()
        {
            warn!("releasing the lease: no answer");
        }
    }
}

#[cfg(test)]
mod tests {
    use clusterwire_fabric::{
        desired::{GatewayId, Role},
        snapshot::Key,
    };
    use clusterwire_kube_mock::{Exchange, mock};
    use serde_json::{Value, json};

    use super::{PodLabel, lease_name};

    #[test]
    fn the_lease_is_named_as_the_reference_names_it() {
        let id = |role| GatewayId {
            role,
            key: Key::new("liqo-tenant-cl02", "cl02"),
        };
        assert_eq!(
            lease_name(&id(Role::Server)),
            "cl02.liqo-tenant-cl02.server.connections.liqo.io"
        );
        assert_eq!(
            lease_name(&id(Role::Client)),
            "cl02.liqo-tenant-cl02.client.connections.liqo.io"
        );
    }

    /// A mock API server that expects one merge patch of the pod per body, in order.
    #[tokio::test]
    async fn the_active_label_is_set_and_removed_by_a_merge_patch_of_the_pod() {
        let path = "/api/v1/namespaces/liqo-tenant-cl01/pods/gw-cl01-5d8c7-x2x9z?";
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "gw-cl01-5d8c7-x2x9z", "namespace": "liqo-tenant-cl01"}});
        let patch = |active: Value| {
            Exchange::new(
                "PATCH",
                path,
                Some(json!({"metadata": {"labels": {"networking.liqo.io/active": active}}})),
                pod.clone(),
            )
            .with_content_type("application/merge-patch+json")
        };
        let (client, server) = mock(vec![patch(json!("true")), patch(Value::Null)]);
        let label = PodLabel::new(client, "liqo-tenant-cl01", "gw-cl01-5d8c7-x2x9z");
        label.set(true).await.expect("labelled");
        label.set(false).await.expect("unlabelled");
        server.done().await;
    }
}
