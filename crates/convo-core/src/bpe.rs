//! o200k's byte-pair encoding over a compact copy of its vocabulary.
//!
//! tiktoken-rs keeps three copies of the 200k-token vocabulary (encoder, decoder and
//! sorted bytes, one allocation per token each) and 256 clones of its regexes: ~50 MiB
//! resident, and 150-250 ms to build, in every process that counted a token. The build
//! script copies the vocabulary out of tiktoken-rs once, into flat tables compiled into
//! the binary (see [`crate::vocab_tables`]), so counting starts at once and the tables
//! are pages of the executable, shared by every process. The merge is tiktoken's own,
//! so encodings match it token for token (tested against it).

use crate::vocab_tables::{self, EMPTY};

/// A token's id in the vocabulary.
pub(crate) type Rank = u32;

/// o200k's vocabulary, as the build script wrote it.
pub(crate) static O200K: Vocab<'static> = Vocab::new(
    include_bytes!(concat!(env!("OUT_DIR"), "/o200k.bytes")),
    include_bytes!(concat!(env!("OUT_DIR"), "/o200k.starts")),
    include_bytes!(concat!(env!("OUT_DIR"), "/o200k.tags")),
    include_bytes!(concat!(env!("OUT_DIR"), "/o200k.ranks")),
);

/// A vocabulary, rank → bytes and bytes → rank, over tables laid out as
/// [`crate::vocab_tables`] describes.
pub(crate) struct Vocab<'a> {
    bytes: &'a [u8],
    starts: &'a [[u8; 4]],
    tags: &'a [u8],
    ranks: &'a [[u8; 4]],
}

impl<'a> Vocab<'a> {
    /// The vocabulary in these tables.
    const fn new(bytes: &'a [u8], starts: &'a [u8], tags: &'a [u8], ranks: &'a [u8]) -> Self {
        Vocab {
            bytes,
            starts: starts.as_chunks().0,
            tags,
            ranks: ranks.as_chunks().0,
        }
    }

    /// The bytes of `rank` (empty for a rank outside the vocabulary).
    fn token(&self, rank: Rank) -> &'a [u8] {
        let r = rank as usize;
        match (self.starts.get(r), self.starts.get(r + 1)) {
            (Some(&a), Some(&b)) => {
                &self.bytes[u32::from_le_bytes(a) as usize..u32::from_le_bytes(b) as usize]
            }
            _ => &[],
        }
    }

    /// The rank of the token that is exactly `bytes`.
    fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        let h = vocab_tables::hash(bytes);
        let (tag, mask) = (vocab_tables::tag(h), self.tags.len() - 1);
        let mut at = vocab_tables::home(h, mask);
        loop {
            match self.tags[at] {
                EMPTY => return None,
                t if t == tag => {
                    let rank = u32::from_le_bytes(self.ranks[at]);
                    if self.token(rank) == bytes {
                        return Some(rank);
                    }
                }
                _ => {}
            }
            at = (at + 1) & mask;
        }
    }

    /// Appends the tokens of one pre-tokenized piece to `out`.
    pub(crate) fn encode_piece(&self, piece: &[u8], out: &mut Vec<Rank>) {
        if let Some(rank) = self.rank(piece) {
            out.push(rank);
            return;
        }
        let bounds = self.merge(piece);
        out.extend(
            bounds
                .windows(2)
                .filter_map(|w| self.rank(&piece[w[0].0..w[1].0])),
        );
    }

    /// How many tokens one pre-tokenized piece takes.
    pub(crate) fn count_piece(&self, piece: &[u8]) -> usize {
        if piece.is_empty() {
            0
        } else if self.rank(piece).is_some() {
            1
        } else {
            self.merge(piece).len() - 1
        }
    }

    /// The bytes of `tokens`, concatenated.
    pub(crate) fn decode(&self, tokens: &[Rank]) -> Vec<u8> {
        let mut out = Vec::new();
        for &t in tokens {
            out.extend_from_slice(self.token(t));
        }
        out
    }

    /// tiktoken's byte-pair merge: the boundaries `(start, rank of the pair starting
    /// there)` left once no adjacent pair forms a token, last boundary at the end.
    fn merge(&self, piece: &[u8]) -> Vec<(usize, Rank)> {
        let rank_of = |bytes: &[u8]| self.rank(bytes).unwrap_or(Rank::MAX);
        if piece.len() < 2 {
            return vec![(0, Rank::MAX), (piece.len(), Rank::MAX)];
        }
        let mut parts = Vec::with_capacity(piece.len() + 1);
        let mut min: (Rank, usize) = (Rank::MAX, usize::MAX);
        for i in 0..piece.len() - 1 {
            let rank = rank_of(&piece[i..i + 2]);
            if rank < min.0 {
                min = (rank, i);
            }
            parts.push((i, rank));
        }
        parts.push((piece.len() - 1, Rank::MAX));
        parts.push((piece.len(), Rank::MAX));
        // The rank of the pair that merging at `i` would form with its next part
        // (`i + 1` is still there: it is removed after both neighbours are updated).
        let joined = |parts: &[(usize, Rank)], i: usize| {
            if i + 3 < parts.len() {
                rank_of(&piece[parts[i].0..parts[i + 3].0])
            } else {
                Rank::MAX
            }
        };
        while min.0 != Rank::MAX {
            let i = min.1;
            if i > 0 {
                parts[i - 1].1 = joined(&parts, i - 1);
            }
            parts[i].1 = joined(&parts, i);
            parts.remove(i + 1);
            min = (Rank::MAX, usize::MAX);
            for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
                if rank < min.0 {
                    min = (rank, i);
                }
            }
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::Vocab;

    #[test]
    fn a_small_vocabulary_merges_by_rank() {
        // Bytes a, b, c, then "ab" (rank 3) before "bc" (rank 4), then "abc".
        let tokens = ["a", "b", "c", "ab", "bc", "abc"];
        let t = crate::vocab_tables::build(tokens.iter().map(|t| t.as_bytes().to_vec()));
        let v = Vocab::new(&t.bytes, &t.starts, &t.tags, &t.ranks);
        let encode = |s: &str| {
            let mut out = Vec::new();
            v.encode_piece(s.as_bytes(), &mut out);
            out
        };
        assert_eq!(encode("abc"), [5]);
        assert_eq!(encode("abcab"), [5, 3]);
        assert_eq!(encode("cab"), [2, 3]);
        assert_eq!(encode("bcb"), [4, 1]);
        assert_eq!(v.count_piece(b"abcab"), 2);
        assert_eq!(v.count_piece(b""), 0);
        assert_eq!(v.decode(&[5, 3, 2]), b"abcabc");
        assert_eq!(v.rank(b"ca"), None);
    }
}
