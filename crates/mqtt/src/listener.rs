//! The device port: accepts TCP connections, completes the TLS handshake (bounded in time
//! and in how many run at once, so a connect storm queues in the backlog instead of starving
//! the devices already connected), and hands each connection to its own task.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::broker::Broker;
use crate::connection;

/// Serves devices on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    broker: Broker,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let handshakes = Arc::new(Semaphore::new(
        broker.inner.config.max_concurrent_handshakes,
    ));
    loop {
        // Wait for a handshake slot before accepting: the kernel's backlog holds the rest.
        let permit = tokio::select! {
            permit = handshakes.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.changed() => return,
        };
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
        let acceptor = acceptor.clone();
        let broker = broker.clone();
        tokio::spawn(async move {
            let timeout = broker.inner.config.connect_timeout;
            let stream = match tokio::time::timeout(timeout, acceptor.accept(socket)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    metrics::counter!("drover_mqtt_tls_failures_total").increment(1);
                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    metrics::counter!("drover_mqtt_tls_failures_total").increment(1);
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            drop(permit);
            connection::serve(broker, stream, peer).await;
        });
    }
}
