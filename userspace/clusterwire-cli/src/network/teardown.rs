//! `cwctl network disconnect` and `reset`, in the reference's order: identities, then the
//! gateways of both orientations on both sides (client then server, local then remote), and
//! for `reset` each side's Configuration of the other. Missing objects are reported, not
//! errors, so a half-done teardown can be run again.
use clusterwire_api::networking::{Configuration, GatewayClient, GatewayServer};

use super::{
    Clusters,
    cluster::{Cluster, Shared},
    connect::prepare,
    error::NetworkError,
};

/// Runs `disconnect` (`reset == false`) or `reset`.
pub async fn run(args: &Clusters, reset: bool, progress: &Shared) -> Result<(), NetworkError> {
    let (mut local, mut remote) = super::clusters(args, progress).await?;
    let (local_ns, remote_ns) = prepare(
        &mut local,
        &mut remote,
        args.namespace.as_ref(),
        args.remote_namespace.as_ref(),
        false,
    )
    .await?;
    let (local_id, remote_id) = (local.id.clone(), remote.id.clone());
    let sides = [
        (&local, &local_ns, &remote_id),
        (&remote, &remote_ns, &local_id),
    ];
    for (cluster, ns, peer) in sides {
        delete::<GatewayClient>(cluster, ns, peer, "Gateway client", args.wait).await?;
    }
    for (cluster, ns, peer) in sides {
        delete::<GatewayServer>(cluster, ns, peer, "Gateway server", args.wait).await?;
    }
    if reset {
        for (cluster, ns, peer) in sides {
            delete::<Configuration>(cluster, ns, peer, "Network configuration", args.wait).await?;
        }
    }
    Ok(())
}

async fn delete<K>(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    what: &str,
    wait: bool,
) -> Result<(), NetworkError>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).into_owned();
    if cluster.delete::<K>(namespace, name, wait).await? {
        cluster.say(&format!(
            "{what} correctly deleted: {kind} {namespace}/{name}"
        ));
    } else {
        cluster.say(&format!(
            "{what} not found, nothing to delete: {kind} {namespace}/{name}"
        ));
    }
    Ok(())
}
