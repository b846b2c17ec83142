//! Every VM at once, for `ls`, `doctor` and `cleanup`: a packed row of
//! each, and only the VMs that may be running kept whole, so that large
//! stores are read in little memory.

use std::collections::HashMap;

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

/// Read every VM: a row of each, and the whole record of those that
/// reconciling may change. `None` without a store.
pub fn survey(env: &Env) -> Result<Option<Survey>> {
    let Some(store) = Store::open_existing(&env.dirs, Access::Read)? else {
        return Ok(None);
    };
    let (rows, live) = crate::rows::Rows::read(&store)?;
    Ok(Some(Survey {
        rows,
        live,
        changed: Vec::new(),
    }))
}

impl Survey {
    /// What [`reconcile`](Self::reconcile) would change, without changing
    /// anything (`cleanup --dry-run`).
    pub fn preview(&mut self) {
        use crate::qemu::process::Liveness;
        for vm in &self.live {
            if let Some(Liveness::Gone { clean }) = crate::reconcile::observe(vm) {
                let status = if clean {
                    Status::Stopped
                } else {
                    Status::Crashed
                };
                if status != vm.status {
                    self.changed.push((vm.name.to_string(), status));
                }
            }
        }
        self.changed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }

    /// Check the VMs recorded as running (no QMP) and save what changed;
    /// the rows follow.
    pub fn reconcile(&mut self, env: &Env) -> Result<()> {
        let before: Vec<(VmId, Status)> = self
            .live
            .iter()
            .map(|vm| (vm.id.clone(), vm.status))
            .collect();
        reconcile(&env.dirs, &mut self.live)?;
        let now: HashMap<&VmId, &Vm> = self.live.iter().map(|vm| (&vm.id, vm)).collect();
        // A VM missing after reconciling was removed (`run --rm`, found stopped).
        self.rows.reconciled(
            before
                .iter()
                .map(|(id, _)| (id, now.get(id).map(|vm| vm.status))),
        );
        for (id, was) in &before {
            if let Some(vm) = now.get(id).filter(|vm| vm.status != *was) {
                self.changed.push((vm.name.to_string(), vm.status));
            }
        }
        // Names are unique: an unstable sort orders the same.
        self.changed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(())
    }
}
