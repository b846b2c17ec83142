//! Opening an image so that the file QEMU or qemu-img gets is the one
//! maqet checked.

use std::os::unix::fs::OpenOptionsExt;

use camino::Utf8Path;

use crate::error::{Error, Result};

/// Open an image maqet is about to hand to QEMU or qemu-img, and check by
/// where the opened file really is that it is the regular file at `path`:
/// a name swapped for a symlink, or a directory above it moved, since
/// maqet checked it is refused. Never blocks on a FIFO.
pub fn open_image(path: &Utf8Path, writable: bool) -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(writable)
        .custom_flags(
            nix::libc::O_NOFOLLOW
                | nix::libc::O_CLOEXEC
                | nix::libc::O_NOCTTY
                | nix::libc::O_NONBLOCK,
        )
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => changed(path, "a symlink"),
            _ => Error::io("cannot open the image", path, e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot inspect", path, e))?;
    if !meta.is_file() {
        return Err(Error::Refused {
            message: format!("{path} is not a regular file"),
            help: "give a disk image file (devices, FIFOs and sockets are not images)".into(),
        });
    }
    one_name(path, &meta)?;
    let real = crate::paths::dir::real_path(&file, path)?;
    if real != path.as_std_path() {
        return Err(changed(path, &real.display().to_string()));
    }
    // Blocking again, for QEMU and qemu-img.
    nix::fcntl::fcntl(
        &file,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )
    .map_err(|e| Error::io("cannot use", path, e.into()))?;
    Ok(file)
}

/// A file a VM uses must have one name. A hard link's other names may be
/// anywhere, and no check of this name sees them: a root-made link to
/// /etc/shadow, or your own link to maqet's settings file or store, or to
/// a key in ~/.ssh, would pass every check of the path given.
pub fn one_name(path: &Utf8Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if meta.is_file() && meta.nlink() > 1 {
        return Err(Error::Refused {
            message: format!(
                "{path} has {} names (hard links); maqet cannot tell where the others are",
                meta.nlink()
            ),
            help: "copy it to a file of its own (`cp --reflink=auto`) and use the copy".into(),
        });
    }
    Ok(())
}

fn changed(path: &Utf8Path, now: &str) -> Error {
    Error::Refused {
        message: format!("{path} changed since maqet checked it (it is now {now})"),
        help: "someone is changing the directories above it; check who can write there".into(),
    }
}
