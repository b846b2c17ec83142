//! Disk images maqet creates for a VM before it starts.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};

use crate::config::{ImageFormat, Qcow2Drive, Storage, VmConfig};
use crate::dirs::ensure_private_dir;
use crate::error::{Error, Result};
use crate::layout::owned_image;
use crate::paths::PathPolicy;

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

/// What `qemu-img info` says about one image of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub filename: String,
    pub format: String,
    pub virtual_size: u64,
    pub actual_size: Option<u64>,
    /// The backing file as QEMU will open it (`full-backing-filename`).
    pub backing: Option<String>,
    /// The backing file's format, as the image's header records it.
    pub backing_format: Option<String>,
    /// A qcow2 external data file.
    pub data_file: Option<String>,
    pub snapshots: Vec<SnapshotInfo>,
}

/// An internal snapshot of a qcow2 image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub id: String,
    pub name: String,
    /// Bytes of saved RAM and device state; 0 for a disk-only snapshot.
    pub vm_state_size: u64,
    /// Seconds since the epoch when it was taken.
    pub date: u64,
    /// Guest clock at the snapshot, in seconds.
    pub vm_clock: u64,
}

impl SnapshotInfo {
    pub fn from_json(v: &serde_json::Value) -> SnapshotInfo {
        SnapshotInfo {
            id: v["id"].as_str().unwrap_or_default().to_owned(),
            name: v["name"].as_str().unwrap_or_default().to_owned(),
            vm_state_size: v["vm-state-size"].as_u64().unwrap_or(0),
            date: v["date-sec"].as_u64().unwrap_or(0),
            vm_clock: v["vm-clock-sec"].as_u64().unwrap_or(0),
        }
    }
}

/// Run qemu-img with `args`; its stdout on success, its stderr as the error.
pub fn qemu_img(args: &[&str]) -> Result<String> {
    qemu_img_with(args, None)
}

/// Where qemu-img finds the image maqet passed it: its descriptor 3.
pub const PASSED_IMAGE: &str = "/proc/self/fd/3";

/// Run qemu-img on an image maqet opened and checked itself: qemu-img gets
/// it as descriptor 3 and opens [`PASSED_IMAGE`] (the same file, whatever
/// its name now leads to). Another user who can rename things above the
/// image cannot make a write land elsewhere.
pub fn qemu_img_on(image: &std::fs::File, args: &[&str]) -> Result<String> {
    use std::os::fd::AsRawFd;
    qemu_img_with(args, Some(image.as_raw_fd()))
}

fn qemu_img_with(args: &[&str], image: Option<i32>) -> Result<String> {
    let mut command = Command::new("qemu-img");
    command.args(args).stdin(Stdio::null());
    match image {
        Some(fd) => pass_as_fd3(&mut command, fd),
        // SAFETY: async-signal-safe system calls only, in the child.
        None => unsafe {
            command.pre_exec(|| {
                crate::qemu::spawn::close_on_exec_from(3);
                Ok(())
            });
        },
    }
    let output = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing_qemu_img(),
        _ => Error::io("cannot run", "qemu-img", e),
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::invalid(
            format!(
                "qemu-img {}: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            "check the image and its path",
        ))
    }
}

fn missing_qemu_img() -> Error {
    Error::invalid(
        "cannot find `qemu-img`, which maqet uses for disk images",
        "install it: `apt-get install qemu-utils` (Debian/Ubuntu), `dnf install qemu-img` (Fedora), `pacman -S qemu-img` (Arch)",
    )
}

/// Have the child get `fd` as its descriptor 3.
fn pass_as_fd3(command: &mut Command, fd: i32) {
    // SAFETY: dup2 and fcntl are async-signal-safe; the closure runs in the
    // child before exec. dup2 onto itself would keep close-on-exec, so that
    // case clears the flag instead.
    unsafe {
        command.pre_exec(move || {
            let ok = if fd == 3 {
                nix::libc::fcntl(3, nix::libc::F_SETFD, 0) >= 0
            } else {
                nix::libc::dup2(fd, 3) >= 0
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            crate::qemu::spawn::close_on_exec_from(4);
            Ok(())
        });
    }
}

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
    // A hard link's other names may be anywhere (a root-made link to
    // /etc/shadow passes every check of this name): only a file with one
    // name, or a link of your own file when not root, which the kernel's
    // protected_hardlinks leaves to the file's owner.
    {
        use std::os::unix::fs::MetadataExt;
        let me = nix::unistd::geteuid().as_raw();
        if meta.nlink() > 1 && (me == 0 || meta.uid() != me) {
            return Err(Error::Refused {
                message: format!(
                    "{path} has {} names (hard links); maqet cannot tell where the others are",
                    meta.nlink()
                ),
                help: "copy it to a file of its own (`cp --reflink=auto`) and use the copy".into(),
            });
        }
    }
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

fn changed(path: &Utf8Path, now: &str) -> Error {
    Error::Refused {
        message: format!("{path} changed since maqet checked it (it is now {now})"),
        help: "someone is changing the directories above it; check who can write there".into(),
    }
}

/// True when qemu-img can be run at all.
pub fn have_qemu_img() -> bool {
    Command::new("qemu-img")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What qemu-img says about one image. The format is given (never probed);
/// `-U` reads images a running QEMU holds.
pub fn info(path: &Utf8Path, format: &str) -> Result<ImageInfo> {
    let text = qemu_img(&[
        "info",
        "--output=json",
        "-U",
        "-f",
        format,
        "--",
        path.as_str(),
    ])?;
    parse_info(path, &text)
}

/// `qemu-img info --output=json` of the image at `path`, read.
fn parse_info(path: &Utf8Path, text: &str) -> Result<ImageInfo> {
    let m: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::invalid(format!("qemu-img info gave no JSON: {e}"), "check qemu-img")
    })?;
    Ok(ImageInfo {
        filename: path.to_string(),
        format: m["format"].as_str().unwrap_or_default().to_owned(),
        virtual_size: m["virtual-size"].as_u64().unwrap_or(0),
        actual_size: m["actual-size"].as_u64(),
        backing: m["full-backing-filename"]
            .as_str()
            .or(m["backing-filename"].as_str())
            .map(str::to_owned),
        backing_format: m["backing-filename-format"].as_str().map(str::to_owned),
        data_file: m["format-specific"]["data"]["data-file"]
            .as_str()
            .map(str::to_owned),
        snapshots: m["snapshots"]
            .as_array()
            .map(|s| s.iter().map(SnapshotInfo::from_json).collect())
            .unwrap_or_default(),
    })
}

/// A qcow2 image to hot-plug must stand alone: QEMU is told to open no
/// backing file (and, confined, could not), so an overlay would show the
/// guest holes where its base has data; an external data file QEMU would
/// open by a name maqet never checked. Read through the descriptor maqet
/// opened, so it is the file QEMU will get.
pub fn check_standalone_qcow2(image: &std::fs::File, path: &Utf8Path) -> Result<()> {
    let text = qemu_img_on(
        image,
        &[
            "info",
            "--output=json",
            "-U",
            "-f",
            "qcow2",
            "--",
            PASSED_IMAGE,
        ],
    )?;
    let info = parse_info(path, &text)?;
    let flatten = format!(
        "make a self-contained image: `qemu-img convert -O qcow2 {path} new.qcow2`, or put the \
         disk in the VM's config, where maqet checks its backing chain"
    );
    if let Some(backing) = info.backing {
        return Err(Error::Refused {
            message: format!(
                "{path} has a backing file ({backing}); a hot-plugged image must stand alone"
            ),
            help: flatten,
        });
    }
    if let Some(data) = info.data_file {
        return Err(Error::Refused {
            message: format!(
                "{path} has an external data file ({data}), which maqet does not attach"
            ),
            help: flatten,
        });
    }
    Ok(())
}

/// The top image of a chain (snapshots live there).
pub fn info_chain(path: &Utf8Path, format: &str) -> Result<Vec<ImageInfo>> {
    info(path, format).map(|top| vec![top])
}

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
                    "record it: `qemu-img rebase -u -F qcow2 -b {name} {}` (or -F raw)",
                    member.filename
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

/// Put every path a stored config names through the filter again. A path
/// was checked when the VM was added, but the file there can since have
/// become a symlink into /etc.
pub fn recheck_paths(config: &VmConfig, policy: &PathPolicy) -> Result<()> {
    let boot = &config.boot;
    let mut paths: Vec<(String, &Utf8Path)> = [
        ("kernel", &boot.kernel),
        ("initrd", &boot.initrd),
        ("firmware", &boot.firmware),
    ]
    .into_iter()
    .filter_map(|(what, p)| p.as_ref().map(|p| (what.to_owned(), p.as_path())))
    .collect();
    for drive in &config.storage {
        let path = match drive {
            Storage::Qcow2(q) => q.file.as_ref().map(|f| f.as_path()),
            Storage::Raw(r) => Some(r.file.as_path()),
            Storage::Cdrom(c) => Some(c.file.as_path()),
            Storage::Virtfs(v) => Some(v.path.as_path()),
        };
        if let Some(path) = path {
            paths.push((format!("drive `{}`", drive.name()), path));
        }
    }
    check_shares(config, policy)?;
    for (what, path) in paths {
        policy
            .check_vm(path.as_os_str(), Utf8Path::new("/"))
            .map_err(|e| Error::Refused {
                message: format!("{what}: {e}"),
                help: format!("{} (the file changed since the VM was added)", e.help()),
            })?;
    }
    Ok(())
}
