//! One of the two clusters of a `cwctl network` verb: its client, its identity, and the few
//! operations the verbs are made of (apply, wait, delete), each printing one progress line
//! prefixed with the side and recording what it created, so a failure can say what it left.
use std::{cell::RefCell, fmt::Debug, path::PathBuf, rc::Rc, time::Duration};

use kube::{
    Api, Client, Config, Resource,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde::{Serialize, de::DeserializeOwned};

use super::error::{NetworkError, Side};

/// Field manager of the objects `cwctl network` applies.
pub const FIELD_MANAGER: &str = "cwctl";
/// Label of the cluster identity ConfigMap, and its key.
const CLUSTER_ID_SELECTOR: &str = "app.kubernetes.io/name=clusterid-configmap";
const CLUSTER_ID_KEY: &str = "CLUSTER_ID";

/// What the verb is doing and what it made: shared with the timeout handler, which reports
/// both when `--timeout` cuts a step short.
#[derive(Debug, Default)]
pub struct Progress {
    /// The step in progress.
    pub step: String,
    /// Objects this run created (they did not exist before), in order.
    pub created: Vec<String>,
}

/// Shared [`Progress`] (single-threaded runtime).
pub type Shared = Rc<RefCell<Progress>>;

/// How often a wait polls.
pub const POLL: Duration = Duration::from_millis(500);

/// One cluster.
pub struct Cluster {
    /// Local or remote.
    pub side: Side,
    /// Its client.
    pub client: Client,
    /// Its API server URL (messages).
    pub url: String,
    /// Where clusterwire is installed (identity ConfigMap, templates, Networks).
    pub system_namespace: String,
    /// Its cluster id (filled by [`Cluster::identify`]).
    pub id: String,
    progress: Shared,
}

/// `--kubeconfig` and `--context` of one side.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The kubeconfig file (`None`: `KUBECONFIG` or `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// The context (`None`: the current one).
    pub context: Option<String>,
}

impl Cluster {
    /// A client for `access`; fails only on a bad kubeconfig (nothing is contacted yet).
    pub async fn connect(
        side: Side,
        access: &Access,
        system_namespace: &str,
        timeout: Duration,
        progress: Shared,
    ) -> Result<Self, NetworkError> {
        let options = KubeConfigOptions {
            context: access.context.clone(),
            ..KubeConfigOptions::default()
        };
        let kubeconfig_err = |source| NetworkError::Kubeconfig {
            side,
            path: access.kubeconfig.clone(),
            source,
        };
        let mut config = match &access.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_err)?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(kubeconfig_err)?
            }
            None => Config::from_kubeconfig(&options)
                .await
                .map_err(kubeconfig_err)?,
        };
        let per_request = timeout.min(Duration::from_secs(15));
        config.connect_timeout = Some(per_request);
        config.read_timeout = Some(per_request);
        let url = config.cluster_url.to_string();
        let client =
            Client::try_from(config).map_err(|source| NetworkError::Client { side, source })?;
        Ok(Self {
            side,
            client,
            url,
            system_namespace: system_namespace.to_owned(),
            id: String::new(),
            progress,
        })
    }

    /// Prints one progress line.
    pub fn say(&self, message: &str) {
        println!("({}) {message}", self.side);
    }

    /// Records the step in progress (reported if `--timeout` cuts it short).
    pub fn step(&self, step: &str) {
        self.progress.borrow_mut().step = format!("({}) {step}", self.side);
    }

    fn err(&self, action: impl Into<String>) -> impl FnOnce(kube::Error) -> NetworkError + '_ {
        let action = action.into();
        move |source| NetworkError::api(self.side, &self.url, action, source)
    }

    /// Checks that `group_version` is served (the CRDs are installed).
    pub async fn require_api(&self, group_version: &'static str) -> Result<(), NetworkError> {
        self.step(&format!("checking the API {group_version}"));
        match self.client.list_api_group_resources(group_version).await {
            Ok(_) => Ok(()),
            Err(e) if NetworkError::is_not_found(&e) => Err(NetworkError::MissingApi {
                side: self.side,
                group_version,
            }),
            Err(e) => Err(self.err(format!("checking the API {group_version}"))(e)),
        }
    }

    /// Reads the cluster id from the identity ConfigMap.
    pub async fn identify(&mut self) -> Result<(), NetworkError> {
        self.id = self.read_identity().await?;
        self.say(&format!(
            "Cluster identity correctly retrieved: {}",
            self.id
        ));
        Ok(())
    }

    /// The cluster id of the identity ConfigMap (labelled
    /// `app.kubernetes.io/name=clusterid-configmap`, key `CLUSTER_ID`), printing nothing.
    pub async fn read_identity(&self) -> Result<String, NetworkError> {
        self.step("reading the cluster identity");
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(self.client.clone(), &self.system_namespace);
        let list = api
            .list(&ListParams::default().labels(CLUSTER_ID_SELECTOR))
            .await
            .map_err(self.err("reading the cluster identity"))?;
        let id = list
            .items
            .iter()
            .find_map(|cm| cm.data.as_ref()?.get(CLUSTER_ID_KEY).cloned())
            .filter(|id| crate::manifest::dns_label(id).is_ok());
        id.ok_or_else(|| NetworkError::NoClusterId {
            side: self.side,
            namespace: self.system_namespace.clone(),
            flag_prefix: match self.side {
                Side::Local => "",
                Side::Remote => "remote-",
            },
        })
    }

    /// A namespaced API.
    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Reads `namespace/name`, `None` when it does not exist.
    pub async fn get<K>(&self, namespace: &str, name: &str) -> Result<Option<K>, NetworkError>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).into_owned();
        self.api::<K>(namespace)
            .get_opt(name)
            .await
            .map_err(self.err(format!("reading {kind} {namespace}/{name}")))
    }

    /// Creates or updates `object` (server-side apply, field manager `cwctl`); records it as
    /// created when it did not exist. Returns the object as stored.
    pub async fn apply<K>(&self, object: &K) -> Result<K, NetworkError>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        <K as Resource>::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).into_owned();
        let meta = object.meta();
        let (namespace, name) = (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        );
        let what = format!("{kind} {namespace}/{name}");
        self.step(&format!("applying {what}"));
        let existed = self.get::<K>(&namespace, &name).await?.is_some();
        let applied = self
            .api::<K>(&namespace)
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
            .map_err(self.err(format!("applying {what}")))?;
        if !existed {
            self.progress
                .borrow_mut()
                .created
                .push(format!("({}) {what}", self.side));
        }
        Ok(applied)
    }

    /// Creates namespace `name` with `labels` unless it exists; returns whether it was created.
    pub async fn ensure_namespace(
        &self,
        name: &str,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<bool, NetworkError> {
        use k8s_openapi::api::core::v1::Namespace;
        self.step(&format!("creating namespace {name}"));
        let api: Api<Namespace> = Api::all(self.client.clone());
        let action = format!("creating namespace {name}");
        if api
            .get_opt(name)
            .await
            .map_err(self.err(action.clone()))?
            .is_some()
        {
            return Ok(false);
        }
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(name.to_owned());
        namespace.metadata.labels = Some(labels);
        api.create(&PostParams::default(), &namespace)
            .await
            .map_err(self.err(action))?;
        self.progress
            .borrow_mut()
            .created
            .push(format!("({}) Namespace {name}", self.side));
        Ok(true)
    }

    /// Polls `namespace/name` until `ready` returns a value (a missing object is waited for).
    pub async fn wait_for<K, T>(
        &self,
        namespace: &str,
        name: &str,
        what: &str,
        ready: impl Fn(&K) -> Option<T>,
    ) -> Result<T, NetworkError>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).into_owned();
        self.step(&format!("waiting for {kind} {namespace}/{name} {what}"));
        loop {
            if let Some(value) = self
                .get::<K>(namespace, name)
                .await?
                .as_ref()
                .and_then(&ready)
            {
                return Ok(value);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Deletes `namespace/name`; `false` when it did not exist. With `wait`, returns once it
    /// is gone (finalizers run).
    pub async fn delete<K>(
        &self,
        namespace: &str,
        name: &str,
        wait: bool,
    ) -> Result<bool, NetworkError>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).into_owned();
        self.step(&format!("deleting {kind} {namespace}/{name}"));
        match self
            .api::<K>(namespace)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if NetworkError::is_not_found(&e) => return Ok(false),
            Err(e) => return Err(self.err(format!("deleting {kind} {namespace}/{name}"))(e)),
        }
        if wait {
            self.step(&format!("waiting for {kind} {namespace}/{name} to be gone"));
            while self.get::<K>(namespace, name).await?.is_some() {
                tokio::time::sleep(POLL).await;
            }
        }
        Ok(true)
    }
}
