//! Where maqet keeps its files (DESIGN.md §2), and making those directories
//! private.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{Error, Result};
pub use crate::layout::{RuntimePaths, VmPaths};

/// The name of the user running maqet, from the password database; with
/// `help` for the error when it has none (what to do instead).
pub fn user_name(help: &str) -> Result<String> {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .ok_or_else(|| Error::invalid("this user has no name in the password database", help))
}

/// The data and runtime roots for this invocation.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// Database, lock file and disks maqet creates.
    pub data: Utf8PathBuf,
    /// Per-VM sockets, pidfiles and logs.
    pub runtime: Utf8PathBuf,
}

/// The environment the directories are derived from; a struct so tests can
/// give one without touching the process environment.
#[derive(Debug, Clone, Default)]
pub struct DirsEnv {
    pub data_flag: Option<OsString>,
    pub runtime_flag: Option<OsString>,
    pub maqet_data_dir: Option<OsString>,
    pub maqet_runtime_dir: Option<OsString>,
    /// From the settings file (between the environment and XDG).
    pub settings_data_dir: Option<OsString>,
    pub settings_runtime_dir: Option<OsString>,
    pub xdg_data_home: Option<OsString>,
    pub xdg_state_home: Option<OsString>,
    pub home: Option<OsString>,
}

impl DirsEnv {
    pub fn from_process(data_flag: Option<OsString>, runtime_flag: Option<OsString>) -> DirsEnv {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        DirsEnv {
            data_flag,
            runtime_flag,
            maqet_data_dir: var("MAQET_DATA_DIR"),
            maqet_runtime_dir: var("MAQET_RUNTIME_DIR"),
            settings_data_dir: None,
            settings_runtime_dir: None,
            xdg_data_home: var("XDG_DATA_HOME"),
            xdg_state_home: var("XDG_STATE_HOME"),
            home: var("HOME"),
        }
    }
}

impl Dirs {
    /// data = --data-dir > MAQET_DATA_DIR > settings `data_dir` >
    /// $XDG_DATA_HOME/maqet > ~/.local/share/maqet;
    /// runtime = --runtime-dir > MAQET_RUNTIME_DIR > settings `runtime_dir` >
    /// $XDG_STATE_HOME/maqet/run > ~/.local/state/maqet/run. Relative XDG values are ignored, as the XDG
    /// spec says.
    pub fn resolve(env: &DirsEnv, cwd: &Utf8Path) -> Result<Dirs> {
        let data = pick(
            cwd,
            [
                (&env.data_flag, "--data-dir"),
                (&env.maqet_data_dir, "MAQET_DATA_DIR"),
                (&env.settings_data_dir, "data_dir in the settings file"),
            ],
            &env.xdg_data_home,
            "maqet",
            &env.home,
            ".local/share/maqet",
        )?;
        let runtime = pick(
            cwd,
            [
                (&env.runtime_flag, "--runtime-dir"),
                (&env.maqet_runtime_dir, "MAQET_RUNTIME_DIR"),
                (
                    &env.settings_runtime_dir,
                    "runtime_dir in the settings file",
                ),
            ],
            &env.xdg_state_home,
            "maqet/run",
            &env.home,
            ".local/state/maqet/run",
        )?;
        Ok(Dirs { data, runtime })
    }

    pub fn database(&self) -> Utf8PathBuf {
        self.data.join("maqet.redb")
    }

    pub fn lock_file(&self) -> Utf8PathBuf {
        self.data.join("maqet.lock")
    }

    /// Where maqet remembers, in the runtime root, that KVM failed in this
    /// boot (`qemu::remember_kvm_broken`).
    pub fn kvm_memo(&self) -> Utf8PathBuf {
        self.runtime.join("kvm-unusable")
    }
}

fn pick(
    cwd: &Utf8Path,
    explicit: [(&Option<OsString>, &str); 3],
    xdg: &Option<OsString>,
    xdg_tail: &str,
    home: &Option<OsString>,
    home_tail: &str,
) -> Result<Utf8PathBuf> {
    for (value, source) in explicit {
        if let Some(v) = value {
            let path = utf8(v, source)?;
            return Ok(cwd.join(path));
        }
    }
    if let Some(v) = xdg {
        let path = utf8(v, "XDG variable")?;
        if path.is_absolute() {
            return Ok(path.join(xdg_tail));
        }
    }
    match home {
        Some(h) => {
            let home = utf8(h, "HOME")?;
            if !home.is_absolute() {
                return Err(Error::usage(
                    format!("HOME is `{home}`, which is not an absolute path"),
                    "set HOME to your home directory, or give --data-dir and --runtime-dir",
                ));
            }
            Ok(home.join(home_tail))
        }
        None => Err(Error::usage(
            "HOME is not set, so maqet does not know where to keep its files",
            "set HOME, or give --data-dir and --runtime-dir (or MAQET_DATA_DIR and MAQET_RUNTIME_DIR)",
        )),
    }
}

fn utf8(value: &OsString, source: &str) -> Result<Utf8PathBuf> {
    let text = value.to_str().ok_or_else(|| {
        Error::usage(
            format!("{source} `{}` is not valid UTF-8", value.to_string_lossy()),
            "use a directory whose path is valid UTF-8",
        )
    })?;
    Ok(Utf8PathBuf::from(text))
}

/// Create `dir` (and missing parents) with mode 0700 whatever the umask, or
/// check that an existing one is safe: a real directory, ours, and closed to
/// group and others.
pub fn ensure_private_dir(dir: &Utf8Path) -> Result<()> {
    // Before creating anything: a directory made inside someone else's
    // would be theirs to replace.
    check_ancestors(dir)?;
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("cannot create directory", dir, e))?;
        // DirBuilder's mode is filtered by the umask; a umask of 0777 would
        // leave a directory even we cannot enter.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("cannot set the mode of", dir, e))?;
    }
    check_dir_itself(dir)
}

/// Refuse a directory that is a symlink, someone else's, open to others, or
/// under a directory that lets someone else replace it. The directories
/// above come first: inside another user's, this one may not even be
/// visible, and the reason is theirs.
pub fn check_private_dir(dir: &Utf8Path) -> Result<()> {
    check_ancestors(dir)?;
    check_dir_itself(dir)
}

fn check_dir_itself(dir: &Utf8Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::io("cannot inspect", dir, e))?;
    let refuse = |reason: String, help: String| Error::UnsafeDir {
        path: dir.to_owned(),
        reason,
        help,
    };
    if meta.file_type().is_symlink() {
        return Err(refuse(
            "it is a symbolic link".into(),
            "maqet keeps its files in a real directory: remove the link, or point maqet at the target with --data-dir/--runtime-dir".into(),
        ));
    }
    if !meta.is_dir() {
        return Err(refuse(
            "it is not a directory".into(),
            "move the file away, or choose another directory".into(),
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(
            format!("it belongs to uid {}, not to you (uid {me})", meta.uid()),
            "use a directory you own".into(),
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(
            format!("its mode is {mode:04o}: group or others can get in"),
            format!("run `chmod 700 {dir}` and try again"),
        ));
    }
    Ok(())
}

/// Refuse `dir` when a directory above it lets another user replace it (and
/// with it everything maqet keeps there): one that belongs to someone other
/// than us or root, or one anyone may write to without the sticky bit that
/// /tmp has. Both the path as given and where its symlinks lead are checked.
/// Group write is allowed: with per-user groups (Debian, Ubuntu) a umask of
/// 002 makes `~/.local` group-writable by the user's own group.
fn check_ancestors(dir: &Utf8Path) -> Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    let existing = dir
        .ancestors()
        .skip(1)
        .find(|a| std::fs::symlink_metadata(a).is_ok());
    let resolved = existing
        .map(|a| {
            a.canonicalize_utf8()
                .map_err(|e| Error::io("cannot resolve", a, e))
        })
        .transpose()?;
    let given = dir.ancestors().skip(1);
    for above in given.chain(resolved.iter().flat_map(|r| r.ancestors())) {
        if above.as_str().is_empty() {
            continue;
        }
        let meta = match std::fs::symlink_metadata(above) {
            Ok(meta) => meta,
            // Missing: it will be created, privately.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("cannot inspect", above, e)),
        };
        // Where a link leads is checked on the resolved path.
        if meta.file_type().is_symlink() {
            continue;
        }
        let refuse = |reason: String, help: String| Error::UnsafeDir {
            path: dir.to_owned(),
            reason,
            help,
        };
        if meta.uid() != me && meta.uid() != 0 {
            return Err(refuse(
                format!(
                    "{above}, a directory above it, belongs to uid {}, not to you (uid {me}) or root: that user could replace it",
                    meta.uid()
                ),
                "give maqet a directory under ones only you or root can change, with --data-dir/--runtime-dir".into(),
            ));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            return Err(refuse(
                format!(
                    "{above}, a directory above it, has mode {mode:04o}: anyone can write to it, so anyone could replace it"
                ),
                format!(
                    "run `chmod o-w {above}` (or `chmod +t {above}`, as /tmp has) and try again"
                ),
            ));
        }
    }
    Ok(())
}
