//! Diagnostics on stderr (`-v` warnings, `-vv` info, `-vvv` debug) and a
//! debug log appended to `--log-file`. stdout carries results only.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warn = 1,
    Info = 2,
    Debug = 3,
}

struct Logger {
    stderr_level: u8,
    file: Option<Mutex<File>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set up logging once, from the global options: a stderr verbosity and an
/// opened log file (see [`open_file`]).
pub fn init(verbosity: u8, file: Option<File>) {
    let _ = LOGGER.set(Logger {
        stderr_level: verbosity,
        file: file.map(Mutex::new),
    });
}

pub fn log(level: Level, args: std::fmt::Arguments<'_>) {
    let Some(logger) = LOGGER.get() else { return };
    let tag = match level {
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
    };
    if logger.stderr_level >= level as u8 {
        // Not `eprintln!`, which panics when stderr is a closed pipe: the
        // panic hook logs through here, and a panic in the hook aborts.
        let _ = writeln!(std::io::stderr(), "maqet: {tag}: {args}");
    }
    if let Some(file) = &logger.file
        && let Ok(mut f) = file.lock()
    {
        let now = crate::time::Timestamp::now().rfc3339();
        let _ = writeln!(f, "{now} {} {tag}: {args}", std::process::id());
    }
}

pub fn warn(args: std::fmt::Arguments<'_>) {
    log(Level::Warn, args);
}

pub fn info(args: std::fmt::Arguments<'_>) {
    log(Level::Info, args);
}

pub fn debug(args: std::fmt::Arguments<'_>) {
    log(Level::Debug, args);
}

/// Send panic messages to the debug log instead of the terminal. Every
/// panic is caught (main turns one into `maqet::internal`, the store one
/// raised by redb into `maqet::store::damaged`), and the user sees that
/// error, not Rust's message and a backtrace hint; `-vvv` or `--log-file`
/// still has them.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| debug(format_args!("panic: {info}"))));
}

/// Open `--log-file` to append: created 0600, never through a symlink, and
/// only a regular file with no other name (not a FIFO, which would block,
/// nor a hard link to someone's file).
pub fn open_file(path: &camino::Utf8Path) -> crate::error::Result<File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(path)
        .and_then(|file| {
            let meta = file.metadata()?;
            if meta.is_file() && meta.nlink() == 1 {
                Ok(file)
            } else {
                Err(std::io::Error::from_raw_os_error(nix::libc::ELOOP))
            }
        })
        .map_err(|e| match e.raw_os_error() {
            // ENXIO: a FIFO nobody reads (opened without blocking).
            Some(nix::libc::ELOOP | nix::libc::ENXIO) => crate::error::Error::UnsafeDir {
                path: path.to_owned(),
                reason: "the log file is a symlink, a hard link or not a regular file".into(),
                help: "give a log file of your own (a new name is fine)".into(),
            },
            _ => crate::error::Error::io("cannot open the log file", path, e),
        })
}
