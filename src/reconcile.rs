//! Noticing VMs whose QEMU is gone (DESIGN.md §5). Every command that reads
//! a VM runs this first, so what it shows is the truth, not the last record.

use std::time::Duration;

use crate::deadline::poll_until;
use crate::dirs::Dirs;
use crate::error::Result;
use crate::layout::RuntimePaths;
use crate::qemu::process::{Liveness, liveness, names_pidfile};
use crate::qemu::spawn::tail;
use crate::store::Store;
use crate::vm::{ExitInfo, Runtime, Status, Timestamp, Vm, VmId};

/// How many lines of qemu.log a stopped or crashed VM keeps for `status`.
pub const LOG_TAIL: usize = 10;

/// What the identity check says about a VM recorded as running.
pub fn observe(vm: &Vm) -> Option<Liveness> {
    let rt = vm.runtime.as_ref()?;
    vm.status
        .is_live()
        .then(|| liveness(rt.pid, rt.start_ticks, &rt.pidfile))
}

/// Record that a VM's QEMU is gone: its state, why, the end of its log, and
/// its runtime files removed (the logs are kept).
pub fn settle(vm: &mut Vm, status: Status, reason: String) {
    let Some(rt) = vm.runtime.take() else {
        vm.status = status;
        return;
    };
    let paths = RuntimePaths::new(rt.dir);
    let log_tail = tail(&paths.qemu_log, LOG_TAIL);
    for stale in paths.stale() {
        let _ = std::fs::remove_file(stale);
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
    // One wait for all the VMs caught starting, not one each.
    let deadline = std::time::Instant::now() + STARTING_WAIT;
    // The locks of the VMs resolved here, held until what was found is
    // written: a new `start` must not record its own "starting" in between,
    // only to have it overwritten.
    let mut held = Vec::new();
    for (i, vm) in vms.iter_mut().enumerate() {
        let mut seen = vm.runtime.as_ref().map(|rt| (rt.pid, rt.start_ticks));
        // Recorded just before its QEMU was spawned, by a `start` that did
        // not get to record the pid: the pidfile lock names the process.
        if vm.runtime.as_ref().is_some_and(|rt| rt.pid == STARTING) {
            // A `start` under way holds the VM's lock until it is done; it
            // records its QEMU's pid right after the spawn. A killed start's
            // child also holds it, from its fork until it runs QEMU.
            let lock = dirs.vm(&vm.id).lock;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match crate::lock::exclusive_within(&lock, "a start", left) {
                Ok(free) => {
                    held.push(free);
                    if resolve_starting(vm) {
                        changed.push((i, seen));
                        continue;
                    }
                }
                // Still starting: read what it has recorded by now.
                Err(_) => match recorded(dirs, &vm.id) {
                    Some(now) if now.runtime.as_ref().is_some_and(|rt| rt.pid != STARTING) => {
                        *vm = now;
                        seen = vm.runtime.as_ref().map(|rt| (rt.pid, rt.start_ticks));
                    }
                    _ => continue,
                },
            }
        }
        let gone = match observe(vm) {
            Some(Liveness::Gone { clean }) => Some(clean),
            // Left behind stopped by an earlier command (e.g. `stop`).
            None if vm.auto_remove && vm.status != Status::Created => Some(true),
            _ => None,
        };
        if let Some(clean) = gone {
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
            let Ok(current) = tx.get(&vm.id) else {
                continue;
            };
            let still = current.runtime.as_ref().map(|rt| (rt.pid, rt.start_ticks));
            if still != *seen {
                continue;
            }
            if current.auto_remove && vm.runtime.is_none() {
                tx.remove(&current)?;
                removed.push(current);
                continue;
            }
            let mut updated = current;
            updated.status = vm.status;
            updated.runtime.clone_from(&vm.runtime);
            updated.last_exit.clone_from(&vm.last_exit);
            tx.put(&updated)?;
        }
        Ok(removed)
    })?;
    drop(store);
    drop(held);
    for vm in &removed {
        forget_files(dirs, vm);
    }
    let removed: std::collections::HashSet<&VmId> = removed.iter().map(|vm| &vm.id).collect();
    vms.retain(|vm| !removed.contains(&vm.id));
    Ok(())
}

/// A VM's record as the store has it now, if it can be read.
fn recorded(dirs: &Dirs, id: &VmId) -> Option<Vm> {
    let store = Store::open_existing(dirs, crate::store::Access::Read).ok()??;
    store.get(id).ok()
}

/// Delete what maqet made for a removed VM: its runtime directory, its lock,
/// and the images it created (never the user's).
pub fn forget_files(dirs: &Dirs, vm: &Vm) {
    let paths = dirs.vm(&vm.id);
    let _ = std::fs::remove_dir_all(&paths.runtime.dir);
    let _ = std::fs::remove_file(&paths.lock);
    for file in &vm.owned {
        let _ = crate::paths::dir::remove_own_file(file);
    }
    let _ = std::fs::remove_dir(&paths.disks);
    let _ = crate::paths::dir::remove_own_file(&paths.known_hosts);
}

/// Reconcile one VM; `None` when it was removed (`run --rm`).
pub fn reconcile_one(dirs: &Dirs, vm: Vm) -> Result<Option<Vm>> {
    let mut vms = vec![vm];
    reconcile(dirs, &mut vms)?;
    Ok(vms.pop())
}

/// The pid recorded between "about to spawn QEMU" and "QEMU spawned".
pub const STARTING: i32 = 0;

/// How long reading a VM whose record says [`STARTING`] waits for the start
/// to finish recording its QEMU. Spawning takes milliseconds; a killed
/// start's child lets go when it runs QEMU.
const STARTING_WAIT: Duration = Duration::from_millis(250);

/// The runtime record of a VM whose QEMU is about to be spawned: its pid is
/// not known yet ([`STARTING`]). Written first, so a `start` killed right
/// after the spawn leaves a record that leads to the process.
pub fn placeholder(dir: &camino::Utf8Path) -> Runtime {
    let paths = RuntimePaths::new(dir.to_owned());
    Runtime {
        pid: STARTING,
        start_ticks: 0,
        qmp_socket: paths.qmp_socket,
        console_socket: paths.console_socket,
        pidfile: paths.pidfile,
        dir: paths.dir,
        started: Timestamp::now(),
        accel: String::new(),
        argv: Vec::new(),
        accel_note: None,
        confinement: crate::vm::Confinement::Unknown,
    }
}

/// Settle a record left at [`STARTING`] by a `start` that was killed (the
/// caller makes sure no start is under way): the QEMU it spawned is adopted
/// if it holds the pidfile lock, else the VM is stopped. True when it
/// changed (it always does).
pub fn resolve_starting(vm: &mut Vm) -> bool {
    let Some(rt) = vm.runtime.take_if(|rt| rt.pid == STARTING) else {
        return false;
    };
    if !adopt_orphan(vm, &rt.dir) && !adopt_spawned(vm, &rt.dir) {
        vm.status = Status::Stopped;
        vm.last_exit = Some(ExitInfo {
            at: Timestamp::now(),
            reason: "the start was interrupted before QEMU ran".into(),
            log_tail: tail(&RuntimePaths::new(rt.dir).qemu_log, LOG_TAIL),
        });
    }
    true
}

/// The child a killed `start` spawned, found through the pid it wrote
/// before exec — for a QEMU too early in its start to hold its pidfile lock.
/// It is taken only if its command line names this VM's pidfile, so a
/// reused pid is never adopted.
fn adopt_spawned(vm: &mut Vm, dir: &camino::Utf8Path) -> bool {
    let Some(pid) = std::fs::read_to_string(RuntimePaths::new(dir.to_owned()).spawn_pid)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|p| *p > 1)
    else {
        return false;
    };
    // The child lets go of the VM's lock while it execs QEMU, a moment
    // before /proc shows QEMU's command line: look again for a little while.
    let deadline = std::time::Instant::now() + STARTING_WAIT;
    // `Err`: not QEMU, and never will be (gone, or a zombie).
    let found = poll_until(deadline, Duration::from_millis(2), || {
        let Ok(stat) = crate::qemu::process::ProcStat::read(pid) else {
            return Err(());
        };
        if stat.state == 'Z' {
            return Err(());
        }
        let ours = names_pidfile(pid, &RuntimePaths::new(dir.to_owned()).pidfile);
        Ok(ours.then_some(stat.start_ticks))
    });
    match found {
        Ok(Some(start_ticks)) => {
            take_over(vm, pid, start_ticks, dir);
            true
        }
        Ok(None) | Err(()) => false,
    }
}

/// Record `pid` as this VM's running QEMU, with its command line as
/// /proc shows it.
fn take_over(vm: &mut Vm, pid: i32, start_ticks: u64, dir: &camino::Utf8Path) {
    let argv: Vec<String> = crate::qemu::process::read_proc(&format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect()
        })
        .unwrap_or_default();
    vm.status = Status::Running;
    vm.last_exit = None;
    vm.runtime = Some(Runtime {
        pid,
        start_ticks,
        accel: if argv.iter().any(|w| w == "kvm") {
            "kvm".into()
        } else {
            "tcg".into()
        },
        argv,
        ..placeholder(dir)
    });
}

/// A QEMU that holds this VM's pidfile lock although no record says it
/// runs: its `start` was killed after spawning QEMU and before recording it.
/// Record it as running, so it is stopped like any other and never joined
/// by a second QEMU on the same disks. The lock holder is taken only if its
/// command line names that pidfile too: any process of the user could lock
/// the file. True when one was adopted.
pub fn adopt_orphan(vm: &mut Vm, runtime_dir: &camino::Utf8Path) -> bool {
    if vm.runtime.is_some() {
        return false;
    }
    let pidfile = RuntimePaths::new(runtime_dir.to_owned()).pidfile;
    let Ok(Some(pid)) = crate::qemu::process::pidfile_lock_holder(&pidfile) else {
        return false;
    };
    if !names_pidfile(pid, &pidfile) {
        return false;
    }
    let Ok(stat) = crate::qemu::process::ProcStat::read(pid) else {
        return false;
    };
    take_over(vm, pid, stat.start_ticks, runtime_dir);
    true
}
