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

pub(crate) fn wait() -> Duration {
    // Tests shorten the wait to see the busy error without sitting out 10 s.
    std::env::var("MAQET_LOCK_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(WAIT, Duration::from_millis)
}

/// Files a command may have open besides its locks: the store, its lock,
/// sockets, logs, the standard streams.
const OTHER_FILES: u64 = 64;

/// Make room to hold `locks` locks at once (one open file each): raise the
/// soft limit on open files towards the hard one when it is too low, and
/// refuse clearly when even the hard limit is. `rm --all` of a large store
/// holds a lock per VM; the usual soft limit is 1024.
pub fn make_room_for(locks: usize) -> Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let needed = locks as u64 + OTHER_FILES;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return Ok(());
    };
    if needed <= soft {
        return Ok(());
    }
    if needed <= hard && setrlimit(Resource::RLIMIT_NOFILE, needed, hard).is_ok() {
        return Ok(());
    }
    Err(Error::Refused {
        message: format!(
            "cannot lock {locks} VMs at once: maqet holds an open file for each while it removes them, and this process may open at most {hard}"
        ),
        help:
            "raise the limit (`ulimit -n`, `LimitNOFILE=`), or remove fewer VMs at a time, by name"
                .into(),
    })
}

/// Take the exclusive lock on `path` (created 0600 if missing), waiting at
/// most 10 s for another maqet to release it. `what` names what the lock
/// guards, for the busy error.
///
/// The wait is a blocking `flock`, so the kernel hands the lock to waiters
/// in turn; polling with a back-off let newcomers overtake a waiter until it
/// ran out of time under sustained contention. A one-shot interval timer
/// (SIGALRM, handled without SA_RESTART) interrupts the wait at the bound.
pub fn exclusive(path: &Utf8Path, what: &str) -> Result<Held> {
    exclusive_within(path, what, wait())
}

/// [`exclusive`], waiting at most `wait`.
pub fn exclusive_within(path: &Utf8Path, what: &str, wait: Duration) -> Result<Held> {
    let file = open_lock_file(path)?;
    let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => return Ok(lock),
        Err((f, nix::errno::Errno::EWOULDBLOCK)) => f,
        Err((_, errno)) => return Err(lock_error(path, errno)),
    };
    let busy = || Error::Busy {
        what: what.to_owned(),
        lock: path.to_owned(),
        waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
    };
    if wait.is_zero() {
        return Err(busy());
    }
    let deadline = Instant::now() + wait;
    let _timer = AlarmTimer::start(wait);
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => return Ok(lock),
            Err((f, nix::errno::Errno::EINTR)) => {
                if Instant::now() >= deadline {
                    return Err(busy());
                }
                // Some other signal: wait on, for what is left.
                file = f;
            }
            Err((_, errno)) => return Err(lock_error(path, errno)),
        }
    }
}

/// The lock file, created 0600 if missing, never through a symlink.
fn open_lock_file(path: &Utf8Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("cannot open the lock file", path, e))
}

fn lock_error(path: &Utf8Path, errno: nix::errno::Errno) -> Error {
    Error::io(
        "cannot lock",
        path,
        io::Error::from_raw_os_error(errno as i32),
    )
}

extern "C" fn on_alarm(_: nix::libc::c_int) {}

/// SIGALRM after `after`, to interrupt a blocking call; disarmed (and the
/// old handler back) when dropped.
struct AlarmTimer {
    old: Option<nix::sys::signal::SigAction>,
}

impl AlarmTimer {
    fn start(after: Duration) -> AlarmTimer {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let action = SigAction::new(
            SigHandler::Handler(on_alarm),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing; it exists so the signal
        // interrupts the wait instead of killing the process.
        let old = unsafe { sigaction(Signal::SIGALRM, &action) }.ok();
        set_timer(after);
        AlarmTimer { old }
    }
}

impl Drop for AlarmTimer {
    fn drop(&mut self) {
        set_timer(Duration::ZERO);
        if let Some(old) = &self.old {
            // SAFETY: restoring the disposition saved above.
            let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGALRM, old) };
        }
    }
}

fn set_timer(after: Duration) {
    let value = nix::libc::timeval {
        // Clamped to fit any time_t (bounds here are seconds, not decades).
        tv_sec: after
            .as_secs()
            .min(i32::MAX as u64)
            .try_into()
            .unwrap_or_default(),
        tv_usec: after.subsec_micros().into(),
    };
    let timer = nix::libc::itimerval {
        it_interval: nix::libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: value,
    };
    // SAFETY: setitimer with valid pointers; the old value is not wanted.
    unsafe {
        nix::libc::setitimer(nix::libc::ITIMER_REAL, &timer, std::ptr::null_mut());
    }
}

/// Take the exclusive lock on `path` if nobody holds it; `None` if someone
/// does.
pub fn try_exclusive(path: &Utf8Path) -> Result<Option<Held>> {
    let file = open_lock_file(path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(lock_error(path, errno)),
    }
}
