//! The Geneve end of a daemon (node agent or gateway), chosen once at start:
//!
//! - **kernel**: one `collect_md` Geneve device (the kernel's driver encapsulates and
//!   decapsulates). Routes to tunnelled prefixes go out of that device with the remote end as
//!   on-link next hop (one neighbour entry per remote end, however many prefixes), and
//!   `cw_geneve_encap` on its egress only sets the tunnel key (remote, VNI) from the route map.
//!   What arrives is decapsulated by the kernel and enters the stack on that device.
//! - **ebpf**: no device. Routes go out of the device the kernel uses toward the remote end,
//!   with the same next hop; `cw_geneve_encap` on that device's egress encapsulates, and
//!   `cw_geneve_decap` on its ingress decapsulates what the listed peers send.
//!
//! Both put the same frames on the wire, so a node in one mode talks to a gateway in the other.
//! A kernel receiver takes only frames addressed to its device's MAC, and drops frames whose
//! source is its own MAC (loop protection), so every clusterwire kernel Geneve device has the MAC
//! [`geneve_mac`] of its host's underlay address, which every sender can compute from the remote
//! IP it tunnels to: the kernel mode routes through the remote IP as an on-link next hop with a
//! permanent neighbour entry of that MAC (one per remote end), the eBPF mode writes it as the
//! inner destination. eBPF decapsulation ignores the inner MAC.
//!
//! Limit of the kernel mode: a `collect_md` device takes any VNI from any sender; eBPF mode
//! accepts only the listed (peer, VNI) pairs.
use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::Ipv4Addr,
    num::NonZeroU32,
    str::FromStr,
};

use clusterwire_dataplane::{
    Hook, Instance, InstanceError,
    geneve::{RouteTarget, TunnelMode, TunnelRoute, Vni},
};
use clusterwire_links::{LinkError, geneve as links};
use tracing::info;

use crate::net::{Net, NetError, RouteSpec};

/// Geneve's UDP port in clusterwire and Liqo.
pub use clusterwire_links::geneve::DEFAULT_PORT as PORT;

/// The MAC of the kernel Geneve device of the host whose underlay address is `ip`, and the inner
/// destination MAC of frames tunnelled to `ip`: locally administered `02:63` and the address.
pub fn geneve_mac(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x63, a, b, c, d]
}

/// `--geneve` of the daemons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneveChoice {
    /// Kernel where the kernel has the geneve driver, else eBPF.
    Auto,
    /// The kernel's geneve driver, or an error.
    Kernel,
    /// eBPF-native encapsulation.
    Ebpf,
}

impl FromStr for GeneveChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "kernel" => Ok(Self::Kernel),
            "ebpf" => Ok(Self::Ebpf),
            other => Err(format!(
                "unknown Geneve implementation {other:?} (auto, kernel or ebpf)"
            )),
        }
    }
}

impl fmt::Display for GeneveChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Kernel => "kernel",
            Self::Ebpf => "ebpf",
        })
    }
}

/// Why the Geneve end could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GeneveEndError {
    /// `--geneve kernel` on a kernel without the driver.
    #[error("--geneve kernel: this kernel has no geneve driver (use auto or ebpf)")]
    NoKernelDriver,
    /// Creating or checking the device failed.
    #[error("setting up the Geneve device {device}")]
    Device {
        /// The device.
        device: String,
        /// Why.
        #[source]
        source: Box<LinkError>,
    },
    /// Attaching or detaching a program failed.
    #[error("{action} {hook} on {device}")]
    Attach {
        /// attaching / detaching.
        action: &'static str,
        /// The hook.
        hook: Hook,
        /// The device.
        device: String,
        /// Why.
        #[source]
        source: Box<InstanceError>,
    },
    /// A link query failed.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// The daemon's Geneve end.
#[derive(Debug)]
pub enum GeneveEnd {
    /// A `collect_md` device of the kernel's driver.
    Kernel {
        /// Its name.
        device: String,
        /// Its interface index.
        ifindex: NonZeroU32,
        /// Remote ends with a neighbour entry on it.
        neighbours: BTreeSet<Ipv4Addr>,
    },
    /// eBPF-native encapsulation on the devices toward the remote ends.
    Ebpf {
        /// Devices the programs are attached to.
        attached: BTreeSet<String>,
        /// The kernel's routes toward remote ends, as looked up since the last
        /// [`GeneveEnd::forget_paths`].
        lookups: Lookups,
    },
}

/// The kernel's answers toward remote ends, kept between applies: a change that adds one node
/// asks the kernel about that node only, not about every node again. A remote end without a
/// route is not kept (it is asked again next time).
#[derive(Debug, Default)]
pub struct Lookups {
    /// Remote end -> output device index and next hop.
    routes: BTreeMap<Ipv4Addr, (u32, Option<Ipv4Addr>)>,
    /// Device index -> name.
    names: BTreeMap<u32, String>,
}

/// How prefixes tunnelled to one remote end are routed and encapsulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenevePath {
    /// The kernel route of each prefix.
    pub route: RouteSpec,
    /// The route map entry of each prefix.
    pub target: RouteTarget,
    /// Whether `cw_geneve_decap` must accept this remote end (eBPF mode).
    pub decap_peer: bool,
}

impl GeneveEnd {
    /// Sets up the Geneve end: in kernel mode (or auto on a kernel with the driver) the device
    /// `device` on `port`, with the MAC of `local` (this host's underlay address) and
    /// `cw_geneve_encap` on its egress. eBPF attachments of an earlier
    /// run in the other mode are removed (devices in `keep`, e.g. a gateway's tunnel, are not
    /// touched), and so is a kernel device of an earlier run in eBPF mode.
    pub async fn open(
        net: &Net,
        instance: &mut Instance,
        choice: GeneveChoice,
        device: &str,
        port: u16,
        local: Ipv4Addr,
        keep: &[&str],
    ) -> Result<Self, GeneveEndError> {
        let kernel = match choice {
            GeneveChoice::Ebpf => None,
            GeneveChoice::Auto | GeneveChoice::Kernel => {
                match links::ensure_collect_md(net.handle(), device, port, geneve_mac(local)).await
                {
                    Ok(index) => Some(index),
                    Err(e) if e.is_unsupported() && choice == GeneveChoice::Auto => None,
                    Err(e) if e.is_unsupported() => return Err(GeneveEndError::NoKernelDriver),
                    Err(source) => {
                        return Err(GeneveEndError::Device {
                            device: device.to_owned(),
                            source: Box::new(source),
                        });
                    }
                }
            }
        };
        let Some(ifindex) = kernel.and_then(NonZeroU32::new) else {
            let device_error = |source| GeneveEndError::Device {
                device: device.to_owned(),
                source: Box::new(source),
            };
            if let Some(link) = links::get(net.handle(), device)
                .await
                .map_err(device_error)?
            {
                links::delete(net.handle(), device, link.ifindex)
                    .await
                    .map_err(device_error)?;
                info!(device, "kernel Geneve device of an earlier run removed");
            }
            return Ok(Self::Ebpf {
                attached: BTreeSet::new(),
                lookups: Lookups::default(),
            });
        };
        // An earlier eBPF-mode run's decapsulation would drop what the kernel device should
        // receive (unknown peers): detach every Geneve program not on this device.
        for attachment in instance.attachments() {
            if attachment.device == device || keep.contains(&attachment.device.as_str()) {
                continue;
            }
            for hook in [Hook::GeneveEncap, Hook::GeneveDecap] {
                instance
                    .detach(hook, &attachment.device)
                    .map_err(attach_error("detaching", hook, &attachment.device))?;
            }
        }
        instance
            .attach(Hook::GeneveEncap, device)
            .map_err(attach_error("attaching", Hook::GeneveEncap, device))?;
        info!(device, ifindex, "kernel Geneve device ready");
        Ok(Self::Kernel {
            device: device.to_owned(),
            ifindex,
            neighbours: BTreeSet::new(),
        })
    }

    /// `kernel` or `ebpf`, as logs, metrics and status say.
    pub fn implementation(&self) -> &'static str {
        match self {
            Self::Kernel { .. } => "kernel",
            Self::Ebpf { .. } => "ebpf",
        }
    }

    /// Forgets the kernel's routes toward remote ends (eBPF mode): the next [`Self::path`] of
    /// each asks the kernel again. For the periodic full apply, which follows route changes
    /// toward remote ends that did not change themselves.
    pub fn forget_paths(&mut self) {
        if let Self::Ebpf { lookups, .. } = self {
            *lookups = Lookups::default();
        }
    }

    /// The path of prefixes tunnelled to `remote` with `vni`; `None` when the kernel has no
    /// route to `remote` (eBPF mode; the kernel device needs one only when it sends). In eBPF
    /// mode the programs are attached to the device toward `remote` on first use, and the
    /// kernel's route toward `remote` is asked once and kept until [`Self::forget_paths`].
    pub async fn path(
        &mut self,
        net: &Net,
        instance: &mut Instance,
        remote: Ipv4Addr,
        vni: Vni,
        mtu: u32,
        src: Option<Ipv4Addr>,
    ) -> Result<Option<GenevePath>, GeneveEndError> {
        match self {
            Self::Kernel {
                ifindex,
                neighbours,
                ..
            } => {
                if !neighbours.contains(&remote) {
                    net.set_neighbour(ifindex.get(), remote, geneve_mac(remote))
                        .await?;
                    neighbours.insert(remote);
                }
                Ok(Some(GenevePath {
                    route: RouteSpec {
                        oif: ifindex.get(),
                        via: Some(remote),
                        src,
                        mtu: Some(mtu),
                        onlink: true,
                    },
                    target: RouteTarget {
                        route: TunnelRoute::via_collect_md_device(remote, vni, *ifindex),
                        inner_dst_mac: None,
                    },
                    decap_peer: false,
                }))
            }
            Self::Ebpf { attached, lookups } => {
                let (oif, via) = if let Some(found) = lookups.routes.get(&remote) {
                    *found
                } else {
                    let Some((oif, via)) = net.route_to(remote).await? else {
                        return Ok(None);
                    };
                    if let std::collections::btree_map::Entry::Vacant(entry) =
                        lookups.names.entry(oif)
                    {
                        let Some(device) = net.link_name(oif).await? else {
                            return Ok(None);
                        };
                        attach_ebpf(instance, attached, &device)?;
                        entry.insert(device);
                    }
                    lookups.routes.insert(remote, (oif, via));
                    (oif, via)
                };
                Ok(Some(GenevePath {
                    route: RouteSpec {
                        oif,
                        via: Some(via.unwrap_or(remote)),
                        src,
                        mtu: Some(mtu),
                        onlink: false,
                    },
                    target: RouteTarget {
                        route: TunnelRoute {
                            remote,
                            vni,
                            mode: TunnelMode::Native {
                                egress_ifindex: None,
                            },
                        },
                        inner_dst_mac: Some(geneve_mac(remote)),
                    },
                    decap_peer: true,
                }))
            }
        }
    }

    /// Attaches the eBPF programs to `device` now (eBPF mode: the device where remote ends on
    /// other hosts answer, before any route uses it). Nothing in kernel mode.
    pub fn attach_underlay(
        &mut self,
        instance: &mut Instance,
        device: &str,
    ) -> Result<(), GeneveEndError> {
        match self {
            Self::Ebpf { attached, .. } => attach_ebpf(instance, attached, device),
            Self::Kernel { .. } => Ok(()),
        }
    }
}

/// Attaches encapsulation and decapsulation to `device` once (eBPF mode).
fn attach_ebpf(
    instance: &mut Instance,
    attached: &mut BTreeSet<String>,
    device: &str,
) -> Result<(), GeneveEndError> {
    if attached.contains(device) {
        return Ok(());
    }
    for hook in [Hook::GeneveEncap, Hook::GeneveDecap] {
        instance
            .attach(hook, device)
            .map_err(attach_error("attaching", hook, device))?;
    }
    info!(device, "eBPF Geneve programs attached");
    attached.insert(device.to_owned());
    Ok(())
}

/// The error of `action` (attaching / detaching) `hook` on `device`.
fn attach_error(
    action: &'static str,
    hook: Hook,
    device: &str,
) -> impl FnOnce(InstanceError) -> GeneveEndError {
    let device = device.to_owned();
    move |source| GeneveEndError::Attach {
        action,
        hook,
        device,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_parses_and_prints() {
        for name in ["auto", "kernel", "ebpf"] {
            let choice: GeneveChoice = name.parse().expect("parses");
            assert_eq!(choice.to_string(), name);
        }
        let err = "geneve".parse::<GeneveChoice>().expect_err("unknown");
        assert_eq!(
            err,
            "unknown Geneve implementation \"geneve\" (auto, kernel or ebpf)"
        );
    }

    #[test]
    fn geneve_mac_is_locally_administered_unicast_and_names_the_address() {
        let mac = geneve_mac(Ipv4Addr::new(10, 0, 1, 102));
        assert_eq!(mac, [0x02, 0x63, 10, 0, 1, 102]);
        assert_eq!(mac[0] & 0b11, 0b10);
    }
}
