//! Running qemu-img, and reading what `qemu-img info` says about an image
//! and its snapshots.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use camino::Utf8Path;

use crate::error::{Error, Result};

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
pub(super) fn pass_as_fd3(command: &mut Command, fd: i32) {
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
        // Read through /proc/self/fd, a relative name resolves there: say
        // it as the image's own directory would.
        let backing = match backing.strip_prefix("/proc/self/fd/") {
            Some(relative) => path
                .parent()
                .map_or_else(|| relative.to_owned(), |dir| dir.join(relative).to_string()),
            None => backing,
        };
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
