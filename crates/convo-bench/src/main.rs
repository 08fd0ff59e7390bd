//! `convo-bench`: measures each scenario beside its bare-SQLite baseline in one run and
//! prints a table and a one-line verdict on the targets of DESIGN.md.
//!
//! Run it with `cargo run --release -p convo-bench -- --quick` (under a minute) or
//! without `--quick` for the full run recorded in BENCHMARKS.md.

mod data;
mod dbfile;
mod http;
mod reads;
mod stats;
mod writes;

use clap::Parser;
use std::path::Path;

/// The allocator the `convo` binary ships with, so the in-process scenarios measure
/// the engine as convo runs it (the bare side shares the process, and SQLite's own
/// allocations go to the C library's malloc either way).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "convo's benchmarks, as ratios against bare SQLite")]
struct Args {
    /// A short run (under a minute): smaller data sets and fewer rounds.
    #[arg(long)]
    quick: bool,
    /// Rounds per scenario (median reported).
    #[arg(long)]
    rounds: Option<usize>,
    /// Folder for the databases (default: a temporary folder).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// The `convo` binary for the HTTP scenarios (default: beside this one).
    #[arg(long)]
    convo: Option<std::path::PathBuf>,
    /// Run only these groups of scenarios (the verdict then lists only their targets).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Group>,
    /// Also write the table and the verdict to this file as JSON, for tracking results
    /// across runs and builds.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
}

/// A group of scenarios.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// Appends: one per commit, batches, concurrent writers.
    Writes,
    /// History, listing and search.
    Reads,
    /// Through `convo serve`: appends, history, jobs, memory.
    Http,
}

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Rounds per scenario.
    pub rounds: usize,
    /// Appends per round of the one-per-commit and batch scenarios, and most appends
    /// of one writer in a round of the concurrent-writer scenarios.
    pub appends: usize,
    /// Appends per round of the concurrent-writer scenarios, shared by the writers.
    /// A round must span several of the writer's 250 ms search-indexing passes: a
    /// round of 3,200 appends (~0.1 s) measured whether a pass fell into it (quick
    /// runs of one build gave 0.78-1.25x the bare rate).
    pub group_appends: usize,
    /// Items in the small and large history databases.
    pub items: (usize, usize),
    /// Conversations in the small and large listing databases.
    pub conversations: (usize, usize),
    /// Reads per round.
    pub reads: usize,
    /// Listings per round: a listing takes ~70 µs, so `reads` of them made rounds of
    /// 7-21 ms, and one scheduler hiccup moved list-flat by 0.4 between quick runs.
    pub list_reads: usize,
}

/// One target of DESIGN.md and its measured ratio.
pub struct Verdict {
    /// Short name.
    pub name: &'static str,
    /// Measured ratio.
    pub ratio: f64,
    /// Pass when `ratio >= min` (or `<= max` for flatness, see `pass`).
    pub pass: bool,
    /// How the ratio reads.
    pub rule: &'static str,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = std::time::Instant::now();
    // Opened first, so a path that cannot be written fails before minutes of measuring.
    let json_file = match &args.json {
        Some(path) => Some(
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let plan = if args.quick {
        Plan {
            rounds: args.rounds.unwrap_or(3),
            appends: 1000,
            group_appends: 16_000,
            items: (10_000, 100_000),
            conversations: (1_000, 100_000),
            reads: 300,
            list_reads: 2000,
        }
    } else {
        Plan {
            rounds: args.rounds.unwrap_or(5),
            appends: 2000,
            group_appends: 40_000,
            items: (10_000, 1_000_000),
            conversations: (1_000, 1_000_000),
            reads: 300,
            list_reads: 5000,
        }
    };
    let tmp = tempfile::tempdir()?;
    let dir: &Path = args.dir.as_deref().unwrap_or(tmp.path());
    std::fs::create_dir_all(dir)?;
    println!(
        "convo-bench ({}): {} rounds, {} appends/round ({} among concurrent writers), history dbs {:?} items, listing dbs {:?} conversations, on {}",
        if args.quick { "quick" } else { "full" },
        plan.rounds,
        plan.appends,
        plan.group_appends,
        plan.items,
        plan.conversations,
        dir.display()
    );
    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    let runs = |g: Group| args.only.is_empty() || args.only.contains(&g);
    if runs(Group::Writes) {
        writes::run(dir, &plan, &mut rows, &mut verdicts).await?;
    }
    if runs(Group::Reads) {
        reads::run(dir, &plan, &mut rows, &mut verdicts).await?;
    }
    match http::convo_binary(args.convo.as_deref()) {
        _ if !runs(Group::Http) => {}
        Some(convo) => http::run(&convo, dir, &plan, args.quick, &mut rows, &mut verdicts).await?,
        None => {
            println!(
                "  no convo binary beside convo-bench: build it with `cargo build --release -p convo`"
            );
            verdicts.push(Verdict {
                name: "http (not run)",
                ratio: 0.0,
                pass: false,
                rule: "needs the convo binary",
            });
        }
    }
    println!();
    stats::print_table(&rows);
    println!();
    let all = verdicts.iter().all(|v| v.pass);
    let line: Vec<String> = verdicts
        .iter()
        .map(|v| {
            // Three decimals: at two, a ratio just under its bound read as the bound
            // itself beside FAIL ("0.80 (>=0.80x bare) FAIL").
            format!(
                "{} {:.3} ({}) {}",
                v.name,
                v.ratio,
                v.rule,
                if v.pass { "PASS" } else { "FAIL" }
            )
        })
        .collect();
    println!(
        "VERDICT {}: {}",
        if all { "PASS" } else { "FAIL" },
        line.join("; ")
    );
    if let Some(mut file) = json_file {
        let report = serde_json::json!({
            "mode": if args.quick { "quick" } else { "full" },
            "plan": {
                "rounds": plan.rounds,
                "items": [plan.items.0, plan.items.1],
                "conversations": [plan.conversations.0, plan.conversations.1],
            },
            "elapsed_s": started.elapsed().as_secs_f64(),
            "rows": stats::rows_json(&rows),
            "verdict": {
                "pass": all,
                "targets": verdicts.iter().map(|v| serde_json::json!({
                    "name": v.name,
                    "ratio": v.ratio,
                    "rule": v.rule,
                    "pass": v.pass,
                })).collect::<Vec<_>>(),
            },
        });
        use std::io::Write;
        serde_json::to_writer_pretty(&mut file, &report)?;
        writeln!(file)?;
    }
    Ok(())
}
