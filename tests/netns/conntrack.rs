//! Flows without conntrack (issue 11, item 4): more concurrent TCP flows through a gateway than
//! its conntrack table has room for. clusterwire's remap NAT is stateless, so every flow works;
//! the reference's NAT (nftables NETMAP-style prefix DNAT/SNAT, which needs conntrack) refuses
//! every new flow once the table is full.
//!
//! ```text
//!  client 10.9.0.2 --- lan0 [gateway] cw0 --- cw0 server 10.0.0.1 (lo)
//!  connects to 10.71.0.1      10.71.0.0/24 -> 10.0.0.0/24 (DNAT), replies back (SNAT)
//! ```
//!
//! Two such topologies, identical but for the gateway's NAT: clusterwire's programs on `cw0`
//! (`cw_nat_to_tunnel` egress, `cw_nat_from_tunnel` ingress) or the reference's nftables rules.
//!
//! Room in the table: `nf_conntrack_max` is one host-wide value (on this kernel a namespace
//! cannot set its own), compared with each namespace's own count. Lowering it would limit
//! every namespace of the host, other tests and labs included; so instead each gateway
//! namespace's table is filled, over ctnetlink, with long-lived assured entries (never evicted
//! by early drop) up to `nf_conntrack_max - 64`: the equivalent of `nf_conntrack_max = 64` in
//! that namespace alone.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use aya::programs::{TcAttachType, tc};
use clusterwire_common::{
    config::DatapathConfig,
    nat::{NAT_FROM_TUNNEL_PROGRAM, NAT_TO_TUNNEL_PROGRAM},
    stats::Event,
};
use clusterwire_dataplane::{Datapath, LoadOptions, RemapKind};
use clusterwire_tests::netns::{NetNs, veth_pair};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

/// Room left in each gateway's conntrack table, and the flows opened through it.
const ROOM: u64 = 64;
const FLOWS: usize = 200;
const PEER: u32 = 3;
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER_REMAPPED: Ipv4Addr = Ipv4Addr::new(10, 71, 0, 1);
const PORT: u16 = 5201;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nat {
    Clusterwire,
    Reference,
}

/// The reference's remap rules (see shared/REFERENCE.md): DNAT of the remapped prefix to the
/// real one where it enters the tunnel, SNAT of the real prefix to the remapped one for what
/// comes out of it; host bits kept.
const REFERENCE_RULES: &str = r#"
table ip remap {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname != "cw0" ip daddr 10.71.0.0/24 dnat ip prefix to 10.0.0.0/24
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        iifname "cw0" ip saddr 10.0.0.0/24 snat ip prefix to 10.71.0.0/24
    }
}
"#;

struct Topology {
    client: NetNs,
    gateway: NetNs,
    server: NetNs,
    /// clusterwire's programs, attached to the gateway's `cw0` while this lives.
    datapath: Option<Datapath>,
}

fn topology(nat: Nat) -> Topology {
    let client = NetNs::new("ct-client");
    let gateway = NetNs::new("ct-gw");
    let server = NetNs::new("ct-server");
    veth_pair(&client, "eth0", &gateway, "lan0");
    veth_pair(&gateway, "cw0", &server, "cw0");
    client.ip(&["addr", "add", "10.9.0.2/24", "dev", "eth0"]);
    client.ip(&["route", "add", "default", "via", "10.9.0.1"]);
    gateway.ip(&["addr", "add", "10.9.0.1/24", "dev", "lan0"]);
    gateway.ip(&["addr", "add", "169.254.0.1/30", "dev", "cw0"]);
    // Both the remapped and the real prefix go to the server side: clusterwire rewrites after
    // routing (egress of cw0), the reference before (prerouting).
    for prefix in ["10.71.0.0/24", "10.0.0.0/24"] {
        gateway.ip(&["route", "add", prefix, "via", "169.254.0.2", "dev", "cw0"]);
    }
    gateway.sysctl("net.ipv4.ip_forward", "1");
    for dev in ["all", "default", "lan0", "cw0"] {
        gateway.sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0");
    }
    server.ip(&["addr", "add", "169.254.0.2/30", "dev", "cw0"]);
    server.ip(&["addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
    server.ip(&["route", "add", "10.9.0.0/24", "via", "169.254.0.1"]);

    let datapath = match nat {
        Nat::Clusterwire => {
            let config = DatapathConfig {
                tunnel_mtu: 1500,
                peer_id: PEER,
                ..DatapathConfig::zeroed()
            };
            let mut datapath =
                Datapath::load(&config, &LoadOptions::unpinned()).expect("load the datapath");
            let net = |s: &str| s.parse().expect("CIDR");
            datapath
                .remap(RemapKind::Dst)
                .expect("dst table")
                .insert(PEER, net("10.71.0.0/24"), net("10.0.0.0/24"))
                .expect("dst remap");
            datapath
                .remap(RemapKind::Src)
                .expect("src table")
                .insert(PEER, net("10.0.0.0/24"), net("10.71.0.0/24"))
                .expect("src remap");
            gateway.enter(|| {
                let _ = tc::qdisc_add_clsact("cw0");
                for (program, direction) in [
                    (NAT_TO_TUNNEL_PROGRAM, TcAttachType::Egress),
                    (NAT_FROM_TUNNEL_PROGRAM, TcAttachType::Ingress),
                ] {
                    datapath
                        .program(program)
                        .expect("program")
                        .attach("cw0", direction)
                        .unwrap_or_else(|e| panic!("attach {program} to cw0 {direction:?}: {e}"));
                }
            });
            Some(datapath)
        }
        Nat::Reference => {
            let out = gateway.exec(
                "sh",
                &["-c", &format!("nft -f - <<'EOF'\n{REFERENCE_RULES}\nEOF")],
            );
            assert!(
                out.status.success(),
                "nft: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            None
        }
    };
    Topology {
        client,
        gateway,
        server,
        datapath,
    }
}

fn read_proc(ns: &NetNs, path: &str) -> u64 {
    ns.enter(|| {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{path}: {text:?}: {e}"))
    })
}

fn conntrack_count(ns: &NetNs) -> u64 {
    read_proc(ns, "/proc/sys/net/netfilter/nf_conntrack_count")
}

/// Netlink attribute helpers (host-order header, 4-byte alignment).
fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).expect("small attribute");
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn nested(buf: &mut Vec<u8>, kind: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    const NLA_F_NESTED: u16 = 1 << 15;
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    fill(buf);
    let len = u16::try_from(buf.len() - at).expect("small nest");
    buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    buf[at + 2..at + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
}

/// One `IPCTNL_MSG_CT_NEW` request: an assured UDP entry `src:sport -> dst:9` living an hour.
fn ct_new(buf: &mut Vec<u8>, seq: u32, src: Ipv4Addr, sport: u16, dst: Ipv4Addr) {
    // linux/netfilter/nfnetlink_conntrack.h
    const CTA_TUPLE_ORIG: u16 = 1;
    const CTA_TUPLE_REPLY: u16 = 2;
    const CTA_STATUS: u16 = 3;
    const CTA_TIMEOUT: u16 = 7;
    const CTA_TUPLE_IP: u16 = 1;
    const CTA_TUPLE_PROTO: u16 = 2;
    const CTA_IP_V4_SRC: u16 = 1;
    const CTA_IP_V4_DST: u16 = 2;
    const CTA_PROTO_NUM: u16 = 1;
    const CTA_PROTO_SRC_PORT: u16 = 2;
    const CTA_PROTO_DST_PORT: u16 = 3;
    const IPS_SEEN_REPLY: u32 = 1 << 1;
    const IPS_ASSURED: u32 = 1 << 2;
    // Set on every entry in the table; a status without it is refused (EBUSY).
    const IPS_CONFIRMED: u32 = 1 << 3;
    const NFNL_SUBSYS_CTNETLINK: u16 = 1;
    const IPCTNL_MSG_CT_NEW: u16 = 0;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_EXCL: u16 = 0x200;
    const NLM_F_CREATE: u16 = 0x400;

    let tuple = |buf: &mut Vec<u8>, kind, (a, pa): (Ipv4Addr, u16), (b, pb): (Ipv4Addr, u16)| {
        nested(buf, kind, |buf| {
            nested(buf, CTA_TUPLE_IP, |buf| {
                attr(buf, CTA_IP_V4_SRC, &a.octets());
                attr(buf, CTA_IP_V4_DST, &b.octets());
            });
            nested(buf, CTA_TUPLE_PROTO, |buf| {
                attr(buf, CTA_PROTO_NUM, &[17]);
                attr(buf, CTA_PROTO_SRC_PORT, &pa.to_be_bytes());
                attr(buf, CTA_PROTO_DST_PORT, &pb.to_be_bytes());
            });
        });
    };
    let at = buf.len();
    buf.extend_from_slice(&[0; 16]);
    // nfgenmsg: AF_INET, NFNETLINK_V0, res_id 0.
    buf.extend_from_slice(&[2, 0, 0, 0]);
    tuple(buf, CTA_TUPLE_ORIG, (src, sport), (dst, 9));
    tuple(buf, CTA_TUPLE_REPLY, (dst, 9), (src, sport));
    attr(buf, CTA_TIMEOUT, &3600u32.to_be_bytes());
    attr(
        buf,
        CTA_STATUS,
        &(IPS_CONFIRMED | IPS_ASSURED | IPS_SEEN_REPLY).to_be_bytes(),
    );
    let len = u32::try_from(buf.len() - at).expect("small message");
    buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    buf[at + 4..at + 6]
        .copy_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW).to_ne_bytes());
    buf[at + 6..at + 8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL).to_ne_bytes());
    buf[at + 8..at + 12].copy_from_slice(&seq.to_ne_bytes());
}

/// Adds `n` assured entries to the conntrack table of `ns` over ctnetlink (no answer asked for
/// those that succeed); returns the errors the kernel reported, by errno.
fn fill_conntrack(ns: &NetNs, n: u64) -> Vec<i32> {
    ns.enter(|| {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::empty(),
            SockProtocol::NetlinkNetFilter,
        )
        .expect("ctnetlink socket");
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).expect("bind ctnetlink");
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::RcvBufForce, &(32 << 20))
            .expect("SO_RCVBUFFORCE");
        let mut errors = Vec::new();
        let drain = |errors: &mut Vec<i32>| {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(len) = recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                let mut at = 0;
                while at + 20 <= len {
                    let msg_len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4"));
                    let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2"));
                    // NLMSG_ERROR: a negative errno after the header.
                    if kind == 2 {
                        errors.push(-i32::from_ne_bytes(
                            buf[at + 16..at + 20].try_into().expect("4"),
                        ));
                    }
                    at += usize::try_from(msg_len)
                        .expect("len")
                        .next_multiple_of(4)
                        .max(16);
                }
            }
        };
        let mut buf = Vec::with_capacity(1 << 16);
        for i in 0..n {
            let idx = u32::try_from(i).expect("fewer than 2^32 entries");
            // 100.64.0.0/10, one source port per 60,000 entries.
            let src = Ipv4Addr::from(0x6440_0000 + idx / 60_000);
            let sport = 1024 + u16::try_from(i % 60_000).expect("below 60,000");
            ct_new(&mut buf, idx, src, sport, Ipv4Addr::new(100, 127, 0, 1));
            if buf.len() > 60_000 || i + 1 == n {
                send(fd.as_raw_fd(), &buf, MsgFlags::empty()).expect("send to ctnetlink");
                buf.clear();
                drain(&mut errors);
            }
        }
        drain(&mut errors);
        errors
    })
}

/// Accepts connections on `PORT` in the server namespace until `stop`, echoing on each (one
/// thread per connection).
fn echo_server(server: &NetNs, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let listener = server
        .enter(|| TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT)).expect("bind"));
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let mut accepted = 0;
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    accepted += 1;
                    conn.set_nonblocking(false).expect("blocking");
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 64];
                        while let Ok(n) = conn.read(&mut buf) {
                            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        accepted
    })
}

/// Opens flow `i`: connect, one message echoed.
fn open_flow(i: usize, timeout: Duration) -> Result<TcpStream, String> {
    let to = SocketAddrV4::new(SERVER_REMAPPED, PORT).into();
    let mut conn = TcpStream::connect_timeout(&to, timeout).map_err(|e| format!("connect: {e}"))?;
    echo(&mut conn, &format!("open {i}"))?;
    Ok(conn)
}

fn echo(conn: &mut TcpStream, message: &str) -> Result<(), String> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    conn.write_all(message.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0u8; message.len()];
    conn.read_exact(&mut buf)
        .map_err(|e| format!("receive: {e}"))?;
    (buf == message.as_bytes())
        .then_some(())
        .ok_or_else(|| format!("echo {buf:?}"))
}

/// What happened to the flows.
struct Flows {
    /// Flows open and echoing at the end (each checked again while all were open).
    working: usize,
    /// Flows that could not be opened, with the first error.
    refused: usize,
    first_error: Option<String>,
    took: Duration,
}

/// Opens `FLOWS` concurrent flows from the client, one at a time while they succeed (each
/// echoed before the next, so the reference's entries are assured), the rest at once after a
/// first failure (a refused SYN costs a 2 s timeout); then checks every open flow again.
fn open_flows(client: &NetNs) -> Flows {
    client.enter(|| {
        let start = Instant::now();
        let mut open = Vec::new();
        let mut failed = Vec::new();
        let mut next = 0;
        while next < FLOWS {
            match open_flow(next, Duration::from_secs(2)) {
                Ok(conn) => open.push(conn),
                Err(e) => {
                    failed.push(e);
                    next += 1;
                    break;
                }
            }
            next += 1;
        }
        // Threads inherit this thread's namespace.
        let rest: Vec<_> = (next..FLOWS)
            .map(|i| std::thread::spawn(move || open_flow(i, Duration::from_secs(2))))
            .collect();
        for r in rest {
            match r.join().expect("flow thread") {
                Ok(conn) => open.push(conn),
                Err(e) => failed.push(e),
            }
        }
        let mut working = 0;
        for (i, conn) in open.iter_mut().enumerate() {
            match echo(conn, &format!("again {i}")) {
                Ok(()) => working += 1,
                Err(e) => failed.push(format!("an open flow stopped working: {e}")),
            }
        }
        Flows {
            working,
            refused: FLOWS - working,
            first_error: failed.into_iter().next(),
            took: start.elapsed(),
        }
    })
}

/// Builds the topology, leaves `ROOM` entries free in the gateway's conntrack table, opens the
/// flows; returns them with the gateway's conntrack count before and after.
fn run(nat: Nat) -> (Flows, u64, u64, Topology) {
    let t = topology(nat);
    let max = read_proc(&t.gateway, "/proc/sys/net/netfilter/nf_conntrack_max");
    assert!(max > ROOM, "nf_conntrack_max is {max}");
    let started = Instant::now();
    let errors = fill_conntrack(&t.gateway, max - ROOM);
    let filled = conntrack_count(&t.gateway);
    assert_eq!(
        (filled, errors.first()),
        (max - ROOM, None),
        "{nat:?}: the gateway's conntrack table after the fill (errno of the first error)"
    );
    println!(
        "{nat:?}: gateway conntrack filled to {filled} of nf_conntrack_max {max} in {:?}",
        started.elapsed()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let server = echo_server(&t.server, Arc::clone(&stop));
    let flows = open_flows(&t.client);
    let after = conntrack_count(&t.gateway);
    stop.store(true, Ordering::SeqCst);
    let accepted = server.join().expect("server");
    println!(
        "{nat:?}: {FLOWS} flows through a gateway with room for {ROOM} conntrack entries: {} \
         working, {} refused ({}) in {:?}; the server accepted {accepted}; gateway conntrack \
         count {filled} -> {after}",
        flows.working,
        flows.refused,
        flows.first_error.as_deref().unwrap_or("no error"),
        flows.took
    );
    (flows, filled, after, t)
}

#[test]
fn flows_beyond_the_conntrack_table_work_through_stateless_nat_and_not_through_netmap() {
    // clusterwire: every flow works and the table is untouched (no conntrack in the path).
    let (flows, filled, after, t) = run(Nat::Clusterwire);
    assert_eq!(
        (flows.working, flows.refused),
        (FLOWS, 0),
        "clusterwire: {:?}",
        flows.first_error
    );
    assert_eq!(
        after, filled,
        "clusterwire's gateway created conntrack entries"
    );
    let datapath = t.datapath.as_ref().expect("datapath");
    let rewritten = datapath
        .event_count(Event::NatDstRewritten)
        .expect("events");
    // Every packet toward the server was rewritten: at least handshake ACK, two messages and
    // their ACKs per flow.
    assert!(
        rewritten >= 3 * FLOWS as u64,
        "{rewritten} destinations rewritten"
    );
    let drops: u64 = datapath
        .drop_counts()
        .expect("drops")
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(drops, 0, "clusterwire dropped packets");
    drop(t);

    // The reference: the 64 free entries go to the first 64 flows, every later SYN is dropped
    // ("nf_conntrack: table full, dropping packet").
    let (flows, filled, after, _t) = run(Nat::Reference);
    assert_eq!(
        (flows.working, flows.refused),
        (
            usize::try_from(ROOM).expect("small"),
            FLOWS - usize::try_from(ROOM).expect("small")
        ),
        "the reference: {:?}",
        flows.first_error
    );
    assert_eq!(after, filled + ROOM, "the reference's table is full");
}
