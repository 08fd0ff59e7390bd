//! Token counting with a real tokenizer (o200k, the GPT-4o family's).

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};
use std::sync::OnceLock;

use crate::ascii_pieces;
use crate::bpe::{O200K, Rank, Vocab};

/// Pieces longer than this many bytes (a base64 blob, minified data, a run of
/// spaces) are estimated at one token per 3 bytes, not encoded: BPE cost grows with
/// the square of a piece's length (100 KB of base64 took seconds).
const LONG_PIECE: usize = 100;

/// o200k's pre-tokenizer without its one look-ahead (`\s+(?!\S)`), which the
/// `regex` crate cannot run; [`pieces`] restores its effect. Splitting with a DFA
/// instead of tiktoken's backtracking engine is what makes counting cheap: it was
/// the largest CPU cost of an append besides SQLite.
const PIECES: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+",
);

static SPLITTER: OnceLock<Regex> = OnceLock::new();

fn splitter() -> &'static Regex {
    SPLITTER.get_or_init(|| Regex::new(PIECES).expect("the o200k pattern compiles"))
}

/// Calls `f` with each piece of `text`, as o200k's pre-tokenizer cuts it.
fn pieces(text: &str, f: impl FnMut(&str)) {
    split(text, true, f)
}

/// [`pieces`], finding pieces of ASCII text by hand when `by_hand` (see
/// [`crate::ascii_pieces`]) and with the regular expression otherwise.
fn split(text: &str, by_hand: bool, mut f: impl FnMut(&str)) {
    let re = splitter();
    let mut at = 0;
    while at < text.len() {
        let found = match by_hand.then(|| ascii_pieces::piece_end(text, at)).flatten() {
            // Every piece is at least one character long, or this loop would not end.
            Some(end) if end > at => Some((at, end)),
            // Every character starts some alternative, so each piece starts where
            // the last one ended: an anchored search finds it without the reverse
            // scan an unanchored one needs for the start.
            _ => {
                let from = Input::new(text).range(at..);
                re.find(from.clone().anchored(Anchored::Yes))
                    .or_else(|| re.find(from))
                    .map(|m| (m.start(), m.end()))
            }
        };
        let Some((start, mut end)) = found else {
            // Never reached, as above.
            f(&text[at..]);
            return;
        };
        let piece = &text[start..end];
        // `\s+(?!\S)`: a run of white space before a non-space leaves its last
        // character to the next piece (" word"), unless that would empty it.
        if end < text.len()
            && !piece.ends_with(['\r', '\n'])
            && piece.chars().all(char::is_whitespace)
            && let Some((last, _)) = piece.char_indices().next_back()
            && last > 0
        {
            end = start + last;
        }
        if start > at {
            f(&text[at..start]);
        }
        f(&text[start..end]);
        at = end;
    }
}

/// Builds the pre-tokenizer now instead of on the first count: a server calls this at
/// start so its first append does not wait for it. (The vocabulary is compiled in and
/// needs no building.) Safe to call from several threads; later calls return at once.
pub fn warm_up() {
    let _ = splitter();
}

/// Pieces counted on this thread, so common words skip BPE. Bounded: cleared when
/// full.
const CACHE_PIECES: usize = 32 * 1024;

/// Seeded per process, so which pieces collide cannot be worked out from outside.
type PieceHasher = foldhash::quality::RandomState;

thread_local! {
    static CACHE: std::cell::RefCell<std::collections::HashMap<Box<str>, u32, PieceHasher>> =
        std::cell::RefCell::new(std::collections::HashMap::default());
}

/// Tokens in `text`, counted with o200k. Pieces longer than 100 bytes (base64,
/// minified data) are estimated at one token per 3 bytes, so counting's cost is linear
/// in the length.
pub fn count(text: &str) -> u32 {
    if text.is_empty() {
        return 0;
    }
    let encode = |piece: &str| O200K.count_piece(piece.as_bytes()) as u32;
    let mut total = 0u64;
    CACHE.with_borrow_mut(|cache| {
        pieces(text, |piece| {
            total += u64::from(if piece.len() > LONG_PIECE {
                piece.len().div_ceil(3) as u32
            } else if let Some(&n) = cache.get(piece) {
                n
            } else {
                let n = encode(piece);
                if cache.len() >= CACHE_PIECES {
                    cache.clear();
                }
                cache.insert(piece.into(), n);
                n
            });
        });
    });
    total.min(u64::from(u32::MAX)) as u32
}

/// Tokens a chat message costs beyond its text (role and framing), as OpenAI counts.
pub const PER_MESSAGE: u32 = 4;

/// The first `max` tokens of `text` and the last `max_tail`, joined by a marker when
/// something was cut. Used to bound prompts however long the input.
pub fn truncate_middle(text: &str, max_head: u32, max_tail: u32) -> String {
    let b = &O200K;
    if count(text) <= max_head + max_tail {
        return text.to_string();
    }
    // A token is rarely more than 6 bytes: cut by bytes first so the tokenizer only
    // sees a bounded amount of text, however long the input.
    let head_src = prefix_at_char(text, max_head as usize * 6);
    let tail_src = suffix_at_char(text, max_tail as usize * 6);
    let decode = |tokens: &[Rank], whole: &str| {
        String::from_utf8(b.decode(tokens)).unwrap_or_else(|_| whole.to_string())
    };
    let (h, t) = (encode(b, head_src), encode(b, tail_src));
    let head = decode(&h[..h.len().min(max_head as usize)], head_src);
    let tail = decode(&t[t.len().saturating_sub(max_tail as usize)..], tail_src);
    format!("{head}\n[…]\n{tail}")
}

/// The tokens of `text`, as tiktoken's `encode_ordinary` gives them.
fn encode(b: &Vocab, text: &str) -> Vec<Rank> {
    let mut out = Vec::new();
    pieces(text, |piece| b.encode_piece(piece.as_bytes(), &mut out));
    out
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
    use proptest::prelude::*;

    #[test]
    fn warming_up_builds_the_splitter() {
        super::warm_up();
        assert!(super::SPLITTER.get().is_some());
    }

    /// tiktoken-rs's own tokenizer, which the build script copies the vocabulary from.
    fn tiktoken() -> &'static tiktoken_rs::CoreBPE {
        static FULL: std::sync::OnceLock<tiktoken_rs::CoreBPE> = std::sync::OnceLock::new();
        FULL.get_or_init(|| tiktoken_rs::o200k_base().unwrap())
    }

    /// tiktoken's own count of the whole text.
    fn reference(text: &str) -> u32 {
        tiktoken().encode_ordinary(text).len() as u32
    }

    /// Our encoding of `text`, token by token.
    fn encoded(text: &str) -> Vec<super::Rank> {
        super::encode(&super::O200K, text)
    }

    #[test]
    fn counts_exactly_as_tiktoken() {
        let texts = [
            "Hello, world! This is a test.",
            "I'm sure they'll say it's fine, we've done it, you'd agree. DON'T SHOUT'S",
            "two  spaces, three   spaces,\ttab\t\tand trailing   ",
            "line one\n\n  indented line\r\n\tcode();\n    return x;\n}",
            "numbers 1234567 and 3.14159, dates 2026-11-27, $1,000,000.00",
            "unicode: caf\u{e9} na\u{ef}ve \u{fc}ber Stra\u{df}e \u{65e5}\u{672c}\u{8a9e}\u{306e}\u{6587}\u{7ae0} \u{1f600}\u{1f680}",
            "combining e\u{301}e\u{301} marks and \u{3000}ideographic\u{3000}\u{3000}space",
            "non-breaking\u{a0}\u{a0}space and zero\u{200b}width",
            "path/to/file.rs:12:5 https://example.com/a?b=c&d=e#f",
            "   leading spaces and a final word",
            "!!!??? ... --- ***  ///\n\n\n",
            "CamelCaseWords and snake_case_words and SCREAMING_CASE",
            "\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}, \u{43c}\u{438}\u{440}! \u{645}\u{631}\u{62d}\u{628}\u{627}",
            " \n \n  x",
            "a \u{2003}\u{2003}b",
        ];
        for t in texts {
            assert_eq!(super::count(t), reference(t), "{t:?}");
            assert_eq!(encoded(t), tiktoken().encode_ordinary(t), "{t:?}");
        }
    }

    #[test]
    fn the_vocabulary_is_tiktokens_token_for_token() {
        let b = &super::O200K;
        let all: Vec<super::Rank> = (0..199_998).collect();
        let ours: Vec<Vec<u8>> = all.iter().map(|&r| b.decode(&[r])).collect();
        let theirs: Vec<Vec<u8>> = tiktoken()._decode_native_and_split(all).collect();
        assert!(ours == theirs, "a token's bytes differ");
        // Every token encodes to itself, and decodes back: the rank index is complete.
        for (rank, bytes) in ours.iter().enumerate().step_by(7) {
            let mut out = Vec::new();
            b.encode_piece(bytes, &mut out);
            assert_eq!(out, [rank as super::Rank], "{bytes:?}");
        }
    }

    proptest! {
        #[test]
        fn counts_random_text_exactly(
            t in proptest::string::string_regex(
                "[a-zA-Z0-9 \t\r\n'.,!?/\u{e9}\u{3000}\u{a0}\u{65e5}\u{1f600}\u{301}-]{0,24}"
            ).unwrap()
        ) {
            prop_assert_eq!(super::count(&t), reference(&t), "{:?}", t);
            prop_assert_eq!(encoded(&t), tiktoken().encode_ordinary(&t), "{:?}", t);
        }
    }

    /// The pieces of `text`, found by hand where possible or by the regex alone.
    fn cut(text: &str, by_hand: bool) -> Vec<String> {
        let mut out = Vec::new();
        super::split(text, by_hand, |p| out.push(p.to_string()));
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// ASCII of every class the pattern tells apart (each kind of white space,
        /// contractions in both cases, control characters, slashes) and characters
        /// outside ASCII that would change a piece: a letter, a long s (a case
        /// variant of `s` in `'s`), a mark, a digit, no-break space, next line, a dash.
        #[test]
        fn pieces_by_hand_are_the_regexs(
            t in proptest::string::string_regex(
                "([a-zA-Z0-9 \t\r\n\x0b\x0c\x01\x7f'.,!?/_-]|'[sStTmMdD]|'[rRvV][eE]|'[lL][lL]|\u{e9}|\u{17f}|\u{301}|\u{663}|\u{a0}|\u{85}|\u{2014}){0,40}"
            ).unwrap()
        ) {
            prop_assert_eq!(cut(&t, true), cut(&t, false), "{:?}", t);
        }
    }

    #[test]
    fn pieces_by_hand_cut_ordinary_text_as_the_regex_does() {
        let texts = [
            "I'm sure they'll say it's fine, we've done it, you'd agree. DON'T SHOUT'S",
            "HELLO world HELLOworld helloWorld -ABC (word) 'quoted' \"double\"",
            "two  spaces,\tthree   spaces,\n\n  indented\r\n\tcode();\n    return x;\n}",
            "numbers 1234567 and 3.14159, $1,000,000.00 -123 ...--- ///\n\n",
            "path/to/file.rs:12:5 https://example.com/a?b=c&d=e#f snake_case_words",
            "caf\u{e9} na\u{ef}ve 's\u{17f} x\u{a0}\u{a0}y end\u{2014}dash \u{1f600}!",
        ];
        for t in texts {
            assert_eq!(cut(t, true), cut(t, false), "{t:?}");
        }
    }

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
