//! Builds the lab's namespaces and links from the [`Plan`] (see the module docs of `lab` for
//! the diagram): the WAN, per cluster an underlay bridge, nodes with a point-to-point veth per
//! pod, the simulated CNI (routes between nodes, masquerade out of the cluster) and the `NodePort`
//! of every gateway server.

use std::fmt::Write as _;

use anyhow::Context as _;

use super::{
    netns::{self, ip, ip_in},
    plan::{Cluster, Node, POD_CIDR, Plan, Pod, WAN, WAN_ROUTER, WIREGUARD_PORT, wan_netns},
};

/// The nftables table the simulated CNI installs in every node.
pub const CNI_TABLE: &str = "lab_cni";

fn new_netns(ns: &str, forwarding: bool) -> anyhow::Result<()> {
    ip(&["netns", "add", ns])?;
    // IPv6 off before any link exists: no solicitations or router advertisements in the lab.
    let forward = if forwarding { "1" } else { "0" };
    netns::sysctls(
        ns,
        &[
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            ("net.ipv4.ip_forward", forward),
        ],
    )?;
    ip_in(ns, &["link", "set", "lo", "up"])?;
    Ok(())
}

fn veth(a_ns: &str, a: &str, b_ns: &str, b: &str) -> anyhow::Result<()> {
    ip(&[
        "link", "add", a, "netns", a_ns, "type", "veth", "peer", "name", b, "netns", b_ns,
    ])?;
    ip_in(a_ns, &["link", "set", a, "up"])?;
    ip_in(b_ns, &["link", "set", b, "up"])?;
    Ok(())
}

fn bridge(ns: &str, name: &str) -> anyhow::Result<()> {
    ip_in(ns, &["link", "add", name, "type", "bridge"])?;
    ip_in(ns, &["link", "set", name, "up"])?;
    Ok(())
}

fn enslave(ns: &str, port: &str, bridge: &str) -> anyhow::Result<()> {
    ip_in(ns, &["link", "set", port, "master", bridge])?;
    Ok(())
}

/// Builds every namespace and link of the plan; prints one progress line per cluster.
pub fn build(plan: &Plan) -> anyhow::Result<()> {
    let wan = wan_netns();
    new_netns(&wan, false).context("creating the WAN namespace")?;
    bridge(&wan, "br0")?;
    ip_in(
        &wan,
        &[
            "addr",
            "add",
            &format!("{WAN_ROUTER}/{}", WAN.prefix_len()),
            "dev",
            "br0",
        ],
    )?;
    for cluster in &plan.clusters {
        println!("  {}: nodes, pods, gateway pods, CNI rules", cluster.name);
        build_cluster(cluster).with_context(|| format!("building cluster {}", cluster.name))?;
    }
    Ok(())
}

fn build_cluster(cluster: &Cluster) -> anyhow::Result<()> {
    let net = &cluster.net_netns;
    new_netns(net, false)?;
    bridge(net, "br0")?;
    for node in &cluster.nodes {
        build_node(cluster, node)?;
    }
    Ok(())
}

fn build_node(cluster: &Cluster, node: &Node) -> anyhow::Result<()> {
    let ns = &node.netns;
    new_netns(ns, true)?;
    // Underlay: eth0 in the node, a port of the cluster bridge.
    veth(ns, "eth0", &cluster.net_netns, &node.short)?;
    enslave(&cluster.net_netns, &node.short, "br0")?;
    let underlay = format!("{}/{}", node.underlay, cluster.underlay.prefix_len());
    ip_in(ns, &["addr", "add", &underlay, "dev", "eth0"])?;
    // WAN: wan0 in the node, a port of the WAN bridge; the default route goes there.
    let wan_port = node.name.clone();
    veth(ns, "wan0", &wan_netns(), &wan_port)?;
    enslave(&wan_netns(), &wan_port, "br0")?;
    ip_in(
        ns,
        &[
            "addr",
            "add",
            &format!("{}/{}", node.wan, WAN.prefix_len()),
            "dev",
            "wan0",
        ],
    )?;
    ip_in(
        ns,
        &["route", "add", "default", "via", &WAN_ROUTER.to_string()],
    )?;
    // Pods: point-to-point veths (as the ptp/Calico-style CNIs): the node holds the pods'
    // gateway address on every pod veth and routes each pod address to its veth, so all
    // traffic between pods goes through the node's routing (no shared L2, no ICMP redirects).
    for pod in &node.pods {
        build_pod(node, pod, false)?;
    }
    for (_, pod) in cluster.gateway_pods_on(&node.short) {
        build_pod(node, pod, true)?;
    }
    // The simulated CNI: routes to the other nodes' pod CIDRs over the underlay.
    for other in cluster.nodes.iter().filter(|n| n.short != node.short) {
        ip_in(
            ns,
            &[
                "route",
                "add",
                &other.pod_cidr.to_string(),
                "via",
                &other.underlay.to_string(),
                "dev",
                "eth0",
            ],
        )?;
    }
    netns::nft_in(ns, &cni_ruleset(cluster, node))
}

fn build_pod(node: &Node, pod: &Pod, gateway: bool) -> anyhow::Result<()> {
    new_netns(&pod.netns, gateway)?;
    veth(&pod.netns, "eth0", &node.netns, &pod.node_veth)?;
    let cni = node.cni_address.to_string();
    let address = pod.address.to_string();
    ip_in(
        &pod.netns,
        &["addr", "add", &format!("{address}/32"), "dev", "eth0"],
    )?;
    ip_in(
        &pod.netns,
        &["route", "add", &cni, "dev", "eth0", "scope", "link"],
    )?;
    ip_in(
        &pod.netns,
        &["route", "add", "default", "via", &cni, "dev", "eth0"],
    )?;
    let veth = pod.node_veth.as_str();
    ip_in(
        &node.netns,
        &["addr", "add", &format!("{cni}/32"), "dev", veth],
    )?;
    ip_in(
        &node.netns,
        &[
            "route",
            "add",
            &format!("{address}/32"),
            "dev",
            veth,
            "scope",
            "link",
            "src",
            &cni,
        ],
    )?;
    Ok(())
}

/// The node's nftables rules: masquerade of pod sources to anything outside the cluster (its pod
/// CIDR and node underlay), whatever the output device, as real CNIs do (flannel, Calico's
/// `natOutgoing`); a peer's remapped CIDRs match it too, which the agent's CNI-masquerade bypass
/// must undo. And the `NodePort` DNAT of every gateway server on this node.
pub fn cni_ruleset(cluster: &Cluster, node: &Node) -> String {
    let mut nat = String::new();
    for gateway in cluster.gateways.iter().filter(|g| g.node == node.short) {
        if let Some(port) = gateway.node_port {
            let _ = writeln!(
                nat,
                "    iifname \"wan0\" udp dport {port} dnat to {}:{WIREGUARD_PORT}",
                gateway.pod.address
            );
        }
    }
    format!(
        "table ip {CNI_TABLE} {{\n  \
         chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n\
         {nat}  }}\n  \
         chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         ip saddr {POD_CIDR} ip daddr != {{ {POD_CIDR}, {underlay} }} masquerade\n  }}\n}}\n",
        underlay = cluster.underlay,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_node_has_the_node_port_and_every_node_masquerades() {
        let plan = Plan::new(2).expect("plan");
        let cl01 = plan.cluster("cl01").expect("cl01");
        let n1 = cl01.node("n1").expect("n1");
        let rules = cni_ruleset(cl01, n1);
        assert!(
            rules.contains("iifname \"wan0\" udp dport 31840 dnat to 10.0.1.102:51840"),
            "{rules}"
        );
        assert!(rules.contains(
            "ip saddr 10.0.0.0/16 ip daddr != { 10.0.0.0/16, 172.31.1.0/24 } masquerade"
        ));
        let n2 = cl01.node("n2").expect("n2");
        assert!(!cni_ruleset(cl01, n2).contains("dnat"));
        let cl02 = plan.cluster("cl02").expect("cl02");
        // A client gateway gets no NodePort.
        assert!(!cni_ruleset(cl02, cl02.node("n1").expect("n1")).contains("dnat"));
    }
}
