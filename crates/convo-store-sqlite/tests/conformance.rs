//! The store conformance suite on SQLite files on disk.

use convo_core::Store;
use convo_store_sqlite::{SqliteOptions, SqliteStore};
use std::sync::Arc;

struct SqliteHarness {
    dir: tempfile::TempDir,
}

impl convo_store_tests::Harness for SqliteHarness {
    async fn open(&self) -> Arc<dyn Store> {
        let path = self.dir.path().join("convo.db");
        Arc::new(
            SqliteStore::open(path, SqliteOptions::default())
                .await
                .unwrap(),
        )
    }
}

convo_store_tests::conformance_tests!(SqliteHarness {
    dir: tempfile::tempdir().unwrap()
});
