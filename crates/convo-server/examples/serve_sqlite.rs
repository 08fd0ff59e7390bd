//! A minimal server over a SQLite file, for trying the API and for the SDK check
//! (`tests/sdk/run.sh`) until `convo serve` is wired in.
//!
//! ```text
//! cargo run -p convo-server --example serve_sqlite -- --db /tmp/convo.db --addr 127.0.0.1:0 --key alice --key bob
//! ```
//!
//! Prints `listening http://ADDR` once bound, then `key USER SECRET` for each `--key`
//! (`--admin-key` prints `key * SECRET`). Without keys it runs in local single-user
//! mode. Stops on Ctrl-C (or when stdin closes, with `--stdin-stop`).

use std::io::Write;
use std::sync::Arc;

use convo_server::{ServerConfig, keys, router, serve};
use convo_store_sqlite::{SqliteOptions, SqliteStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut db = None;
    let mut addr = "127.0.0.1:8080".to_string();
    let mut users = Vec::new();
    let mut admin = false;
    let mut stdin_stop = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--db" => db = args.next(),
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--key" => users.push(args.next().ok_or("--key needs a user")?),
            "--admin-key" => admin = true,
            "--stdin-stop" => stdin_stop = true,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let db = db.ok_or("--db PATH is required")?;
    let store: Arc<dyn convo_core::Store> =
        Arc::new(SqliteStore::open(&db, SqliteOptions::default()).await?);
    let mut secrets = Vec::new();
    for u in &users {
        let (_, secret) = keys::create_key(store.as_ref(), Some(u), false, "example", None).await?;
        secrets.push((u.clone(), secret));
    }
    if admin {
        let (_, secret) = keys::create_key(store.as_ref(), None, true, "example", None).await?;
        secrets.push(("*".to_string(), secret));
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let bound = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening http://{bound}")?;
        for (u, s) in &secrets {
            writeln!(out, "key {u} {s}")?;
        }
        out.flush()?;
    }
    let app = router(store.clone(), ServerConfig::default(), None);
    let shutdown = async move {
        if stdin_stop {
            // Stop when the parent closes our stdin (it died or is done).
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            })
            .await;
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    serve(listener, app, shutdown).await?;
    store.close().await?;
    Ok(())
}
