//! A small load generator: requests per second over loopback for a no-op route,
//! appends and history reads, against an in-process server on a fresh SQLite file.
//!
//! ```text
//! cargo run --release -p convo-server --example load -- [--clients 16] [--seconds 5]
//! ```
//!
//! The no-op is an unknown URL: it crosses every layer (request id, trace, metrics,
//! gzip, JSON errors, timeout, body limit) and the router, but no auth and no store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use convo_server::{ServerConfig, keys, router, serve};
use convo_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut clients = 16usize;
    let mut seconds = 5u64;
    let mut with_key = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--clients" => clients = args.next().ok_or("--clients N")?.parse()?,
            "--seconds" => seconds = args.next().ok_or("--seconds N")?.parse()?,
            // Local single-user mode: no key lookup per request.
            "--no-key" => with_key = false,
            o => return Err(format!("unknown argument {o:?}").into()),
        }
    }
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn convo_core::Store> =
        Arc::new(SqliteStore::open(dir.path().join("convo.db"), SqliteOptions::default()).await?);
    let key = if with_key {
        keys::create_key(store.as_ref(), Some("bench"), false, "load", None)
            .await?
            .1
    } else {
        String::new()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router(store.clone(), ServerConfig::default(), None),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;

    // One conversation per client for appends; one 1,000-item conversation for reads.
    let mut convs = Vec::new();
    for _ in 0..clients {
        let c: serde_json::Value = http
            .post(format!("{base}/v1/conversations"))
            .header("authorization", auth(&key))
            .json(&json!({}))
            .send()
            .await?
            .json()
            .await?;
        convs.push(c["id"].as_str().ok_or("no id")?.to_string());
    }
    let big: serde_json::Value = http
        .post(format!("{base}/v1/conversations"))
        .header("authorization", auth(&key))
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let big = big["id"].as_str().ok_or("no id")?.to_string();
    for i in 0..50 {
        let items: Vec<_> = (0..20)
            .map(|j| json!({"role": if j % 2 == 0 { "user" } else { "assistant" }, "content": format!("message {i}-{j} with a few words of text")}))
            .collect();
        http.post(format!("{base}/v1/conversations/{big}/items"))
            .header("authorization", auth(&key))
            .json(&json!({ "items": items }))
            .send()
            .await?
            .error_for_status()?;
    }

    for (name, kind) in [
        ("no-op (unknown URL)", 0),
        ("append 1 message", 1),
        ("history of 1,000 items", 2),
        ("list 20 items", 3),
    ] {
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for conv in &convs {
            let (http, base, key, conv, big) = (
                http.clone(),
                base.clone(),
                key.clone(),
                conv.clone(),
                big.clone(),
            );
            let (done, failed) = (done.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let rb = match kind {
                        0 => http.get(format!("{base}/v1/nothing")),
                        1 => http
                            .post(format!("{base}/v1/conversations/{conv}/items"))
                            .json(&json!({"items": [{"role": "user", "content": "hello there"}]})),
                        2 => http.get(format!("{base}/v1/convo/conversations/{big}/history")),
                        _ => http.get(format!("{base}/v1/conversations/{big}/items")),
                    };
                    let rb = if key.is_empty() {
                        rb
                    } else {
                        rb.header("authorization", auth(&key))
                    };
                    match rb.send().await {
                        Ok(r) if r.status().is_success() || kind == 0 => {
                            let _ = r.bytes().await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let n = done.load(Ordering::Relaxed);
        println!(
            "{name:<24} {clients:>3} clients: {:>8.0} req/s ({} failed)",
            n as f64 / seconds as f64,
            failed.load(Ordering::Relaxed)
        );
    }
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}

fn auth(key: &str) -> String {
    if key.is_empty() {
        // Local mode accepts any bearer; send none to skip the lookup entirely.
        "Bearer local".to_string()
    } else {
        format!("Bearer {key}")
    }
}
