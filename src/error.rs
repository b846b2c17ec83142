//! Every way a maqet command can fail, each with a stable code, a line that
//! tells the user what to do, and its exit code (docs/exit-codes.md).

use camino::Utf8PathBuf;
use miette::{Diagnostic, NamedSource, SourceSpan};

use crate::paths::PathError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Process exit codes, documented in docs/exit-codes.md.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND_OR_INVALID: u8 = 3;
    pub const REFUSED: u8 = 4;
    pub const TIMED_OUT: u8 = 5;
    /// A console session ended by a signal; elsewhere Ctrl-C ends maqet by
    /// SIGINT, which the shell reports as the same 128 + 2.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    #[error("{message}")]
    #[diagnostic(code(maqet::usage))]
    Usage {
        message: String,
        #[help]
        help: String,
    },

    /// A config file that does not parse or does not validate.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(Box<ConfigError>),

    /// A configuration value that is wrong but has no file to point into
    /// (command-line overrides, merged results).
    #[error("{message}")]
    #[diagnostic(code(maqet::config::invalid))]
    Invalid {
        message: String,
        #[help]
        help: String,
    },

    #[error("cannot read config file {path}: {cause}")]
    #[diagnostic(
        code(maqet::config::unreadable),
        help("check that the file exists and that you can read it")
    )]
    ConfigUnreadable {
        path: Utf8PathBuf,
        cause: std::io::Error,
    },

    /// A config or settings file that is a FIFO, device, directory or
    /// socket: reading one could block forever or never end.
    #[error("{what} {path} is {kind}, not a regular file")]
    #[diagnostic(code(maqet::config::not_a_file))]
    NotAFile {
        what: &'static str,
        path: Utf8PathBuf,
        kind: &'static str,
        #[help]
        help: String,
    },

    #[error("path refused: {cause}")]
    #[diagnostic(code(maqet::path))]
    Path {
        cause: PathError,
        #[help]
        help: String,
    },

    #[error("no VM is named or has an id starting with `{query}`")]
    #[diagnostic(
        code(maqet::vm::not_found),
        help("`maqet ls` lists the VMs; ids may be shortened to 4 or more characters")
    )]
    VmNotFound { query: String },

    #[error("`{query}` matches {} VMs: {}", candidates.len(), candidates.join(", "))]
    #[diagnostic(
        code(maqet::vm::ambiguous),
        help("give more characters of the id, or the VM's name")
    )]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },

    /// `differences` are what `run` found between the VM and its files.
    #[error(
        "a VM named `{name}` already exists (id {id}){}",
        configured_otherwise(differences)
    )]
    #[diagnostic(code(maqet::vm::name_taken))]
    NameTaken {
        name: String,
        id: String,
        differences: Vec<String>,
        #[help]
        help: String,
    },

    #[error("VM `{name}` is {status}")]
    #[diagnostic(code(maqet::vm::busy))]
    VmActive {
        name: String,
        status: String,
        #[help]
        help: String,
    },

    #[error("VM `{name}` is not running ({status})")]
    #[diagnostic(code(maqet::vm::not_running))]
    NotRunning {
        name: String,
        status: String,
        #[help]
        help: String,
    },

    /// A device with no bus given, and no free hot-plug port to put it on.
    #[error("{message}")]
    #[diagnostic(code(maqet::hotplug::no_port))]
    NoHotplugPort {
        message: String,
        #[help]
        help: String,
    },

    #[error("{message}")]
    #[diagnostic(code(maqet::refused))]
    Refused {
        message: String,
        #[help]
        help: String,
    },

    /// A config field an export's target (libvirt, systemd) cannot express.
    #[error("{message}")]
    #[diagnostic(code(maqet::export::unmappable))]
    Unmappable {
        message: String,
        #[help]
        help: String,
    },

    #[error("{message}")]
    #[diagnostic(
        code(maqet::confinement),
        help("see docs/security.md; `maqet doctor` shows what this kernel offers")
    )]
    Confinement { message: String },

    #[error("{path} is not safe to use: {reason}")]
    #[diagnostic(code(maqet::dir::unsafe_dir))]
    UnsafeDir {
        path: Utf8PathBuf,
        reason: String,
        #[help]
        help: String,
    },

    #[error("{what} is busy: another maqet held {lock} for over {}", wait_text(*waited_ms))]
    #[diagnostic(
        code(maqet::busy),
        help("wait for the other maqet command to finish, then run this one again")
    )]
    Busy {
        what: String,
        lock: Utf8PathBuf,
        waited_ms: u64,
    },

    /// Ctrl-C or a termination signal ended an attached session.
    #[error("interrupted")]
    #[diagnostic(code(maqet::interrupted))]
    Interrupted,

    #[error(
        "the store {path} was written by a newer maqet (schema {found}; this maqet knows {supported})"
    )]
    #[diagnostic(
        code(maqet::store::newer),
        help(
            "use the newer maqet, or point this one at another --data-dir; the store was left untouched"
        )
    )]
    StoreTooNew {
        path: Utf8PathBuf,
        found: u64,
        supported: u64,
    },

    #[error("the store {path} is damaged: {detail}")]
    #[diagnostic(
        code(maqet::store::damaged),
        help(
            "restore {path} from a backup, or move it aside to start an empty store; running VMs are not affected"
        )
    )]
    StoreDamaged { path: Utf8PathBuf, detail: String },

    #[error("{action} {path}: {cause}")]
    #[diagnostic(code(maqet::io))]
    Io {
        action: &'static str,
        path: Utf8PathBuf,
        cause: std::io::Error,
        #[help]
        help: String,
    },

    #[error("QMP: {cause}")]
    #[diagnostic(code(maqet::qmp))]
    Qmp {
        cause: crate::qmp::QmpError,
        #[help]
        help: String,
    },

    #[error("QEMU exited while starting `{name}`{}", log_excerpt(log_tail))]
    #[diagnostic(code(maqet::qemu::exited))]
    QemuExited {
        name: String,
        log_tail: Vec<String>,
        #[help]
        help: String,
    },

    /// maqet panicked: a bug. Caught once, around the whole command, so
    /// that the user gets an error to report, not a Rust panic message.
    #[error("internal error: {detail}")]
    #[diagnostic(
        code(maqet::internal),
        help(
            "this is a bug in maqet; please report it with the command you ran and what `maqet -vvv ...` prints"
        )
    )]
    Internal { detail: String },

    #[error("timed out after {seconds} s waiting for {what}{}", last_seen.as_ref().map(|l| format!("; last seen: {l}")).unwrap_or_default())]
    #[diagnostic(code(maqet::timeout))]
    TimedOut {
        what: String,
        seconds: u64,
        last_seen: Option<String>,
        #[help]
        help: String,
    },
}

/// A config file error, pointing at the offending text.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: Utf8PathBuf,
    pub message: String,
    pub source_code: NamedSource<String>,
    pub span: SourceSpan,
    pub label: String,
    pub help: String,
    pub fault: ConfigFault,
}

/// Whose verdict a config error is: it decides the code and exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFault {
    /// The text does not parse, or a value is wrong (exit 3).
    Invalid,
    /// The path filter could not make sense of a path (exit 3).
    Path,
    /// The path filter refused a path (exit 4).
    PathRefused,
}

// Written out rather than derived: the code depends on the fault. A path
// the filter refuses carries the filter's code, `maqet::path`, wherever it
// was written (command line or file), so scripts need to know only one.
impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(match self.fault {
            ConfigFault::Invalid => "maqet::config::invalid",
            ConfigFault::Path | ConfigFault::PathRefused => "maqet::path",
        }))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.help))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source_code)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(Some(self.label.clone()), self.span),
        )))
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } => exit::USAGE,
            Error::Config(c) if c.fault == ConfigFault::PathRefused => exit::REFUSED,
            Error::Path { cause, .. } if cause.is_refusal() => exit::REFUSED,
            Error::Config(_)
            | Error::Invalid { .. }
            | Error::ConfigUnreadable { .. }
            | Error::NotAFile { .. }
            | Error::Path { .. }
            | Error::VmNotFound { .. }
            | Error::Ambiguous { .. }
            | Error::NameTaken { .. }
            | Error::Unmappable { .. } => exit::NOT_FOUND_OR_INVALID,
            Error::VmActive { .. }
            | Error::Refused { .. }
            | Error::Confinement { .. }
            | Error::UnsafeDir { .. }
            | Error::StoreTooNew { .. } => exit::REFUSED,
            Error::Busy { .. } | Error::TimedOut { .. } => exit::TIMED_OUT,
            Error::Qmp { cause, .. } => match cause {
                crate::qmp::QmpError::Timeout { .. } => exit::TIMED_OUT,
                crate::qmp::QmpError::NotOurs { .. } => exit::REFUSED,
                _ => exit::FAILED,
            },
            Error::QemuExited { .. } | Error::NotRunning { .. } | Error::NoHotplugPort { .. } => {
                exit::FAILED
            }
            Error::Interrupted => exit::INTERRUPTED,
            Error::StoreDamaged { .. } | Error::Io { .. } | Error::Internal { .. } => exit::FAILED,
        }
    }

    /// `add` (or a rename) of a name another VM has.
    pub fn name_taken(name: &str, id: &str) -> Error {
        Error::NameTaken {
            name: name.to_owned(),
            id: id.to_owned(),
            differences: Vec::new(),
            help: format!(
                "choose another name with --name, or change the existing VM with `maqet apply {name} ...`"
            ),
        }
    }

    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn invalid(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Invalid {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn io(action: &'static str, path: impl Into<Utf8PathBuf>, cause: std::io::Error) -> Error {
        let help = match cause.kind() {
            std::io::ErrorKind::PermissionDenied => "check the permissions of the path".into(),
            std::io::ErrorKind::StorageFull => "free some disk space and try again".into(),
            _ => "check the path and try again".into(),
        };
        Error::Io {
            action,
            path: path.into(),
            cause,
            help,
        }
    }

    /// The error for a caught panic, `panic` being what it panicked with.
    pub fn internal(panic: &(dyn std::any::Any + Send)) -> Error {
        Error::Internal {
            detail: panic_message(panic).unwrap_or_else(|| "maqet panicked".into()),
        }
    }

    /// `path` is not a regular file but `file_type`.
    pub fn not_a_file(
        what: &'static str,
        path: &camino::Utf8Path,
        file_type: std::fs::FileType,
    ) -> Error {
        use std::os::unix::fs::FileTypeExt as _;
        let kind = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO (named pipe)"
        } else if file_type.is_char_device() {
            "a character device"
        } else if file_type.is_block_device() {
            "a block device"
        } else if file_type.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        Error::NotAFile {
            what,
            path: path.to_owned(),
            kind,
            help: "maqet reads only regular files here, since a pipe or device could block \
                   forever or never end; save the contents to a file and give that file's path"
                .into(),
        }
    }

    pub fn path(cause: PathError) -> Error {
        let help = cause.help();
        Error::Path { cause, help }
    }
}

/// The message of a caught panic, when it panicked with one.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> Option<String> {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
}

fn configured_otherwise(differences: &[String]) -> String {
    if differences.is_empty() {
        String::new()
    } else {
        format!(" with another configuration: {}", differences.join("; "))
    }
}

fn log_excerpt(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(":\n  {}", lines.join("\n  "))
    }
}

impl From<crate::qmp::QmpError> for Error {
    fn from(cause: crate::qmp::QmpError) -> Error {
        use crate::qmp::QmpError;
        let help = match &cause {
            QmpError::Command { .. } => "see the QMP reference for the command's arguments".into(),
            QmpError::NotOurs { .. } => {
                "the socket is not maqet's; check the runtime directory".into()
            }
            QmpError::Timeout { .. } => {
                "QEMU did not answer in time; is the VM overloaded or stuck?".into()
            }
            QmpError::Closed { .. } | QmpError::Connect { .. } => {
                "the VM may have stopped; `maqet status VM` shows what happened".into()
            }
            _ => "this is unexpected; run with -vvv and report it".into(),
        };
        Error::Qmp { cause, help }
    }
}

fn wait_text(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caught(f: fn()) -> Error {
        let panic = std::panic::catch_unwind(f).expect_err("it panics");
        Error::internal(&*panic)
    }

    #[test]
    fn a_caught_panic_is_an_internal_error_to_report() {
        let err = caught(|| panic!("index {} out of range", 7));
        let json: serde_json::Value =
            serde_json::from_str(&crate::render::error_json(&err)).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({"error": {
                "code": "maqet::internal",
                "message": "internal error: index 7 out of range",
                "help": "this is a bug in maqet; please report it with the command you ran \
                         and what `maqet -vvv ...` prints",
                "exit_code": 1,
            }})
        );
        assert_eq!(
            caught(|| panic!("static")).to_string(),
            "internal error: static"
        );
        assert_eq!(
            caught(|| std::panic::panic_any(7_u8)).to_string(),
            "internal error: maqet panicked"
        );
    }
}
