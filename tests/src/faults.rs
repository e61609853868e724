//! Fault injection for end-to-end tests: [`TcpProxy`], a loopback TCP proxy that can be
//! switched off (new connections are closed at once and open ones are cut), to make a real
//! server such as moto S3 unreachable for a while without losing its state, and that can
//! throttle uploads (a pause after every 4 KiB sent upstream) so that a test can act in the
//! middle of one.

use std::net::SocketAddr;

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A switchable TCP proxy to `target`, stopped when dropped.
pub struct TcpProxy {
    pub address: SocketAddr,
    up: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `target` (`host:port`) while up.
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        Self::start_throttled(target, None).await
    }

    /// Like [`TcpProxy::start`], pausing `pause` after every 4 KiB sent to `target`.
    pub async fn start_throttled(target: &str, pause: Option<Duration>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind proxy")?;
        let address = listener.local_addr()?;
        let (up, up_rx) = watch::channel(true);
        let target = target.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*up_rx.borrow() {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut down = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = inbound.split();
                    let (mut from_server, mut to_server) = outbound.split();
                    let upstream = async {
                        let mut buffer = vec![0u8; 4096];
                        loop {
                            let read = from_client.read(&mut buffer).await?;
                            if read == 0 {
                                return to_server.shutdown().await;
                            }
                            to_server
                                .write_all(buffer.get(..read).unwrap_or_default())
                                .await?;
                            if let Some(pause) = pause {
                                tokio::time::sleep(pause).await;
                            }
                        }
                    };
                    let downstream = tokio::io::copy(&mut from_server, &mut to_client);
                    tokio::select! {
                        _ = async { tokio::join!(upstream, downstream) } => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(Self { address, up, task })
    }

    /// Switches the proxy on or off; off cuts every open connection.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
