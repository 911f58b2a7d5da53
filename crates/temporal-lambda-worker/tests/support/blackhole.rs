//! A loopback TCP proxy that can go silent on the connections it already carries, the way a
//! NAT or load balancer forgets a connection while a Lambda environment is frozen: no FIN, no
//! RST, bytes just stop arriving. New connections are forwarded normally.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf, tcp::OwnedWriteHalf},
};

/// A running proxy.
pub struct Blackhole {
    /// `127.0.0.1:<port>` to connect to instead of the target.
    pub address: String,
    epoch: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

impl Blackhole {
    /// Forwards connections on a free loopback port to `target`.
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let epoch = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (epoch_for_loop, count) = (Arc::clone(&epoch), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let born = epoch_for_loop.load(Ordering::SeqCst);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                for (from, to) in [(client_read, server_write), (server_read, client_write)] {
                    tokio::spawn(pipe(from, to, born, Arc::clone(&epoch_for_loop)));
                }
            }
        });
        Self {
            address,
            epoch,
            connections,
        }
    }

    /// Every connection open now stops carrying bytes, in both directions, without closing.
    pub fn silence_open_connections(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, born: u64, epoch: Arc<AtomicU64>) {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if epoch.load(Ordering::SeqCst) != born {
            // Silenced: drop everything from now on; `to` stays open, unused, until the
            // test process ends.
            while matches!(from.read(&mut buffer).await, Ok(n) if n > 0) {}
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
