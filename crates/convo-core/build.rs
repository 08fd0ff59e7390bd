//! Copies o200k's vocabulary out of tiktoken-rs into the flat tables `src/bpe.rs`
//! compiles in (layout in `src/vocab_tables.rs`). Built at run time, the vocabulary
//! took 150-250 ms and ~50 MiB in every process that counted a token: every `convo add`.

#[path = "src/hash.rs"]
mod hash;
#[path = "src/vocab_tables.rs"]
mod vocab_tables;

use std::path::PathBuf;

/// Tokens in o200k's vocabulary (ranks 0..199,997; its special tokens are not used).
const O200K_TOKENS: u32 = 199_998;

fn main() {
    for input in ["build.rs", "src/hash.rs", "src/vocab_tables.rs"] {
        println!("cargo::rerun-if-changed={input}");
    }
    let bpe = tiktoken_rs::o200k_base().expect("tiktoken-rs builds o200k");
    let tables = vocab_tables::build(bpe._decode_native_and_split((0..O200K_TOKENS).collect()));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (name, table) in [
        ("o200k.bytes", &tables.bytes),
        ("o200k.starts", &tables.starts),
        ("o200k.tags", &tables.tags),
        ("o200k.ranks", &tables.ranks),
    ] {
        std::fs::write(out.join(name), table).expect("OUT_DIR is writable");
    }
}
