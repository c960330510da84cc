//! The context every namespaced call runs in: containerd's `containerd-namespace` and
//! `containerd-lease` gRPC headers.

use strata_core::identifiers;

use crate::{Error, Result};

/// Who a call is for: its namespace, and the lease that holds what it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctx {
    pub namespace: String,
    pub lease: Option<String>,
}

impl Ctx {
    /// Builds a context from the headers: a namespace is required (FailedPrecondition, as
    /// containerd's `NamespaceRequired`) and must be a valid identifier (InvalidArgument).
    pub fn new(namespace: Option<&str>, lease: Option<&str>) -> Result<Ctx> {
        let namespace = match namespace {
            Some(n) if !n.is_empty() => n,
            _ => return Err(Error::FailedPrecondition("namespace is required".into())),
        };
        identifiers::validate(namespace)?;
        Ok(Ctx {
            namespace: namespace.to_string(),
            lease: lease.filter(|l| !l.is_empty()).map(str::to_string),
        })
    }

    /// The content and snapshot view of the namespace: `ns/<name>`. A namespace name cannot
    /// contain `/`, so no namespace's view is the proxy socket's (`proxy`).
    pub fn view(&self) -> String {
        view_of(&self.namespace)
    }
}

/// The store view of namespace `ns`.
pub fn view_of(ns: &str) -> String {
    format!("ns/{ns}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_required_and_validated() {
        assert!(matches!(
            Ctx::new(None, None),
            Err(Error::FailedPrecondition(m)) if m == "namespace is required"
        ));
        assert!(matches!(
            Ctx::new(Some(""), None),
            Err(Error::FailedPrecondition(_))
        ));
        assert!(matches!(
            Ctx::new(Some("a/b"), None),
            Err(Error::InvalidArgument(_))
        ));
        let c = Ctx::new(Some("k8s.io"), Some("")).unwrap();
        assert_eq!((c.view().as_str(), c.lease), ("ns/k8s.io", None));
    }
}
