//! `convo serve`.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::context::Ctx;
use crate::output;

/// Serve the HTTP API: the OpenAI Conversations API under `/v1` and convo's
/// extensions under `/v1/convo`. With no API key in the database the server runs in
/// local single-user mode and binds only to a loopback address; create a key with
/// `convo keys create` to serve other machines.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  convo serve                       # 127.0.0.1:8080, or [server] addr, with the workers\n  convo keys create --admin && convo serve --addr 0.0.0.0:8080\n  convo serve --no-work             # run `convo work --follow` elsewhere"
)]
pub struct Args {
    /// Address to listen on (default: `[server] addr`, 127.0.0.1:8080).
    #[arg(long)]
    addr: Option<String>,
    /// Do not run the background cognition workers in this process.
    #[arg(long)]
    no_work: bool,
}

/// Binds, then serves until Ctrl-C or SIGTERM, draining in-flight requests.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let addr_text = args
        .addr
        .unwrap_or_else(|| ctx.settings.server.addr.clone());
    let addr: SocketAddr = addr_text.parse().map_err(|_| {
        output::usage(format!(
            "{addr_text:?} is not an address to listen on; use HOST:PORT, e.g. 127.0.0.1:8080"
        ))
    })?;
    let local = convo_server::keys::local_mode(ctx.store.as_ref()).await?;
    if local && !addr.ip().is_loopback() {
        return Err(output::usage(format!(
            "refusing to serve {addr} without API keys: anyone who can reach it would act as the local user; create one with `convo keys create --admin` or listen on 127.0.0.1"
        )));
    }
    let config = convo_server::ServerConfig {
        body_limit_bytes: usize::try_from(ctx.settings.server.body_limit).unwrap_or(usize::MAX),
        manager: ctx.manager_config(),
        ..Default::default()
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))?;
    let bound = listener.local_addr()?;
    // Scripts and tests read this line to learn the port (with --addr ...:0).
    eprintln!(
        "listening on http://{bound}{}",
        if local {
            " (local mode: no API keys)"
        } else {
            ""
        }
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // One process is the default deployment: the workers run beside the server and
    // their metrics join /metrics.
    let mut extra: Option<convo_server::ExtraMetrics> = None;
    let worker = if args.no_work {
        None
    } else {
        let w = super::work::worker(ctx)?;
        let metrics = w.metrics().clone();
        extra = Some(std::sync::Arc::new(move || metrics.render_prometheus()));
        Some(tokio::spawn(w.run(stop_rx.clone())))
    };
    let router = convo_server::router(ctx.store.clone(), config, extra);
    let mut rx = stop_rx.clone();
    let served = convo_server::serve(listener, router, async move {
        let _ = rx.wait_for(|stop| *stop).await;
    });
    let signal = async {
        shutdown_signal().await;
        tracing::info!("stopping: draining in-flight requests");
        let _ = stop_tx.send(true);
    };
    let (served, ()) = tokio::join!(served, signal);
    served.context("the server stopped with an error")?;
    if let Some(w) = worker {
        w.await.context("the worker task stopped")??;
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix (what service managers send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
