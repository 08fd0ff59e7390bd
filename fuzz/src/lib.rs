//! The checks behind convo's fuzz targets. Each module is also compiled into the
//! normal test run (through `#[path]`), which replays `fuzz/corpus/<target>/` with
//! the same function, so the seeds and every crash saved there stay regression tests.

pub mod history;
pub mod http_body;
pub mod jsonl_import;
pub mod legacy_import;
pub mod model_reply;
