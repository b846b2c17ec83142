use crate::error::{Error, Result};
use crate::store::{Access, Store};
use crate::vm::{Status, Vm};

use super::Env;

pub enum Target {
    One(String),
    All,
}

/// Remove VMs from the registry, in one transaction: either every named VM
/// goes or none does. Returns what was removed.
pub fn remove(env: &Env, target: &Target, force: bool) -> Result<Vec<Vm>> {
    let Some(store) = Store::open_existing(&env.dirs, Access::Write)? else {
        return match target {
            Target::One(query) => Err(Error::VmNotFound {
                query: query.clone(),
            }),
            Target::All => Ok(Vec::new()),
        };
    };
    store.write(|tx| {
        let vms = match target {
            Target::One(query) => vec![tx.find(query)?],
            Target::All => tx.list()?,
        };
        for vm in &vms {
            if vm.status == Status::Running && !force {
                return Err(Error::VmActive {
                    name: vm.name.to_string(),
                    status: vm.status.to_string(),
                    help: format!(
                        "stop it first with `maqet stop {}`, or use `rm --force`",
                        vm.name
                    ),
                });
            }
            tx.remove(vm)?;
        }
        Ok(vms)
    })
}
