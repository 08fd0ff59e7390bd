//! Token counting with a real tokenizer (o200k, the GPT-4o family's).

use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();

/// The tokenizer, built once per process (it takes ~100 ms).
fn bpe() -> Option<&'static CoreBPE> {
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

/// Tokens in `text`. Falls back to a bytes/4 estimate if the tokenizer could not be
/// built, so counting never fails.
pub fn count(text: &str) -> u32 {
    if text.is_empty() {
        return 0;
    }
    match bpe() {
        Some(b) => b.encode_ordinary(text).len() as u32,
        None => text.len().div_ceil(4) as u32,
    }
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
    let toks = b.encode_ordinary(text);
    let (h, t) = (max_head as usize, max_tail as usize);
    if toks.len() <= h + t {
        return text.to_string();
    }
    let head = b.decode(toks[..h].to_vec()).unwrap_or_default();
    let tail = b
        .decode(toks[toks.len() - t..].to_vec())
        .unwrap_or_default();
    format!("{head}\n[…]\n{tail}")
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
    fn truncates_the_middle() {
        let long = "word ".repeat(1000);
        let cut = super::truncate_middle(&long, 10, 10);
        assert!(cut.contains("[…]"));
        assert!(super::count(&cut) < 40);
        assert_eq!(super::truncate_middle("short", 10, 10), "short");
    }
}
