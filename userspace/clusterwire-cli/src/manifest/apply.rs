//! `cwctl create` without `-o`: the object applied to a cluster with the client of
//! `cwctl network` (server-side apply, field manager `cwctl`; a second apply of the same object
//! changes nothing).
use std::{cell::RefCell, fmt::Debug, rc::Rc, time::Duration};

use kube::{Resource, core::NamespaceResourceScope};
use serde::{Serialize, de::DeserializeOwned};

use super::{CLUSTERWIRE_NAMESPACE, ManifestError};
use crate::network::{
    cluster::{Access, Cluster},
    error::Side,
};

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Applies `object` to the cluster of `access`, printing one progress line.
pub fn apply<K>(object: &K, access: &Access) -> Result<(), ManifestError>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Serialize + Debug,
    <K as Resource>::DynamicType: Default,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ManifestError::Runtime)?;
    runtime.block_on(async {
        let progress = Rc::new(RefCell::new(crate::network::cluster::Progress::default()));
        let cluster = Cluster::connect(
            Side::Local,
            access,
            CLUSTERWIRE_NAMESPACE,
            TIMEOUT,
            progress,
        )
        .await
        .map_err(|e| ManifestError::Apply(Box::new(e)))?;
        cluster
            .apply(object)
            .await
            .map_err(|e| ManifestError::Apply(Box::new(e)))?;
        Ok(())
    })
}
