//! The `collect_md` ("external") Geneve device: one per node or gateway, whose tunnel key (remote
//! IP, VNI) is set per packet by eBPF (`bpf_skb_set_tunnel_key`) instead of one point-to-point
//! device per peer.
use futures::TryStreamExt as _;
use rtnetlink::{
    Handle, LinkGeneve, LinkMessageBuilder, LinkUnspec,
    packet_route::link::{InfoData, InfoGeneve, InfoKind, LinkAttribute, LinkInfo, LinkMessage},
};

use crate::error::{LinkError, check_name};

/// Geneve's UDP port in clusterwire (and Liqo); not IANA's 6081.
pub const DEFAULT_PORT: u16 = 6091;

/// A Geneve device as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneveLink {
    /// Interface index.
    pub ifindex: u32,
    /// Whether the device takes its tunnel key from packet metadata.
    pub collect_md: bool,
    /// UDP destination port.
    pub port: Option<u16>,
}

/// Creates a `collect_md` Geneve device listening on `port`, returning its interface index.
///
/// Fails with a netlink error of code `EOPNOTSUPP` where the kernel has no Geneve driver.
pub async fn create_collect_md(handle: &Handle, name: &str, port: u16) -> Result<u32, LinkError> {
    check_name(name)?;
    let message = LinkMessageBuilder::<LinkGeneve>::new(name)
        .port(port)
        .collect_metadata()
        .build();
    handle
        .link()
        .add(message)
        .execute()
        .await
        .map_err(|source| netlink("create", name, source))?;
    match get(handle, name).await? {
        Some(link) => Ok(link.ifindex),
        None => Err(LinkError::Mismatch {
            link: name.to_owned(),
            expected: "a geneve link".to_owned(),
            found: "no link".to_owned(),
        }),
    }
}

/// Makes `name` a `collect_md` Geneve device on `port` with the MAC `mac`, without ARP (its
/// neighbours resolve to its own MAC), up; creates it if missing and fixes MAC, ARP and state of
/// one that exists. Returns its interface index.
///
/// A link of that name that is not a `collect_md` Geneve device on `port` is a
/// [`LinkError::Mismatch`] (it is not ours to change). Where the kernel has no Geneve driver the
/// error is a netlink `EOPNOTSUPP` ([`LinkError::is_unsupported`]).
pub async fn ensure_collect_md(
    handle: &Handle,
    name: &str,
    port: u16,
    mac: [u8; 6],
) -> Result<u32, LinkError> {
    check_name(name)?;
    let ifindex = match get(handle, name).await? {
        Some(link) if link.collect_md && link.port == Some(port) => link.ifindex,
        Some(link) => {
            return Err(LinkError::Mismatch {
                link: name.to_owned(),
                expected: format!("a collect_md geneve link on port {port}"),
                found: format!(
                    "geneve, collect_md {}, port {:?}",
                    link.collect_md, link.port
                ),
            });
        }
        None => create_collect_md(handle, name, port).await?,
    };
    let message = LinkUnspec::new_with_index(ifindex)
        .address(mac.to_vec())
        .arp(false)
        .up()
        .build();
    handle
        .link()
        .set(message)
        .execute()
        .await
        .map_err(|source| netlink("set", name, source))?;
    Ok(ifindex)
}

/// Reads a Geneve device back; `None` if no link has that name or it is not Geneve.
pub async fn get(handle: &Handle, name: &str) -> Result<Option<GeneveLink>, LinkError> {
    check_name(name)?;
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(message)) => Ok(parse(&message)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(None), // ENODEV
        Err(source) => Err(netlink("get", name, source)),
    }
}

/// Deletes a link by interface index.
pub async fn delete(handle: &Handle, name: &str, ifindex: u32) -> Result<(), LinkError> {
    handle
        .link()
        .del(ifindex)
        .execute()
        .await
        .map_err(|source| netlink("delete", name, source))
}

fn netlink(op: &'static str, name: &str, source: rtnetlink::Error) -> LinkError {
    LinkError::Netlink {
        op,
        link: name.to_owned(),
        source,
    }
}

fn parse(message: &LinkMessage) -> Option<GeneveLink> {
    let infos = message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::LinkInfo(infos) => Some(infos),
            _ => None,
        })?;
    if !infos.contains(&LinkInfo::Kind(InfoKind::Geneve)) {
        return None;
    }
    let mut link = GeneveLink {
        ifindex: message.header.index,
        collect_md: false,
        port: None,
    };
    for info in infos {
        if let LinkInfo::Data(InfoData::Geneve(data)) = info {
            for item in data {
                match item {
                    InfoGeneve::CollectMetadata => link.collect_md = true,
                    InfoGeneve::Port(port) => link.port = Some(*port),
                    _ => {}
                }
            }
        }
    }
    Some(link)
}
