//! The optional settings file, `maqet.ron`: defaults for one user's maqet.
//!
//! Found at `--config-dir DIR/maqet.ron`, else `$MAQET_CONFIG` (a file),
//! else `$XDG_CONFIG_HOME/maqet/maqet.ron`, else `~/.config/maqet/maqet.ron`.
//! Flags win over environment variables, which win over this file, which
//! wins over the built-in defaults.

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use crate::config::{Program, parse_file, read_text};
use crate::error::{Error, Result};
use crate::paths::PathPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum LogLevel {
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    /// The `-v` count it stands for.
    pub fn verbosity(self) -> u8 {
        match self {
            LogLevel::Warn => 1,
            LogLevel::Info => 2,
            LogLevel::Debug => 3,
        }
    }
}

/// Whether a VM's QEMU is confined with Landlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ConfinementMode {
    /// Confined when the kernel has Landlock; started anyway, and said so,
    /// when it has not.
    #[default]
    Auto,
    /// Refuse to start a VM the kernel cannot confine.
    Required,
    /// Never confine (for finding out whether confinement is what breaks a
    /// VM; `status` says so).
    Off,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the database and maqet's images live (below MAQET_DATA_DIR
    /// and --data-dir, above the XDG default).
    pub data_dir: Option<String>,
    /// Where sockets, pidfiles and logs of running VMs live.
    pub runtime_dir: Option<String>,
    /// The QEMU program for VMs whose config names none.
    pub binary: Option<Program>,
    /// Seconds `stop` gives the guest when `--timeout` is not given.
    pub stop_timeout: Option<u64>,
    /// What stderr shows without `-v`.
    pub log_level: Option<LogLevel>,
    /// Whether QEMU runs under Landlock (docs/security.md).
    pub confinement: Option<ConfinementMode>,
    /// Host paths every VM's QEMU may also read (e.g. `/usr/share/OVMF`),
    /// write, or run. Only this file can grant them; a VM config never can.
    #[serde(default)]
    pub allow_read: Vec<String>,
    #[serde(default)]
    pub allow_write: Vec<String>,
    #[serde(default)]
    pub allow_execute: Vec<String>,
    /// The file these came from.
    #[serde(skip)]
    pub source: Option<Utf8PathBuf>,
}

/// Where the settings file is, and whether the user named it (a named
/// file must exist; the default one may not).
pub fn location(config_dir: Option<&Utf8Path>, cwd: &Utf8Path) -> Option<(Utf8PathBuf, bool)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(dir) = config_dir {
        return Some((cwd.join(dir).join("maqet.ron"), true));
    }
    if let Some(file) = var("MAQET_CONFIG") {
        return Some((cwd.join(file), true));
    }
    if let Some(xdg) = var("XDG_CONFIG_HOME").filter(|x| x.starts_with('/')) {
        return Some((Utf8PathBuf::from(xdg).join("maqet/maqet.ron"), false));
    }
    var("HOME").filter(|h| h.starts_with('/')).map(|home| {
        (
            Utf8PathBuf::from(home).join(".config/maqet/maqet.ron"),
            false,
        )
    })
}

/// Read the settings, or the defaults when there is no file.
pub fn load(config_dir: Option<&Utf8Path>, cwd: &Utf8Path) -> Result<Settings> {
    let Some((path, named)) = location(config_dir, cwd) else {
        return Ok(Settings::default());
    };
    let src = match read_text(&path, "settings file") {
        Ok(src) => src,
        Err(Error::ConfigUnreadable { cause, .. })
            if cause.kind() == std::io::ErrorKind::NotFound && !named =>
        {
            return Ok(Settings::default());
        }
        Err(err) => return Err(err),
    };
    check_owner(&path)?;
    let mut settings: Settings = parse_file(&src, &path, &path, &PathPolicy::from_env())?;
    // Relative directories mean relative to the settings file.
    let base = path.parent().unwrap_or(Utf8Path::new("/")).to_owned();
    for dir in [&mut settings.data_dir, &mut settings.runtime_dir]
        .into_iter()
        .flatten()
    {
        *dir = expand(dir, &base)?;
    }
    for path in settings
        .allow_read
        .iter_mut()
        .chain(&mut settings.allow_write)
        .chain(&mut settings.allow_execute)
    {
        *path = expand(path, &base)?;
    }
    settings.source = Some(path);
    Ok(settings)
}

/// The settings file widens what QEMU may reach and names the QEMU to run:
/// it must be yours (or root's) and writable by nobody else.
fn check_owner(path: &Utf8Path) -> Result<()> {
    check_trusted_file(path, "it decides what QEMU may reach")
}

/// A file whose text maqet trusts (`why` says what it decides): yours or
/// root's, one name, writable by nobody else, and in directories nobody
/// else can write (unless sticky) all the way up.
pub fn check_trusted_file(path: &Utf8Path, why: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot inspect", path, e))?;
    let me = nix::unistd::geteuid().as_raw();
    let reason = if meta.uid() != me && meta.uid() != 0 {
        Some(format!("it belongs to another user (uid {})", meta.uid()))
    } else if meta.nlink() > 1 {
        // Another name of it may sit where a VM can write it (an image
        // that is a hard link of the settings file).
        Some(format!(
            "it has {} names (hard links); one may be a VM's disk",
            meta.nlink()
        ))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "others can write it (mode {:04o})",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(Error::UnsafeDir {
            path: path.to_owned(),
            reason,
            help: format!("{why}: `chmod go-w {path}`, and own it yourself"),
        });
    }
    // Nor may anyone else replace it: the directories holding the name
    // given and, through a symlink, the one holding the file, and every
    // directory above them (whoever owns one can rename what is inside).
    let real = std::fs::canonicalize(path).map_err(|e| Error::io("cannot resolve", path, e))?;
    let dirs = [path.as_std_path().parent(), real.parent()];
    for dir in dirs.into_iter().flatten() {
        for above in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            check_dir(above)?;
        }
    }
    Ok(())
}

/// A directory holding the settings file: yours or root's, and writable by
/// nobody else unless sticky (then others cannot rename your file).
fn check_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let shown = Utf8Path::from_path(dir).map_or_else(
        || Utf8PathBuf::from(dir.to_string_lossy().into_owned()),
        Utf8Path::to_owned,
    );
    let meta = std::fs::metadata(dir).map_err(|e| Error::io("cannot inspect", &shown, e))?;
    let me = nix::unistd::geteuid().as_raw();
    let sticky = meta.mode() & 0o1000 != 0;
    let reason = if meta.uid() != me && meta.uid() != 0 {
        Some(format!(
            "the settings file's directory belongs to another user (uid {})",
            meta.uid()
        ))
    } else if meta.mode() & 0o022 != 0 && !sticky {
        Some(format!(
            "others can replace the settings file in it (mode {:04o})",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::UnsafeDir {
            help: format!("keep maqet.ron in a directory only you can write: `chmod go-w {shown}`"),
            path: shown,
            reason,
        }),
        None => Ok(()),
    }
}

fn expand(dir: &str, base: &Utf8Path) -> Result<String> {
    let path = match dir.strip_prefix("~/") {
        Some(rest) => {
            let home = std::env::var("HOME").map_err(|_| {
                Error::invalid(
                    format!("cannot expand `{dir}`: HOME is not set"),
                    "write the path out in full",
                )
            })?;
            Utf8PathBuf::from(home).join(rest)
        }
        None => base.join(dir),
    };
    Ok(path.into_string())
}
