//! Writes that happen only when needed: an object is server-side applied (field manager
//! `clusterwire-controller`) only when the live object does not already hold every field the
//! controller wants, so a re-sync of an unchanged state writes nothing.

use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, context::FIELD_MANAGER};

/// Whether `actual` holds everything in `desired`: objects key by key (fields the server
/// defaulted or others manage are ignored), lists element by element with the same length,
/// scalars equal; a `null`, `{}` or `[]` in `desired` matches a missing field (the API server
/// drops empty values).
pub fn contains(actual: &Value, desired: &Value) -> bool {
    match (actual, desired) {
        (_, Value::Null) => true,
        (Value::Object(a), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| a.get(k).map_or_else(|| is_empty(dv), |av| contains(av, dv))),
        (Value::Array(a), Value::Array(d)) => {
            a.len() == d.len() && a.iter().zip(d).all(|(av, dv)| contains(av, dv))
        }
        (a, d) => a == d,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Makes sure the object `name` holds `desired` (a full object with apiVersion and kind):
/// read it, apply only if something differs. Returns the live object and whether it wrote.
pub async fn ensure<K>(api: &Api<K>, name: &str, desired: &Value) -> Result<(K, bool), Error>
where
    K: Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    if let Some(live) = api.get_opt(name).await? {
        let value = serde_json::to_value(&live).map_err(Error::Serialize)?;
        if contains(&value, desired) {
            return Ok((live, false));
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let live = api.patch(name, &params, &Patch::Apply(desired)).await?;
    Ok((live, true))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::contains;

    #[test]
    fn subset_of_the_live_object() {
        let live =
            json!({"spec": {"ports": [{"port": 1, "protocol": "UDP"}], "clusterIP": "10.96.0.5"}});
        assert!(contains(&live, &json!({"spec": {"ports": [{"port": 1}]}})));
        assert!(!contains(&live, &json!({"spec": {"ports": [{"port": 2}]}})));
        assert!(!contains(
            &live,
            &json!({"spec": {"ports": [{"port": 1}, {"port": 2}]}})
        ));
        assert!(!contains(&live, &json!({"spec": {"type": "NodePort"}})));
        assert!(contains(
            &live,
            &json!({"spec": {"type": null, "selector": {}, "ips": []}})
        ));
    }
}
