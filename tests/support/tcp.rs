//! A TCP endpoint that misbehaves on purpose: it accepts connections and
//! then either never answers (holding them open) or forwards the bytes to
//! a real server, switchable at any time. A peer that "accepts and never
//! answers" is how a wedged git server, registry or forge looks on the wire.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::AbortOnDrop;

pub struct TcpFault {
    /// `127.0.0.1:PORT`
    pub addr: String,
    forward: Arc<AtomicBool>,
    _server: AbortOnDrop,
}

impl TcpFault {
    /// Starts hanging; [`TcpFault::forward`] switches new connections to
    /// `target` (`host:port`).
    pub async fn start(target: Option<String>) -> TcpFault {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the TCP fault server");
        let addr = listener.local_addr().expect("local address").to_string();
        let forward = Arc::new(AtomicBool::new(false));
        let switch = forward.clone();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                match (&target, switch.load(Ordering::SeqCst)) {
                    (Some(target), true) => {
                        let target = target.clone();
                        tokio::spawn(async move {
                            if let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            }
                        });
                    }
                    // Accept and never answer: keep the socket open.
                    _ => held.push(client),
                }
            }
        });
        TcpFault {
            addr,
            forward,
            _server: AbortOnDrop(server),
        }
    }

    /// From now on, new connections are forwarded to the target.
    pub fn forward(&self) {
        self.forward.store(true, Ordering::SeqCst);
    }
}
