//! Writing the gateway's Connection and its status with server-side apply.

use clusterwire_api::networking::{Connection, connection::ConnectionStatus};
use kube::{
    Api, Client, Resource as _,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

/// The field manager of everything the gateway writes.
pub const GATEWAY_FIELD_MANAGER: &str = "clusterwire-gateway";

/// A Connection that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The Connection has no name.
    #[error("the Connection has no metadata.name")]
    Unnamed,
    /// It does not serialize.
    #[error("cannot serialize the Connection: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The API server refused or could not be reached.
    #[error("writing Connection {name}: {source}")]
    Api {
        /// The Connection's name.
        name: String,
        /// What the client said.
        #[source]
        source: kube::Error,
    },
}

/// Keeps one gateway's Connection on the API server, writing only what changed since its last
/// successful write: the object (metadata labels and spec, created if missing) with one apply,
/// the status with an apply to the `status` subresource.
#[derive(Debug)]
pub struct ConnectionWriter {
    api: Api<Connection>,
    object: Option<Value>,
    status: Option<ConnectionStatus>,
}

impl ConnectionWriter {
    /// A writer of Connections in `namespace`.
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            object: None,
            status: None,
        }
    }

    /// Writes `connection` (with its status, if any); returns whether a request was sent.
    /// After a failure the next call sends everything again (the object may have been
    /// deleted: the apply re-creates it).
    pub async fn write(&mut self, connection: &Connection) -> Result<bool, WriteError> {
        let name = connection
            .metadata
            .name
            .clone()
            .ok_or(WriteError::Unnamed)?;
        let object = object_apply(connection)?;
        let params = PatchParams::apply(GATEWAY_FIELD_MANAGER).force();
        let api_error = |source| WriteError::Api {
            name: name.clone(),
            source,
        };
        let mut sent = false;
        if self.object.as_ref() != Some(&object) {
            self.object = None;
            self.status = None;
            self.api
                .patch(&name, &params, &Patch::Apply(&object))
                .await
                .map_err(api_error)?;
            self.object = Some(object);
            sent = true;
        }
        if let Some(status) = &connection.status
            && self.status.as_ref() != Some(status)
        {
            let body = json!({
                "apiVersion": Connection::api_version(&()),
                "kind": Connection::kind(&()),
                "metadata": {"name": name, "namespace": connection.metadata.namespace},
                "status": status,
            });
            if let Err(e) = self
                .api
                .patch_status(&name, &params, &Patch::Apply(&body))
                .await
            {
                self.object = None;
                return Err(api_error(e));
            }
            self.status = Some(status.clone());
            sent = true;
        }
        Ok(sent)
    }
}

/// The apply of the object itself: everything but the status.
fn object_apply(connection: &Connection) -> Result<Value, WriteError> {
    let mut value = serde_json::to_value(Connection {
        status: None,
        ..connection.clone()
    })
    .map_err(WriteError::Serialize)?;
    if let Value::Object(fields) = &mut value {
        fields.remove("status");
    }
    Ok(value)
}
