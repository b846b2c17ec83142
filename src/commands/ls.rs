use crate::error::Result;
use crate::reconcile::reconcile;
use crate::rows::Rows;
use crate::store::{Access, Store};
use crate::vm::{Status, VmId};

use super::Env;

/// Every VM, ordered by name, optionally only those in one state. Only the
/// VMs recorded as running are checked (no QMP), and only a packed row of
/// each is kept: `ls` of a large store stays small.
pub fn list(env: &Env, status: Option<Status>) -> Result<Rows> {
    let Some(store) = Store::open_existing(&env.dirs, Access::Read)? else {
        return Ok(Rows::default());
    };
    let (mut rows, mut live) = store.rows()?;
    drop(store);
    let before: Vec<VmId> = live.iter().map(|vm| vm.id.clone()).collect();
    reconcile(&env.dirs, &mut live)?;
    // A VM missing after reconciling was removed (`run --rm`, found stopped).
    rows.reconciled(before.iter().map(|id| {
        let now = live.iter().find(|vm| &vm.id == id).map(|vm| vm.status);
        (id, now)
    }));
    if let Some(wanted) = status {
        rows.retain(|row| row.status == wanted);
    }
    rows.sort_by_name();
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
