//! Disk images as files: creating one ahead of `start`, finding images no VM
//! uses, and checking a VM's images.

use std::collections::BTreeSet;

use camino::Utf8PathBuf;

use argh::{ArgsInfo, FromArgs};
use serde::Serialize;
use serde_json::{Value, json};

use super::Env;
use crate::config::Storage;
use crate::error::{Error, Result};
use crate::render::{Output, grid, to_json};
use crate::storage::check_chain;
use crate::storage::{create_image, missing_images, qemu_img};
use crate::store::{Access, Store};
use crate::terminal::safe_field;
use crate::vm::Vm;

/// The files under the data directory: orphans and checks.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "storage")]
pub struct Args {
    #[argh(subcommand)]
    pub action: Verb,
}

#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand)]
pub enum Verb {
    Orphans(OrphansArgs),
    Verify(VerifyArgs),
}

/// List images under the data directory that no VM uses.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "orphans")]
pub struct OrphansArgs {
    /// delete them
    #[argh(switch)]
    pub delete: bool,
}

/// Check that a VM's images exist, are readable and have the configured format.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "verify")]
pub struct VerifyArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
}

pub fn run(env: &Env, args: Args) -> Result<Box<dyn Output>> {
    Ok(match args.action {
        Verb::Orphans(a) => Box::new(Orphans {
            files: orphans(env, a.delete)?,
            deleted: a.delete,
        }),
        Verb::Verify(a) => {
            let (vm, checks) = verify(env, &a.vm)?;
            Box::new(Verified { vm, checks })
        }
    })
}

/// Images under the data directory that no VM uses, and whether they were
/// deleted.
#[derive(Serialize)]
pub struct Orphans {
    pub files: Vec<Utf8PathBuf>,
    pub deleted: bool,
}

impl Output for Orphans {
    fn json(&self) -> Value {
        to_json(self)
    }

    fn text(&self) -> String {
        self.files
            .iter()
            .map(|f| {
                let f = safe_field(f.as_str());
                if self.deleted {
                    format!("deleted {f}\n")
                } else {
                    format!("{f}\n")
                }
            })
            .collect()
    }
}

/// `storage verify`: each drive's verdict. A problem exits 1.
pub struct Verified {
    pub vm: Vm,
    pub checks: Vec<DriveCheck>,
}

impl Output for Verified {
    fn json(&self) -> Value {
        let drives: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                json!({
                    "drive": c.drive,
                    "file": c.path,
                    "ok": c.problem.is_none(),
                    "problem": c.problem,
                })
            })
            .collect();
        json!({
            "id": self.vm.id.as_str(),
            "name": self.vm.name.as_str(),
            "ok": self.checks.iter().all(|c| c.problem.is_none()),
            "drives": drives,
        })
    }

    fn text(&self) -> String {
        let rows: Vec<[String; 3]> = self
            .checks
            .iter()
            .map(|c| {
                [
                    c.drive.clone(),
                    c.problem.clone().unwrap_or_else(|| "ok".into()),
                    c.path.as_ref().map(ToString::to_string).unwrap_or_default(),
                ]
            })
            .collect();
        grid(&["DRIVE", "STATE", "FILE"], &rows)
    }

    fn exit_code(&self) -> u8 {
        if self.checks.iter().any(|c| c.problem.is_some()) {
            crate::error::exit::FAILED
        } else {
            crate::error::exit::SUCCESS
        }
    }
}

/// Create the image of one drive now (it is created at start otherwise).
pub fn disk_create(env: &Env, query: &str, drive: &str) -> Result<Utf8PathBuf> {
    let vm = super::read(env, query)?;
    let disks_dir = env.disks_dir(&vm.id);
    let Some(entry) = vm
        .config
        .storage
        .iter()
        .find(|d| d.name().as_str() == drive)
    else {
        return Err(Error::Invalid {
            message: format!("`{}` has no drive named `{drive}`", vm.name),
            help: format!(
                "its drives: {}",
                vm.config
                    .storage
                    .iter()
                    .map(|d| d.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    };
    let path = match entry {
        Storage::Qcow2(_) | Storage::Raw(_) => entry.image(&disks_dir),
        Storage::Cdrom(_) | Storage::Virtfs(_) => None,
    }
    .ok_or_else(|| Error::Invalid {
        message: format!(
            "drive `{drive}` is {}, which maqet does not create",
            entry.kind()
        ),
        help: "only qcow2 and raw drives have images maqet can create".into(),
    })?;
    if path.exists() {
        return Err(Error::Refused {
            message: format!("{path} already exists; maqet never overwrites an image"),
            help: "remove it yourself first if you want a fresh one".into(),
        });
    }
    let single = crate::config::VmConfig {
        storage: vec![entry.clone()],
        ..vm.config.clone()
    };
    let Some(image) = missing_images(&single, &disks_dir).into_iter().next() else {
        return Err(Error::Invalid {
            message: format!("drive `{drive}` has no size, so maqet cannot create it"),
            help: "add `size` to the drive".into(),
        });
    };
    crate::storage::check_images(&single, &disks_dir, &env.policy)?;
    create_image(&image, &disks_dir)?;
    let store = Store::open(&env.dirs)?;
    store.write(|tx| {
        let mut current = tx.get(&vm.id)?;
        if !current.owned.contains(&image.path) {
            current.owned.push(image.path.clone());
        }
        tx.put(&current)
    })?;
    Ok(image.path)
}

/// Files under `$data_dir/disks` that no VM refers to; with `delete`,
/// removed (and their empty directories with them).
pub fn orphans(env: &Env, delete: bool) -> Result<Vec<Utf8PathBuf>> {
    let root = env.dirs.disks();
    if !root.exists() {
        return Ok(Vec::new());
    }
    // Only the paths are kept, not the records: large stores stay small.
    let mut used: BTreeSet<Utf8PathBuf> = BTreeSet::new();
    if let Some(store) = Store::open_existing(&env.dirs, Access::Read)? {
        store.each(|vm| {
            let disks_dir = env.disks_dir(&vm.id);
            used.extend(
                vm.config
                    .storage
                    .iter()
                    .flat_map(|d| d.files_used(&disks_dir)),
            );
            used.extend(vm.owned);
            // The seed, which `export` also writes (a domain names it).
            if vm.config.cloud_init.is_some() {
                used.insert(crate::cloud_init::seed_path(&disks_dir));
            }
            Ok(())
        })?;
    }
    let mut found = Vec::new();
    walk(&root, &mut found)?;
    let orphans: Vec<Utf8PathBuf> = found.into_iter().filter(|f| !used.contains(f)).collect();
    if delete {
        for file in &orphans {
            crate::paths::dir::remove_own_file(file)?;
            if let Some(dir) = file.parent()
                && dir != root
            {
                // Only succeeds when the VM's directory is now empty.
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    Ok(orphans)
}

fn walk(dir: &Utf8PathBuf, out: &mut Vec<Utf8PathBuf>) -> Result<()> {
    let entries = dir
        .read_dir_utf8()
        .map_err(|e| Error::io("cannot list", dir.clone(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", dir.clone(), e))?;
        let path = entry.path().to_owned();
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("cannot inspect", path.clone(), e))?;
        // Only directories and regular files are maqet's: a symlink or
        // anything else someone put here is neither listed nor removed.
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// One drive's check.
pub struct DriveCheck {
    pub drive: String,
    pub path: Option<Utf8PathBuf>,
    pub problem: Option<String>,
}

/// Check every file a VM's storage names: there, readable, of the format
/// the config says (probed here only to compare: QEMU is always told).
pub fn verify(env: &Env, query: &str) -> Result<(Vm, Vec<DriveCheck>)> {
    let vm = super::read(env, query)?;
    let disks_dir = env.disks_dir(&vm.id);
    let mut checks = Vec::new();
    for drive in &vm.config.storage {
        let name = drive.name().to_string();
        let (path, expected) = match drive {
            Storage::Virtfs(v) => {
                let path = v.path.as_path().to_owned();
                let problem =
                    (!path.is_dir()).then(|| "the shared directory is missing".to_owned());
                checks.push(DriveCheck {
                    drive: name,
                    path: Some(path),
                    problem,
                });
                continue;
            }
            Storage::Qcow2(_) => (drive.image(&disks_dir), "qcow2"),
            Storage::Raw(_) | Storage::Cdrom(_) => (drive.image(&disks_dir), "raw"),
        };
        let Some(path) = path else { continue };
        // maqet's own images live in its data directory, which the filter
        // keeps VM configs out of; the others are the config's.
        let owned = matches!(drive, Storage::Qcow2(q) if q.file.is_none());
        let refused = (!owned)
            .then(|| {
                env.policy
                    .check_vm(path.as_os_str(), camino::Utf8Path::new("/"))
                    .err()
            })
            .flatten()
            .map(|e| format!("refused by the path filter now: {e}"));
        let problem = if let Some(refused) = refused {
            Some(refused)
        } else if !path.exists() {
            Some(match drive {
                Storage::Qcow2(q) if q.size.is_some() => {
                    "missing (maqet creates it at start)".to_owned()
                }
                Storage::Raw(r) if r.size.is_some() => {
                    "missing (maqet creates it at start)".to_owned()
                }
                _ => "missing".to_owned(),
            })
        } else if std::fs::File::open(&path).is_err() {
            Some("not readable".to_owned())
        } else {
            probe_format(&path).and_then(|found| {
                (found != expected).then(|| {
                    format!(
                        "the file looks like {found}, but the config says {expected} (it is attached as {expected})"
                    )
                })
            })
        };
        // A qcow2 image's backing chain is checked as `start` checks it:
        // every member through the filter, present, with a recorded format.
        let problem = problem.or_else(|| {
            (expected == "qcow2")
                .then(|| check_chain(&name, &path, "qcow2", &env.policy).err())
                .flatten()
                .map(|e| e.to_string())
        });
        checks.push(DriveCheck {
            drive: name,
            path: Some(path),
            problem,
        });
    }
    Ok((vm, checks))
}

/// What format the file's content suggests, for comparison only.
fn probe_format(path: &Utf8PathBuf) -> Option<String> {
    let text = qemu_img(&["info", "--output=json", "-U", "--", path.as_str()]).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["format"].as_str().map(str::to_owned)
}
