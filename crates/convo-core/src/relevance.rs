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
