//! Replays the committed fuzz corpora of the model-reply parser, the history
//! renderer and the two importers (`fuzz/corpus/<target>/`) through the same checks the fuzz targets run,
//! so every seed and every saved crash stays a regression test without nightly.

#[allow(dead_code)]
#[path = "../../../fuzz/src/model_reply.rs"]
mod model_reply;

#[allow(dead_code)]
#[path = "../../../fuzz/src/history.rs"]
mod history;

#[allow(dead_code)]
#[path = "../../../fuzz/src/jsonl_import.rs"]
mod jsonl_import;

#[allow(dead_code)]
#[path = "../../../fuzz/src/legacy_import.rs"]
mod legacy_import;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 5,
        "only {} files in {}",
        out.len(),
        dir.display()
    );
    out
}

#[test]
fn the_model_reply_corpus_replays_clean() {
    for (name, data) in corpus("model_reply") {
        eprintln!("{name}");
        model_reply::check(&data);
    }
}

#[test]
fn the_history_corpus_replays_clean() {
    let mut rendered = 0;
    for (name, data) in corpus("history") {
        eprintln!("{name}");
        history::check(&data);
        rendered += usize::from(serde_json::from_slice::<Vec<convo_core::Item>>(&data).is_ok());
    }
    assert!(rendered >= 3, "the seeds no longer parse as items");
}

#[test]
fn the_jsonl_import_corpus_replays_clean() {
    for (name, data) in corpus("jsonl_import") {
        eprintln!("{name}");
        jsonl_import::check(&data);
    }
}

#[test]
fn the_legacy_import_corpus_replays_clean() {
    for (name, data) in corpus("legacy_import") {
        eprintln!("{name}");
        legacy_import::check(&data);
    }
}
