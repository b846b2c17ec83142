//! Exclusive `flock`s with a bounded wait: one on the store (DESIGN.md §3),
//! one per VM while it is started or stopped.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use camino::Utf8Path;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// How long to wait for another maqet to let go.
const WAIT: Duration = Duration::from_secs(10);

/// A held lock; released when dropped (or when the process dies).
pub type Held = Flock<File>;

fn wait() -> Duration {
    // Tests shorten the wait to see the busy error without sitting out 10 s.
    std::env::var("MAQET_LOCK_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(WAIT, Duration::from_millis)
}

/// Take the exclusive lock on `path` (created 0600 if missing), waiting at
/// most 10 s for another maqet to release it. `what` names what the lock
/// guards, for the busy error.
pub fn exclusive(path: &Utf8Path, what: &str) -> Result<Held> {
    let wait = wait();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("cannot open the lock file", path, e))?;
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(Error::Busy {
                    what: what.to_owned(),
                    lock: path.to_owned(),
                    waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                });
            }
            Err((_, errno)) => {
                return Err(Error::io(
                    "cannot lock",
                    path,
                    io::Error::from_raw_os_error(errno as i32),
                ));
            }
        }
    }
}

/// Take the exclusive lock on `path` if nobody holds it; `None` if someone
/// does.
pub fn try_exclusive(path: &Utf8Path) -> Result<Option<Held>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("cannot open the lock file", path, e))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(Error::io(
            "cannot lock",
            path,
            io::Error::from_raw_os_error(errno as i32),
        )),
    }
}
