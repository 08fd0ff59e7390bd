//! Rounds, medians, percentiles, and the printed table.

use std::time::{Duration, Instant};

/// One measured series: ops/s per round and every operation's latency.
#[derive(Debug, Default, Clone)]
pub struct Series {
    /// Operations per second of each round.
    pub rates: Vec<f64>,
    /// Latency of every operation, all rounds.
    pub latencies: Vec<Duration>,
    /// Operations per round.
    pub ops: usize,
}

impl Series {
    /// Median ops/s across rounds.
    pub fn rate(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(|a, b| a.total_cmp(b));
        if r.is_empty() { 0.0 } else { r[r.len() / 2] }
    }

    /// Latency percentile (0-100).
    pub fn pct(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut l = self.latencies.clone();
        l.sort();
        let i = ((p / 100.0) * (l.len() - 1) as f64).round() as usize;
        Some(l[i])
    }

    /// Records one round of `ops` operations that took `elapsed`.
    pub fn round(&mut self, ops: usize, elapsed: Duration, latencies: Vec<Duration>) {
        self.ops = ops;
        self.rates.push(ops as f64 / elapsed.as_secs_f64());
        self.latencies.extend(latencies);
    }
}

/// Times `n` sequential calls of `f` as one round.
pub async fn timed<F, Fut>(series: &mut Series, n: usize, mut f: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        lat.push(t.elapsed());
    }
    series.round(n, start.elapsed(), lat);
}

/// One printed row.
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Its series.
    pub series: Series,
    /// The baseline's name and ops/s, when it has one.
    pub baseline: Option<(String, f64)>,
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// The rows as `--json` writes them: what the table prints, with each round's rate.
/// Latencies are in milliseconds; `ratio` and `baseline` are null without a baseline.
pub fn rows_json(rows: &[Row]) -> Vec<serde_json::Value> {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    rows.iter()
        .map(|r| {
            let base = r.baseline.as_ref().filter(|(_, rate)| *rate > 0.0);
            serde_json::json!({
                "scenario": r.scenario,
                "ops": r.series.ops,
                "ops_per_s": r.series.rate(),
                "round_rates": r.series.rates,
                "p50_ms": ms(r.series.pct(50.0)),
                "p99_ms": ms(r.series.pct(99.0)),
                "p99_9_ms": ms(r.series.pct(99.9)),
                "ratio": base.map(|(_, rate)| r.series.rate() / rate),
                "baseline": base.map(|(name, _)| name),
            })
        })
        .collect()
}

/// Prints the table.
pub fn print_table(rows: &[Row]) {
    println!(
        "{:<58} {:>7} {:>12} {:>9} {:>9} {:>9} {:>7}  baseline",
        "scenario", "ops", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "ratio"
    );
    for r in rows {
        let (ratio, base) = match &r.baseline {
            Some((name, rate)) if *rate > 0.0 => {
                (format!("{:.2}", r.series.rate() / rate), name.as_str())
            }
            _ => ("-".into(), ""),
        };
        println!(
            "{:<58} {:>7} {:>12.0} {:>9} {:>9} {:>9} {:>7}  {}",
            r.scenario,
            r.series.ops,
            r.series.rate(),
            ms(r.series.pct(50.0)),
            ms(r.series.pct(99.0)),
            ms(r.series.pct(99.9)),
            ratio,
            base
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(rates: &[f64], latencies_ms: &[u64]) -> Series {
        Series {
            rates: rates.to_vec(),
            latencies: latencies_ms
                .iter()
                .map(|&m| Duration::from_millis(m))
                .collect(),
            ops: latencies_ms.len(),
        }
    }

    #[test]
    fn json_rows_carry_the_table_and_the_ratio_to_their_baseline() {
        let rows = [
            Row {
                scenario: "bare".into(),
                series: series(&[100.0, 300.0, 200.0], &[1, 2, 3]),
                baseline: None,
            },
            Row {
                scenario: "ours".into(),
                series: series(&[50.0, 150.0, 100.0], &[2, 4, 6]),
                baseline: Some(("bare".into(), 200.0)),
            },
        ];
        let json = rows_json(&rows);
        assert_eq!(json[0]["ops_per_s"], 200.0, "the median round");
        assert!(json[0]["ratio"].is_null() && json[0]["baseline"].is_null());
        assert_eq!(json[1]["ratio"], 0.5);
        assert_eq!(json[1]["baseline"], "bare");
        assert_eq!(json[1]["p50_ms"], 4.0);
        assert_eq!(json[1]["p99_ms"], 6.0);
        assert_eq!(
            json[1]["round_rates"],
            serde_json::json!([50.0, 150.0, 100.0])
        );
        assert_eq!(json[1]["ops"], 3);
    }
}
