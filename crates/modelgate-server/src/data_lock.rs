//! One server per SQLite data directory: `serve` holds an OS advisory lock on `DATA_DIR/modelgate.lock`
//! for its lifetime (the in-memory views assume this process is the only writer), with its pid in the file
//! so a second server can say which process holds it. The OS drops the lock when the process ends, even
//! on a crash, so a stale file never blocks a start.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE_NAME: &str = "modelgate.lock";

/// Held while the server runs; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl DataDirLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another modelgate server{holder} is serving the data directory {folder}: stop it first, or give this \
         one its own --data-dir (two servers on one SQLite database would each serve stale in-memory views; \
         use PostgreSQL, --database-url, for several replicas)"
    )]
    Held { folder: String, holder: String },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Takes the data directory's lock, or says which process holds it.
pub fn lock_data_dir(folder: &Path) -> Result<DataDirLock, LockError> {
    let path = folder.join(LOCK_FILE_NAME);
    let io = |source: std::io::Error| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(modelgate_store::FILE_MODE);
    }
    let mut file = options.open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!(" (pid {pid})"),
                Err(_) => String::new(),
            };
            return Err(LockError::Held {
                folder: folder.display().to_string(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(error)) => return Err(io(error)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(DataDirLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_lock_on_one_folder_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let folder = tempfile::tempdir().unwrap();
        let first = lock_data_dir(folder.path()).unwrap();
        let error = lock_data_dir(folder.path()).unwrap_err().to_string();
        assert!(
            error.contains(&format!("(pid {})", std::process::id())),
            "{error}"
        );
        assert!(error.contains("another modelgate server"), "{error}");
        drop(first);
        assert!(lock_data_dir(folder.path()).is_ok());
    }
}
