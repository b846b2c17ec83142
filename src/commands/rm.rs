use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write as _};
use std::time::Duration;

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use super::{Env, Note, StopOptions, notify, stop};
use crate::config::Name;
use crate::error::{Error, Result};
use crate::paths::dir::remove_own_file;
use crate::reconcile::reconcile;
use crate::render::Output;
use crate::store::{Access, Store};
use crate::terminal::safe_field;
use crate::vm::VmId;

/// Remove VMs from the registry.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "rm",
    note = "`rm --all` asks first on a terminal; elsewhere it needs --force. Disk images are kept.",
    example = "maqet rm web\nmaqet rm --all --force"
)]
pub struct Args {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: Option<String>,

    /// remove every VM
    #[argh(switch)]
    pub all: bool,

    /// never ask; remove VMs that are running
    #[argh(switch)]
    pub force: bool,

    /// also delete the disk images maqet created for the VM (never yours)
    #[argh(switch)]
    pub clean_storage: bool,
}

pub fn run(env: &Env, args: Args) -> Result<Removals> {
    let both = "`maqet rm NAME` removes one VM; `maqet rm --all` removes every VM";
    let target = match (args.vm, args.all) {
        (Some(vm), false) => Target::One(vm),
        (None, true) => Target::All,
        (Some(_), true) => return Err(Error::usage("give a VM or --all, not both", both)),
        (None, false) => return Err(Error::usage("rm needs a VM or --all", both)),
    };
    if matches!(target, Target::All) && !args.force {
        confirm("Remove every VM from the registry?")?;
    }
    remove(env, &target, args.force, args.clean_storage, &mut notify).map(Removals)
}

/// Ask on a terminal; refuse when nobody can answer (DESIGN.md §8: never
/// prompt when stdin is not a terminal).
fn confirm(question: &str) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::Refused {
            message: "refusing to remove every VM without confirmation".into(),
            help: "stdin is not a terminal, so maqet cannot ask; add --force".into(),
        });
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("cannot read the answer from", "stdin", e))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Error::Refused {
            message: "nothing removed".into(),
            help: "answer `y` to remove, or add --force".into(),
        })
    }
}

/// Every VM removed, and what happened to its images.
pub struct Removals(pub Vec<Removed>);

impl Output for Removals {
    fn json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|r| {
                    let in_use: Vec<Value> = r
                        .in_use
                        .iter()
                        .map(|(file, user)| json!({"file": file, "by": user.as_str()}))
                        .collect();
                    json!({
                        "id": r.id.as_str(),
                        "name": r.name.as_str(),
                        "deleted": r.deleted,
                        "kept": r.kept,
                        "in_use": in_use,
                    })
                })
                .collect(),
        )
    }

    fn text(&self) -> String {
        let mut text = String::new();
        for r in &self.0 {
            let _ = writeln!(text, "removed {} ({})", r.name, r.id.short());
            for file in &r.deleted {
                let _ = writeln!(text, "  deleted {}", safe_field(file.as_str()));
            }
            for file in &r.kept {
                let _ = writeln!(
                    text,
                    "  kept {} (not created by maqet)",
                    safe_field(file.as_str())
                );
            }
            for (file, user) in &r.in_use {
                let _ = writeln!(
                    text,
                    "  kept {} (used by {user})",
                    safe_field(file.as_str())
                );
            }
        }
        text
    }
}

pub enum Target {
    One(String),
    All,
}

/// A removed VM, and with `--clean-storage` what happened to its images.
/// Only what is reported is kept: `rm --all` of a large store stays small.
pub struct Removed {
    pub name: Name,
    pub id: VmId,
    /// Images maqet had created for it, now deleted.
    pub deleted: Vec<camino::Utf8PathBuf>,
    /// Images the user supplied: never deleted.
    pub kept: Vec<camino::Utf8PathBuf>,
    /// Images maqet made for it that another VM still uses (as a drive or
    /// as the backing file its config names), with that VM's name: kept.
    pub in_use: Vec<(camino::Utf8PathBuf, Name)>,
}

/// What a removed record said, for cleaning up after it.
struct Gone {
    name: Name,
    id: VmId,
    /// Images maqet created for it.
    owned: Vec<camino::Utf8PathBuf>,
    /// Every image file its drives name.
    images: Vec<camino::Utf8PathBuf>,
}

/// Remove VMs from the registry, in one transaction: either every named VM
/// goes or none does. A running VM is refused, or with `force` stopped
/// first (at once, without asking the guest). Returns what was removed.
pub fn remove(
    env: &Env,
    target: &Target,
    force: bool,
    clean_storage: bool,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<Vec<Removed>> {
    // Every id, and the whole record only of the VMs reconciling may change.
    let (mut ids, mut live) = match Store::open_existing(&env.dirs, Access::Read)? {
        None => match target {
            Target::One(query) => {
                return Err(Error::VmNotFound {
                    query: query.clone(),
                });
            }
            Target::All => return Ok(Vec::new()),
        },
        Some(store) => match target {
            Target::One(query) => {
                let vm = store.find(query)?;
                (vec![vm.id.clone()], vec![vm])
            }
            Target::All => {
                let (rows, live) = crate::rows::Rows::read(&store)?;
                let ids: Vec<VmId> = rows.iter().filter_map(|r| VmId::parse(&r.id())).collect();
                (ids, live)
            }
        },
    };
    let before: Vec<VmId> = live.iter().map(|vm| vm.id.clone()).collect();
    reconcile(&env.dirs, &mut live)?;
    // Removed while reconciling (`run --rm` VMs found stopped): gone already.
    let kept: HashSet<&VmId> = live.iter().map(|vm| &vm.id).collect();
    let gone: HashSet<&VmId> = before.iter().filter(|id| !kept.contains(id)).collect();
    if !gone.is_empty() {
        ids.retain(|id| !gone.contains(id));
    }
    // Hold each VM's start/stop lock while its record goes, so a `start`
    // under way cannot write the record back after it was removed. Taken in
    // id order, as every holder of several takes them, and before any VM is
    // stopped: refused for want of open files, nothing has changed.
    ids.sort_unstable();
    if !ids.is_empty() {
        crate::dirs::ensure_private_dir(&env.dirs.runtime)?;
        crate::lock::make_room_for(ids.len())?;
    }
    // A `run --rm` VM is removed, with its images, by its own stop.
    let mut removed_by_stop = Vec::new();
    for vm in live.iter().filter(|vm| vm.status.is_live()) {
        if !force {
            return Err(Error::VmActive {
                name: vm.name.to_string(),
                status: vm.status.to_string(),
                help: format!(
                    "stop it first with `maqet stop {}`, or use `rm --force`",
                    vm.name
                ),
            });
        }
        let opts = StopOptions {
            timeout: Duration::ZERO,
            force: true,
        };
        // By name: names are looked up first and are unique, so it is exact.
        stop(env, vm.name.as_str(), &opts, note)?;
        if vm.auto_remove && matches!(super::read_id(env, &vm.id), Err(Error::VmNotFound { .. })) {
            ids.retain(|id| *id != vm.id);
            removed_by_stop.push(Removed {
                name: vm.name.clone(),
                id: vm.id.clone(),
                deleted: vm.owned.iter().filter(|f| !f.exists()).cloned().collect(),
                kept: Vec::new(),
                in_use: Vec::new(),
            });
        }
    }
    drop(live);
    let mut _vm_locks = Vec::with_capacity(ids.len());
    for id in &ids {
        _vm_locks.push(crate::lock::exclusive(
            &env.dirs.vm(id).lock,
            &format!("VM {}", id.short()),
        )?);
    }
    let Some(store) = Store::open_existing(&env.dirs, Access::Write)? else {
        return Ok(removed_by_stop);
    };
    let removed = store.write(|tx| {
        let mut removed = Vec::with_capacity(ids.len());
        for id in &ids {
            // Gone meanwhile (a concurrent rm, or reconciling a `run --rm`
            // VM): nothing left to remove.
            let Ok(current) = tx.get(id) else {
                continue;
            };
            if current.status.is_live() {
                return Err(Error::VmActive {
                    name: current.name.to_string(),
                    status: "running again (started while being removed)".into(),
                    help: format!("stop it first with `maqet stop {}`", current.name),
                });
            }
            tx.remove(&current)?;
            let disks_dir = env.disks_dir(&current.id);
            let images: Vec<_> = current
                .config
                .storage
                .iter()
                .filter_map(|d| d.image(&disks_dir))
                .collect();
            removed.push(Gone {
                name: current.name,
                id: current.id,
                owned: current.owned,
                images,
            });
        }
        Ok(removed)
    })?;
    // Removed meanwhile by another `rm`: as if this one had come second.
    if let (Target::One(query), true) = (target, removed.is_empty() && removed_by_stop.is_empty()) {
        return Err(Error::VmNotFound {
            query: query.clone(),
        });
    }
    // Images of the removed VMs that VMs still in the store use: kept.
    drop(store);
    let users = if clean_storage {
        let candidates: HashSet<&camino::Utf8Path> = removed
            .iter()
            .flat_map(|g| g.owned.iter().map(camino::Utf8PathBuf::as_path))
            .collect();
        users_of(env, &candidates)?
    } else {
        HashMap::new()
    };
    let mut report = removed_by_stop;
    for Gone {
        name,
        id,
        owned,
        images,
    } in removed
    {
        // Its logs and lock go with it; nothing here is the user's.
        let paths = env.dirs.vm(&id);
        let _ = std::fs::remove_dir_all(&paths.runtime.dir);
        let _ = std::fs::remove_file(&paths.lock);
        let _ = remove_own_file(&paths.known_hosts);
        let mut entry = Removed {
            deleted: Vec::new(),
            kept: images
                .into_iter()
                .filter(|p| !owned.contains(p) && p.exists())
                .collect(),
            in_use: Vec::new(),
            name,
            id,
        };
        if clean_storage {
            for file in &owned {
                if let Some(user) = users.get(file.as_path()) {
                    entry.in_use.push((file.clone(), user.clone()));
                    continue;
                }
                // By descriptor of the directory it was made in: a parent
                // swapped for a symlink since then cannot send this
                // delete elsewhere.
                if remove_own_file(file)? {
                    entry.deleted.push(file.clone());
                } else if file.exists() {
                    // Not deleted (moved, or no longer ours): say so.
                    entry.kept.push(file.clone());
                }
            }
            // Only goes if maqet's files were all that was in it.
            let _ = std::fs::remove_dir(env.disks_dir(&entry.id));
        }
        report.push(entry);
    }
    // Names are unique: an unstable sort orders the same.
    report.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(report)
}

/// Which of `candidates` a VM in the store uses — as a drive's file, as
/// the backing file its config names, or anywhere in the backing chain of
/// one of its qcow2 images — and the name of one such VM. One pass over
/// the records (keeping only what is needed), then `qemu-img` for the
/// chains of the qcow2 images that exist, with the store closed.
pub(crate) fn users_of(
    env: &Env,
    candidates: &HashSet<&camino::Utf8Path>,
) -> Result<HashMap<camino::Utf8PathBuf, Name>> {
    let mut users = HashMap::new();
    if candidates.is_empty() {
        return Ok(users);
    }
    let Some(store) = Store::open_existing(&env.dirs, Access::Read)? else {
        return Ok(users);
    };
    let mut chains: Vec<(camino::Utf8PathBuf, Name)> = Vec::new();
    store.each(|vm| {
        let disks_dir = env.disks_dir(&vm.id);
        for drive in &vm.config.storage {
            for used in drive.files_used(&disks_dir) {
                if candidates.contains(used.as_path()) && !users.contains_key(&used) {
                    users.insert(used, vm.name.clone());
                }
            }
            let file = drive.image(&disks_dir);
            if let (crate::config::Storage::Qcow2(_), Some(file)) = (drive, file)
                && file.is_file()
            {
                chains.push((file, vm.name.clone()));
            }
        }
        Ok(())
    })?;
    drop(store);
    for (image, user) in chains {
        // An image that cannot be read is no user of anything here.
        let Ok(members) = crate::storage::check_chain("", &image, "qcow2", &env.policy) else {
            continue;
        };
        for (member, _) in members.into_iter().skip(1) {
            if candidates.contains(member.as_path()) && !users.contains_key(&member) {
                users.insert(member, user.clone());
            }
        }
    }
    Ok(users)
}
