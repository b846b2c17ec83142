//! Creating the images a config names but that do not exist yet.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};

use super::qemu_img::{PASSED_IMAGE, pass_as_fd3};
use crate::config::{ImageFormat, Storage, VmConfig};
use crate::dirs::ensure_private_dir;
use crate::error::{Error, Result};

/// Room an image needs besides its data: qcow2 metadata and the first writes.
const MIN_FREE: u64 = 16 * 1024 * 1024;

/// An image to create: where, in what format, how large, on what base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    pub path: Utf8PathBuf,
    pub format: &'static str,
    pub size_bytes: u64,
    pub backing: Option<(Utf8PathBuf, &'static str)>,
}

/// The images a config names that do not exist yet and that maqet should
/// create: qcow2 drives without a file (kept under `disks_dir`), and qcow2 or
/// raw drives whose file is missing but which have a size.
pub fn missing_images(config: &VmConfig, disks_dir: &Utf8Path) -> Vec<NewImage> {
    let mut images = Vec::new();
    for drive in &config.storage {
        match drive {
            Storage::Qcow2(q) => {
                let path = q.image(disks_dir);
                if let (false, Some(size)) = (path.exists(), q.size) {
                    let backing = q.backing_file.as_ref().map(|b| {
                        let format = match q.backing_format.unwrap_or(ImageFormat::Qcow2) {
                            ImageFormat::Qcow2 => "qcow2",
                            ImageFormat::Raw => "raw",
                        };
                        (b.as_path().to_owned(), format)
                    });
                    images.push(NewImage {
                        path,
                        format: "qcow2",
                        size_bytes: size.0.0,
                        backing,
                    });
                }
            }
            Storage::Raw(r) => {
                if let (false, Some(size)) = (r.file.as_path().exists(), r.size) {
                    images.push(NewImage {
                        path: r.file.as_path().to_owned(),
                        format: "raw",
                        size_bytes: size.0.0,
                        backing: None,
                    });
                }
            }
            Storage::Cdrom(_) | Storage::Virtfs(_) => {}
        }
    }
    images
}

/// Create an image with `qemu-img`, readable by the user alone. The format
/// is always given (`-f`, and `-F` for a backing file) so nothing is probed.
pub fn create_image(image: &NewImage, disks_dir: &Utf8Path) -> Result<()> {
    if image.path.starts_with(disks_dir) {
        ensure_private_dir(disks_dir)?;
    }
    let dir = image.path.parent().unwrap_or(Utf8Path::new("/"));
    let free = nix::sys::statvfs::statvfs(dir.as_std_path())
        .map(|v| v.blocks_available() * v.fragment_size())
        .map_err(|e| Error::io("cannot read the free space of", dir, e.into()))?;
    if free < MIN_FREE {
        return Err(Error::Invalid {
            message: format!(
                "not enough free space to create {}: {} KiB free in {dir}",
                image.path,
                free / 1024
            ),
            help: "free some space (images grow as the guest writes), or put the image elsewhere with `file`".into(),
        });
    }
    // Claimed exclusively first (qemu-img itself would overwrite a file
    // that appeared meanwhile), in the directory opened and checked by
    // descriptor: a directory swapped for a symlink cannot get the file
    // elsewhere. qemu-img then writes the very file claimed, by
    // descriptor: a name swapped after the claim reaches nothing.
    let (Some(parent), Some(name)) = (image.path.parent(), image.path.file_name()) else {
        return Err(Error::invalid(
            format!("{} names no file", image.path),
            "give the image a file name",
        ));
    };
    let claimed = crate::paths::dir::CheckedDir::open(parent, None)?.create_new(name)?;
    let mut command = Command::new("qemu-img");
    command.args(["create", "-q", "-f", image.format]);
    if let Some((base, format)) = &image.backing {
        command.args(["-b", base.as_str(), "-F", format]);
    }
    command
        .arg("--")
        .arg(PASSED_IMAGE)
        .arg(image.size_bytes.to_string())
        .stdin(Stdio::null());
    pass_as_fd3(&mut command, {
        use std::os::fd::AsRawFd;
        claimed.as_raw_fd()
    });
    // SAFETY: umask is async-signal-safe; it runs in the child before exec,
    // so the image is never readable by others, not even for a moment.
    unsafe {
        command.pre_exec(|| {
            nix::libc::umask(0o077);
            Ok(())
        });
    }
    let output = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::invalid(
            "cannot find `qemu-img`, which creates disk images",
            "install it: `apt-get install qemu-utils` (Debian/Ubuntu), `dnf install qemu-img` (Fedora), `pacman -S qemu-img` (Arch)",
        ),
        _ => Error::io("cannot run qemu-img for", image.path.clone(), e),
    })?;
    if !output.status.success() {
        let _ = crate::paths::dir::remove_own_file(&image.path);
        return Err(Error::invalid(
            format!(
                "qemu-img could not create {}: {}",
                image.path,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            "check the size, the backing file and the free space",
        ));
    }
    claimed
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("cannot set the mode of", image.path.clone(), e))
}
