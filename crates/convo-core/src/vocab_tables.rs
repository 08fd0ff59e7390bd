//! The layout of a tokenizer vocabulary as four flat byte tables, shared by the build
//! script that writes o200k's (`build.rs`) and the tokenizer that reads them
//! ([`crate::bpe`]). Flat, little-endian and position-independent so the tables can be
//! compiled into the binary: the process maps them instead of building them.
//!
//! - `bytes`: every token's bytes, in rank order;
//! - `starts`: `u32` offsets, rank `r`'s bytes are `bytes[starts[r]..starts[r + 1]]`;
//! - `tags` and `ranks`: an open-addressing hash table, probed linearly from [`home`].
//!   A slot's tag (one byte, [`EMPTY`] or a [`tag`] of the token's hash) sits apart
//!   from its rank (a `u32`): a probe mostly reads tags alone, and 512 KiB of them stay
//!   in a core's cache where the ranks would not, so a piece that is not a token costs
//!   no trip to memory. Ranks are read only where the tag matches.

use super::hash::fnv1a;

/// The tag of a slot no token occupies; it ends a probe.
pub const EMPTY: u8 = 0;

/// The hash of a token's bytes (FNV-1a: the keys are short strings of a fixed
/// vocabulary, so a keyed hash would buy nothing).
pub fn hash(bytes: &[u8]) -> u64 {
    fnv1a(bytes)
}

/// The slot a probe for `hash` starts at, in a table of `mask + 1` slots. FNV-1a's
/// low bits see only the low bits of its state, so the high half is folded in.
pub fn home(hash: u64, mask: usize) -> usize {
    (hash ^ (hash >> 32)) as usize & mask
}

/// The tag kept for a token of this hash: its top byte, never [`EMPTY`].
pub fn tag(hash: u64) -> u8 {
    ((hash >> 56) as u8).max(1)
}

/// The four tables of a vocabulary (built by the build script, and by tests).
#[cfg_attr(not(test), allow(dead_code))]
pub struct Tables {
    /// Every token's bytes, in rank order.
    pub bytes: Vec<u8>,
    /// `u32` little-endian offsets into `bytes`, one per rank and one past the end.
    pub starts: Vec<u8>,
    /// Each slot's tag: a power of two of them, at most half occupied.
    pub tags: Vec<u8>,
    /// `u32` little-endian, each slot's rank (0 where the slot is empty).
    pub ranks: Vec<u8>,
}

/// The tables of a vocabulary whose token of rank `r` is the `r`-th item (used by the
/// build script, and by tests for small vocabularies).
#[cfg_attr(not(test), allow(dead_code))]
pub fn build(tokens: impl Iterator<Item = Vec<u8>>) -> Tables {
    let (mut bytes, mut offsets) = (Vec::new(), vec![0u32]);
    for token in tokens {
        bytes.extend_from_slice(&token);
        offsets.push(u32::try_from(bytes.len()).expect("a vocabulary under 4 GiB"));
    }
    let count = offsets.len() - 1;
    let slots = (2 * count).next_power_of_two().max(8);
    let (mut tags, mut ranks) = (vec![EMPTY; slots], vec![0u32; slots]);
    for (rank, w) in offsets.windows(2).enumerate() {
        let h = hash(&bytes[w[0] as usize..w[1] as usize]);
        let mut at = home(h, slots - 1);
        while tags[at] != EMPTY {
            at = (at + 1) & (slots - 1);
        }
        tags[at] = tag(h);
        ranks[at] = u32::try_from(rank).expect("under 2^32 tokens");
    }
    let le = |words: &[u32]| words.iter().flat_map(|w| w.to_le_bytes()).collect();
    Tables {
        starts: le(&offsets),
        ranks: le(&ranks),
        tags,
        bytes,
    }
}
