use crate::error::Result;
use crate::reconcile::reconcile;
use crate::store::{Access, Store};
use crate::vm::{Status, Vm};

use super::Env;

/// Every VM, ordered by name, optionally only those in one state.
pub fn list(env: &Env, status: Option<Status>) -> Result<Vec<Vm>> {
    let Some(store) = Store::open_existing(&env.dirs, Access::Read)? else {
        return Ok(Vec::new());
    };
    let mut vms = store.list()?;
    drop(store);
    reconcile(&env.dirs, &mut vms)?;
    if let Some(wanted) = status {
        vms.retain(|vm| vm.status == wanted);
    }
    Ok(vms)
}
