//! Serving a router on a bound listener, with graceful shutdown.

use std::future::Future;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and
/// waits for in-flight requests to finish.
///
/// Sets `TCP_NODELAY` on every accepted connection: axum does not, and Nagle's
/// algorithm with delayed ACKs costs ~40 ms per request on a kept-alive connection
/// (clients paging through items, 20 a request, feel it at once). Builds the
/// tokenizer in the background, so the first append does not pay for it.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Off the async workers, and without delaying readiness: a request that needs the
    // tokenizer before it is built waits for this build instead of starting another.
    tokio::task::spawn_blocking(convo_core::tokens::warm_up);
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
