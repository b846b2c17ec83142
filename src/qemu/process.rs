//! Is a QEMU process still the one maqet started, and stopping it safely
//! (DESIGN.md §5).
//!
//! A pid alone proves nothing: after QEMU dies the kernel may hand the pid to
//! any other process. maqet takes a VM for running only when the pid is alive,
//! its start time (field 22 of /proc/<pid>/stat) equals the one recorded at
//! spawn, its command line passes the VM's pidfile (`-pidfile PATH`), and it
//! holds the write lock QEMU keeps on that pidfile — at its path, or, when the
//! runtime directory was deleted under it, on the deleted file it still has
//! open. Signals go through a pidfd opened before the identity check, so the
//! process checked is the process signalled.

use std::fs::File;
use std::io::{self, Read as _};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use camino::Utf8Path;

/// The fields of /proc/<pid>/stat maqet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    /// Clock ticks after boot when the process started.
    pub start_ticks: u64,
    /// User and system CPU time, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub threads: u64,
}

impl ProcStat {
    pub fn read(pid: i32) -> io::Result<ProcStat> {
        let text = read_proc_text(&format!("/proc/{pid}/stat"))?;
        ProcStat::parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot parse /proc/{pid}/stat"),
            )
        })
    }

    /// The command name (field 2) may hold spaces and parentheses, so fields
    /// are counted from the last `)`.
    fn parse(text: &str) -> Option<ProcStat> {
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `fields[0]` is field 3 (state).
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        Some(ProcStat {
            state: fields.first()?.chars().next()?,
            utime: field(14)?,
            stime: field(15)?,
            threads: field(20)?,
            start_ticks: field(22)?,
        })
    }
}

/// Resident memory of a process in KiB (VmRSS), if it can be read.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = read_proc_text(&format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Clock ticks per second, for turning /proc times into seconds.
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// Seconds since boot, from /proc/uptime.
pub fn uptime_seconds() -> Option<f64> {
    let text = read_proc_text("/proc/uptime").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The pid holding a write lock on `pidfile`, if any (`F_GETLK`).
pub fn pidfile_lock_holder(pidfile: &Utf8Path) -> io::Result<Option<i32>> {
    let file = match File::open(pidfile) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    write_lock_holder(&file)
}

/// The pid holding a write lock on the file `file` is open on, if any.
fn write_lock_holder(file: &File) -> io::Result<Option<i32>> {
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct.
    let mut query: nix::libc::flock = unsafe { std::mem::zeroed() };
    query.l_type = nix::libc::F_WRLCK as i16;
    query.l_whence = nix::libc::SEEK_SET as i16;
    nix::fcntl::fcntl(file.as_fd(), nix::fcntl::FcntlArg::F_GETLK(&mut query))
        .map_err(io::Error::from)?;
    if query.l_type == nix::libc::F_UNLCK as i16 {
        Ok(None)
    } else {
        Ok(Some(query.l_pid))
    }
}

/// A /proc file in two reads (the second sees its end). The kernel gives
/// these files no size, so `fs::read` starts at 32 bytes and doubles: eight
/// reads of QEMU's command line, each a walk of QEMU's memory.
pub fn read_proc(path: &str) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(8 * 1024);
    File::open(path)?.read_to_end(&mut out)?;
    Ok(out)
}

fn read_proc_text(path: &str) -> io::Result<String> {
    String::from_utf8(read_proc(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// True when `pid`'s command line passes `-pidfile PIDFILE`, as the QEMU
/// maqet starts for a VM does (and `sleep`, a shell, or another VM's QEMU
/// under a reused pid does not).
pub fn names_pidfile(pid: i32, pidfile: &Utf8Path) -> bool {
    let Ok(cmdline) = read_proc(&format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    words
        .windows(2)
        .any(|w| w[0] == b"-pidfile" && w[1] == pidfile.as_str().as_bytes())
}

/// True when `pid` holds the write lock on the file that was `pidfile`
/// before it was deleted: QEMU keeps its pidfile open (and locked) for its
/// whole life, so when its runtime directory is deleted the lock is still
/// there, on a file /proc names `PIDFILE (deleted)`.
fn holds_deleted_pidfile(pid: i32, pidfile: &Utf8Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let deleted = format!("{pidfile} (deleted)");
    fds.flatten().any(|fd| {
        let path = fd.path();
        std::fs::read_link(&path).is_ok_and(|target| target.as_os_str() == deleted.as_str())
            // Opening the /proc link reaches the deleted inode itself.
            && File::open(&path)
                .and_then(|file| write_lock_holder(&file))
                .is_ok_and(|holder| holder == Some(pid))
    })
}

/// What the identity check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The recorded process is alive, names the VM's pidfile and holds its
    /// lock.
    Running,
    /// No such process, a zombie, or someone else under a reused pid.
    /// `clean` when QEMU removed its pidfile on the way out (it does on a
    /// normal exit: guest poweroff, `quit`, SIGTERM — not on SIGKILL or a crash).
    Gone { clean: bool },
    /// The VM's QEMU, alive, but its runtime directory was deleted under it:
    /// it still holds the lock on its pidfile, now a deleted file. Proven,
    /// but its sockets are gone.
    Orphaned,
    /// A live process with the recorded pid and start time that does not
    /// name the VM's pidfile or holds no lock on it: nothing proves it is
    /// the VM's QEMU, so it is never signalled — and never taken for gone
    /// either, in case it is. `why` finishes "pid N ...".
    Unproven { why: &'static str },
}

/// Check that `pid` is still the QEMU started at `start_ticks` for the VM
/// whose pidfile is `pidfile`.
pub fn liveness(pid: i32, start_ticks: u64, pidfile: &Utf8Path) -> Liveness {
    let same_process = match ProcStat::read(pid) {
        Ok(stat) => stat.start_ticks == start_ticks && stat.state != 'Z' && stat.state != 'X',
        Err(_) => false,
    };
    let pidfile_exists = pidfile.exists();
    if !same_process {
        return Liveness::Gone {
            clean: !pidfile_exists,
        };
    }
    if !names_pidfile(pid, pidfile) {
        return Liveness::Unproven {
            why: "does not name the VM's pidfile on its command line",
        };
    }
    match pidfile_lock_holder(pidfile) {
        Ok(Some(holder)) if holder == pid => Liveness::Running,
        _ if holds_deleted_pidfile(pid, pidfile) => Liveness::Orphaned,
        _ => Liveness::Unproven {
            why: "does not hold the VM's pidfile lock",
        },
    }
}

/// A handle on one process that survives pid reuse (Linux ≥ 5.3).
pub struct Pidfd {
    fd: OwnedFd,
    pid: i32,
}

impl Pidfd {
    /// Open a pidfd for `pid` and then confirm it is still the process that
    /// started at `start_ticks`: after the open, the pid cannot be recycled
    /// under us, so a check that passes now stays true.
    pub fn open_checked(pid: i32, start_ticks: u64) -> io::Result<Pidfd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let raw = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let stat = ProcStat::read(pid)?;
        if stat.start_ticks != start_ticks || stat.state == 'Z' {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("pid {pid} now belongs to another process"),
            ));
        }
        Ok(Pidfd { fd, pid })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) -> io::Result<()> {
        // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no
        // siginfo and no flags.
        let rc = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal as i32,
                std::ptr::null::<nix::libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            // Already gone: the goal of a signal maqet sends is reached.
            if err.raw_os_error() == Some(nix::libc::ESRCH) {
                return Ok(());
            }
            return Err(err);
        }
        Ok(())
    }

    /// Wait until the process exits; false if `timeout` passes first. A
    /// pidfd becomes readable when its process exits, child of ours or not.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [nix::poll::PollFd::new(
                self.fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                Ok(n) if n > 0 => return true,
                Ok(_) if Instant::now() >= deadline => return false,
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    7 3 0 0 20 0 5 0 123456 1000 100 18446744073709551615";
        let stat = ProcStat::parse(line).expect("parse");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.utime, 7);
        assert_eq!(stat.stime, 3);
        assert_eq!(stat.threads, 5);
        assert_eq!(stat.start_ticks, 123_456);
    }

    #[test]
    fn this_process_is_alive_under_its_own_start_time() {
        let me = std::process::id() as i32;
        let stat = ProcStat::read(me).expect("own stat");
        let fd = Pidfd::open_checked(me, stat.start_ticks).expect("pidfd");
        assert!(!fd.wait_exit(Duration::from_millis(10)));
        assert!(Pidfd::open_checked(me, stat.start_ticks + 1).is_err());
    }

    #[test]
    fn an_unlocked_or_missing_pidfile_has_no_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Utf8Path::from_path(dir.path())
            .expect("utf-8")
            .join("qemu.pid");
        assert_eq!(pidfile_lock_holder(&path).expect("missing"), None);
        std::fs::write(&path, "1\n").expect("write");
        assert_eq!(pidfile_lock_holder(&path).expect("unlocked"), None);
    }
}
