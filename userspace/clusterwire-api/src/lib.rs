//! Liqo-compatible Kubernetes resources (CRD types) for clusterwire.
#![forbid(unsafe_code)]
