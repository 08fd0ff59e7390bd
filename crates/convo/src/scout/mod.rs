//! Reading SCOUT, the legacy Python system: one SQLite file per persona (read only,
//! no indexes, free-text timestamps, ids spliced into message text) turned into
//! conversations and items convo can write.

mod clean;
mod convert;
mod read;
mod timestamp;

pub use convert::{Stats, convert};
pub use read::read;
