//! Disk images maqet creates for a VM before it starts.

use camino::{Utf8Path, Utf8PathBuf};

use crate::config::{Qcow2Drive, Storage, UserPath, VmConfig};
use crate::error::{Error, Result};
use crate::layout::owned_image;
use crate::paths::PathPolicy;

mod chain;
mod create;
mod open;
mod qemu_img;

pub use chain::{
    Chain, ChainStart, Chains, Member, chains_to_check, check_chain, check_chains, check_images,
};
pub use create::{NewImage, create_image, missing_images};
pub use open::{one_name, open_image};
pub use qemu_img::{
    ImageInfo, PASSED_IMAGE, SnapshotInfo, check_standalone_qcow2, have_qemu_img, info, info_chain,
    qemu_img, qemu_img_on,
};

impl Storage {
    /// The image file this drive uses, given the VM's disks directory:
    /// its `file`, or maqet's own image for a qcow2 drive without one.
    /// `None` for a shared directory.
    pub fn image(&self, disks: &Utf8Path) -> Option<Utf8PathBuf> {
        match self {
            Storage::Qcow2(q) => Some(q.image(disks)),
            Storage::Raw(r) => Some(r.file.as_path().to_owned()),
            Storage::Cdrom(c) => Some(c.file.as_path().to_owned()),
            Storage::Virtfs(_) => None,
        }
    }

    /// The files this drive uses: its image, and the backing file its
    /// config names (an image another VM's config names as a base is in
    /// use too).
    pub fn files_used(&self, disks: &Utf8Path) -> Vec<Utf8PathBuf> {
        let backing = match self {
            Storage::Qcow2(q) => q.backing_file.as_ref().map(|b| b.as_path().to_owned()),
            _ => None,
        };
        self.image(disks).into_iter().chain(backing).collect()
    }
}

impl Qcow2Drive {
    /// The image file of this drive: its `file`, or else the one maqet
    /// creates for it in the VM's disks directory.
    pub fn image(&self, disks: &Utf8Path) -> Utf8PathBuf {
        self.file.as_ref().map_or_else(
            || owned_image(disks, self.name.as_str()),
            |f| f.as_path().to_owned(),
        )
    }
}

/// Refuse shared directories that hold the user's home or maqet's own
/// directories (see [`PathPolicy::check_share`]).
pub fn check_shares(config: &VmConfig, policy: &PathPolicy) -> Result<()> {
    for drive in &config.storage {
        if let Storage::Virtfs(share) = drive {
            policy
                .check_share(share.path.as_path())
                .map_err(|e| Error::Refused {
                    message: format!("virtfs `{}`: {e}", share.name),
                    help: e.help(),
                })?;
        }
    }
    Ok(())
}

/// [`recheck_paths`], and the config with each path as it resolves now:
/// for a definition another program will open by name (`export`).
pub fn resolved_paths(config: &VmConfig, policy: &PathPolicy) -> Result<VmConfig> {
    recheck_paths(config, policy)?;
    let resolve = |path: &mut UserPath| -> Result<()> {
        let now = policy
            .check_vm(path.as_path().as_os_str(), Utf8Path::new("/"))
            .map_err(Error::path)?;
        *path = UserPath::checked(now);
        Ok(())
    };
    let mut out = config.clone();
    let boot = &mut out.boot;
    for path in [&mut boot.kernel, &mut boot.initrd, &mut boot.firmware]
        .into_iter()
        .flatten()
    {
        resolve(path)?;
    }
    for drive in &mut out.storage {
        match drive {
            Storage::Qcow2(q) => q.file.as_mut().map(resolve).transpose().map(drop)?,
            Storage::Raw(r) => resolve(&mut r.file)?,
            Storage::Cdrom(c) => resolve(&mut c.file)?,
            Storage::Virtfs(v) => resolve(&mut v.path)?,
        }
    }
    Ok(out)
}

/// Put every path a stored config names through the filter again. A path
/// was checked when the VM was added, but the file there can since have
/// become a symlink into /etc.
pub fn recheck_paths(config: &VmConfig, policy: &PathPolicy) -> Result<()> {
    let boot = &config.boot;
    // Boot files are opened by QEMU by name, so checked for a second name
    // here; images are checked as maqet opens them.
    let mut paths: Vec<(String, &Utf8Path, bool)> = [
        ("kernel", &boot.kernel),
        ("initrd", &boot.initrd),
        ("firmware", &boot.firmware),
    ]
    .into_iter()
    .filter_map(|(what, p)| p.as_ref().map(|p| (what.to_owned(), p.as_path(), true)))
    .collect();
    for drive in &config.storage {
        let path = match drive {
            Storage::Qcow2(q) => q.file.as_ref().map(|f| f.as_path()),
            Storage::Raw(r) => Some(r.file.as_path()),
            Storage::Cdrom(c) => Some(c.file.as_path()),
            Storage::Virtfs(v) => Some(v.path.as_path()),
        };
        if let Some(path) = path {
            paths.push((format!("drive `{}`", drive.name()), path, false));
        }
    }
    check_shares(config, policy)?;
    for (what, path, by_name) in paths {
        policy
            .check_vm(path.as_os_str(), Utf8Path::new("/"))
            .map_err(|e| Error::Refused {
                message: format!("{what}: {e}"),
                help: format!("{} (the file changed since the VM was added)", e.help()),
            })?;
        if let Some(meta) = by_name.then(|| std::fs::metadata(path).ok()).flatten() {
            one_name(path, &meta).map_err(|e| match e {
                Error::Refused { message, help } => Error::Refused {
                    message: format!("{what}: {message}"),
                    help,
                },
                other => other,
            })?;
        }
    }
    Ok(())
}
