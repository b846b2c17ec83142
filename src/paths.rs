//! The one safety filter every user-supplied path goes through (DESIGN.md §6).
//!
//! A config file is data someone may have copied from elsewhere; a disk image
//! path of `/etc/shadow` or a shared folder of `/` must never reach QEMU. The
//! filter resolves a path the way the kernel will (symlinks included, even for
//! a file that does not exist yet) and refuses anything inside a system
//! directory, unless it is under the user's own home or temp directory.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

use camino::{Utf8Path, Utf8PathBuf};

pub mod dir;

/// Directories whose contents maqet never reads or writes on a user's behalf.
const SYSTEM_DIRS: [&str; 13] = [
    "/etc", "/sys", "/proc", "/dev", "/boot", "/root", "/var", "/usr", "/bin", "/sbin", "/lib",
    "/lib64", "/run",
];

/// Inside a system directory, but meant for users (and `/run/user/UID`, the
/// user's own runtime directory).
const ALLOWED_INSIDE_SYSTEM: [&str; 2] = ["/dev/shm", "/run/media"];

/// Linux's own limit on symlinks followed in one lookup (`MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// Why a path was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("`{0}` is not valid UTF-8")]
    NotUtf8(String),
    #[error("`{0}` uses `~user`, which maqet does not expand")]
    OtherUsersHome(String),
    #[error("cannot expand `~`: $HOME is not set")]
    NoHome,
    #[error("`{path}` resolves to `{resolved}`, inside the system directory {dir}")]
    SystemDir {
        path: String,
        resolved: String,
        dir: String,
    },
    #[error("`{0}` is the filesystem root")]
    Root(String),
    #[error("`{path}` resolves to `{resolved}`, inside maqet's own directory {dir}")]
    MaqetOwn {
        path: String,
        resolved: String,
        dir: String,
    },
    #[error("the shared directory `{path}` holds {holds}")]
    ShareHolds { path: String, holds: String },
    #[error("`{path}` is inside `{hidden}`, a hidden file or directory of {whose}")]
    HiddenInHome {
        path: String,
        hidden: String,
        /// "your home", or "the home of another account".
        whose: &'static str,
    },
    #[error("`{path}` has too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("cannot resolve `{path}`: {reason}")]
    Unreadable { path: String, reason: String },
}

impl PathError {
    /// True when the path was understood but is not allowed (exit code 4),
    /// false when it could not be understood at all (exit code 3).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            PathError::SystemDir { .. }
                | PathError::Root(_)
                | PathError::MaqetOwn { .. }
                | PathError::ShareHolds { .. }
                | PathError::HiddenInHome { .. }
        )
    }

    pub fn help(&self) -> String {
        match self {
            PathError::SystemDir { .. } | PathError::Root(_) => {
                "maqet never points QEMU at system directories; use a path under your home \
                 directory, your temp directory or /dev/shm"
                    .into()
            }
            PathError::MaqetOwn { .. } => {
                "maqet's store, images and sockets are not for VMs to use: a guest could \
                 rewrite them; give the VM its own file elsewhere"
                    .into()
            }
            PathError::ShareHolds { .. } => {
                "share a directory of its own with the guest, not one that holds your home \
                 directory or maqet's files"
                    .into()
            }
            PathError::HiddenInHome { .. } => {
                "the hidden files and directories of a home hold keys and settings (~/.ssh, \
                 ~/.gnupg, ~/.config); a VM may not use them. Keep VM files elsewhere, or \
                 name the directory in `allow_write` in maqet's settings"
                    .into()
            }
            PathError::NotUtf8(_) => "rename the file so its path is valid UTF-8".into(),
            PathError::OtherUsersHome(_) => "write the path out in full".into(),
            PathError::NoHome => "set HOME, or write the path out in full".into(),
            PathError::Empty => "give a file or directory path".into(),
            PathError::SymlinkLoop { .. } => "fix the symbolic links along the path".into(),
            PathError::Unreadable { .. } => "check the path and its permissions".into(),
        }
    }
}

/// The places the filter lets a path into even though they are under a system
/// directory: the user's own home (which is `/root` for root, and under `/var`
/// on Fedora Silverblue) and temp directory.
#[derive(Debug, Clone)]
pub struct PathPolicy {
    home: Option<PathBuf>,
    exempt: Vec<PathBuf>,
    /// maqet's own data and runtime directories: never a VM's.
    protected: Vec<PathBuf>,
    /// What the settings file allows VMs (`allow_write`).
    allowed: Vec<PathBuf>,
    /// Your home as the password database has it, when `$HOME` says
    /// otherwise (cron, `sudo -u`, services): its hidden files are yours too.
    account_home: Option<PathBuf>,
    /// Look the account's home up when a VM path is checked (not before:
    /// commands that check none should not read the password database).
    look_up_account: bool,
}

impl PathPolicy {
    /// The policy for this process: `$HOME` and the temp directory.
    pub fn from_env() -> PathPolicy {
        // A relative $HOME cannot anchor `~`; treat it as unset.
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|h| h.is_absolute());
        let mut policy = PathPolicy::new(home, Some(std::env::temp_dir()));
        policy.look_up_account = true;
        policy
    }

    /// Every home whose hidden files are off limits, resolved.
    fn homes(&self) -> Vec<PathBuf> {
        let account = self.account_home.clone().or_else(|| {
            self.look_up_account
                .then(|| {
                    nix::unistd::User::from_uid(nix::unistd::getuid())
                        .ok()
                        .flatten()
                })
                .flatten()
                .map(|user| user.dir)
                .filter(|dir| dir.is_absolute() && dir != Path::new("/"))
        });
        let mut homes: Vec<PathBuf> = [&self.home, &account]
            .into_iter()
            .flatten()
            .filter_map(|h| resolve(h).ok())
            .filter(|h| h != Path::new("/"))
            .collect();
        homes.dedup();
        homes
    }

    /// A policy with an explicit home and temp directory (for tests).
    pub fn new(home: Option<PathBuf>, temp: Option<PathBuf>) -> PathPolicy {
        let exempt = [&home, &temp]
            .into_iter()
            .flatten()
            .filter(|p| p.is_absolute())
            .filter_map(|p| resolve(p).ok())
            .filter(|p| is_reasonable_exemption(p))
            .collect();
        PathPolicy {
            home,
            exempt,
            protected: Vec::new(),
            allowed: Vec::new(),
            account_home: None,
            look_up_account: false,
        }
    }

    /// Refuse paths inside `dirs` (maqet's data and runtime directories):
    /// a VM given maqet's store could have its guest rewrite it (and mark
    /// itself trusted), and another VM's disk or sockets are not its own.
    pub fn protecting(mut self, dirs: &[&Utf8Path]) -> PathPolicy {
        self.protected.extend(
            dirs.iter()
                .filter_map(|d| resolve(d.as_std_path()).ok())
                .filter(|d| d != Path::new("/")),
        );
        self
    }

    /// A directory shared with a guest must not hold the user's home or
    /// maqet's own directories (the guest would read `~/.ssh`, or rewrite
    /// maqet's store). `dir` has been through [`check`](Self::check).
    pub fn check_share(&self, dir: &Utf8Path) -> Result<(), PathError> {
        let std = dir.as_std_path();
        let homes = self.homes();
        let held = homes
            .iter()
            .map(|h| (h, "your home directory"))
            .chain(self.protected.iter().map(|p| (p, "maqet's own files")))
            .find(|(inner, _)| inner.starts_with(std));
        match held {
            Some((inner, what)) => Err(PathError::ShareHolds {
                path: dir.to_string(),
                holds: format!("{what} ({})", inner.display()),
            }),
            None => Ok(()),
        }
    }

    /// Also let paths in under `dirs`: the settings file's `allow_write`
    /// (e.g. `/var/lib/libvirt/images`), which only the user's own settings
    /// can name. `/` itself is never exempted.
    pub fn allowing(mut self, dirs: &[String]) -> PathPolicy {
        self.allowed.extend(
            dirs.iter()
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .filter_map(|p| resolve(&p).ok())
                .filter(|p| p != Path::new("/")),
        );
        self
    }

    /// [`check`](Self::check) a path a VM will use (an image, backing file,
    /// share, kernel): also refused inside a hidden file or directory of
    /// the user's home (`~/.ssh/id_ed25519` as a raw disk, or as the backing
    /// file a downloaded image names, would hand the key to the guest),
    /// unless the settings file allows the place.
    pub fn check_vm(&self, raw: &OsStr, base: &Utf8Path) -> Result<Utf8PathBuf, PathError> {
        let path = self.check(raw, base)?;
        let std = path.as_std_path();
        if self.allowed.iter().any(|dir| std.starts_with(dir)) {
            return Ok(path);
        }
        let own = self.homes();
        let others: &[PathBuf] = if self.look_up_account {
            other_homes()
        } else {
            &[]
        };
        let homes = own.into_iter().map(|h| (h, "your home")).chain(
            others
                .iter()
                .cloned()
                .map(|h| (h, "the home of another account")),
        );
        for (home, whose) in homes {
            if home == Path::new("/") {
                continue;
            }
            let Ok(rest) = std.strip_prefix(&home) else {
                continue;
            };
            let mut hidden = home.clone();
            for part in rest.components() {
                hidden.push(part);
                if part.as_os_str().as_encoded_bytes().starts_with(b".") {
                    return Err(PathError::HiddenInHome {
                        path: raw.to_string_lossy().into_owned(),
                        hidden: hidden.display().to_string(),
                        whose,
                    });
                }
            }
        }
        Ok(path)
    }

    /// Resolve `raw` (relative paths against `base`) and check it.
    ///
    /// Returns the absolute, symlink-free path that QEMU should be given.
    pub fn check(&self, raw: &OsStr, base: &Utf8Path) -> Result<Utf8PathBuf, PathError> {
        let text = raw.to_str().ok_or_else(|| PathError::NotUtf8(lossy(raw)))?;
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        let expanded = self.expand_tilde(text)?;
        let absolute = if expanded.is_absolute() {
            expanded
        } else {
            base.as_std_path().join(expanded)
        };
        let resolved = resolve(&absolute).map_err(|e| match e {
            ResolveError::Loop => PathError::SymlinkLoop { path: text.into() },
            ResolveError::Io(err) => PathError::Unreadable {
                path: text.into(),
                reason: err.to_string(),
            },
        })?;
        let resolved = Utf8PathBuf::from_path_buf(resolved)
            .map_err(|p| PathError::NotUtf8(p.to_string_lossy().into_owned()))?;
        self.judge(text, resolved)
    }

    fn expand_tilde(&self, text: &str) -> Result<PathBuf, PathError> {
        let Some(rest) = text.strip_prefix('~') else {
            return Ok(PathBuf::from(text));
        };
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(PathError::OtherUsersHome(text.into()));
        }
        let home = self.home.as_ref().ok_or(PathError::NoHome)?;
        Ok(home.join(rest.trim_start_matches('/')))
    }

    fn judge(&self, text: &str, resolved: Utf8PathBuf) -> Result<Utf8PathBuf, PathError> {
        let std = resolved.as_std_path();
        if let Some(dir) = self.protected.iter().find(|dir| std.starts_with(dir)) {
            return Err(PathError::MaqetOwn {
                path: text.into(),
                resolved: resolved.to_string(),
                dir: dir.display().to_string(),
            });
        }
        if self.allowed.iter().any(|dir| std.starts_with(dir)) {
            return Ok(resolved);
        }
        if self.exempt.iter().any(|dir| std.starts_with(dir))
            || ALLOWED_INSIDE_SYSTEM.iter().any(|dir| std.starts_with(dir))
            || std.starts_with(format!("/run/user/{}", nix::unistd::getuid()))
        {
            return Ok(resolved);
        }
        if resolved.as_str() == "/" {
            return Err(PathError::Root(text.into()));
        }
        if let Some(dir) = SYSTEM_DIRS.iter().find(|dir| std.starts_with(dir)) {
            return Err(PathError::SystemDir {
                path: text.into(),
                resolved: resolved.to_string(),
                dir: (*dir).into(),
            });
        }
        Ok(resolved)
    }
}

/// Every account's home in the password file: their hidden files (an SSH
/// key, a token) are as much off limits as the user's own, which matters
/// most when maqet runs as root and could read them.
/// Read and resolved once per process: a VM's check looks at every path
/// it uses.
fn other_homes() -> &'static [PathBuf] {
    static HOMES: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
    HOMES.get_or_init(|| {
        std::fs::read_to_string("/etc/passwd")
            .map(|text| homes_in(&text))
            .unwrap_or_default()
            .iter()
            .filter_map(|h| resolve(h).ok())
            .collect()
    })
}

/// The home field of each line of a password file.
fn homes_in(passwd: &str) -> Vec<PathBuf> {
    passwd
        .lines()
        .filter_map(|line| line.split(':').nth(5))
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir != Path::new("/"))
        .collect()
}

/// A home or temp directory of `/`, `/usr`, `/var` or anything beneath a
/// system directory (`/etc/ssh`) would exempt part of the system; such a
/// setting is ignored rather than trusted.
///
/// `dir` is already resolved, so each system directory is compared resolved
/// too: on a merged-/usr system `/bin` is `/usr/bin`, and a home of `/bin`
/// (Debian's `bin` and `sync` users) must not exempt `/usr/bin`.
fn is_reasonable_exemption(dir: &Path) -> bool {
    // Where a home or temp directory inside a system directory is still
    // the user's: root's home, and the temp directories meant for users.
    const USERS_INSIDE_SYSTEM: [&str; 3] = ["/root", "/var/tmp", "/dev/shm"];
    let own_runtime = format!("/run/user/{}", nix::unistd::getuid());
    let users = USERS_INSIDE_SYSTEM
        .iter()
        .map(Path::new)
        .chain(std::iter::once(Path::new(own_runtime.as_str())))
        .any(|place| dir.starts_with(place));
    // Not a system directory, nor anything beneath one: TMPDIR=/etc/ssh
    // would otherwise let VMs reach the host's keys.
    dir != Path::new("/")
        && (users
            || !system_dirs_resolved()
                .iter()
                .any(|system| dir.starts_with(system)))
}

/// The system directories but `/root`, as written and as they resolve:
/// worked out once per process (the home and the temp directory are both
/// judged against them, and each costs a walk of every one).
fn system_dirs_resolved() -> &'static [PathBuf] {
    static DIRS: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
    DIRS.get_or_init(|| {
        SYSTEM_DIRS
            .iter()
            .filter(|s| **s != "/root")
            .flat_map(|s| {
                let system = Path::new(s);
                std::iter::once(system.to_owned()).chain(resolve(system).ok())
            })
            .collect()
    })
}

fn lossy(raw: &OsStr) -> String {
    raw.to_string_lossy().into_owned()
}

enum ResolveError {
    Loop,
    Io(io::Error),
}

/// Resolve an absolute path like `realpath -m`: every symlink along it is
/// followed, `..` is applied after the symlink before it, and components that
/// do not exist yet are kept as written. This is what the kernel will do when
/// QEMU later opens or creates the file, so a dangling symlink to `/etc/x` is
/// seen as `/etc/x`.
fn resolve(path: &Path) -> Result<PathBuf, ResolveError> {
    let mut pending: Vec<OsString> = components_of(path);
    pending.reverse();
    let mut resolved = PathBuf::from("/");
    let mut followed = 0usize;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        resolved.push(&part);
        match std::fs::symlink_metadata(&resolved) {
            Ok(meta) if meta.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(ResolveError::Loop);
                }
                let target = std::fs::read_link(&resolved).map_err(ResolveError::Io)?;
                resolved.pop();
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                let mut parts = components_of(&target);
                parts.reverse();
                pending.extend(parts);
            }
            Ok(_) => {}
            // Not there yet: it will be created under the parent resolved so far.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) if err.raw_os_error() == Some(nix::libc::ENOTDIR) => {}
            Err(err) => return Err(ResolveError::Io(err)),
        }
    }
    Ok(resolved)
}

/// The normal and `..` components of a path; `.` and the root are dropped.
fn components_of(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
