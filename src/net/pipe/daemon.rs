//! Ready-made servers (P2PD's `Daemon` / `EchoServer`, inventory §5.4).
//!
//! A daemon here is a server pipe plus a task consuming its events; P2PD's inter-process
//! port lock files and "listen conflict" probe are not needed, since binding reports
//! `AddrInUse` directly.

use std::net::SocketAddr;

use super::{Error, Pipe, PipeEvent, PipeOptions, Proto};

/// A server on `local` that sends every message back to its sender. Close the returned pipe
/// to stop it; the echo task ends with the pipe's events.
pub async fn echo_server(proto: Proto, local: SocketAddr) -> Result<Pipe, Error> {
    let (server, mut events) =
        Pipe::open_with_events(proto, None, local, PipeOptions::default(), false).await?;
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let PipeEvent::Message { peer, data, pipe } = event {
                // One client failing (gone, slow) must not stop the echo for others.
                let _ = match pipe.proto() {
                    Proto::Tcp => pipe.send(&data).await,
                    Proto::Udp => pipe.send_to(&data, peer).await,
                };
            }
        }
    });
    Ok(server)
}
