//! The data directory holds password and token hashes and the audit log: it is created readable by the
//! server's user only (folder 0700, SQLite files 0600), and tightened at start when an older version (or a
//! permissive umask) left it readable by others.

use crate::StoreError;
use std::path::{Path, PathBuf};

/// The mode of the data directory.
pub const DIRECTORY_MODE: u32 = 0o700;
/// The mode of the files in it that the store creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates the data directory (0700) if missing, tightens it if others may read it, and returns its
/// canonical path.
pub fn prepare_data_dir(data_dir: &Path) -> Result<PathBuf, StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIRECTORY_MODE);
    }
    builder.create(data_dir).map_err(|error| {
        StoreError::Configuration(format!(
            "cannot create the data directory {}: {error}",
            data_dir.display()
        ))
    })?;
    tighten(data_dir, DIRECTORY_MODE)?;
    data_dir.canonicalize().map_err(|error| {
        StoreError::Configuration(format!("data directory {}: {error}", data_dir.display()))
    })
}

/// Creates the SQLite database file (0600) if missing, so SQLite never creates it with the umask's mode,
/// and tightens the database and its WAL and shared-memory files if they exist (SQLite gives those the
/// database file's mode).
pub(crate) fn prepare_sqlite_files(database: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options.open(database).map_err(|error| {
        StoreError::Configuration(format!(
            "cannot create the database {}: {error}",
            database.display()
        ))
    })?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            tighten(&path, FILE_MODE)?;
        }
    }
    Ok(())
}

/// Removes the permissions `mode` does not grant (it never adds any), logging a change.
pub fn tighten(path: &Path, mode: u32) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let cannot = |error: std::io::Error| {
            StoreError::Configuration(format!(
                "cannot restrict the permissions of {} to {mode:o}: {error}",
                path.display()
            ))
        };
        let current = std::fs::metadata(path)
            .map_err(cannot)?
            .permissions()
            .mode()
            & 0o7777;
        let tightened = current & mode;
        if tightened != current {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(tightened))
                .map_err(cannot)?;
            tracing::warn!(
                path = %path.display(),
                from = format!("{current:o}"),
                to = format!("{tightened:o}"),
                "tightened the permissions of a data file: it holds password and token hashes"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_data_directory_and_database_are_private_and_loose_ones_are_tightened() {
        let parent = tempfile::tempdir().unwrap();
        let fresh = parent.path().join("fresh");
        let folder = prepare_data_dir(&fresh).unwrap();
        assert_eq!(mode_of(&folder), 0o700);
        let database = folder.join("modelgate.db");
        prepare_sqlite_files(&database).unwrap();
        assert_eq!(mode_of(&database), 0o600);

        let loose = parent.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
        let database = loose.join("modelgate.db");
        let wal = loose.join("modelgate.db-wal");
        for file in [&database, &wal] {
            std::fs::write(file, b"").unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        prepare_data_dir(&loose).unwrap();
        prepare_sqlite_files(&database).unwrap();
        assert_eq!(mode_of(&loose), 0o700);
        assert_eq!((mode_of(&database), mode_of(&wal)), (0o600, 0o600));
    }
}
