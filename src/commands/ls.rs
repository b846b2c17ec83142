use crate::error::Result;
use crate::reconcile::reconcile;
use crate::rows::Rows;
use crate::store::{Access, Store};
use crate::vm::{Status, Vm, VmId};

use super::Env;

/// Every VM as a packed row, with the VMs that reconciling may change
/// (recorded running, or to be removed once stopped) kept whole.
#[derive(Default)]
pub struct Survey {
    /// Every VM, in no particular order; statuses as reconciled.
    pub rows: Rows,
    /// The VMs that were reconciled, as they are now (those removed while
    /// reconciling are gone from both lists).
    pub live: Vec<Vm>,
    /// The live VMs whose status reconciling changed, with the new one.
    pub changed: Vec<(String, Status)>,
}

/// Read every VM and, with `reconcile_now`, check the ones recorded as
/// running (no QMP) and save what changed. Only a row of the others is
/// kept, so large stores survey in little memory. `None` without a store.
pub fn survey(env: &Env, reconcile_now: bool) -> Result<Option<Survey>> {
    let Some(store) = Store::open_existing(&env.dirs, Access::Read)? else {
        return Ok(None);
    };
    let (mut rows, mut live) = store.rows()?;
    drop(store);
    let mut changed = Vec::new();
    if reconcile_now {
        let before: Vec<(VmId, Status)> =
            live.iter().map(|vm| (vm.id.clone(), vm.status)).collect();
        reconcile(&env.dirs, &mut live)?;
        // A VM missing after reconciling was removed (`run --rm`, found stopped).
        rows.reconciled(before.iter().map(|(id, _)| {
            let now = live.iter().find(|vm| &vm.id == id).map(|vm| vm.status);
            (id, now)
        }));
        for vm in &live {
            if before
                .iter()
                .any(|(id, was)| *id == vm.id && *was != vm.status)
            {
                changed.push((vm.name.to_string(), vm.status));
            }
        }
    }
    Ok(Some(Survey {
        rows,
        live,
        changed,
    }))
}

/// Every VM, ordered by name, optionally only those in one state. Only the
/// VMs recorded as running are checked (no QMP), and only a packed row of
/// each is kept: `ls` of a large store stays small.
pub fn list(env: &Env, status: Option<Status>) -> Result<Rows> {
    let Some(Survey { mut rows, .. }) = survey(env, true)? else {
        return Ok(Rows::default());
    };
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
