//! The checks a config file must pass once it is read: unique names, files
//! that must exist, and what each kind of drive needs.

use camino::{Utf8Path, Utf8PathBuf};

use super::load::{AuthorizedKey, Problem, UserPath};
use super::schema::{CloudInit, Interface, Layer, Storage};

/// Checks that need more than one value: unique names, files that must exist,
/// arguments that would take over what maqet owns.
pub(super) fn check_layer(layer: &Layer, src: &str) -> std::result::Result<(), Problem> {
    let quoted = |s: &str| format!("\"{s}\"");
    if let Some(storage) = &layer.storage {
        let mut seen = Vec::new();
        for drive in storage {
            let name = drive.name().as_str();
            if seen.contains(&name) {
                return Err(Problem::at(
                    src,
                    &quoted(name),
                    1,
                    format!("two storage entries are named `{name}`"),
                    "give each drive its own name; across files, a later entry with the same name replaces the earlier one".into(),
                ));
            }
            seen.push(name);
            if name.eq_ignore_ascii_case(crate::cloud_init::SEED_NAME) {
                return Err(Problem::at(
                    src,
                    &quoted(name),
                    0,
                    format!("the drive name `{name}` is maqet's, for the cloud-init seed"),
                    "give the drive another name".into(),
                ));
            }
            check_drive(drive)
                .map_err(|(message, help)| Problem::at(src, &quoted(name), 0, message, help))?;
        }
    }
    if let Some(networks) = &layer.network {
        let mut seen = Vec::new();
        for net in networks {
            let name = net.name().as_str();
            if seen.contains(&name) {
                return Err(Problem::at(
                    src,
                    &quoted(name),
                    1,
                    format!("two network entries are named `{name}`"),
                    "give each network its own name".into(),
                ));
            }
            seen.push(name);
        }
    }
    if let Some(boot) = &layer.boot {
        // Before existence: `a.img,/etc/shadow` names no file, and the
        // comma is what the user needs to hear about.
        super::check_boot_words(boot.initrd.as_ref(), boot.append.as_deref())
            .map_err(|(field, message, help)| Problem::at(src, field, 0, message, help))?;
        for path in [&boot.kernel, &boot.initrd, &boot.firmware]
            .into_iter()
            .flatten()
        {
            if !path.as_path().is_file() {
                return Err(Problem::at(
                    src,
                    "boot",
                    0,
                    format!("boot file {} {}", path.as_path(), why_not_a_file(path.as_path())),
                    "check the path; relative paths are resolved against the config file's directory".into(),
                ));
            }
        }
    }
    if let Some(ci) = &layer.cloud_init {
        check_cloud_init(ci).map_err(|(field, err)| {
            let help = miette::Diagnostic::help(&err)
                .map(|h| h.to_string())
                .unwrap_or_default();
            Problem::at(src, field, 0, err.to_string(), help)
        })?;
    }
    if let Some(args) = &layer.arguments {
        super::check_arguments(args).map_err(|bad| {
            // A word written with escapes (`\u{0}`) is not in the text as
            // it reads; point at the list then.
            let word = quoted(&bad.word);
            let needle = if src.contains(&word) {
                &word
            } else {
                "arguments"
            };
            Problem::at(src, needle, 0, bad.message, bad.help)
        })?;
    }
    Ok(())
}

/// The files a cloud-init section names are read now, as they will be when
/// the seed is written: each key file holds keys, the user data is a kind
/// cloud-init takes; with no keys listed, `~/.ssh` has some.
fn check_cloud_init(
    ci: &CloudInit,
) -> std::result::Result<(), (&'static str, crate::error::Error)> {
    use crate::cloud_init as seed;
    for key in &ci.ssh_authorized_keys {
        if let AuthorizedKey::File(path) = key {
            crate::settings::check_trusted_file(path.as_path(), seed::TRUST_WHY)
                .map_err(|e| ("ssh_authorized_keys", e))?;
            seed::read_key_file(path.as_path(), None).map_err(|e| ("ssh_authorized_keys", e))?;
        }
    }
    if ci.ssh_authorized_keys.is_empty() {
        let home = std::env::var("HOME").ok().map(Utf8PathBuf::from);
        seed::keys(ci, home.as_deref(), None).map_err(|e| ("cloud_init", e))?;
    }
    if let Some(path) = &ci.user_data {
        let text = seed::read_small(path.as_path(), seed::MAX_USER_DATA, "user data file", None)
            .map_err(|e| ("user_data", e))?;
        one_name(path.as_path()).map_err(|e| ("user_data", e))?;
        crate::settings::check_trusted_file(path.as_path(), seed::TRUST_WHY)
            .map_err(|e| ("user_data", e))?;
        seed::check_user_data(text.as_bytes()).map_err(|e| ("user_data", e))?;
    }
    Ok(())
}

/// A file whose whole text reaches the guest has one name: another name of
/// a hard link may be a secret the filter would refuse.
fn one_name(path: &Utf8Path) -> crate::error::Result<()> {
    let meta =
        std::fs::metadata(path).map_err(|e| crate::error::Error::io("cannot read", path, e))?;
    crate::storage::one_name(path, &meta)
}

/// Why a path that should name a file does not: for messages.
fn why_not_a_file(path: &Utf8Path) -> &'static str {
    if path.is_dir() {
        "is a directory, not a file"
    } else if path.exists() {
        "is not a regular file"
    } else {
        "does not exist"
    }
}

/// QEMU's IDE/SATA hard disk (`ide-hd`) cannot be read-only ("Block node
/// is read-only" at start); virtio and SCSI disks can, and so can CD-ROMs.
fn read_only_disk(
    name: &str,
    interface: Interface,
    readonly: bool,
) -> std::result::Result<(), (String, String)> {
    if readonly && matches!(interface, Interface::Sata | Interface::Ide) {
        return Err((
            format!(
                "drive `{name}`: a read-only disk cannot use the {} interface (QEMU's IDE disk is always writable)",
                if interface == Interface::Sata {
                    "Sata"
                } else {
                    "Ide"
                }
            ),
            "use `interface: Virtio` or `Scsi` for a read-only disk, or a `Cdrom`".into(),
        ));
    }
    Ok(())
}

/// What each kind of drive needs to exist before the VM can use it.
fn check_drive(drive: &Storage) -> std::result::Result<(), (String, String)> {
    let name = drive.name();
    // QEMU cannot use a directory as a disk, and a FIFO or device is no
    // image (a FIFO would block maqet and QEMU); it would fail only at start.
    let directory = |kind: &str, path: &UserPath| {
        let meta = std::fs::metadata(path.as_path()).ok()?;
        (!meta.is_file()).then(|| {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            (
                format!(
                    "{kind} `{name}`: {} is {what}, not an image file",
                    path.as_path()
                ),
                "point `file` at an image file".to_owned(),
            )
        })
    };
    match drive {
        Storage::Qcow2(d) => {
            read_only_disk(name.as_str(), d.interface, d.readonly)?;
            if let Some(problem) = d.file.as_ref().and_then(|f| directory("qcow2 drive", f)) {
                return Err(problem);
            }
            let exists = d.file.as_ref().is_some_and(|f| f.as_path().exists());
            if !exists && d.size.is_none() {
                let what = match &d.file {
                    Some(f) => format!("its file {} does not exist", f.as_path()),
                    None => "it has no file".into(),
                };
                return Err((
                    format!("qcow2 drive `{name}` has no size, and {what}"),
                    "give `size: \"20G\"` so maqet can create it, or point `file` at an existing image".into(),
                ));
            }
            if d.backing_format.is_some() && d.backing_file.is_none() {
                return Err((
                    format!("qcow2 drive `{name}` has a backing_format but no backing_file"),
                    "add `backing_file`, or remove `backing_format`".into(),
                ));
            }
            if let Some(backing) = &d.backing_file
                && !backing.as_path().is_file()
            {
                return Err((
                    format!(
                        "backing file {} of drive `{name}` {}",
                        backing.as_path(),
                        why_not_a_file(backing.as_path())
                    ),
                    "check the path".into(),
                ));
            }
        }
        Storage::Raw(d) => {
            if let Some(problem) = directory("raw drive", &d.file) {
                return Err(problem);
            }
            read_only_disk(name.as_str(), d.interface, d.readonly)?;
            if !d.file.as_path().exists() && d.size.is_none() {
                return Err((
                    format!(
                        "raw drive `{name}`: {} does not exist and no size is given",
                        d.file.as_path()
                    ),
                    "give `size` so maqet can create it, or point `file` at an existing image"
                        .into(),
                ));
            }
        }
        Storage::Cdrom(d) => {
            if d.interface == Interface::Virtio {
                return Err((
                    format!("cdrom `{name}` cannot use the Virtio interface"),
                    "QEMU has no virtio CD-ROM: use `interface: Sata`, `Ide` or `Scsi`".into(),
                ));
            }
            if let Some(problem) = directory("cdrom", &d.file) {
                return Err(problem);
            }
            if !d.file.as_path().is_file() {
                return Err((
                    format!(
                        "cdrom `{name}`: {} {}",
                        d.file.as_path(),
                        why_not_a_file(d.file.as_path())
                    ),
                    "point `file` at an existing ISO image".into(),
                ));
            }
        }
        Storage::Virtfs(d) => {
            if !d.path.as_path().is_dir() {
                return Err((
                    format!(
                        "virtfs share `{name}`: {} is not an existing directory",
                        d.path.as_path()
                    ),
                    "create the directory first, or fix `path`".into(),
                ));
            }
        }
    }
    Ok(())
}
