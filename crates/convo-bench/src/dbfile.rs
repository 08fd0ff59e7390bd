//! A benchmark database's files on disk: removing them, and seeding a database so
//! that an interrupted run never leaves one that a later run would reuse.

use std::path::{Path, PathBuf};

/// The files of the database at `path`: the database, its log and shared memory, then
/// the search index file and its own (the main file first: it is moved last).
fn files(path: &Path) -> [PathBuf; 6] {
    ["", "-wal", "-shm", "-search", "-search-wal", "-search-shm"]
        .map(|ext| PathBuf::from(format!("{}{ext}", path.display())))
}

/// Removes the database at `path`, if any.
pub fn remove(path: &Path) {
    for f in files(path) {
        let _ = std::fs::remove_file(f);
    }
}

/// Where the database for `path` is seeded, cleared of an interrupted run's files:
/// runs reuse a database whenever `path` exists, so it must appear only once complete.
pub fn start_seeding(path: &Path) -> PathBuf {
    let seeding = PathBuf::from(format!("{}.seeding", path.display()));
    remove(&seeding);
    seeding
}

/// Moves a completely seeded (and closed) database to `path`, its main file last.
pub fn finish_seeding(seeding: &Path, path: &Path) -> std::io::Result<()> {
    let (from, to) = (files(seeding), files(path));
    // A stale log beside `path` would be read as the new database's.
    for f in &to[1..] {
        let _ = std::fs::remove_file(f);
    }
    for i in (0..from.len()).rev() {
        if from[i].exists() {
            std::fs::rename(&from[i], &to[i])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_seeding_is_not_reused_and_a_finished_one_moves_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let seeding = start_seeding(&path);
        std::fs::write(&seeding, "half").unwrap();
        // Interrupted: the next run starts over and `path` never appeared.
        let seeding = start_seeding(&path);
        assert!(!seeding.exists() && !path.exists());
        std::fs::write(&seeding, "db").unwrap();
        std::fs::write(format!("{}-search", seeding.display()), "index").unwrap();
        std::fs::write(format!("{}-wal", seeding.display()), "log").unwrap();
        std::fs::write(format!("{}-shm", path.display()), "stale").unwrap();
        finish_seeding(&seeding, &path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "db");
        assert_eq!(
            std::fs::read_to_string(format!("{}-wal", path.display())).unwrap(),
            "log"
        );
        assert!(!PathBuf::from(format!("{}-shm", path.display())).exists());
        assert_eq!(
            std::fs::read_to_string(format!("{}-search", path.display())).unwrap(),
            "index",
            "the search index moves with its database"
        );
        assert!(!seeding.exists());
    }
}
