//! Token counting with a real tokenizer (o200k, the GPT-4o family's).

use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();

/// The tokenizer, built once per process (it takes ~100 ms).
fn bpe() -> Option<&'static CoreBPE> {
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

/// Runs of this many bytes without white space are estimated, not encoded: BPE cost
/// grows with the square of a run's length (100 KB of base64 took seconds) and a
/// megabyte-long run overflows the tokenizer's regex stack.
const LONG_RUN: usize = 100;
/// Ordinary text is encoded in pieces of about this size, cut at white space.
const CHUNK: usize = 8192;

/// Tokens in `text`, counted with o200k. Whitespace-free runs longer than 100 bytes
/// (base64, minified data) are estimated at one token per 3 bytes. Falls back to an
/// estimate if the tokenizer could not be built or fails, so counting never fails and
/// its cost is linear in the length.
pub fn count(text: &str) -> u32 {
    if text.is_empty() {
        return 0;
    }
    let Some(b) = bpe() else {
        return text.len().div_ceil(4) as u32;
    };
    let encode = |piece: &str| -> usize {
        if piece.is_empty() {
            return 0;
        }
        std::panic::catch_unwind(|| b.encode_ordinary(piece).len())
            .unwrap_or_else(|_| piece.len().div_ceil(4))
    };
    let mut total = 0usize;
    let mut start = 0usize; // start of the ordinary text not yet encoded
    let mut run_start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(r) = run_start.take()
                && i - r > LONG_RUN
            {
                total += encode(&text[start..r]) + (i - r).div_ceil(3);
                start = i;
            }
            if i - start >= CHUNK {
                total += encode(&text[start..i]);
                start = i;
            }
        } else if run_start.is_none() {
            run_start = Some(i);
        }
    }
    match run_start {
        Some(r) if text.len() - r > LONG_RUN => {
            total += encode(&text[start..r]) + (text.len() - r).div_ceil(3);
        }
        _ => total += encode(&text[start..]),
    }
    total.min(u32::MAX as usize) as u32
}

/// Tokens a chat message costs beyond its text (role and framing), as OpenAI counts.
pub const PER_MESSAGE: u32 = 4;

/// The first `max` tokens of `text` and the last `max_tail`, joined by a marker when
/// something was cut. Used to bound prompts however long the input.
pub fn truncate_middle(text: &str, max_head: u32, max_tail: u32) -> String {
    let Some(b) = bpe() else {
        let (h, t) = ((max_head * 4) as usize, (max_tail * 4) as usize);
        if text.len() <= h + t {
            return text.to_string();
        }
        let head: String = text.chars().take(h).collect();
        let tail: String = {
            let v: Vec<char> = text.chars().collect();
            v[v.len().saturating_sub(t)..].iter().collect()
        };
        return format!("{head}\n[…]\n{tail}");
    };
    if count(text) <= max_head + max_tail {
        return text.to_string();
    }
    // A token is rarely more than 6 bytes: cut by bytes first so the tokenizer only
    // sees a bounded amount of text, however long the input.
    let head_src = prefix_at_char(text, max_head as usize * 6);
    let tail_src = suffix_at_char(text, max_tail as usize * 6);
    let encode = |s: &str| std::panic::catch_unwind(|| b.encode_ordinary(s)).unwrap_or_default();
    let (h, t) = (encode(head_src), encode(tail_src));
    let head = b
        .decode(h[..h.len().min(max_head as usize)].to_vec())
        .unwrap_or_else(|_| head_src.to_string());
    let tail = b
        .decode(t[t.len().saturating_sub(max_tail as usize)..].to_vec())
        .unwrap_or_else(|_| tail_src.to_string());
    format!("{head}\n[…]\n{tail}")
}

fn prefix_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

fn suffix_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = s.len() - max;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_real_tokens() {
        assert_eq!(super::count(""), 0);
        let n = super::count("Hello, world! This is a test.");
        assert!((5..=10).contains(&n), "{n}");
    }

    #[test]
    fn long_runs_without_spaces_are_fast_and_never_panic() {
        super::count("build the tokenizer first");
        let t = std::time::Instant::now();
        let n = super::count(&"x".repeat(1 << 20));
        assert!(n > 300_000, "{n}");
        let mixed = format!("hello {} world", "QUJD".repeat(50_000));
        assert!(super::count(&mixed) > 60_000);
        // Not a benchmark: encoding these whole took minutes (quadratic BPE) or
        // overflowed the regex stack; linear counting takes well under a second.
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            t.elapsed()
        );
        // Long ordinary text counts about as the whole would.
        let words = "the quick brown fox jumps over the lazy dog ".repeat(2000);
        let n = super::count(&words);
        assert!((17_000..=19_000).contains(&n), "{n}");
    }

    #[test]
    fn truncates_the_middle() {
        let long = "word ".repeat(1000);
        let cut = super::truncate_middle(&long, 10, 10);
        assert!(cut.contains("[…]"));
        assert!(super::count(&cut) < 40);
        assert_eq!(super::truncate_middle("short", 10, 10), "short");
    }
}
