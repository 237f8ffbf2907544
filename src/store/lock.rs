//! One process per store: an advisory lock on `imipd.pid` in the store directory, taken
//! before sled opens its files, with the holder's PID written into it so that the second
//! process can name the holder.
//!
//! sled 0.34 takes its own exclusive lock too, but its error does not say who holds it; ours
//! is taken first, so a second imipd never gets as far as sled. The lock is `flock`-style
//! (std's `File::try_lock`): the kernel releases it when the holder dies, even by SIGKILL, so
//! a stale pid file never blocks a restart.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait when the holder is this very process. A lock released by this process
/// can stay held for a moment by a child being spawned concurrently (between fork and exec
/// it shares every open file description, and `O_CLOEXEC` closes them only at exec), so a
/// store closed and reopened in a multi-threaded process that spawns children may see its
/// own PID as holder briefly.
pub const OWN_RELEASE_WAIT: Duration = Duration::from_secs(2);

/// The lock file's name inside the store directory.
pub const LOCK_FILE: &str = "imipd.pid";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the store.
    #[error(
        "the store {path} is in use by {holder}; stop that process or use another --store directory"
    )]
    Held {
        /// The store directory.
        path: PathBuf,
        /// Who holds it, as the holder wrote it (e.g. `imipd PID 1234`).
        holder: String,
    },
    /// The lock file could not be created or written.
    #[error("cannot lock the store {path} ({file}): {source}")]
    Io {
        /// The store directory.
        path: PathBuf,
        /// The lock file.
        file: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases the store.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// Takes the lock of the store at `dir` (which must exist).
pub fn acquire(dir: &Path) -> Result<StoreLock, LockError> {
    let file_path = dir.join(LOCK_FILE);
    let io = |source| LockError::Io {
        path: dir.to_path_buf(),
        file: file_path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&file_path)
        .map_err(io)?;
    let deadline = Instant::now() + OWN_RELEASE_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                file.rewind().map_err(io)?;
                file.read_to_string(&mut text).ok();
                let holder = text
                    .lines()
                    .next()
                    .filter(|l| !l.trim().is_empty())
                    .map_or_else(
                        || "another process (it has not written its PID yet)".to_string(),
                        |l| l.trim().to_string(),
                    );
                if holder.ends_with(&format!(" PID {}", std::process::id()))
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                return Err(LockError::Held {
                    path: dir.to_path_buf(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    let program = std::env::args()
        .next()
        .and_then(|p| {
            Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "imipd".into());
    writeln!(file, "{program} PID {}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(StoreLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = acquire(dir.path()).expect("first lock");
        let err = acquire(dir.path()).expect_err("second lock refused");
        let text = err.to_string();
        assert!(
            text.contains(&format!("PID {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        drop(held);
        acquire(dir.path()).expect("free again once released");
    }
}
