//! What clusterwire's daemons (`clusterwire-gateway`, `clusterwire-agent`) share:
//! - [`netns`]: entering a named network namespace before anything else runs;
//! - [`net`]: links, addresses and routes over rtnetlink, routes reconciled by diff and marked
//!   with clusterwire's route protocol so stale ones are found without a state file;
//! - [`geneve`]: the Geneve end, a kernel `collect_md` device or eBPF-native;
//! - [`origin`]: `--manifests DIR` or `--kubernetes`, and the Kubernetes client;
//! - [`sysctl`]: per-namespace sysctls;
//! - [`http`]: the `/metrics`, `/healthz` and `/readyz` endpoint;
//! - [`logging`]: the tracing subscriber;
//! - [`manifests`]: polling the `--manifests` source with its problems logged.
#![forbid(unsafe_code)]

pub mod geneve;
pub mod http;
pub mod logging;
pub mod manifests;
pub mod net;
pub mod netns;
pub mod origin;
pub mod sysctl;
pub mod watch;
