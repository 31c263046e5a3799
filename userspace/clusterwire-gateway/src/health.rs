//! The tunnel health check, wire-compatible with the reference: UDP port 12345 on the tunnel
//! addresses, a JSON PING every 2 s, PONG answers, down after 5 intervals without a pong. Both
//! ends ping and both answer.
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use clusterwire_fabric::health::{self, Message, MsgType, PongOutcome, State, Tracker};
use k8s_openapi::jiff::Timestamp;
use tokio::net::UdpSocket;
use tracing::{debug, info};

/// The health check of one peering.
pub struct Health {
    socket: UdpSocket,
    peer: SocketAddr,
    pub tracker: Tracker,
}

impl Health {
    /// Binds `local:12345` (the tunnel address, which must exist) and tracks `peer`.
    pub async fn bind(
        local: Ipv4Addr,
        peer: Ipv4Addr,
        remote_cluster_id: &str,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(SocketAddrV4::new(local, health::PORT)).await?;
        Ok(Self {
            socket,
            peer: SocketAddrV4::new(peer, health::PORT).into(),
            tracker: Tracker::new(remote_cluster_id, Timestamp::now()),
        })
    }

    /// Sends a PING to the peer (a send error is only logged: the tunnel may be down).
    pub async fn ping(&self) {
        let message = self.tracker.ping(Timestamp::now());
        if let Ok(bytes) = message.encode()
            && let Err(e) = self.socket.send_to(&bytes, self.peer).await
        {
            debug!("health ping to {}: {e}", self.peer);
        }
    }

    /// Waits for one datagram and handles it: answers a PING, feeds a PONG to the tracker.
    /// Returns the new state when a pong changed it.
    pub async fn receive(&mut self) -> std::io::Result<Option<State>> {
        let mut buf = [0u8; health::MAX_DATAGRAM];
        let (n, from) = self.socket.recv_from(&mut buf).await?;
        let Ok(message) = Message::decode(&buf[..n]) else {
            debug!(%from, "health: not a health message");
            return Ok(None);
        };
        match message.msg_type {
            MsgType::Ping => {
                if let Some(answer) = message.answer()
                    && let Ok(bytes) = answer.encode()
                {
                    let _ = self.socket.send_to(&bytes, from).await;
                }
            }
            MsgType::Pong => {
                if let PongOutcome::Accepted {
                    changed_from: Some(before),
                    ..
                } = self.tracker.on_message(&message, Timestamp::now())
                {
                    info!(from = ?before, to = ?self.tracker.state(), "peer health changed");
                    return Ok(Some(self.tracker.state()));
                }
            }
        }
        Ok(None)
    }

    /// Checks for a missed-pong timeout.
    pub fn tick(&mut self) {
        if let Some(state) = self.tracker.tick(Timestamp::now()) {
            info!(to = ?state, "peer health changed (no pong)");
        }
    }
}
