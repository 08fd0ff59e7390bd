//! o200k's byte-pair encoding over a compact copy of its vocabulary.
//!
//! tiktoken-rs keeps three copies of the 200k-token vocabulary (encoder, decoder and
//! sorted bytes, one allocation per token each) and 256 clones of its regexes: ~50 MiB
//! resident in every process that counted a token. This copy keeps every token's bytes
//! in one buffer and a hash table of ranks pointing into it (~5 MiB). The merge is
//! tiktoken's own, so encodings match it token for token (tested against it).

use hashbrown::HashTable;

use crate::hash::fnv1a;

/// A token's id in the vocabulary.
pub(crate) type Rank = u32;

/// Tokens in o200k's vocabulary (ranks 0..199,997; the special tokens are not used).
const O200K_TOKENS: Rank = 199_998;

/// The vocabulary: rank → bytes and bytes → rank.
pub(crate) struct Vocab {
    /// Every token's bytes, in rank order.
    bytes: Vec<u8>,
    /// Rank `r`'s bytes are `bytes[starts[r]..starts[r + 1]]`.
    starts: Vec<u32>,
    /// Ranks, found by the FNV-1a hash of their bytes: the keys are short byte strings
    /// of a fixed vocabulary, probed but never inserted by callers, so a keyed hash
    /// would buy nothing.
    index: HashTable<Rank>,
}

impl Vocab {
    /// o200k's vocabulary, copied out of tiktoken-rs's tokenizer (which is then
    /// dropped); `None` if that tokenizer cannot be built.
    pub(crate) fn o200k() -> Option<Vocab> {
        let full = tiktoken_rs::o200k_base().ok()?;
        Some(Vocab::from_tokens(
            full._decode_native_and_split((0..O200K_TOKENS).collect()),
        ))
    }

    /// A vocabulary whose token of rank `r` is the `r`-th item.
    fn from_tokens(tokens: impl Iterator<Item = Vec<u8>>) -> Vocab {
        let (mut bytes, mut starts) = (Vec::new(), vec![0u32]);
        for token in tokens {
            bytes.extend_from_slice(&token);
            starts.push(bytes.len() as u32);
        }
        bytes.shrink_to_fit();
        let token = |r: Rank| &bytes[starts[r as usize] as usize..starts[r as usize + 1] as usize];
        let ranks = (starts.len() - 1) as Rank;
        let mut index = HashTable::with_capacity(ranks as usize);
        for rank in 0..ranks {
            index.insert_unique(fnv1a(token(rank)), rank, |&r| fnv1a(token(r)));
        }
        Vocab {
            bytes,
            starts,
            index,
        }
    }

    /// The bytes of `rank` (empty for a rank outside the vocabulary).
    fn token(&self, rank: Rank) -> &[u8] {
        let r = rank as usize;
        match (self.starts.get(r), self.starts.get(r + 1)) {
            (Some(&a), Some(&b)) => &self.bytes[a as usize..b as usize],
            _ => &[],
        }
    }

    /// The rank of the token that is exactly `bytes`.
    fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        self.index
            .find(fnv1a(bytes), |&r| self.token(r) == bytes)
            .copied()
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
        let v = Vocab::from_tokens(tokens.iter().map(|t| t.as_bytes().to_vec()));
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
