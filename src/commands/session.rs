//! What commands that drive a running VM share: finding it running, and a
//! QMP session on one of its monitors.

use std::time::Duration;

use super::Env;
use crate::error::{Error, Result};
use crate::layout::RuntimePaths;
use crate::lock::Held;
use crate::qemu::process::Liveness;
use crate::qmp::Qmp;
use crate::reconcile::observe;
use crate::vm::Vm;

/// A QMP connection to a running VM, held under the VM's QMP lock so maqet
/// commands queue for the monitor instead of timing out in its backlog
/// (QEMU serves one client per monitor).
pub struct Session {
    pub vm: Vm,
    pub qmp: Qmp,
    _lock: Held,
}

/// Which of the VM's two monitors to use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Monitor {
    /// Commands.
    Control,
    /// `qmp events`: a follower must not block commands.
    Events,
}

/// Find a running VM and connect to one of its monitors.
pub fn connect(env: &Env, query: &str, monitor: Monitor, timeout: Duration) -> Result<Session> {
    let vm = running(env, query)?;
    let rt = vm.runtime.clone().ok_or_else(|| not_running(&vm))?;
    let paths = RuntimePaths::new(rt.dir);
    let (socket, lock) = match monitor {
        Monitor::Control => (rt.qmp_socket, paths.qmp_lock),
        Monitor::Events => (paths.events_socket, paths.events_lock),
    };
    let lock = match monitor {
        Monitor::Control => {
            crate::lock::exclusive(&lock, &format!("the QMP monitor of `{}`", vm.name))?
        }
        // A second follower would wait for the first forever: refuse now.
        Monitor::Events => crate::lock::try_exclusive(&lock)?.ok_or_else(|| Error::Refused {
            message: format!(
                "the events of `{}` are already being followed by another maqet",
                vm.name
            ),
            help: "stop the other `maqet qmp events` first; one follower per VM".into(),
        })?,
    };
    let qmp = Qmp::connect_pipelined(&socket, timeout)?;
    Ok(Session {
        vm,
        qmp,
        _lock: lock,
    })
}

/// The VM, reconciled, if it runs and its runtime files are there.
pub fn running(env: &Env, query: &str) -> Result<Vm> {
    let vm = super::find_reconciled(env, query)?;
    match observe(&vm) {
        Some(Liveness::Running) => Ok(vm),
        Some(Liveness::Orphaned) => Err(Error::NotRunning {
            name: vm.name.to_string(),
            status: "its QEMU runs, but its runtime files were deleted".into(),
            help: format!("`maqet stop --force {}` stops it", vm.name),
        }),
        Some(Liveness::Unproven { why }) => {
            let pid = vm.runtime.as_ref().map_or(0, |rt| rt.pid);
            Err(Error::NotRunning {
                name: vm.name.to_string(),
                status: format!("pid {pid} runs with the recorded start time but {why}"),
                help: format!("see what it is with `ps -fp {pid}`"),
            })
        }
        _ => Err(not_running(&vm)),
    }
}

/// The error for a VM that does not run.
pub fn not_running(vm: &Vm) -> Error {
    Error::NotRunning {
        name: vm.name.to_string(),
        status: vm.status.to_string(),
        help: format!("start it with `maqet start {}`", vm.name),
    }
}
