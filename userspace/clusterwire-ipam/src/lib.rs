//! Remapping IPAM: decides and allocates CIDR remaps and single-IP mappings (no Kubernetes).
#![forbid(unsafe_code)]
