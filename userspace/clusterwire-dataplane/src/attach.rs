//! Attaching an instance's programs to devices so that they outlive the process.
//!
//! - **TCX** (kernel 6.6+): a BPF link created first in the hook's chain (`LinkOrder::first`),
//!   pinned at `<instance>/tcx-<direction>-<device>`. A later process opens the pin and swaps
//!   the program with `bpf_link_update`: atomic, no packet sees the hook empty.
//! - **netlink clsact** (older kernels): a `cls_bpf` direct-action filter at the fixed priority
//!   [`NETLINK_PRIORITY`] and a handle derived from the instance name. A later process sends
//!   `RTM_NEWTFILTER` for the same priority and handle without `NLM_F_CREATE`, which replaces the
//!   program in place (atomic); filters never pile up across restarts. The program is pinned at
//!   `<instance>/tc-<direction>-<device>`, which also records the attachment. A clsact qdisc the
//!   instance had to add is recorded by the directory `<instance>/qdisc-<device>`.
//!
//! The device decides how packets are parsed: Ethernet devices carry frames, L3 devices
//! (WireGuard, TUN) start at the IP header. Geneve programs need Ethernet and are refused on L3
//! devices; the NAT programs follow the kind of the tunnel device the instance was opened for.
use std::{
    fmt,
    path::{Path, PathBuf},
};

use aya::programs::{
    LinkOrder, ProgramError, SchedClassifier, TcAttachType,
    links::{FdLink, PinnedLink},
    tc::{self, NlOptions, SchedClassifierLink, TcAttachOptions, TcError, TcHandle},
};
use clusterwire_common::{
    geneve::{GENEVE_DECAP_PROGRAM, GENEVE_ENCAP_PROGRAM},
    nat::{NAT_FROM_TUNNEL_PROGRAM, NAT_TO_TUNNEL_PROGRAM},
};

use crate::{Datapath, error::InstanceError, layout::Role};

/// Priority of clusterwire's `cls_bpf` filters on kernels without TCX (lower runs first; CNIs
/// commonly use 1, so ours run after theirs would on the same hook only if they chose a larger
/// number).
pub const NETLINK_PRIORITY: u16 = 20;

/// `ARPHRD_ETHER`.
const ARPHRD_ETHER: u16 = 1;
/// `ARPHRD_NONE`: WireGuard and TUN devices.
const ARPHRD_NONE: u16 = 0xfffe;

/// What a device's packets start with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// An Ethernet header (veth, physical NICs, Geneve devices).
    Ethernet,
    /// The IP header (WireGuard, TUN).
    L3,
    /// Any other link type (loopback, tunnels with their own header): refused.
    Other(u16),
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ethernet => f.write_str("an Ethernet device"),
            Self::L3 => f.write_str("an L3 device (no link-layer header)"),
            Self::Other(t) => write!(f, "a device of link type {t}"),
        }
    }
}

/// The interface index and kind of `device` in the calling thread's network namespace (asked
/// over rtnetlink: sysfs would show the namespace it was mounted in, and `getifaddrs` has no
/// link-layer entry for devices without a hardware address, such as TUN).
pub fn device(device: &str) -> Result<(u32, DeviceKind), InstanceError> {
    match crate::qdisc::link_type(device) {
        Ok(Some((ifindex, link_type))) => {
            let kind = match link_type {
                ARPHRD_ETHER => DeviceKind::Ethernet,
                ARPHRD_NONE => DeviceKind::L3,
                other => DeviceKind::Other(other),
            };
            Ok((ifindex, kind))
        }
        Ok(None) => Err(InstanceError::NoDevice(device.to_owned())),
        Err(source) => Err(InstanceError::Devices(source)),
    }
}

/// A point where an instance's programs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// The gateway's tunnel link: `cw_nat_to_tunnel` on egress, `cw_nat_from_tunnel` on
    /// ingress.
    TunnelNat,
    /// Geneve encapsulation (`cw_geneve_encap`) on a device's egress.
    GeneveEncap,
    /// Geneve decapsulation (`cw_geneve_decap`) on a device's ingress.
    GeneveDecap,
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TunnelNat => "tunnel NAT",
            Self::GeneveEncap => "Geneve encapsulation",
            Self::GeneveDecap => "Geneve decapsulation",
        })
    }
}

impl Hook {
    /// The programs of the hook and where each runs.
    pub const fn programs(self) -> &'static [(&'static str, TcAttachType)] {
        match self {
            Self::TunnelNat => &[
                (NAT_TO_TUNNEL_PROGRAM, TcAttachType::Egress),
                (NAT_FROM_TUNNEL_PROGRAM, TcAttachType::Ingress),
            ],
            Self::GeneveEncap => &[(GENEVE_ENCAP_PROGRAM, TcAttachType::Egress)],
            Self::GeneveDecap => &[(GENEVE_DECAP_PROGRAM, TcAttachType::Ingress)],
        }
    }

    /// Whether an instance of `role` may use this hook.
    pub const fn in_role(self, role: Role) -> bool {
        !matches!((self, role), (Self::TunnelNat, Role::Node))
    }
}

/// How programs are attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// TCX where the kernel has it (6.6+), netlink clsact otherwise.
    #[default]
    Auto,
    /// TCX links.
    Tcx,
    /// netlink `cls_bpf` filters on a clsact qdisc.
    Netlink,
}

impl std::str::FromStr for AttachMode {
    type Err = UnknownAttachMode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "tcx" => Ok(Self::Tcx),
            "netlink" => Ok(Self::Netlink),
            other => Err(UnknownAttachMode(other.to_owned())),
        }
    }
}

/// An attachment mode that is none of `auto`, `tcx`, `netlink`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown attach mode {0:?}: expected auto, tcx or netlink")]
pub struct UnknownAttachMode(pub String);

/// What attaching one program did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachOutcome {
    /// Nothing was attached there: a new link or filter.
    Created,
    /// A link or filter of an earlier process was found and its program replaced atomically.
    Replaced,
    /// A link or filter of an earlier process already runs this instance's program (pinned by a
    /// process with the same object, configuration and role): left as it was.
    Kept,
}

/// One attachment of an instance, as recorded in its pin directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Device name.
    pub device: String,
    /// Ingress or egress.
    pub direction: TcAttachType,
    /// TCX link (pinned) or netlink filter.
    pub mode: AttachMode,
    /// The pin recording it.
    pub pin: PathBuf,
}

/// `ingress` / `egress`.
pub const fn direction_name(direction: TcAttachType) -> &'static str {
    match direction {
        TcAttachType::Ingress => "ingress",
        TcAttachType::Egress => "egress",
        TcAttachType::Custom(_) => "custom",
    }
}

fn link_pin(dir: &Path, direction: TcAttachType, device: &str) -> PathBuf {
    dir.join(format!("tcx-{}-{device}", direction_name(direction)))
}

fn filter_pin(dir: &Path, direction: TcAttachType, device: &str) -> PathBuf {
    dir.join(format!("tc-{}-{device}", direction_name(direction)))
}

fn qdisc_marker(dir: &Path, device: &str) -> PathBuf {
    dir.join(format!("qdisc-{device}"))
}

/// The attachments recorded in an instance directory.
pub fn attachments(dir: &Path) -> Vec<Attachment> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Attachment> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (mode, rest) = if let Some(rest) = name.strip_prefix("tcx-") {
                (AttachMode::Tcx, rest)
            } else if let Some(rest) = name.strip_prefix("tc-") {
                (AttachMode::Netlink, rest)
            } else {
                return None;
            };
            let (direction, device) = if let Some(device) = rest.strip_prefix("ingress-") {
                (TcAttachType::Ingress, device)
            } else {
                (TcAttachType::Egress, rest.strip_prefix("egress-")?)
            };
            Some(Attachment {
                device: device.to_owned(),
                direction,
                mode,
                pin: e.path(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.pin.cmp(&b.pin));
    out
}

/// A 16-bit filter handle derived from the instance name (FNV-1a), never 0.
pub(crate) fn netlink_handle(instance: &str) -> TcHandle {
    let mut h: u32 = 0x811c_9dc5;
    for b in instance.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    #[expect(clippy::cast_possible_truncation, reason = "folded to 16 bits")]
    let minor = ((h >> 16) ^ h) as u16;
    TcHandle::new(0, minor.max(1))
}

/// Everything [`attach`] needs besides the program.
pub(crate) struct Target<'a> {
    pub dir: &'a Path,
    pub mode: AttachMode,
    pub handle: TcHandle,
    pub device: &'a str,
}

/// Attaches (or atomically re-attaches) `program` at `direction` of the target device; keeps
/// a link or filter that already runs it.
pub(crate) fn attach(
    datapath: &mut Datapath,
    program: &'static str,
    direction: TcAttachType,
    target: &Target<'_>,
) -> Result<AttachOutcome, InstanceError> {
    let prog = datapath
        .program(program)
        .map_err(|_| InstanceError::MissingProgram(program))?;
    let at = At {
        program,
        direction,
        target,
    };
    let ours = prog.info().map_err(at.fail("inspecting"))?.id();
    match target.mode {
        AttachMode::Tcx | AttachMode::Auto => attach_tcx(prog, ours, &at),
        AttachMode::Netlink => attach_netlink(prog, ours, &at),
    }
}

/// What [`attach`] works on, for its two modes.
struct At<'a> {
    program: &'static str,
    direction: TcAttachType,
    target: &'a Target<'a>,
}

impl At<'_> {
    fn fail(&self, action: &'static str) -> impl Fn(ProgramError) -> InstanceError + use<'_> {
        move |source| InstanceError::Attach {
            action,
            program: self.program,
            device: self.target.device.to_owned(),
            source: Box::new(source),
        }
    }
}

fn attach_tcx(
    prog: &mut SchedClassifier,
    ours: u32,
    at: &At<'_>,
) -> Result<AttachOutcome, InstanceError> {
    let At {
        direction, target, ..
    } = *at;
    let pin = link_pin(target.dir, direction, target.device);
    if let Ok(pinned) = PinnedLink::from_pin(&pin) {
        let link = FdLink::from(pinned);
        let running = link.info().ok().map(|info| info.program_id());
        let link = SchedClassifierLink::try_from(link);
        // `bpf_link_update` with the program the link already runs changes nothing; like any
        // update it fails on a defunct link (ENOLINK: the device is gone).
        if let Ok(link) = link
            && let Ok(id) = prog.attach_to_link(link)
        {
            // Closing our descriptor keeps the link: the pin holds it.
            drop(prog.take_link(id).map_err(at.fail("taking the link of"))?);
            let kept = running == Some(ours) && on_tcx_hook(target.device, direction, ours);
            return Ok(if kept {
                AttachOutcome::Kept
            } else {
                AttachOutcome::Replaced
            });
        }
        // The device the link was attached to is gone (the link is defunct): start over.
        remove_pin(&pin)?;
    }
    let id = prog
        .attach_with_options(
            target.device,
            direction,
            TcAttachOptions::TcxOrder(LinkOrder::first()),
        )
        .map_err(at.fail("attaching (TCX)"))?;
    let link = prog.take_link(id).map_err(at.fail("taking the link of"))?;
    let fd = FdLink::try_from(link).map_err(|source| InstanceError::PinnedLink {
        path: pin.clone(),
        source,
    })?;
    fd.pin(&pin)
        .map_err(|source| InstanceError::Pin { path: pin, source })?;
    Ok(AttachOutcome::Created)
}

fn attach_netlink(
    prog: &mut SchedClassifier,
    ours: u32,
    at: &At<'_>,
) -> Result<AttachOutcome, InstanceError> {
    let At {
        direction, target, ..
    } = *at;
    ensure_clsact(target)?;
    let pin = filter_pin(target.dir, direction, target.device);
    let running = crate::qdisc::filter_program(
        target.device,
        direction == TcAttachType::Egress,
        NETLINK_PRIORITY,
        u32::from(target.handle),
    )
    .map_err(|source| InstanceError::Qdisc {
        action: "reading the filters of",
        device: target.device.to_owned(),
        source,
    })?;
    if running == Some(ours) {
        // The filter runs our program: make sure the pin records it.
        if !pin.exists() {
            prog.pin(&pin)
                .map_err(|source| InstanceError::Pin { path: pin, source })?;
        }
        return Ok(AttachOutcome::Kept);
    }
    let existing = SchedClassifierLink::attached(
        target.device,
        direction,
        NETLINK_PRIORITY,
        target.handle,
        None,
    )
    .map_err(|source| InstanceError::Qdisc {
        action: "finding",
        device: target.device.to_owned(),
        source,
    })?;
    let (id, outcome) = match prog.attach_to_link(existing) {
        Ok(id) => (id, AttachOutcome::Replaced),
        Err(_) => (
            prog.attach_with_options(
                target.device,
                direction,
                TcAttachOptions::Netlink(NlOptions {
                    priority: NETLINK_PRIORITY,
                    handle: target.handle,
                    classid: None,
                }),
            )
            .map_err(at.fail("attaching (netlink)"))?,
            AttachOutcome::Created,
        ),
    };
    // The filter must outlive this process: forget the handle instead of letting its drop
    // detach it.
    std::mem::forget(prog.take_link(id).map_err(at.fail("taking the link of"))?);
    remove_pin(&pin)?;
    prog.pin(&pin)
        .map_err(|source| InstanceError::Pin { path: pin, source })?;
    Ok(outcome)
}

/// Whether `program` is attached (TCX) at `direction` of `device` in this namespace.
fn on_tcx_hook(device: &str, direction: TcAttachType, program: u32) -> bool {
    SchedClassifier::query_tcx(device, direction)
        .is_ok_and(|(_, programs)| programs.iter().any(|p| p.id() == program))
}

fn ensure_clsact(target: &Target<'_>) -> Result<(), InstanceError> {
    match tc::qdisc_add_clsact(target.device) {
        Ok(()) => {
            let marker = qdisc_marker(target.dir, target.device);
            std::fs::create_dir_all(&marker).map_err(|source| InstanceError::Qdisc {
                action: "recording",
                device: target.device.to_owned(),
                source,
            })
        }
        Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc_eexist()) => Ok(()),
        Err(e) => Err(InstanceError::Qdisc {
            action: "adding",
            device: target.device.to_owned(),
            source: std::io::Error::other(e),
        }),
    }
}

const fn libc_eexist() -> i32 {
    nix::errno::Errno::EEXIST as i32
}

fn remove_pin(path: &Path) -> Result<(), InstanceError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(InstanceError::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Detaches what `attachment` records and removes its pin. A device that is gone is fine.
pub(crate) fn detach(attachment: &Attachment, handle: TcHandle) -> Result<(), InstanceError> {
    match attachment.mode {
        AttachMode::Netlink => {
            if let Ok(link) = SchedClassifierLink::attached(
                &attachment.device,
                attachment.direction,
                NETLINK_PRIORITY,
                handle,
                None,
            ) {
                // ENOENT (already gone) and ENODEV (device gone) leave nothing to detach.
                let _gone = aya::programs::Link::detach(link);
            }
        }
        AttachMode::Tcx | AttachMode::Auto => {}
    }
    // For TCX the pin holds the link: removing it (and dropping no descriptor) detaches it.
    remove_pin(&attachment.pin)
}

/// Removes the clsact qdisc of `device` if this instance added it and no filter is left on
/// it; returns whether it was removed.
pub(crate) fn release_qdisc(dir: &Path, device: &str) -> Result<bool, InstanceError> {
    let marker = qdisc_marker(dir, device);
    if !marker.exists() {
        return Ok(false);
    }
    let removed = match crate::qdisc::filters_left(device) {
        Ok(0) => {
            crate::qdisc::delete_clsact(device).map_err(|source| InstanceError::Qdisc {
                action: "removing",
                device: device.to_owned(),
                source,
            })?;
            true
        }
        // Someone else's filters (or the device is gone): leave the qdisc alone.
        Ok(_) | Err(_) => false,
    };
    std::fs::remove_dir(&marker).map_err(|source| InstanceError::Remove {
        path: marker,
        source,
    })?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use aya::programs::TcAttachType;

    use super::{AttachMode, Hook, attachments, filter_pin, link_pin, netlink_handle};
    use crate::layout::Role;

    #[test]
    fn handles_are_stable_nonzero_and_differ_between_instances() {
        let a = netlink_handle("peer-7");
        assert_eq!(a, netlink_handle("peer-7"));
        assert_ne!(u32::from(a), 0);
        assert_ne!(a, netlink_handle("peer-8"));
        assert_eq!(u32::from(a) >> 16, 0, "minor only");
    }

    #[test]
    fn pin_names_round_trip_through_the_directory_listing() {
        let dir = std::env::temp_dir().join(format!("cw-attach-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tempdir");
        let pins = [
            link_pin(&dir, TcAttachType::Egress, "liqo.abcdefghij"),
            filter_pin(&dir, TcAttachType::Ingress, "eth0"),
        ];
        for p in &pins {
            std::fs::write(p, b"").expect("pin stand-in");
        }
        std::fs::write(dir.join("CW_DROPS"), b"").expect("map stand-in");
        let found = attachments(&dir);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        let got: Vec<_> = found
            .iter()
            .map(|a| (a.device.as_str(), a.direction, a.mode))
            .collect();
        assert_eq!(
            got,
            [
                ("eth0", TcAttachType::Ingress, AttachMode::Netlink),
                ("liqo.abcdefghij", TcAttachType::Egress, AttachMode::Tcx),
            ]
        );
        assert!(Path::new(&found[0].pin).ends_with("tc-ingress-eth0"));
    }

    #[test]
    fn nodes_have_no_tunnel_nat_hook() {
        assert!(!Hook::TunnelNat.in_role(Role::Node));
        assert!(Hook::GeneveEncap.in_role(Role::Node));
        assert!(Hook::TunnelNat.in_role(Role::Gateway));
    }
}
