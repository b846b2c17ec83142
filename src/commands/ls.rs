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

/// VM names only, as stored: no liveness check, nothing written. Shell
/// completion calls this on every Tab.
pub fn names(env: &Env) -> Result<Vec<String>> {
    match Store::open_existing(&env.dirs, Access::Read)? {
        Some(store) => store.names(),
        None => Ok(Vec::new()),
    }
}
