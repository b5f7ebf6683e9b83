//! A TCP echo server with a deep accept queue, for `benches/tasks.sh`.
//!
//! ```text
//! echo_backlog_server     listens on 127.0.0.1 (a free port), prints "tcp PORT",
//!                         echoes every connection until stdin closes
//! ```
//!
//! The pipes' own echo server listens with a backlog of 1024: 10,000 clients connecting
//! at once would overflow it, and the dropped SYNs (retried after 1 s, 3 s, 7 s...) would
//! measure the kernel's retransmission timer instead of the clients. This one asks for a
//! backlog of 65535 (the kernel caps it at `net.core.somaxconn`, which the bench raises
//! inside its own network namespace) and echoes with plain tokio, the same for every
//! client measured.

use std::io::Read;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let listener = rt.block_on(async {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind("127.0.0.1:0".parse().expect("an address"))
            .expect("bind 127.0.0.1");
        socket.listen(65535).expect("listen")
    });
    println!("tcp {}", listener.local_addr().expect("bound").port());
    rt.spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    // Serve until the bench closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
