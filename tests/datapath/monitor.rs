//! The drop monitor: with `CW_MONITOR` on, each drop is written to `CW_MONITOR_EVENTS` with its
//! reason, program, device, addresses, ports and protocol; with it off (the default) nothing is
//! written and the drop is only counted.
use std::net::Ipv4Addr;

use clusterwire_common::drop::{
    DROP_EVENT_IPV4, DROP_EVENT_PORTS, DropEvent, DropReason, PROGRAM_NAT_FROM_TUNNEL,
};
use clusterwire_common::nat::NAT_FROM_TUNNEL_PROGRAM;
use clusterwire_dataplane::DropMonitor;
use clusterwire_tests::{
    harness::{Harness, SkbIn, TC_ACT_SHOT},
    packet::{self, Tcp, tcp_flags},
};

use crate::fixture::{MTU, POD_A, config, frame, harness, harness_with, tcp, udp};

/// A source the peer never announced.
const SPOOFED: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
/// `lo`, which `test_run` accepts as the skb's device in any namespace.
const LO: u32 = 1;

fn run_on_lo(h: &mut Harness, input: &[u8]) -> u32 {
    let skb = SkbIn {
        ifindex: LO,
        ..SkbIn::default()
    };
    h.run_with(NAT_FROM_TUNNEL_PROGRAM, input, &skb).0
}

/// Every event waiting in the ring.
fn events(monitor: &mut DropMonitor) -> Vec<DropEvent> {
    std::iter::from_fn(|| monitor.next_event()).collect()
}

/// `event` with its timestamp checked (non-zero) and cleared, for an exact comparison.
fn untimed(mut event: DropEvent) -> DropEvent {
    assert_ne!(event.ktime_ns, 0, "the event has no timestamp: {event:?}");
    event.ktime_ns = 0;
    event
}

#[test]
fn a_drop_is_reported_with_its_fields_only_while_the_monitor_is_on() {
    let mut h = harness();
    let mut monitor = DropMonitor::take(h.datapath()).expect("monitor maps");
    assert!(!monitor.is_on().expect("read switch"), "off by default");
    let seg = Tcp::new(43210, 8080, tcp_flags::SYN);
    let input = frame(&tcp(SPOOFED, POD_A, &seg));

    // Off: dropped and counted, nothing written.
    assert_eq!(run_on_lo(&mut h, &input), TC_ACT_SHOT);
    assert_eq!(h.drops(DropReason::SpoofedSource), 1);
    assert_eq!(events(&mut monitor), [], "monitor off: no event");

    // On: one event with every field.
    monitor.set(true).expect("switch on");
    assert!(monitor.is_on().expect("read switch"));
    assert_eq!(run_on_lo(&mut h, &input), TC_ACT_SHOT);
    let got: Vec<_> = events(&mut monitor).into_iter().map(untimed).collect();
    let want = DropEvent {
        ktime_ns: 0,
        reason: DropReason::SpoofedSource as u32,
        ifindex: LO,
        len: u32::try_from(input.len()).expect("small"),
        src_be: SPOOFED.octets(),
        dst_be: POD_A.octets(),
        sport: 43210,
        dport: 8080,
        proto: 6,
        program: PROGRAM_NAT_FROM_TUNNEL,
        flags: DROP_EVENT_IPV4 | DROP_EVENT_PORTS,
        _pad0: 0,
        _pad1: 0,
    };
    assert_eq!(got, [want], "monitor on: one event, exact fields");
    assert_eq!(h.drops(DropReason::SpoofedSource), 2);

    // Off again: nothing more.
    monitor.set(false).expect("switch off");
    assert_eq!(run_on_lo(&mut h, &input), TC_ACT_SHOT);
    assert_eq!(events(&mut monitor), [], "monitor switched off: no event");
    assert_eq!(h.drops(DropReason::SpoofedSource), 3);
}

#[test]
fn events_describe_l3_devices_and_packets_without_ports_or_ipv4() {
    // L3 device (WireGuard): the datagram starts at the IP header.
    let mut h = harness_with(config(MTU, true));
    let mut monitor = DropMonitor::take(h.datapath()).expect("monitor maps");
    monitor.set(true).expect("switch on");
    let datagram = udp(SPOOFED, POD_A, b"dns?", true);
    assert_eq!(run_on_lo(&mut h, &datagram), TC_ACT_SHOT);
    let got: Vec<_> = events(&mut monitor).into_iter().map(untimed).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    let e = got[0];
    assert_eq!(
        (
            e.drop_reason(),
            e.src_be,
            e.dst_be,
            e.sport,
            e.dport,
            e.proto,
            e.flags
        ),
        (
            Some(DropReason::SpoofedSource),
            SPOOFED.octets(),
            POD_A.octets(),
            40000,
            53,
            17,
            DROP_EVENT_IPV4 | DROP_EVENT_PORTS
        ),
        "L3 device, UDP"
    );

    // Ethernet: an ICMP echo has no ports, an IPv6 frame no IPv4 addresses.
    let mut h = harness();
    let mut monitor = DropMonitor::take(h.datapath()).expect("monitor maps");
    monitor.set(true).expect("switch on");
    let echo = packet::Ipv4::new(SPOOFED, POD_A, 1).build(&packet::icmp_echo(1, 1, b"ping"));
    assert_eq!(run_on_lo(&mut h, &frame(&echo)), TC_ACT_SHOT);
    let v6 = packet::ethernet(0x86dd, &packet::ipv6([0xfd; 16], [0xfe; 16], 59, b""));
    assert_eq!(run_on_lo(&mut h, &v6), TC_ACT_SHOT);
    let got: Vec<_> = events(&mut monitor)
        .into_iter()
        .map(|e| {
            (
                e.drop_reason(),
                e.program_name(),
                e.src_be,
                e.proto,
                e.sport,
                e.flags,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Some(DropReason::SpoofedSource),
                "cw_nat_from_tunnel",
                SPOOFED.octets(),
                1,
                0,
                DROP_EVENT_IPV4
            ),
            (
                Some(DropReason::NonIpv4FromTunnel),
                "cw_nat_from_tunnel",
                [0; 4],
                0,
                0,
                0
            ),
        ]
    );
}
