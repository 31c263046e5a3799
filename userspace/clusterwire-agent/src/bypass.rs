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
//! The table is written as a whole (`nft -f -`, one transaction) the first time and when it
//! disappeared (a CNI that flushes the ruleset: [`Bypass::repair`] checks), deleted when there
//! are no remote CIDRs; when only some CIDRs change, only those elements of its set are added
//! and deleted (one transaction too; if it fails, e.g. the table went meanwhile, the table is
//! written as a whole).
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
    /// Makes the table match `remote`; returns whether anything was written. With `check`,
    /// first makes sure the table is still there (one `nft list`), else trusts what was last
    /// written.
    pub fn sync(&mut self, remote: &BTreeSet<Ipv4Net>, check: bool) -> Result<bool, BypassError> {
        if let Some(applied) = &self.applied {
            let present = applied.is_empty() || !check || table_exists();
            if applied == remote && present {
                return Ok(false);
            }
            let only_elements = !applied.is_empty() && !remote.is_empty();
            if only_elements && present && nft(&delta(applied, remote)).is_ok() {
                self.applied = Some(remote.clone());
                return Ok(true);
            }
        }
        self.applied = None;
        nft(&ruleset(remote))?;
        self.applied = Some(remote.clone());
        Ok(true)
    }

    /// Writes the table again if it disappeared; returns whether it did.
    pub fn repair(&mut self) -> Result<bool, BypassError> {
        match self.applied.clone() {
            Some(applied) => self.sync(&applied, true),
            None => Ok(false),
        }
    }
}

/// The transaction that turns the set `from` into `to` (both not empty: the table exists).
pub fn delta(from: &BTreeSet<Ipv4Net>, to: &BTreeSet<Ipv4Net>) -> String {
    let join = |nets: Vec<&Ipv4Net>| {
        nets.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    // Deletions first: an added CIDR may overlap one that goes (interval sets refuse overlaps).
    let gone: Vec<&Ipv4Net> = from.difference(to).collect();
    if !gone.is_empty() {
        let _ = writeln!(out, "delete element ip {TABLE} remote {{ {} }}", join(gone));
    }
    let new: Vec<&Ipv4Net> = to.difference(from).collect();
    if !new.is_empty() {
        let _ = writeln!(out, "add element ip {TABLE} remote {{ {} }}", join(new));
    }
    out
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

    #[test]
    fn a_delta_deletes_what_went_then_adds_what_came() {
        let set = |cidrs: &[&str]| -> BTreeSet<Ipv4Net> {
            cidrs.iter().map(|s| s.parse().expect("cidr")).collect()
        };
        let from = set(&["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]);
        assert_eq!(
            delta(&from, &set(&["10.2.0.0/16", "10.4.0.0/16", "10.5.0.0/16"])),
            "delete element ip clusterwire remote { 10.1.0.0/16, 10.3.0.0/16 }\n\
             add element ip clusterwire remote { 10.4.0.0/16, 10.5.0.0/16 }\n"
        );
        assert_eq!(
            delta(
                &from,
                &set(&["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.9.0.0/16"])
            ),
            "add element ip clusterwire remote { 10.9.0.0/16 }\n"
        );
        assert_eq!(delta(&from, &from), "");
    }
}
