//! The `GatewayServer` / `GatewayClient` reconciler: a key pair generated once into Secret
//! `gw-<name>` (or the Secret `spec.secretRef` names, checked, never written), the referenced
//! template rendered into the gateway's objects (owned by the gateway, so deleting the gateway
//! deletes them), the RBAC bindings of its `ServiceAccount` ([`crate::binding`]), its active
//! pod ([`crate::activepod`]) in `status.internalEndpoint` and its `InternalFabric`
//! ([`crate::internalfabric`]), `status.secretRef` and, for servers, `status.endpoint` from
//! the Service. The finalizer `clusterwire.liqo.io/gateway` deletes what ownership cannot
//! (the `ClusterRoleBinding`) and frees the fabric's internal address. A problem with the
//! inputs is condition `Ready=False` with a reason naming it, an event when it changes, and a
//! retry with backoff.

use std::{fmt::Write as _, sync::Arc};

use clusterwire_api::{
    common::REMOTE_CLUSTER_ID_LABEL,
    networking::{
        GatewayClient, GatewayServer, WgGatewayClientTemplate, WgGatewayServerTemplate,
        gateway::{EndpointStatus, InternalGatewayEndpoint},
    },
};
use k8s_openapi::{
    api::apps::v1::Deployment,
    api::core::v1::{ObjectReference, Secret, Service, ServiceAccount},
    apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{
        controller::Action,
        finalizer::{Event as Finalizer, finalizer},
    },
};
use serde_json::{Map, Value, json};

use crate::{
    Error, activepod,
    apply::ensure,
    binding::{self, Subject},
    context::{Context, FIELD_MANAGER},
    endpoint::endpoint,
    internalfabric, keys,
    objects::{self, Common, resource_name},
    status::set_condition,
    template::{TemplateData, render},
};

/// The condition a gateway's status carries.
pub const CONDITION: &str = "Ready";
/// The finalizer that removes a gateway's `ClusterRoleBinding` and frees its fabric address.
pub const FINALIZER: &str = "clusterwire.liqo.io/gateway";

/// Server or client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `GatewayServer`.
    Server,
    /// `GatewayClient`.
    Client,
}

impl Mode {
    fn kind(self) -> &'static str {
        match self {
            Self::Server => "GatewayServer",
            Self::Client => "GatewayClient",
        }
    }

    fn template_kind(self) -> &'static str {
        match self {
            Self::Server => "WgGatewayServerTemplate",
            Self::Client => "WgGatewayClientTemplate",
        }
    }
}

/// What the reconcile needs of a gateway, server or client.
struct Gateway<'a> {
    mode: Mode,
    namespace: String,
    name: String,
    uid: String,
    cluster_id: Option<&'a String>,
    spec: Value,
    template_ref: Option<&'a ObjectReference>,
    secret_ref: Option<&'a str>,
    mtu: Option<i32>,
    object_ref: ObjectReference,
}

fn unnamed(mode: Mode) -> Error {
    Error::Unnamed { kind: mode.kind() }
}

impl<'a> Gateway<'a> {
    fn new<K: Resource<DynamicType = ()>>(
        mode: Mode,
        obj: &'a K,
        spec: Value,
        template_ref: Option<&'a ObjectReference>,
        secret_ref: Option<&'a str>,
        mtu: Option<i32>,
    ) -> Result<Self, Error> {
        let meta = obj.meta();
        Ok(Self {
            mode,
            namespace: meta.namespace.clone().ok_or_else(|| unnamed(mode))?,
            name: meta.name.clone().ok_or_else(|| unnamed(mode))?,
            uid: meta.uid.clone().unwrap_or_default(),
            cluster_id: meta
                .labels
                .as_ref()
                .and_then(|l| l.get(REMOTE_CLUSTER_ID_LABEL)),
            spec,
            template_ref,
            secret_ref,
            mtu,
            object_ref: obj.object_ref(&()),
        })
    }

    fn owner(&self) -> OwnerReference {
        OwnerReference {
            api_version: "networking.liqo.io/v1beta1".to_owned(),
            kind: self.mode.kind().to_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    fn key(&self) -> String {
        format!("{}/{}/{}", self.mode.kind(), self.namespace, self.name)
    }

    fn secret_name(&self) -> String {
        self.secret_ref
            .map_or_else(|| resource_name(&self.name), str::to_owned)
    }
}

/// What a successful render leaves: the Secret in use, the live Deployment and Service
/// (servers).
struct Rendered {
    secret: ObjectReference,
    deployment: Deployment,
    service: Option<Service>,
    template: String,
}

async fn ensure_secret(
    gw: &Gateway<'_>,
    ctx: &Context,
    owner: &OwnerReference,
    cluster_id: &str,
) -> Result<ObjectReference, Error> {
    let name = gw.secret_name();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &gw.namespace);
    let invalid = |reason: String| Error::Secret {
        name: name.clone(),
        reason,
    };
    match api.get_opt(&name).await? {
        // Never rewritten: a key rotation would break the tunnel (the reference reconnects
        // every ~10 h because of a re-sync that did).
        Some(secret) => keys::check(&secret).map_err(|r| invalid(r.to_owned()))?,
        None if gw.secret_ref.is_some() => return Err(invalid("not found".to_owned())),
        None => {
            let private =
                (ctx.private_key)().map_err(|e| invalid(format!("cannot generate a key: {e}")))?;
            let labels = [(REMOTE_CLUSTER_ID_LABEL.to_owned(), cluster_id.to_owned())].into();
            let secret = keys::secret(&name, &gw.namespace, labels, owner.clone(), private);
            api.create(&PostParams::default(), &secret).await?;
            tracing::info!(gateway = %gw.key(), secret = %name, "key pair generated");
        }
    }
    Ok(ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Secret".to_owned()),
        name: Some(name),
        namespace: Some(gw.namespace.clone()),
        ..ObjectReference::default()
    })
}

async fn fetch_template(
    gw: &Gateway<'_>,
    ctx: &Context,
) -> Result<(String, Map<String, Value>), Error> {
    let missing = |reference: String, reason| Error::TemplateMissing { reference, reason };
    let reference = gw.template_ref.ok_or_else(|| {
        missing(
            gw.mode.template_kind().to_owned(),
            "the gateway names no template",
        )
    })?;
    let kind = reference.kind.as_deref().unwrap_or(gw.mode.template_kind());
    let namespace = reference.namespace.as_deref().unwrap_or(&gw.namespace);
    let name = reference.name.as_deref().unwrap_or_default();
    let described = format!("{kind} {namespace}/{name}");
    if kind != gw.mode.template_kind() {
        return Err(missing(described, "unsupported template kind"));
    }
    if name.is_empty() {
        return Err(missing(described, "the template reference has no name"));
    }
    let template = match gw.mode {
        Mode::Server => Api::<WgGatewayServerTemplate>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|t| t.spec.template.0),
        Mode::Client => Api::<WgGatewayClientTemplate>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|t| t.spec.template.0),
    };
    template
        .map(|t| (described.clone(), t))
        .ok_or_else(|| missing(described, "not found"))
}

async fn render_gateway(gw: &Gateway<'_>, ctx: &Context) -> Result<Rendered, Error> {
    let cluster_id = gw.cluster_id.ok_or(Error::MissingClusterId {
        label: REMOTE_CLUSTER_ID_LABEL,
    })?;
    let owner = gw.owner();
    let secret = ensure_secret(gw, ctx, &owner, cluster_id).await?;
    let (described, template) = fetch_template(gw, ctx).await?;
    let secret_name = gw.secret_name();
    // `{{ .Spec.SecretRef.Name }}` names the Secret in use even when the spec leaves it empty.
    let mut spec = gw.spec.clone();
    if spec.get("secretRef").is_none_or(Value::is_null) {
        spec["secretRef"] = json!({ "name": secret_name });
    }
    let data = TemplateData {
        spec,
        name: gw.name.clone(),
        namespace: gw.namespace.clone(),
        gateway_uid: gw.uid.clone(),
        cluster_id: cluster_id.clone(),
        secret_name,
    };
    let invalid = |source| Error::TemplateInvalid {
        reference: described.clone(),
        source,
    };
    let rendered = render(&template, &data).map_err(invalid)?;
    let labels: Map<String, Value> = [(REMOTE_CLUSTER_ID_LABEL.to_owned(), json!(cluster_id))]
        .into_iter()
        .collect();
    let common = Common {
        namespace: &gw.namespace,
        owner: &owner,
        labels: &labels,
    };
    let objects = objects::build(&rendered, &gw.name, &common).map_err(invalid)?;
    let client = &ctx.client;
    if let Some((name, value)) = &objects.service_account {
        ensure(
            &Api::<ServiceAccount>::namespaced(client.clone(), &gw.namespace),
            name,
            value,
        )
        .await?;
        let subject = Subject {
            namespace: &gw.namespace,
            gateway: &gw.name,
            service_account: name,
            owner: &owner,
            labels: &labels,
        };
        binding::ensure_bindings(client, &subject).await?;
    }
    let (name, value) = &objects.deployment;
    let (deployment, _) = ensure(
        &Api::<Deployment>::namespaced(client.clone(), &gw.namespace),
        name,
        value,
    )
    .await?;
    let service = match &objects.service {
        Some((name, value)) => {
            let api = Api::<Service>::namespaced(client.clone(), &gw.namespace);
            Some(ensure(&api, name, value).await?.0)
        }
        None => None,
    };
    Ok(Rendered {
        secret,
        deployment,
        service,
        template: described,
    })
}

/// What the reconcile observes into the status of either kind.
#[derive(Debug, Default)]
struct Observed {
    secret_ref: Option<ObjectReference>,
    endpoint: Option<EndpointStatus>,
    internal_endpoint: Option<InternalGatewayEndpoint>,
}

/// Renders the gateway, finds its active pod and keeps its `InternalFabric`; fills `observed`
/// with what it learns on the way (also when a later step fails). Returns the condition's
/// message.
async fn observe(
    gw: &Gateway<'_>,
    ctx: &Context,
    observed: &mut Observed,
) -> Result<String, Error> {
    let rendered = render_gateway(gw, ctx).await?;
    observed.secret_ref = Some(rendered.secret.clone());
    let pod = activepod::find(&ctx.client, &rendered.deployment).await;
    let public = match (gw.mode, &rendered.service) {
        (Mode::Client, _) => None,
        (Mode::Server, None) => Some(Err(Error::EndpointPending {
            service: resource_name(&gw.name),
            reason: "the template renders no Service",
        })),
        (Mode::Server, Some(service)) => {
            let node = pod.as_ref().ok().map(|p| p.node.as_str());
            Some(endpoint(&ctx.client, service, node).await)
        }
    };
    if let Some(Ok(e)) = &public {
        observed.endpoint = Some(e.clone());
    }
    let pod = pod?;
    observed.internal_endpoint = Some(pod.internal_endpoint());
    let cluster_id = gw.cluster_id.ok_or(Error::MissingClusterId {
        label: REMOTE_CLUSTER_ID_LABEL,
    })?;
    let owner = gw.owner();
    let fabric = internalfabric::Gateway {
        namespace: &gw.namespace,
        cluster_id,
        owner: &owner,
        mtu: gw.mtu,
        pod: &pod,
    };
    internalfabric::ensure(ctx, &fabric).await?;
    let mut message = format!("rendered from {}", rendered.template);
    if let Some(public) = public {
        let e = public?;
        let _ = write!(
            message,
            "; endpoint {}:{}",
            e.addresses.join(","),
            e.port.unwrap_or_default()
        );
    }
    let _ = write!(
        message,
        "; active pod {} ({} on {})",
        pod.name, pod.ip, pod.node
    );
    Ok(message)
}

/// Conditions after `result`; `Some(event)` when the condition changed.
fn conditions(
    old: &[Condition],
    result: Result<String, &Error>,
    generation: Option<i64>,
    ctx: &Context,
) -> (Vec<Condition>, Option<(bool, &'static str, String)>) {
    let (ok, reason, message) = match result {
        Ok(message) => (true, "Ready", message),
        Err(e) => (false, e.reason(), e.to_string()),
    };
    let changed = old
        .iter()
        .find(|c| c.type_ == CONDITION)
        .is_none_or(|c| c.reason != reason || c.message != message);
    let conditions = set_condition(
        old,
        CONDITION,
        ok,
        reason,
        &message,
        generation,
        (ctx.clock)(),
    );
    let event = changed.then_some((ok, if ok { "GatewayReady" } else { reason }, message));
    (conditions, event)
}

/// Errors that are the API server's, not the gateway's: retried without touching the status.
fn transient(e: &Error) -> bool {
    matches!(e, Error::Kube(_) | Error::Serialize(_))
}

async fn finish<K>(
    gw: &Gateway<'_>,
    ctx: &Context,
    api: &Api<K>,
    status: Option<Value>,
    event: Option<(bool, &'static str, String)>,
    failure: Option<Error>,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if let Some(status) = status {
        let patch = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        api.patch_status(
            &gw.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    if let Some((ok, reason, message)) = event {
        tracing::info!(gateway = %gw.key(), ok, reason, "{message}");
        ctx.events
            .publish(&gw.object_ref, !ok, reason, &message)
            .await;
    }
    if let Some(err) = failure {
        return Err(err);
    }
    ctx.succeeded(&gw.key());
    Ok(Action::await_change())
}

/// Reconciles one `GatewayServer` (through the finalizer).
pub async fn reconcile_server(gws: Arc<GatewayServer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = gws.namespace().ok_or_else(|| unnamed(Mode::Server))?;
    let api: Api<GatewayServer> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, gws, |event| async {
        match event {
            Finalizer::Apply(gws) => apply_server(&gws, &api, &ctx).await,
            Finalizer::Cleanup(gws) => cleanup(Mode::Server, gws.as_ref(), &ctx).await,
        }
    })
    .await
    .map_err(Error::from_finalizer)
}

/// Reconciles one `GatewayClient` (through the finalizer).
pub async fn reconcile_client(gwc: Arc<GatewayClient>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = gwc.namespace().ok_or_else(|| unnamed(Mode::Client))?;
    let api: Api<GatewayClient> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, gwc, |event| async {
        match event {
            Finalizer::Apply(gwc) => apply_client(&gwc, &api, &ctx).await,
            Finalizer::Cleanup(gwc) => cleanup(Mode::Client, gwc.as_ref(), &ctx).await,
        }
    })
    .await
    .map_err(Error::from_finalizer)
}

async fn apply_server(
    gws: &GatewayServer,
    api: &Api<GatewayServer>,
    ctx: &Context,
) -> Result<Action, Error> {
    let spec = serde_json::to_value(&gws.spec).map_err(Error::Serialize)?;
    let secret_ref = gws
        .spec
        .secret_ref
        .as_ref()
        .map(|r| r.name.as_str())
        .filter(|n| !n.is_empty());
    let gw = Gateway::new(
        Mode::Server,
        gws,
        spec,
        gws.spec.server_template_ref.as_ref(),
        secret_ref,
        gws.spec.mtu,
    )?;
    let old = gws.status.clone().unwrap_or_default();
    let mut observed = Observed {
        secret_ref: old.secret_ref.clone(),
        endpoint: old.endpoint.clone(),
        internal_endpoint: old.internal_endpoint.clone(),
    };
    let result = observe(&gw, ctx, &mut observed).await;
    if let Err(e) = &result
        && transient(e)
    {
        return result.map(|_| Action::await_change());
    }
    let generation = gws.metadata.generation;
    let (conditions, event) = conditions(
        &old.common.conditions,
        result.as_ref().map(String::clone),
        generation,
        ctx,
    );
    let mut status = old.clone();
    status.secret_ref = observed.secret_ref;
    status.endpoint = observed.endpoint;
    status.internal_endpoint = observed.internal_endpoint;
    status.common.conditions = conditions;
    status.common.observed_generation = generation;
    let write = (status != old)
        .then(|| serde_json::to_value(&status))
        .transpose()
        .map_err(Error::Serialize)?;
    finish(&gw, ctx, api, write, event, result.err()).await
}

async fn apply_client(
    gwc: &GatewayClient,
    api: &Api<GatewayClient>,
    ctx: &Context,
) -> Result<Action, Error> {
    let spec = serde_json::to_value(&gwc.spec).map_err(Error::Serialize)?;
    let secret_ref = gwc
        .spec
        .secret_ref
        .as_ref()
        .map(|r| r.name.as_str())
        .filter(|n| !n.is_empty());
    let gw = Gateway::new(
        Mode::Client,
        gwc,
        spec,
        gwc.spec.client_template_ref.as_ref(),
        secret_ref,
        gwc.spec.mtu,
    )?;
    let old = gwc.status.clone().unwrap_or_default();
    let mut observed = Observed {
        secret_ref: old.secret_ref.clone(),
        endpoint: None,
        internal_endpoint: old.internal_endpoint.clone(),
    };
    let result = observe(&gw, ctx, &mut observed).await;
    if let Err(e) = &result
        && transient(e)
    {
        return result.map(|_| Action::await_change());
    }
    let generation = gwc.metadata.generation;
    let (conditions, event) = conditions(
        &old.common.conditions,
        result.as_ref().map(String::clone),
        generation,
        ctx,
    );
    let mut status = old.clone();
    status.secret_ref = observed.secret_ref;
    status.internal_endpoint = observed.internal_endpoint;
    status.common.conditions = conditions;
    status.common.observed_generation = generation;
    let write = (status != old)
        .then(|| serde_json::to_value(&status))
        .transpose()
        .map_err(Error::Serialize)?;
    finish(&gw, ctx, api, write, event, result.err()).await
}

/// The gateway is being deleted: its namespaced objects go with it (owner references); the
/// `ClusterRoleBinding` is deleted here and the fabric's internal address freed.
async fn cleanup<K: Resource<DynamicType = ()>>(
    mode: Mode,
    gw: &K,
    ctx: &Context,
) -> Result<Action, Error> {
    let meta = gw.meta();
    let (Some(namespace), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else {
        return Err(unnamed(mode));
    };
    binding::remove(&ctx.client, namespace, name).await?;
    if let Some(cluster_id) = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(REMOTE_CLUSTER_ID_LABEL))
    {
        let freed = internalfabric::release(&mut ctx.ipam(), namespace, cluster_id);
        if !freed.is_empty() {
            tracing::info!(gateway = %format!("{namespace}/{name}"), ?freed, "fabric address released");
        }
    }
    ctx.succeeded(&format!("{}/{namespace}/{name}", mode.kind()));
    Ok(Action::await_change())
}

/// Retry with backoff after a failed reconcile of a gateway.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature kube-runtime's Controller::run takes"
)]
pub fn error_policy<K: Resource<DynamicType = ()>>(
    gw: Arc<K>,
    err: &Error,
    ctx: Arc<Context>,
) -> Action {
    let key = format!(
        "{}/{}/{}",
        K::kind(&()),
        gw.namespace().unwrap_or_default(),
        gw.name_any()
    );
    let delay = ctx.backoff(&key);
    tracing::warn!(gateway = %key, kind = err.kind(), ?delay, "reconcile failed: {err}");
    Action::requeue(delay)
}
