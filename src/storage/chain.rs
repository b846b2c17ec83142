//! Backing chains: every file a qcow2 image would make QEMU open, checked
//! against the path filter before QEMU is told to open it.

use camino::{Utf8Path, Utf8PathBuf};

use super::qemu_img::info;
use crate::config::{ImageFormat, Storage, VmConfig};
use crate::error::{Error, Result};
use crate::paths::PathPolicy;

/// A file name that QEMU would read as a protocol (`nbd:`, `json:{...}`,
/// `http://...`) rather than a local file.
fn is_protocol(name: &str) -> bool {
    let head = name.split('/').next().unwrap_or("");
    name.starts_with("json:") || (head.contains(':') && !name.starts_with('/'))
}

/// The files below one qcow2 drive, as maqet checked them and QEMU will be
/// told to open them: QEMU never follows a name an image records itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// Backing images, nearest first.
    pub backing: Vec<Member>,
}

/// One image of a chain and its format (qcow2 or raw).
pub type Member = (Utf8PathBuf, &'static str);

/// The chains of a VM's qcow2 drives, by drive name.
pub type Chains = std::collections::BTreeMap<String, Chain>;

/// The format names allowed in a chain; anything else (vmdk, with its
/// extents; a probed format) could name host files maqet never sees.
fn chain_format(name: &str) -> Option<&'static str> {
    match name {
        "qcow2" => Some("qcow2"),
        "raw" => Some("raw"),
        _ => None,
    }
}

/// Check every file an image will make QEMU open — its backing chain and any
/// external data file — against the path filter, and return them. A qcow2
/// image names its backing file itself, so a downloaded image could point
/// at /etc/shadow. The first member is `path` itself.
pub fn check_chain(
    drive: &str,
    path: &Utf8Path,
    format: &str,
    policy: &PathPolicy,
) -> Result<Vec<Member>> {
    // Followed one image at a time, each reference checked before it is
    // opened: `--backing-chain` would already connect to an `nbd:` backing.
    const MAX_DEPTH: usize = 64;
    let first = chain_format(format).ok_or_else(|| Error::Refused {
        message: format!("drive `{drive}`: {path} would be read as `{format}`"),
        help: "maqet opens only qcow2 and raw images".into(),
    })?;
    let mut members = vec![(path.to_owned(), first)];
    for _ in 0..MAX_DEPTH {
        let (current, current_format) = members.last().cloned().expect("one member");
        // qemu-img would block on a FIFO and read a device: only regular
        // files are images.
        match std::fs::metadata(&current) {
            Ok(meta) if !meta.is_file() => {
                return Err(Error::Refused {
                    message: format!("drive `{drive}`: {current} is not a regular file"),
                    help: "give a disk image file (devices, FIFOs and sockets are not images)"
                        .into(),
                });
            }
            _ => {}
        }
        let member = info(&current, current_format)?;
        let refuse = |what: &str, name: &str, why: String, help: String| Error::Refused {
            message: format!(
                "drive `{drive}`: the {what} `{name}` of {} {why}",
                member.filename
            ),
            help,
        };
        let base = Utf8Path::new(&member.filename)
            .parent()
            .map_or_else(|| Utf8PathBuf::from("/"), Utf8Path::to_owned);
        let check = |what: &str, name: &str| -> Result<Utf8PathBuf> {
            if is_protocol(name) {
                return Err(refuse(
                    what,
                    name,
                    "is not a local file".into(),
                    "maqet only lets images refer to local files; rebase the image (`qemu-img rebase`)".into(),
                ));
            }
            policy
                .check_vm(std::ffi::OsStr::new(name), &base)
                .map_err(|e| refuse(what, name, format!("is refused: {e}"), e.help()))
        };
        // An external data file is opened by QEMU by the name the image
        // records, resolved against QEMU's own working directory (not the
        // image's): maqet cannot hand it over checked, so it is refused.
        if let Some(name) = &member.data_file {
            return Err(refuse(
                "data file",
                name,
                "is an external data file, which maqet does not attach".into(),
                format!(
                    "make a self-contained image: `qemu-img convert -O qcow2 {} new.qcow2`",
                    member.filename
                ),
            ));
        }
        let Some(name) = &member.backing else {
            return Ok(members);
        };
        let checked = check("backing file", name)?;
        // Without a recorded format QEMU would probe the backing file: a
        // raw file that looks like a qcow2 would then name a backing of
        // its own that maqet never read.
        let Some(recorded) = &member.backing_format else {
            return Err(refuse(
                "backing file",
                name,
                "has no recorded format, so QEMU would guess it".into(),
                format!(
                    "record it: `{}` (or -F raw)",
                    crate::qemu::argv::shell_line(&[
                        "qemu-img".into(),
                        "rebase".into(),
                        "-u".into(),
                        "-F".into(),
                        "qcow2".into(),
                        "-b".into(),
                        name.to_string(),
                        member.filename.to_string(),
                    ])
                ),
            ));
        };
        let Some(backing_format) = chain_format(recorded) else {
            return Err(refuse(
                "backing file",
                name,
                format!("is a `{recorded}` image"),
                "maqet allows only qcow2 and raw images in a chain; convert it with `qemu-img convert -O qcow2`".into(),
            ));
        };
        if !checked.is_file() {
            return Err(refuse(
                "backing file",
                name,
                "is missing or not a regular file".into(),
                "put the backing file back, or rebase the image".into(),
            ));
        }
        members.push((checked, backing_format));
    }
    Err(Error::Refused {
        message: format!("drive `{drive}`: the backing chain of {path} is deeper than {MAX_DEPTH}"),
        help: "flatten it with `qemu-img convert`".into(),
    })
}

/// Check the chains of every existing qcow2 image a config names, and of
/// the backing files of images still to be created; return them by drive.
pub fn check_images(
    config: &VmConfig,
    disks_dir: &Utf8Path,
    policy: &PathPolicy,
) -> Result<Chains> {
    check_chains(&chains_to_check(config, disks_dir), policy)
}

/// [`check_images`] of chains already worked out.
pub fn check_chains(starts: &[ChainStart<'_>], policy: &PathPolicy) -> Result<Chains> {
    let mut chains = Chains::new();
    for start in starts {
        let mut members = check_chain(start.drive, &start.path, start.format, policy)?;
        if start.is_top {
            members.remove(0);
        }
        chains.insert(start.drive.to_owned(), Chain { backing: members });
    }
    Ok(chains)
}

/// Where the chain of one drive starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStart<'c> {
    pub drive: &'c str,
    pub path: Utf8PathBuf,
    pub format: &'static str,
    /// The drive's own image (it exists); else the base of one to create.
    pub is_top: bool,
}

/// The chains [`check_images`] reads: each qcow2 image that exists, or the
/// base of one still to be created. Empty when no drive needs qemu-img to
/// be checked.
pub fn chains_to_check<'c>(config: &'c VmConfig, disks_dir: &Utf8Path) -> Vec<ChainStart<'c>> {
    let mut chains = Vec::new();
    for drive in &config.storage {
        let Storage::Qcow2(q) = drive else { continue };
        let path = q.image(disks_dir);
        if path.exists() {
            chains.push(ChainStart {
                drive: q.name.as_str(),
                path,
                format: "qcow2",
                is_top: true,
            });
        } else if let Some(base) = &q.backing_file {
            let format = match q.backing_format.unwrap_or(ImageFormat::Qcow2) {
                ImageFormat::Qcow2 => "qcow2",
                ImageFormat::Raw => "raw",
            };
            chains.push(ChainStart {
                drive: q.name.as_str(),
                path: base.as_path().to_owned(),
                format,
                is_top: false,
            });
        }
    }
    chains
}
