//! Which documents a daemon's manifests source keeps: the kinds it reads, and for some of them
//! only one namespace (what its Kubernetes source watches). The others are skipped as soon as
//! their `apiVersion`, `kind` and `metadata` are read: not validated, typed, kept or reported.

use crate::snapshot::{Key, Kind};

/// The documents a source keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    kinds: Vec<Kind>,
    /// Kinds kept from this namespace only.
    namespace: Option<(String, Vec<Kind>)>,
}

impl Default for Filter {
    /// Every kind, every namespace.
    fn default() -> Self {
        Self {
            kinds: Kind::ALL.to_vec(),
            namespace: None,
        }
    }
}

impl Filter {
    /// Only the objects of `kinds`.
    #[must_use]
    pub fn kinds(mut self, kinds: &[Kind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Objects of `kinds` only from `namespace` (the other kinds from every namespace).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>, kinds: &[Kind]) -> Self {
        self.namespace = Some((namespace.into(), kinds.to_vec()));
        self
    }

    /// Whether the object of `kind` at `key` is kept.
    pub fn keeps(&self, kind: Kind, key: &Key) -> bool {
        self.kinds.contains(&kind)
            && self.namespace.as_ref().is_none_or(|(namespace, kinds)| {
                !kinds.contains(&kind) || key.namespace == *namespace
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_kinds_asked_and_the_namespace_asked_for_some() {
        let all = Filter::default();
        assert!(all.keeps(Kind::Configuration, &Key::new("t1", "a")));
        let filter = Filter::default()
            .kinds(&[Kind::Configuration, Kind::Ip])
            .namespace("t1", &[Kind::Configuration]);
        assert!(filter.keeps(Kind::Configuration, &Key::new("t1", "a")));
        assert!(!filter.keeps(Kind::Configuration, &Key::new("t2", "a")));
        assert!(filter.keeps(Kind::Ip, &Key::new("t2", "a")));
        assert!(!filter.keeps(Kind::Node, &Key::cluster("n1")));
    }
}
