//! Real traffic between namespaces for the netns and VM tiers: sockets are opened on threads that
//! entered a namespace, so no external tool (iperf, python) is needed.
use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    time::Duration,
};

use crate::netns::NetNs;

/// `len` bytes of a fixed, non-repeating-looking pattern (so reordered or shifted data is caught).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "keeps the top byte of a hash"
            )]
            let byte = ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8;
            byte
        })
        .collect()
}

/// What a TCP transfer observed at both ends.
#[derive(Debug)]
pub struct TcpRun {
    /// The client address as the server saw it.
    pub server_saw: SocketAddr,
    /// What the server read until the client closed.
    pub received: Vec<u8>,
    /// The client socket's MSS (`TCP_MAXSEG`) after the handshake.
    pub client_mss: u32,
}

/// Sends `payload` over one TCP connection from `client` (connecting to `connect`) to `server`
/// (listening on `listen`), and waits for the server to acknowledge the byte count.
pub fn tcp_send(
    server: &NetNs,
    listen: SocketAddrV4,
    client: &NetNs,
    connect: SocketAddrV4,
    payload: Vec<u8>,
) -> TcpRun {
    let listener = server.enter(|| TcpListener::bind(listen).expect("bind the server socket"));
    let server = server.spawn(move || {
        let (mut conn, peer) = listener.accept().expect("accept");
        let mut got = Vec::new();
        conn.read_to_end(&mut got).expect("read the stream");
        conn.write_all(&(got.len() as u64).to_be_bytes())
            .expect("acknowledge");
        (peer, got)
    });
    let client_mss = client.enter(move || {
        let mut conn = TcpStream::connect_timeout(&connect.into(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {connect}: {e}"));
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mss = nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::TcpMaxSeg)
            .expect("TCP_MAXSEG");
        conn.write_all(&payload).expect("send");
        conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut ack = [0u8; 8];
        conn.read_exact(&mut ack)
            .expect("the server's acknowledgement");
        assert_eq!(
            u64::from_be_bytes(ack),
            payload.len() as u64,
            "server byte count"
        );
        mss
    });
    let (server_saw, received) = server.join().expect("server thread");
    TcpRun {
        server_saw,
        received,
        client_mss,
    }
}
