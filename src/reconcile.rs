//! Noticing VMs whose QEMU is gone (DESIGN.md §5). Every command that reads
//! a VM runs this first, so what it shows is the truth, not the last record.

use crate::dirs::Dirs;
use crate::error::Result;
use crate::qemu::process::{Liveness, liveness};
use crate::qemu::spawn::tail;
use crate::store::Store;
use crate::vm::{ExitInfo, Status, Timestamp, Vm};

/// How many lines of qemu.log a stopped or crashed VM keeps for `status`.
pub const LOG_TAIL: usize = 10;

/// What the identity check says about a VM recorded as running.
pub fn observe(vm: &Vm) -> Option<Liveness> {
    let rt = vm.runtime.as_ref()?;
    (vm.status == Status::Running).then(|| liveness(rt.pid, rt.start_ticks, &rt.pidfile))
}

/// Record that a VM's QEMU is gone: its state, why, the end of its log, and
/// its runtime files removed (the logs are kept).
pub fn settle(vm: &mut Vm, status: Status, reason: String) {
    let Some(rt) = vm.runtime.take() else {
        vm.status = status;
        return;
    };
    let log_tail = tail(&rt.dir.join("qemu.log"), LOG_TAIL);
    for stale in [
        "qmp.sock",
        "events.sock",
        "console.sock",
        "qemu.pid",
        "qmp.lock",
        "events.lock",
        "console.lock",
    ] {
        let _ = std::fs::remove_file(rt.dir.join(stale));
    }
    vm.status = status;
    vm.last_exit = Some(ExitInfo {
        at: Timestamp::now(),
        reason,
        log_tail,
    });
}

/// Settle a VM whose process the identity check found gone.
pub fn settle_gone(vm: &mut Vm, clean: bool) {
    if clean {
        settle(
            vm,
            Status::Stopped,
            "QEMU exited normally (the guest powered off, or QEMU was told to quit)".into(),
        );
    } else {
        settle(
            vm,
            Status::Crashed,
            "QEMU ended without cleaning up (killed, or crashed)".into(),
        );
    }
}

/// Reconcile VMs read from the store and write back the ones that changed.
/// A record is only overwritten if it still names the process that was
/// found dead: a concurrent `start` may have replaced it meanwhile. VMs
/// started with `run --rm` are removed instead (with the images maqet made
/// for them) and dropped from `vms`.
pub fn reconcile(dirs: &Dirs, vms: &mut Vec<Vm>) -> Result<()> {
    let mut changed = Vec::new();
    for (i, vm) in vms.iter_mut().enumerate() {
        let gone = match observe(vm) {
            Some(Liveness::Gone { clean }) => Some(clean),
            // Left behind stopped by an earlier command (e.g. `stop`).
            None if vm.auto_remove && vm.status != Status::Created => Some(true),
            _ => None,
        };
        if let Some(clean) = gone {
            let seen = vm.runtime.as_ref().map(|rt| (rt.pid, rt.start_ticks));
            if vm.runtime.is_some() {
                settle_gone(vm, clean);
            }
            changed.push((i, seen));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let store = Store::open(dirs)?;
    let removed = store.write(|tx| {
        let mut removed = Vec::new();
        for (i, seen) in &changed {
            let vm = &vms[*i];
            let Ok(current) = tx.find(vm.id.as_str()) else {
                continue;
            };
            let still = current.runtime.as_ref().map(|rt| (rt.pid, rt.start_ticks));
            if still != *seen {
                continue;
            }
            if current.auto_remove {
                tx.remove(&current)?;
                removed.push(current);
                continue;
            }
            let mut updated = current;
            updated.status = vm.status;
            updated.runtime = None;
            updated.last_exit.clone_from(&vm.last_exit);
            tx.put(&updated)?;
        }
        Ok(removed)
    })?;
    drop(store);
    for vm in &removed {
        forget_files(dirs, vm);
    }
    vms.retain(|vm| !removed.iter().any(|r| r.id == vm.id));
    Ok(())
}

/// Delete what maqet made for a removed VM: its runtime directory, its lock,
/// and the images it created (never the user's).
pub fn forget_files(dirs: &Dirs, vm: &Vm) {
    let _ = std::fs::remove_dir_all(dirs.runtime.join(vm.id.as_str()));
    let _ = std::fs::remove_file(dirs.runtime.join(format!("{}.lock", vm.id)));
    for file in &vm.owned {
        let _ = std::fs::remove_file(file);
    }
    let _ = std::fs::remove_dir(dirs.data.join("disks").join(vm.id.as_str()));
}

/// Reconcile one VM; `None` when it was removed (`run --rm`).
pub fn reconcile_one(dirs: &Dirs, vm: Vm) -> Result<Option<Vm>> {
    let mut vms = vec![vm];
    reconcile(dirs, &mut vms)?;
    Ok(vms.pop())
}
