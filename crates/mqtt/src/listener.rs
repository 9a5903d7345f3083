//! The device port: accepts TCP connections, completes the TLS handshake and hands each
//! connection to its own task.
//!
//! A connect storm must not starve the devices already connected, and sockets that connect
//! and then say nothing must not lock new devices out. So sockets are accepted freely and each
//! has the connect timeout to send its ClientHello (cheap to wait for); only the expensive
//! part — the handshake's key exchange and signatures — is limited to a fixed number at once,
//! with the rest queued in arrival order.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::LazyConfigAcceptor;

use crate::broker::Broker;
use crate::connection;

/// Serves devices on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    broker: Broker,
    mut shutdown: watch::Receiver<bool>,
) {
    let handshakes = Arc::new(Semaphore::new(
        broker.inner.config.max_concurrent_handshakes,
    ));
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically EMFILE: back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = socket.set_nodelay(true);
        let tls = tls.clone();
        let broker = broker.clone();
        let handshakes = handshakes.clone();
        tokio::spawn(async move {
            let timeout = broker.inner.config.connect_timeout;
            let deadline = tokio::time::Instant::now() + timeout;
            let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), socket);
            let start = match tokio::time::timeout_at(deadline, acceptor).await {
                Ok(Ok(start)) => start,
                Ok(Err(e)) => return handshake_failed(peer, &e.to_string()),
                Err(_) => {
                    return handshake_failed(peer, "no ClientHello within the connect timeout");
                }
            };
            let Ok(permit) = handshakes.acquire_owned().await else {
                return;
            };
            let stream = match tokio::time::timeout_at(deadline, start.into_stream(tls)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return handshake_failed(peer, &e.to_string()),
                Err(_) => return handshake_failed(peer, "handshake timed out"),
            };
            drop(permit);
            connection::serve(broker, stream, peer).await;
        });
    }
}

fn handshake_failed(peer: std::net::SocketAddr, why: &str) {
    metrics::counter!("drover_mqtt_tls_failures_total").increment(1);
    tracing::info!(%peer, error = why, "TLS handshake failed");
}
