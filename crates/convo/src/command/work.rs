//! `convo work`.

use anyhow::{Context, Result};
use convo_cognition::{CognitionConfig, WorkSummary, Worker};
use serde_json::json;

use crate::context::Ctx;
use crate::output;

/// Run background cognition jobs (name conversations, update profiles) with the
/// provider of the `[cognition]` settings: until the queue is empty, or with
/// `--follow` until Ctrl-C. Jobs are durable: an interrupted run loses nothing.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  convo work                  # drain the queue, then exit\n  CONVO_COGNITION_PROVIDER=openai CONVO_COGNITION_MODEL=gpt-4o-mini \\\n    CONVO_COGNITION_API_KEY_ENV=OPENAI_API_KEY convo work --follow"
)]
pub struct Args {
    /// Keep running and wait for new jobs until Ctrl-C or SIGTERM.
    #[arg(long)]
    follow: bool,
}

/// The cognition settings, as the cognition crate reads them.
pub fn cognition_config(ctx: &Ctx) -> Result<CognitionConfig> {
    serde_json::from_value(serde_json::Value::Object(ctx.settings.cognition.clone()))
        .map_err(|e| anyhow::anyhow!("the [cognition] settings are invalid: {e}"))
}

/// A worker over the store with the configured provider.
pub fn worker(ctx: &Ctx) -> Result<Worker> {
    let config = cognition_config(ctx)?;
    let provider = convo_cognition::build_provider(&config)
        .context("could not set up the cognition provider")?;
    Ok(Worker::new(ctx.store.clone(), provider, config))
}

/// Runs jobs and prints what happened.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let w = worker(ctx)?;
    let summary = if args.follow {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let run = tokio::spawn(w.run(rx));
        super::serve::shutdown_signal().await;
        let _ = tx.send(true);
        run.await.context("the worker task stopped")??
    } else {
        w.run_until_empty().await?
    };
    print_summary(ctx, &summary)
}

fn print_summary(ctx: &Ctx, s: &WorkSummary) -> Result<()> {
    if ctx.json {
        return output::json(&json!({
            "done": s.done,
            "retried": s.retried,
            "failed": s.failed,
            "handed_back": s.handed_back,
            "lost": s.lost,
            "left_pending": s.left_pending,
        }));
    }
    output::line(format!(
        "jobs: {} done, {} to retry, {} failed, {} handed back, {} lost, {} left pending",
        s.done, s.retried, s.failed, s.handed_back, s.lost, s.left_pending
    ))
}
