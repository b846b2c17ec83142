//! A directory checked once and then used by descriptor (DESIGN.md §6).
//!
//! A name can change between maqet's check and its use: another user who
//! owns a directory on the path can swap a component for a symlink. So what
//! maqet writes or deletes on a user's behalf goes through a descriptor of
//! the directory, opened first and then checked where it really is; later
//! swaps of the names above it change nothing.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use camino::{Utf8Path, Utf8PathBuf};
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::PathPolicy;
use crate::error::{Error, Result};

/// Where an open descriptor really leads (its `/proc/self/fd` link): what
/// maqet checks after opening a file or directory by name, so that a name
/// swapped before the open is caught. `shown` names it in errors.
pub fn real_path(fd: &impl AsRawFd, shown: &Utf8Path) -> Result<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| Error::io("cannot see where it is:", shown, e))
}

/// An open directory that passed the path filter where it really is.
#[derive(Debug)]
pub struct CheckedDir {
    fd: OwnedFd,
    path: Utf8PathBuf,
}

impl CheckedDir {
    /// Open `dir` (already through the filter, so canonical) and check by
    /// where the opened directory really is that it is still `dir`, and with
    /// a policy that it still passes the filter: a swap before the open is
    /// caught, one after it cannot redirect anything done through the
    /// descriptor.
    pub fn open(dir: &Utf8Path, policy: Option<&PathPolicy>) -> Result<CheckedDir> {
        let fd = nix::fcntl::open(
            dir.as_std_path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("cannot open the directory", dir, e.into()))?;
        let real = real_path(&fd, dir)?;
        if let Some(policy) = policy {
            policy
                .check(real.as_os_str(), Utf8Path::new("/"))
                .map_err(Error::path)?;
        }
        if real != dir.as_std_path() {
            return Err(Error::Refused {
                message: format!(
                    "{dir} changed while maqet used it (it now leads to {})",
                    real.display()
                ),
                help: "someone is changing the directories above it; check who can write there"
                    .into(),
            });
        }
        Ok(CheckedDir {
            fd,
            path: dir.to_owned(),
        })
    }

    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// Create `name` in this directory, exclusively (never over an existing
    /// name, never through a symlink), private to you.
    pub fn create_new(&self, name: &str) -> Result<File> {
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| {
            let path = self.path.join(name);
            match e {
                nix::Error::EEXIST => Error::Refused {
                    message: format!("{path} already exists; maqet never overwrites an image"),
                    help: "remove the file yourself, or point `file` at it to use it as it is"
                        .into(),
                },
                other => Error::io("cannot create", path, other.into()),
            }
        })?;
        Ok(File::from(fd))
    }

    /// Put `bytes` at `name` in this directory: written to a new private
    /// file (exclusive, never through a symlink) and renamed over the name,
    /// so an existing file or symlink there is replaced, never written
    /// through.
    pub fn replace_file(&self, name: &str, bytes: &[u8]) -> Result<Utf8PathBuf> {
        let target = self.path.join(name);
        match fstatat(&self.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) if stat.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG => {
                return Err(Error::Refused {
                    message: format!("{target} exists and is not a regular file"),
                    help: "choose another file name".into(),
                });
            }
            _ => {}
        }
        // A name nobody can guess, so no one can take it first; tried
        // again if someone did anyway.
        let mut attempt = 0;
        let (temp, fd) = loop {
            let suffix = crate::vm::VmId::random()?;
            let temp = format!(".{name}.maqet-{}", &suffix.as_str()[..12]);
            match openat(
                &self.fd,
                temp.as_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => break (temp, fd),
                Err(nix::Error::EEXIST) if attempt < 8 => attempt += 1,
                Err(e) => return Err(Error::io("cannot create", self.path.join(&temp), e.into())),
            }
        };
        let mut file = File::from(fd);
        let renamed = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| {
                renameat(&self.fd, temp.as_str(), &self.fd, name).map_err(std::io::Error::from)
            });
        if let Err(e) = renamed {
            let _ = unlinkat(&self.fd, temp.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(Error::io("cannot write", target, e));
        }
        Ok(target)
    }

    /// The bytes of the regular file `name` in this directory, never read
    /// through a symlink.
    pub fn read_file(&self, name: &str) -> Result<Vec<u8>> {
        use std::io::Read;
        let target = self.path.join(name);
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| Error::io("cannot read", target.clone(), e.into()))?;
        let mut file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| Error::io("cannot read", target.clone(), e))?;
        if !meta.is_file() {
            return Err(Error::not_a_file("file", &target, meta.file_type()));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read", target, e))?;
        Ok(bytes)
    }

    /// Delete `name` in this directory if it is a regular file of ours:
    /// never through a symlink, and never a file someone else put there.
    /// False when it is gone or is not ours.
    pub fn remove_own_file(&self, name: &str) -> Result<bool> {
        let stat = match fstatat(&self.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(nix::Error::ENOENT) => return Ok(false),
            Err(e) => return Err(Error::io("cannot inspect", self.path.join(name), e.into())),
        };
        let regular = stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG;
        if !regular || stat.st_uid != nix::unistd::geteuid().as_raw() {
            return Ok(false);
        }
        unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| Error::io("cannot remove", self.path.join(name), e.into()))?;
        Ok(true)
    }
}

/// Delete a file maqet made, by descriptor of its directory as recorded
/// (see [`CheckedDir::remove_own_file`]). False when it was not there, or
/// was no longer a file of ours; an error when its directory moved.
pub fn remove_own_file(path: &Utf8Path) -> Result<bool> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    match CheckedDir::open(dir, None) {
        Ok(dir) => dir.remove_own_file(name),
        Err(Error::Io { cause, .. }) if cause.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e @ Error::Refused { .. }) => {
            crate::log::warn(format_args!("kept {path}: {e}"));
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
