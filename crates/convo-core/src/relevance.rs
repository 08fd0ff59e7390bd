//! Relevance ranking for full-text search: Okapi BM25 over the searching user's own
//! messages.
//!
//! A backend finds the messages that contain every word with its own index and ranks
//! them here, so a search ranks alike on every backend, and the statistics BM25 needs
//! (how many of the user's messages hold each word) come from that user's messages,
//! not everyone's: FTS5's own `bm25()` reads every user's postings of each word to
//! count them, ~50 ms for a common word in a database of 1 million messages, against
//! ~1 ms to find one user's matches.

use std::borrow::Cow;

/// How fast repeats of a word stop adding to a message's score (FTS5's and Lucene's value).
pub const K1: f64 = 1.2;
/// How much a long message is penalised against the average length (same source).
pub const B: f64 = 0.75;

/// The words of a search, each with the tokens a message must hold in a row to match it.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    words: Vec<String>,
    tokens: Vec<Vec<String>>,
}

impl Terms {
    /// Splits a query at whitespace; words without a letter or digit are dropped, so
    /// punctuation alone never becomes a term.
    pub fn parse(text: &str) -> Terms {
        let words: Vec<String> = text
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .map(str::to_owned)
            .collect();
        let tokens = words
            .iter()
            .map(|w| tokens(w).map(fold).collect())
            .collect();
        Terms { words, tokens }
    }

    /// The words as typed, in query order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether the query has no word to look for.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// What BM25 needs to know about the corpus a search ranks within.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusStats {
    /// Messages in the corpus.
    pub docs: u64,
    /// For each of the query's words, in order: the messages that hold it.
    pub docs_with: Vec<u64>,
}

/// Scores `docs` (each an id and its text; every one matched all the terms) and returns
/// them best first; equal scores keep the order they came in.
///
/// Term frequencies and lengths are counted on letter-and-digit runs, compared without
/// case or accents; a matched message counts each word at least once even where that
/// count misses it (the index splits a few scripts differently), since the index said
/// it is there. Lengths are normalised by the average over the matches, which needs
/// no scan of the corpus.
pub fn rank<T>(terms: &Terms, stats: &CorpusStats, docs: Vec<(T, String)>) -> Vec<(T, f64)> {
    let idf: Vec<f64> = (0..terms.tokens.len())
        .map(|i| idf(stats.docs, stats.docs_with.get(i).copied().unwrap_or(0)))
        .collect();
    let counted: Vec<(T, usize, Vec<usize>)> = docs
        .into_iter()
        .map(|(id, text)| {
            // Folded once here, not at every phrase position it is compared at.
            let toks: Vec<Cow<str>> = tokens(&text).map(folded).collect();
            let tf = terms.tokens.iter().map(|p| occurrences(&toks, p)).collect();
            (id, toks.len(), tf)
        })
        .collect();
    let avg = (counted.iter().map(|(_, len, _)| *len).sum::<usize>() as f64
        / counted.len().max(1) as f64)
        .max(1.0);
    let mut scored: Vec<(T, f64)> = counted
        .into_iter()
        .map(|(id, len, tf)| {
            let norm = K1 * (1.0 - B + B * len as f64 / avg);
            let score = tf
                .iter()
                .zip(&idf)
                .map(|(&f, idf)| {
                    let f = f.max(1) as f64;
                    idf * f * (K1 + 1.0) / (f + norm)
                })
                .sum();
            (id, score)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
}

/// Most tokens a snippet shows.
pub const SNIPPET_TOKENS: usize = 16;

/// Where a hit matched, for a person to see: the run of up to [`SNIPPET_TOKENS`]
/// tokens of `text` holding the most tokens of the query's words, each such token in
/// brackets, with `…` where the text goes on (FTS5's `snippet(…, '[', ']', '…', 16)`).
/// Cut here rather than by the index, so every backend shows the same, and an index
/// need not keep a copy of the text.
pub fn snippet(terms: &Terms, text: &str) -> String {
    let spans: Vec<(usize, usize)> = token_spans(text).collect();
    if spans.is_empty() {
        return text.chars().take(200).collect();
    }
    let toks: Vec<Cow<str>> = spans.iter().map(|&(a, b)| folded(&text[a..b])).collect();
    let mut hit = vec![false; toks.len()];
    for p in terms
        .tokens
        .iter()
        .filter(|p| !p.is_empty() && p.len() <= toks.len())
    {
        for i in 0..=toks.len() - p.len() {
            if toks[i..i + p.len()]
                .iter()
                .zip(p)
                .all(|(t, q)| t.as_ref().eq_ignore_ascii_case(q))
            {
                hit[i..i + p.len()].iter_mut().for_each(|h| *h = true);
            }
        }
    }
    let width = SNIPPET_TOKENS.min(toks.len());
    // The window with the most matched tokens, the earliest of equals.
    let mut in_window = hit[..width].iter().filter(|&&h| h).count();
    let (mut best, mut start) = (in_window, 0);
    for s in 1..=toks.len() - width {
        in_window = in_window + hit[s + width - 1] as usize - hit[s - 1] as usize;
        if in_window > best {
            (best, start) = (in_window, s);
        }
    }
    // Centred on its matches, as far as the text allows.
    if let Some(first) = (start..start + width).find(|&i| hit[i]) {
        let last = (start..start + width)
            .rev()
            .find(|&i| hit[i])
            .unwrap_or(first);
        let lead = (width - (last - first + 1)) / 2;
        start = first.saturating_sub(lead).min(toks.len() - width);
    }
    let end = start + width;
    let mut out = String::with_capacity(text.len().min(400) + 8);
    let mut at = if start == 0 {
        0
    } else {
        out.push('…');
        spans[start].0
    };
    for i in start..end {
        let (a, b) = spans[i];
        out.push_str(&text[at..a]);
        if hit[i] {
            out.push('[');
            out.push_str(&text[a..b]);
            out.push(']');
        } else {
            out.push_str(&text[a..b]);
        }
        at = b;
    }
    if end == spans.len() {
        out.push_str(&text[at..]);
    } else {
        out.push('…');
    }
    out
}

/// The byte ranges of [`tokens`].
fn token_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = None;
    text.char_indices()
        .chain(std::iter::once((text.len(), ' ')))
        .filter_map(move |(i, c)| match (c.is_alphanumeric(), start) {
            (true, None) => {
                start = Some(i);
                None
            }
            (false, Some(s)) => {
                start = None;
                Some((s, i))
            }
            _ => None,
        })
}

/// BM25's inverse document frequency in Lucene's form, `ln(1 + (N - n + 0.5) / (n + 0.5))`:
/// always positive, so a word in half or more of a user's messages still weighs
/// something. The classic form goes negative there, and FTS5 floors it at 1e-6,
/// which printed every score of a small history as 0.00.
fn idf(docs: u64, with: u64) -> f64 {
    let (n, w) = (docs as f64, with.min(docs) as f64);
    (1.0 + (n - w + 0.5) / (w + 0.5)).ln()
}

/// The letter-and-digit runs of `text`, as FTS5's `unicode61` tokenizer splits it.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
}

/// How often the phrase `p` (folded tokens) occurs in `toks` (tokens from
/// [`folded`]: ASCII ones keep their case, which the comparison ignores).
fn occurrences<T: AsRef<str>>(toks: &[T], p: &[String]) -> usize {
    if p.is_empty() || p.len() > toks.len() {
        return 0;
    }
    toks.windows(p.len())
        .filter(|w| {
            w.iter()
                .zip(p)
                .all(|(t, q)| t.as_ref().eq_ignore_ascii_case(q))
        })
        .count()
}

/// A message's token ready for comparison: ASCII borrowed as it is (compared without
/// case), anything else folded.
fn folded(t: &str) -> Cow<'_, str> {
    if t.is_ascii() {
        Cow::Borrowed(t)
    } else {
        Cow::Owned(fold(t))
    }
}

/// A token as the index compares it: lowercase, accents removed (decomposed, then the
/// combining marks dropped), so "Éclair" counts as "eclair" as it matched.
fn fold(t: &str) -> String {
    if t.is_ascii() {
        return t.to_ascii_lowercase();
    }
    icu_normalizer::DecomposingNormalizerBorrowed::new_nfd()
        .normalize(t)
        .chars()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(query: &str, stats: (u64, Vec<u64>), docs: &[&str]) -> Vec<usize> {
        let docs = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.to_string()))
            .collect();
        let stats = CorpusStats {
            docs: stats.0,
            docs_with: stats.1,
        };
        rank(&Terms::parse(query), &stats, docs)
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn repeats_and_short_messages_rank_first() {
        let docs = [
            "I love hiking in the Alps",
            "Hiking hiking hiking: the Alps are great for HIKING",
            "hiking app",
        ];
        assert_eq!(ranked("hiking", (3, vec![3]), &docs), [1, 2, 0]);
    }

    #[test]
    fn a_rare_word_outweighs_a_common_one() {
        // "paris" is in 2 of 1,000 messages, "weather" in 500.
        let docs = ["weather weather weather paris", "weather paris paris paris"];
        assert_eq!(ranked("weather paris", (1000, vec![500, 2]), &docs), [1, 0]);
    }

    #[test]
    fn phrases_match_in_a_row_and_ties_keep_their_order() {
        let t = Terms::parse("don't ?! Éclair");
        assert_eq!(t.words(), ["don't", "Éclair"]);
        assert_eq!(t.tokens, [vec!["don", "t"], vec!["eclair"]]);
        let toks: Vec<Cow<str>> = tokens("Don t, don't; t don ÉCLAIR eclair éclairs")
            .map(folded)
            .collect();
        assert_eq!(occurrences(&toks, &t.tokens[0]), 2);
        assert_eq!(occurrences(&toks, &t.tokens[1]), 2);
        // Accents fold as the index folds them: three uses beat one.
        assert_eq!(
            ranked("cafe", (10, vec![2]), &["café x y", "Café CAFÉ cafe"]),
            [1, 0]
        );
        // Equal scores keep the order given.
        assert_eq!(
            ranked("eclair", (10, vec![2]), &["éclair a", "éclair b"]),
            [0, 1]
        );
        // A word the count cannot find in a match still counts once.
        assert_eq!(
            ranked("x", (10, vec![2]), &["unrelated words", "x"]).len(),
            2
        );
    }

    #[test]
    fn snippets_bracket_matches_in_a_window_of_the_text() {
        let cut = |q: &str, text: &str| snippet(&Terms::parse(q), text);
        // Short texts whole, with their punctuation; accents and case fold.
        assert_eq!(
            cut("cafe", "Café CAFÉ cafe lait."),
            "[Café] [CAFÉ] [cafe] lait."
        );
        assert_eq!(cut("paris", "Un café à Paris"), "Un café à [Paris]");
        assert_eq!(cut("don't", "I don't know"), "I [don]'[t] know");
        assert_eq!(cut("zzz", "no match here"), "no match here");
        // A long text: the window with the most matches, led in, ellipses where it goes on.
        let words: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let mut text = words.join(" ");
        text = text.replace("w20 ", "rust ").replace("w22 ", "rust ");
        let s = cut("rust", &text);
        assert_eq!(
            s,
            "…w14 w15 w16 w17 w18 w19 [rust] w21 [rust] w23 w24 w25 w26 w27 w28 w29…"
        );
        // The window never runs past the end, and a match at the start starts it.
        assert!(cut("w39", &text).ends_with("[w39]"));
        assert!(cut("w0", &text).starts_with("[w0] w1"));
        assert_eq!(cut("x", "…  "), "…  ");
    }

    #[test]
    fn idf_falls_with_spread_and_stays_positive() {
        assert!(idf(1000, 2) > idf(1000, 500));
        assert!(idf(1000, 500) > idf(1000, 1000));
        // A word in every message of a history of three: ln(1 + 0.5 / 3.5).
        assert!((idf(3, 3) - (8.0f64 / 7.0).ln()).abs() < 1e-12);
        assert!(idf(0, 0) > 0.0);
    }

    #[test]
    fn scores_are_positive_and_finite_even_for_everywhere_words() {
        let r = rank(
            &Terms::parse("the"),
            &CorpusStats {
                docs: 2,
                docs_with: vec![2],
            },
            vec![(0, "the".into()), (1, String::new())],
        );
        assert!(r.iter().all(|(_, s)| s.is_finite() && *s > 0.0), "{r:?}");
    }
}
