//! The CNI-masquerade bypass: pod sources are kept toward remote clusters.
//!
//! Real CNIs masquerade pod traffic to destinations outside the cluster (flannel, Calico's
//! `natOutgoing`, ...), and a peer's remapped CIDRs look like such destinations: the remote pod
//! would see the node's address instead of the pod's. The masquerade is a netfilter NAT, which
//! only acts on tracked packets, so the agent marks traffic to and from the remote CIDRs
//! `notrack` in the raw hooks (before any NAT or conntrack), in its own nftables table
//! `ip clusterwire`. The path is stateless end to end, as in the gateways; a CNI network policy
//! that relies on conntrack state for cross-cluster flows does not see them as established.
//!
//! The table is replaced as a whole (`nft -f -`, one transaction) when the remote CIDRs change
//! or it disappeared (a CNI that flushes the ruleset), and deleted when there are none.
use std::{
    collections::BTreeSet,
    fmt::Write as _,
    io::Write as _,
    process::{Command, Stdio},
};

use ipnet::Ipv4Net;

/// The agent's nftables table (family `ip`).
pub const TABLE: &str = "clusterwire";

/// Why the bypass could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum BypassError {
    /// `nft` could not be started.
    #[error("running nft (package nftables) failed")]
    Spawn(#[source] std::io::Error),
    /// `nft` refused the ruleset.
    #[error("nft refused the bypass ruleset: {0}")]
    Refused(String),
}

/// The applied state.
#[derive(Debug, Default)]
pub struct Bypass {
    applied: Option<BTreeSet<Ipv4Net>>,
}

impl Bypass {
    /// Makes the table match `remote`; returns whether anything was written.
    pub fn sync(&mut self, remote: &BTreeSet<Ipv4Net>) -> Result<bool, BypassError> {
        if self.applied.as_ref() == Some(remote) && (remote.is_empty() || table_exists()) {
            return Ok(false);
        }
        nft(&ruleset(remote))?;
        self.applied = Some(remote.clone());
        Ok(true)
    }
}

/// The transaction that replaces the table (creating it first, so the delete never fails).
pub fn ruleset(remote: &BTreeSet<Ipv4Net>) -> String {
    let mut out = format!("table ip {TABLE}\ndelete table ip {TABLE}\n");
    if remote.is_empty() {
        return out;
    }
    let elements = remote
        .iter()
        .map(Ipv4Net::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        out,
        "table ip {TABLE} {{\n\
         \x20 set remote {{\n    type ipv4_addr\n    flags interval\n    elements = {{ {elements} }}\n  }}\n\
         \x20 chain prerouting {{\n    type filter hook prerouting priority raw; policy accept;\n\
         \x20   ip daddr @remote notrack\n    ip saddr @remote notrack\n  }}\n\
         \x20 chain output {{\n    type filter hook output priority raw; policy accept;\n\
         \x20   ip daddr @remote notrack\n  }}\n}}\n"
    );
    out
}

/// Whether the table is there (`nft list table`).
fn table_exists() -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", TABLE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn nft(ruleset: &str) -> Result<(), BypassError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(BypassError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(BypassError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(BypassError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BypassError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_untracks_both_directions_and_an_empty_set_removes_the_table() {
        let remote: BTreeSet<Ipv4Net> = ["10.1.0.0/16", "10.2.0.0/16"]
            .iter()
            .map(|s| s.parse().expect("cidr"))
            .collect();
        assert_eq!(
            ruleset(&remote),
            "table ip clusterwire\ndelete table ip clusterwire\n\
             table ip clusterwire {\n  set remote {\n    type ipv4_addr\n    flags interval\n    \
             elements = { 10.1.0.0/16, 10.2.0.0/16 }\n  }\n  chain prerouting {\n    \
             type filter hook prerouting priority raw; policy accept;\n    \
             ip daddr @remote notrack\n    ip saddr @remote notrack\n  }\n  chain output {\n    \
             type filter hook output priority raw; policy accept;\n    \
             ip daddr @remote notrack\n  }\n}\n"
        );
        assert_eq!(
            ruleset(&BTreeSet::new()),
            "table ip clusterwire\ndelete table ip clusterwire\n"
        );
    }
}
