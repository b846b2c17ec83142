//! Starting QEMU detached, with sockets maqet bound itself (DESIGN.md §4).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use camino::Utf8Path;
use nix::sys::stat::{Mode, umask};

use super::argv::{CONSOLE_FD, EVENTS_FD, ImageFd, QMP_FD};
use super::confine::{self, Prepared};
use crate::error::{Error, Result};
use crate::layout::RuntimePaths;

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes,
/// one of them the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Refuse socket paths the kernel would truncate or reject.
pub fn check_socket_path(path: &Utf8Path) -> Result<()> {
    if path.as_str().len() > MAX_SOCKET_PATH {
        return Err(Error::invalid(
            format!(
                "the socket path {path} is {} bytes long; Unix sockets allow at most {MAX_SOCKET_PATH}",
                path.as_str().len()
            ),
            "use a shorter --runtime-dir (or MAQET_RUNTIME_DIR), e.g. under /tmp or /dev/shm",
        ));
    }
    Ok(())
}

/// Bind a listening socket readable and writable by us alone.
///
/// The umask is narrowed around `bind` so the socket never exists with a
/// wider mode, then the mode is set and checked explicitly: a socket someone
/// else can connect to is a shell on the guest (QMP can do anything).
pub fn bind_private(path: &Utf8Path) -> Result<UnixListener> {
    check_socket_path(path)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path)
                .map_err(|e| Error::io("cannot remove the stale socket", path, e))?;
        }
        Ok(_) => {
            return Err(Error::UnsafeDir {
                path: path.to_owned(),
                reason: "something other than a socket is in the way".into(),
                help: "remove it; maqet creates its sockets itself".into(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot inspect", path, e)),
    }
    let old = umask(Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound.map_err(|e| Error::io("cannot bind the socket", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("cannot set the mode of", path, e))?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io("cannot inspect", path, e))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.file_type().is_socket() || meta.mode() & 0o777 != 0o600 || meta.uid() != me {
        return Err(Error::UnsafeDir {
            path: path.to_owned(),
            reason: format!(
                "the socket came out with mode {:04o} and owner {}",
                meta.mode() & 0o777,
                meta.uid()
            ),
            help: "check the runtime directory's file system and permissions".into(),
        });
    }
    Ok(listener)
}

/// Create (or empty) a private file QEMU writes to.
pub fn private_file(path: &Utf8Path, truncate: bool) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(!truncate)
        .truncate(truncate)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // Never written through: a symlink here is someone's attempt
            // to have QEMU or maqet write elsewhere.
            Some(nix::libc::ELOOP) => Error::UnsafeDir {
                path: path.to_owned(),
                reason: "it is a symlink".into(),
                help: "remove it; maqet creates its runtime files itself".into(),
            },
            _ => Error::io("cannot create", path, e),
        })?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("cannot set the mode of", path, e))?;
    Ok(file)
}

/// Fork and exec QEMU, detached from the caller.
///
/// The child gets a session of its own (a hangup on the caller's terminal
/// or SSH session does not reach it), stdin from /dev/null, stdout and stderr
/// into `qemu.log`, the QMP, console and events listeners as fds 3, 4 and 5,
/// and a umask
/// of 077 for the files it creates. Everything else maqet has open is
/// close-on-exec, as Rust opens every file that way.
pub struct Listeners {
    pub qmp: UnixListener,
    pub console: UnixListener,
    pub events: UnixListener,
}

/// With a ruleset, the child enforces it last, after everything else it
/// does needs no file access it might deny.
pub fn spawn(
    argv: &[String],
    paths: &RuntimePaths,
    listeners: Listeners,
    images: Vec<(OwnedFd, i32)>,
    ruleset: Option<&Prepared>,
) -> Result<Child> {
    // Owned by the closure (copied before the fork): the child only reads it.
    let ruleset = ruleset.map(|p| {
        let (fd, filter) = p.parts();
        (fd, filter.to_vec())
    });
    let log = private_file(&paths.qemu_log, true)?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::io("cannot duplicate the handle of", &paths.qemu_log, e))?;
    let mut fds: Vec<(OwnedFd, i32)> = vec![
        (listeners.qmp.into(), QMP_FD),
        (listeners.console.into(), CONSOLE_FD),
        (listeners.events.into(), EVENTS_FD),
    ];
    fds.extend(images);
    // (source, target) pairs, and room to move each out of the way, made
    // before the fork: the child must not allocate.
    let moves: Vec<(i32, i32)> = fds.iter().map(|(fd, to)| (fd.as_raw_fd(), *to)).collect();
    let mut moved = vec![0i32; moves.len()];
    let above = moves.iter().map(|(_, to)| *to).max().unwrap_or(0) + 1;
    // The child writes its own pid here before exec, so a maqet killed
    // between the fork and recording the pid still leaves a way to the
    // process (`reconcile::resolve_starting`).
    let spawn_pid = private_file(&paths.spawn_pid, true)?;
    let spawn_pid_fd = spawn_pid.as_raw_fd();
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .envs(qemu_environment())
        .current_dir(&paths.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (setsid, getpid, write, fcntl, dup2,
    // umask, prctl, landlock_restrict_self), formatting the pid on the stack
    // and writing into `moved`, allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            // One write of "PID\n", and no allocation between fork and exec.
            let mut digits = [0u8; 20];
            let pid =
                crate::render::decimal(nix::libc::getpid().unsigned_abs().into(), &mut digits);
            let mut line = [b'\n'; 21];
            line[..pid.len()].copy_from_slice(pid);
            let bytes = &line[..=pid.len()];
            if nix::libc::write(spawn_pid_fd, bytes.as_ptr().cast(), bytes.len()) < 0 {
                return Err(io::Error::last_os_error());
            }
            // Move every descriptor above all the targets first, so
            // placing one on its number cannot overwrite another.
            for (slot, (fd, _)) in moved.iter_mut().zip(&moves) {
                *slot = nix::libc::fcntl(*fd, nix::libc::F_DUPFD_CLOEXEC, above);
                if *slot < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // The ruleset's too: with many images its number can be one
            // of the targets, and Landlock then refuses the image placed
            // there (EBADFD).
            let ruleset = match &ruleset {
                Some((fd, filter)) => {
                    let fd = nix::libc::fcntl(*fd, nix::libc::F_DUPFD_CLOEXEC, above);
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Some((fd, filter))
                }
                None => None,
            };
            // dup2 clears close-on-exec on the new descriptor.
            for (fd, (_, target)) in moved.iter().zip(&moves) {
                if nix::libc::dup2(*fd, *target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            nix::libc::umask(0o077);
            if let Some((fd, filter)) = ruleset {
                confine::enforce(fd, filter)?;
            }
            close_on_exec_from(above);
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => missing_qemu(&argv[0]),
        _ => Error::io("cannot start", argv[0].as_str(), e),
    })?;
    // maqet's copies of the listeners close here: QEMU holds the only ones,
    // so once it exits a connect fails at once instead of waiting in the
    // backlog of a socket nobody serves.
    drop(fds);
    drop(spawn_pid);
    Ok(child)
}

/// In a forked child: mark every descriptor from `first` up close-on-exec,
/// so the program gets only 0-2 and what was placed below `first` on
/// purpose. maqet's own descriptors are close-on-exec already, but one its
/// caller left open (`maqet start vm 9</etc/shadow`, a build's jobserver
/// pipe) would otherwise reach QEMU past every check, and keep a pipe open
/// for the VM's whole life. Marked rather than closed: the standard
/// library reports a failed exec through a close-on-exec pipe of its own.
/// Async-signal-safe.
pub fn close_on_exec_from(first: i32) {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: plain system calls on integers.
    unsafe {
        let first = first.unsigned_abs();
        if nix::libc::syscall(
            nix::libc::SYS_close_range,
            first,
            u32::MAX,
            CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            // Before Linux 5.11: one descriptor at a time, as far as
            // descriptors usually go.
            for fd in first..4096 {
                nix::libc::fcntl(fd.cast_signed(), nix::libc::F_SETFD, nix::libc::FD_CLOEXEC);
            }
        }
    }
}

/// Open the images QEMU is handed by descriptor, each as read-only and, if
/// writable, read-write, and check by where each opened file really is
/// that it is the file maqet checked: a name swapped for a symlink (or a
/// directory above it moved) since then is refused, and a swap after this
/// changes nothing.
pub fn open_images(images: &[ImageFd]) -> Result<Vec<(OwnedFd, i32)>> {
    let mut fds = Vec::new();
    for image in images {
        let modes = std::iter::once((image.read_only_fd, false))
            .chain(image.read_write_fd.map(|fd| (fd, true)));
        for (target, writable) in modes {
            let file = crate::storage::open_image(&image.path, writable)?;
            fds.push((OwnedFd::from(file), target));
        }
    }
    Ok(fds)
}

/// What of maqet's environment QEMU gets: what it and its libraries read
/// (locale, time zone, temp dir, and a display for a window), nothing else.
/// A caller's shell may hold tokens and keys in its environment; a QEMU
/// has no use for them, and a guest that escapes into QEMU would read them
/// from /proc/self/environ.
pub const QEMU_ENVIRONMENT: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_RUNTIME_DIR",
];

pub fn qemu_environment() -> impl Iterator<Item = (&'static str, std::ffi::OsString)> {
    QEMU_ENVIRONMENT
        .iter()
        .filter_map(|key| std::env::var_os(key).map(|value| (*key, value)))
}

/// QEMU is not installed (or not where the config says).
pub fn missing_qemu(binary: &str) -> Error {
    Error::Invalid {
        message: format!("cannot find the QEMU program `{binary}`"),
        help: "install QEMU: `apt-get install qemu-system-x86 qemu-utils` (Debian/Ubuntu), \
               `dnf install qemu-system-x86 qemu-img` (Fedora), `pacman -S qemu-full` (Arch); \
               or set `binary` in the config"
            .into(),
    }
}

/// The last `n` lines of a log file, for error reports.
pub fn tail(path: &Utf8Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}
