//! Progress bars for long imports and exports: drawn on a terminal only.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps named `what`, or a hidden one when `visible` is false
/// (pipes, `--json`, `--quiet`).
pub fn bar(visible: bool, len: u64, what: &str) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}
