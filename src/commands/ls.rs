use crate::error::Result;
use crate::reconcile::reconcile;
use crate::store::{Access, Store};
use crate::vm::{Status, VmId, VmRow};

use super::Env;

/// Every VM, ordered by name, optionally only those in one state. Only the
/// VMs recorded as running are checked (no QMP), and only a row of each is
/// kept: `ls` of a large store stays small.
pub fn list(env: &Env, status: Option<Status>) -> Result<Vec<VmRow>> {
    let Some(store) = Store::open_existing(&env.dirs, Access::Read)? else {
        return Ok(Vec::new());
    };
    let (mut rows, mut live) = store.rows()?;
    drop(store);
    let before: Vec<VmId> = live.iter().map(|vm| vm.id.clone()).collect();
    reconcile(&env.dirs, &mut live)?;
    for vm in &live {
        if let Some(row) = rows.iter_mut().find(|r| r.id == vm.id) {
            row.status = vm.status;
        }
    }
    // Removed while reconciling (`run --rm` VMs found stopped).
    let gone: Vec<&VmId> = before
        .iter()
        .filter(|id| !live.iter().any(|vm| &vm.id == *id))
        .collect();
    rows.retain(|r| !gone.contains(&&r.id));
    if let Some(wanted) = status {
        rows.retain(|r| r.status == wanted);
    }
    // Names are unique: an unstable sort orders the same.
    rows.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// VM names only, as stored: no liveness check, nothing written. Shell
/// completion calls this on every Tab.
pub fn names(env: &Env) -> Result<Vec<String>> {
    match Store::open_existing(&env.dirs, Access::Read)? {
        Some(store) => store.names(),
        None => Ok(Vec::new()),
    }
}
