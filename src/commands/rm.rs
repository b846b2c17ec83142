use std::time::Duration;

use super::{Env, Note, StopOptions, stop};
use crate::error::{Error, Result};
use crate::reconcile::reconcile;
use crate::store::{Access, Store};
use crate::vm::{Status, Vm};

pub enum Target {
    One(String),
    All,
}

/// Remove VMs from the registry, in one transaction: either every named VM
/// goes or none does. A running VM is refused, or with `force` stopped
/// first (at once, without asking the guest). Returns what was removed.
pub fn remove(
    env: &Env,
    target: &Target,
    force: bool,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<Vec<Vm>> {
    let mut vms = match Store::open_existing(&env.dirs, Access::Read)? {
        None => match target {
            Target::One(query) => {
                return Err(Error::VmNotFound {
                    query: query.clone(),
                });
            }
            Target::All => return Ok(Vec::new()),
        },
        Some(store) => match target {
            Target::One(query) => vec![store.find(query)?],
            Target::All => store.list()?,
        },
    };
    reconcile(&env.dirs, &mut vms)?;
    for vm in vms.iter().filter(|vm| vm.status == Status::Running) {
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
        stop(env, vm.id.as_str(), &opts, note)?;
    }
    let Some(store) = Store::open_existing(&env.dirs, Access::Write)? else {
        return Ok(Vec::new());
    };
    let removed = store.write(|tx| {
        let mut removed = Vec::with_capacity(vms.len());
        for vm in &vms {
            // Gone meanwhile (a concurrent rm): nothing left to remove.
            let Ok(current) = tx.find(vm.id.as_str()) else {
                continue;
            };
            if current.status == Status::Running {
                return Err(Error::VmActive {
                    name: current.name.to_string(),
                    status: "running again (started while being removed)".into(),
                    help: format!("stop it first with `maqet stop {}`", current.name),
                });
            }
            tx.remove(&current)?;
            removed.push(current);
        }
        Ok(removed)
    })?;
    for vm in &removed {
        // Its logs and lock go with it; nothing here is the user's.
        let _ = std::fs::remove_dir_all(env.dirs.runtime.join(vm.id.as_str()));
        let _ = std::fs::remove_file(env.dirs.runtime.join(format!("{}.lock", vm.id)));
    }
    Ok(removed)
}
