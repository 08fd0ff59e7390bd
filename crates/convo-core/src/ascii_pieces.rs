//! o200k's pre-tokenizer for ASCII text, by hand: finds the same piece as the regular
//! expression in [`crate::tokens`] does, without a DFA search per piece (~700
//! instructions for a 5-byte word, most of the cost of counting a message's tokens).
//! Wherever a byte outside ASCII could change the piece (a Unicode letter, digit,
//! space or mark, or a case variant in a contraction), it gives up and the caller
//! asks the regular expression instead, so the pieces are always the pattern's.
//!
//! The pattern's alternatives, tried in order at the piece's start (leftmost-first,
//! as a backtracking engine would), read in ASCII as:
//!
//! 1. an optional character other than CR, LF, a letter or a digit; upper-case
//!    letters; one or more lower-case letters; an optional contraction (`'s`, `'t`,
//!    `'re`, `'ve`, `'m`, `'ll`, `'d`, any case);
//! 2. the same optional character; one or more upper-case letters; lower-case
//!    letters; an optional contraction;
//! 3. one to three digits;
//! 4. an optional space; one or more characters other than white space, letters and
//!    digits; CR, LF and `/`;
//! 5. white space up to and including its last CR or LF;
//! 6. white space (its one look-ahead is applied by the caller, for both paths).

/// A byte outside ASCII where the pattern's Unicode classes would decide.
struct NotAscii;

type Found = Result<Option<usize>, NotAscii>;

/// The byte at `i` (`None` at the end), or [`NotAscii`].
fn at(b: &[u8], i: usize) -> Result<Option<u8>, NotAscii> {
    match b.get(i) {
        Some(&c) if !c.is_ascii() => Err(NotAscii),
        c => Ok(c.copied()),
    }
}

/// Where the run of bytes matching `class` from `i` ends.
fn run(b: &[u8], mut i: usize, class: fn(u8) -> bool) -> Result<usize, NotAscii> {
    while at(b, i)?.is_some_and(class) {
        i += 1;
    }
    Ok(i)
}

/// `\s` in ASCII: tab, LF, vertical tab, form feed, CR, space.
fn space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// `[^\r\n\p{L}\p{N}]`: what may precede a word in its piece.
fn lead(c: u8) -> bool {
    !matches!(c, b'\r' | b'\n') && !c.is_ascii_alphanumeric()
}

/// `[^\s\p{L}\p{N}]`: punctuation, symbols and control characters.
fn symbol(c: u8) -> bool {
    !space(c) && !c.is_ascii_alphanumeric()
}

/// Where an optional contraction starting at `i` ends.
fn contraction(b: &[u8], i: usize) -> Result<usize, NotAscii> {
    if at(b, i)? != Some(b'\'') {
        return Ok(i);
    }
    let lower = |j| Ok::<_, NotAscii>(at(b, j)?.map(|c| c.to_ascii_lowercase()));
    Ok(match lower(i + 1)? {
        Some(b's' | b't' | b'm' | b'd') => i + 2,
        Some(b'r' | b'v') if lower(i + 2)? == Some(b'e') => i + 3,
        Some(b'l') if lower(i + 2)? == Some(b'l') => i + 3,
        _ => i,
    })
}

/// Alternatives 1 and 2 at once: a word, after an optional leading character.
/// Upper-case letters then lower-case ones, with at least one of either: the first
/// needs a lower-case letter and the second, tried when the first fails, an upper-case
/// one, so they scan the same runs. Without the leading character the word would
/// have to start on it, and it is not a letter, so taking it is the only way to match.
fn word(b: &[u8], s: usize, c: u8) -> Found {
    let from = if lead(c) { s + 1 } else { s };
    let upper_end = run(b, from, |c| c.is_ascii_uppercase())?;
    let lower_end = run(b, upper_end, |c| c.is_ascii_lowercase())?;
    Ok(if lower_end > from {
        Some(contraction(b, lower_end)?)
    } else {
        None
    })
}

/// Alternative 4: symbols after an optional space, then line breaks and slashes.
fn symbols(b: &[u8], s: usize, c: u8) -> Found {
    let from = if c == b' ' { s + 1 } else { s };
    let end = run(b, from, symbol)?;
    if end == from {
        // Without the space the run would start on it, and a space is no symbol.
        return Ok(None);
    }
    Ok(Some(run(b, end, |c| matches!(c, b'\r' | b'\n' | b'/'))?))
}

fn piece(b: &[u8], s: usize) -> Found {
    let Some(c) = at(b, s)? else {
        return Ok(None);
    };
    if let Some(end) = word(b, s, c)? {
        return Ok(Some(end));
    }
    if c.is_ascii_digit() {
        let mut end = s;
        while end < s + 3 && at(b, end)?.is_some_and(|c| c.is_ascii_digit()) {
            end += 1;
        }
        return Ok(Some(end));
    }
    if let Some(end) = symbols(b, s, c)? {
        return Ok(Some(end));
    }
    if space(c) {
        let end = run(b, s, space)?;
        let last_break = b[s..end].iter().rposition(|&c| matches!(c, b'\r' | b'\n'));
        return Ok(Some(last_break.map_or(end, |k| s + k + 1)));
    }
    Ok(None)
}

/// The end of the pattern's piece starting at byte `s` of `text`, or `None` where
/// only the regular expression can tell.
pub(crate) fn piece_end(text: &str, s: usize) -> Option<usize> {
    piece(text.as_bytes(), s).ok().flatten()
}
