use std::time::Duration;

use serde_json::Value;

use super::Env;
use crate::error::Result;
use crate::qemu::process::{Liveness, ProcStat, rss_kib, ticks_per_second, uptime_seconds};
use crate::qmp::Qmp;
use crate::reconcile::observe;
use crate::vm::{Status, Vm};

/// How long `status` and `inspect` wait for QMP before reporting the VM as
/// unreachable instead.
const QMP_TIMEOUT: Duration = Duration::from_secs(2);

/// A VM's state as found now.
pub struct VmStatus {
    pub vm: Vm,
    /// running, paused, stopped, crashed or created.
    pub state: String,
    pub pid: Option<i32>,
    pub uptime_seconds: Option<u64>,
    /// QMP's own word (`running`, `paused`, `shutdown`, ...).
    pub run_state: Option<String>,
    /// Why QMP could not be asked, for a running VM.
    pub unreachable: Option<String>,
}

/// `status`, plus what the process and QEMU say about themselves.
pub struct Inspection {
    pub status: VmStatus,
    pub rss_kib: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub threads: Option<u64>,
    pub query_status: Option<Value>,
    pub query_kvm: Option<Value>,
    pub block: Option<Value>,
    /// maqet's hot-plug ports in the running QEMU and what is in each;
    /// `None` when QMP did not answer.
    pub hotplug_ports: Option<Vec<super::hotplug::HotplugPort>>,
}

pub fn status(env: &Env, query: &str) -> Result<VmStatus> {
    let (status, _) = look(env, query, false)?;
    Ok(status)
}

pub fn inspect(env: &Env, query: &str) -> Result<Inspection> {
    let (status, qmp) = look(env, query, true)?;
    let proc = status.pid.and_then(|pid| ProcStat::read(pid).ok());
    let ticks = ticks_per_second() as f64;
    let mut inspection = Inspection {
        rss_kib: status.pid.and_then(rss_kib),
        cpu_seconds: proc.map(|p| (p.utime + p.stime) as f64 / ticks),
        threads: proc.map(|p| p.threads),
        query_status: None,
        query_kvm: None,
        block: None,
        hotplug_ports: None,
        status,
    };
    if let Some(mut qmp) = qmp {
        inspection.query_status = qmp.execute("query-status", None).ok();
        inspection.query_kvm = qmp.execute("query-kvm", None).ok();
        inspection.block = qmp.execute("query-block", None).ok();
        inspection.hotplug_ports = super::hotplug::ports(&mut qmp).ok();
        // Images are handed to QEMU by descriptor (`/dev/fdset/N`); each
        // set's `opaque` is the file maqet opened, which is what users know.
        if let (Some(block), Ok(sets)) =
            (inspection.block.as_mut(), qmp.execute("query-fdsets", None))
        {
            name_fdsets(block, &sets);
        }
    }
    Ok(inspection)
}

/// Replace every `/dev/fdset/N` string in a QMP reply by the path maqet
/// recorded as that set's `opaque`: images are handed to QEMU by
/// descriptor, and the path is what users (and maqet's own matching) know.
pub(crate) fn name_fdsets(reply: &mut Value, sets: &Value) {
    match reply {
        Value::String(text) => {
            let Some(set) = text
                .strip_prefix("/dev/fdset/")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                return;
            };
            let opaque = sets.as_array().into_iter().flatten().find_map(|s| {
                (s["fdset-id"].as_u64() == Some(set))
                    .then(|| s["fds"][0]["opaque"].as_str())
                    .flatten()
            });
            if let Some(path) = opaque {
                *text = path.to_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| name_fdsets(v, sets)),
        Value::Object(map) => map.values_mut().for_each(|v| name_fdsets(v, sets)),
        _ => {}
    }
}

/// Read the VM, reconcile it, and ask QMP for its run state when it runs.
fn look(env: &Env, query: &str, keep_qmp: bool) -> Result<(VmStatus, Option<Qmp>)> {
    let vm = super::find_reconciled(env, query)?;
    let mut status = VmStatus {
        state: vm.status.to_string(),
        pid: None,
        uptime_seconds: None,
        run_state: None,
        unreachable: None,
        vm,
    };
    let Some(rt) = status.vm.runtime.clone() else {
        return Ok((status, None));
    };
    status.pid = Some(rt.pid);
    status.uptime_seconds = uptime_seconds().map(|up| {
        let started = rt.start_ticks as f64 / ticks_per_second() as f64;
        (up - started).max(0.0) as u64
    });
    if observe(&status.vm) == Some(Liveness::Orphaned) {
        status.unreachable = Some(format!(
            "QEMU (pid {}) runs, but its runtime files under {} are gone; stop it with `maqet stop --force {}`",
            rt.pid, rt.dir, status.vm.name
        ));
        return Ok((status, None));
    }
    match Qmp::connect(&rt.qmp_socket, QMP_TIMEOUT) {
        Ok(mut qmp) => {
            match qmp.execute("query-status", None) {
                Ok(reply) => {
                    let word = reply["status"].as_str().unwrap_or("unknown").to_owned();
                    if status.vm.status == Status::Running && word != "running" {
                        status.state = if word == "paused" {
                            "paused".into()
                        } else {
                            word.clone()
                        };
                    }
                    status.run_state = Some(word);
                }
                Err(err) => status.unreachable = Some(err.to_string()),
            }
            Ok((status, keep_qmp.then_some(qmp)))
        }
        Err(err) => {
            status.unreachable = Some(err.to_string());
            Ok((status, None))
        }
    }
}
