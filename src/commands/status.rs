use std::time::Duration;

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use super::Env;
use crate::config::Network;
use crate::error::Result;
use crate::qemu::argv::shell_line;
use crate::qemu::process::{Liveness, ProcStat, rss_kib, ticks_per_second, uptime_seconds};
use crate::qmp::Qmp;
use crate::reconcile::observe;
use crate::render::config::{forward_text, network_json, ports_text};
use crate::render::{Output, key_values};
use crate::vm::{Status, Vm};

/// How long `status` and `inspect` wait for QMP before reporting the VM as
/// unreachable instead.
const QMP_TIMEOUT: Duration = Duration::from_secs(2);

/// Show whether a VM runs: state, pid, uptime, QEMU's run state.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "status")]
pub struct Args {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
}

/// Show a VM's status plus its command line, sockets, process figures and
/// what QEMU reports.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "inspect")]
pub struct InspectArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
}

pub fn run(env: &Env, args: Args) -> Result<VmStatus> {
    status(env, &args.vm)
}

pub fn run_inspect(env: &Env, args: InspectArgs) -> Result<Inspection> {
    inspect(env, &args.vm)
}

impl Output for VmStatus {
    fn json(&self) -> Value {
        status_json(self)
    }

    fn text(&self) -> String {
        key_values(&status_rows(self))
    }
}

impl Output for Inspection {
    fn json(&self) -> Value {
        let mut value = status_json(&self.status);
        let rt = self.status.vm.runtime.as_ref();
        value["runtime_dir"] = json!(rt.map(|r| r.dir.as_str()));
        value["qmp_socket"] = json!(rt.map(|r| r.qmp_socket.as_str()));
        value["console_socket"] = json!(rt.map(|r| r.console_socket.as_str()));
        value["started"] = json!(rt.map(|r| r.started.rfc3339()));
        value["argv"] = json!(rt.map(|r| &r.argv));
        value["rss_kib"] = json!(self.rss_kib);
        value["cpu_seconds"] = json!(self.cpu_seconds);
        value["threads"] = json!(self.threads);
        value["query_status"] = self.query_status.clone().unwrap_or(Value::Null);
        value["query_kvm"] = self.query_kvm.clone().unwrap_or(Value::Null);
        value["block"] = self.block.clone().unwrap_or(Value::Null);
        value["hotplug_ports"] = json!(self.hotplug_ports.as_ref().map(|ports| {
            ports
                .iter()
                .map(|p| json!({"id": p.id, "device": p.device, "free": p.device.is_none()}))
                .collect::<Vec<_>>()
        }));
        value["network"] = Value::Array(
            self.status
                .vm
                .config
                .network
                .iter()
                .map(network_json)
                .collect(),
        );
        value
    }

    fn text(&self) -> String {
        inspect_text(self)
    }
}

fn status_rows(s: &VmStatus) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("name", s.vm.name.to_string()),
        ("id", s.vm.id.to_string()),
        ("state", s.state.clone()),
    ];
    if let Some(pid) = s.pid {
        rows.push(("pid", pid.to_string()));
    }
    if let Some(up) = s.uptime_seconds {
        rows.push(("uptime", duration_text(up)));
    }
    if let Some(rt) = &s.vm.runtime {
        rows.push(("accel", rt.accel.clone()));
        if let Some(why) = &rt.accel_note {
            rows.push(("", why.clone()));
        }
        rows.push(("confined", rt.confinement.describe()));
    }
    if s.vm.pending_restart() {
        rows.push((
            "pending",
            "the config changed since QEMU started; it applies at the next start".into(),
        ));
    }
    if s.vm.trusted {
        rows.push((
            "trusted",
            "yes: raw arguments and binary granted with --trust".into(),
        ));
    }
    if let Some(word) = &s.run_state {
        rows.push(("qmp", word.clone()));
    }
    if let Some(why) = &s.unreachable {
        rows.push(("unreachable", why.clone()));
    }
    if s.vm.runtime.is_none()
        && let Some(exit) = &s.vm.last_exit
    {
        rows.push(("ended", exit.at.rfc3339()));
        rows.push(("reason", exit.reason.clone()));
        for (i, line) in exit.log_tail.iter().enumerate() {
            rows.push((if i == 0 { "log" } else { "" }, line.clone()));
        }
    }
    rows
}

fn duration_text(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

fn inspect_text(i: &Inspection) -> String {
    let mut rows = status_rows(&i.status);
    if let Some(rt) = &i.status.vm.runtime {
        rows.push(("runtime dir", rt.dir.to_string()));
        rows.push(("qmp socket", rt.qmp_socket.to_string()));
        rows.push(("console", rt.console_socket.to_string()));
        rows.push(("started", rt.started.rfc3339()));
        rows.push(("command", shell_line(&rt.argv)));
    }
    if let Some(kib) = i.rss_kib {
        rows.push(("rss", format!("{} MiB", kib / 1024)));
    }
    if let Some(cpu) = i.cpu_seconds {
        rows.push(("cpu time", format!("{cpu:.2}s")));
    }
    if let Some(t) = i.threads {
        rows.push(("threads", t.to_string()));
    }
    if let Some(kvm) = &i.query_kvm {
        let on = kvm["enabled"].as_bool().unwrap_or(false);
        rows.push((
            "kvm",
            if on {
                "enabled".into()
            } else {
                "disabled".into()
            },
        ));
    }
    if let Some(Value::Array(devices)) = &i.block {
        for (n, dev) in devices.iter().enumerate() {
            // maqet names its format nodes `maqet-drive<index in storage>`,
            // and a disk `qmp disk-add` plugged `maqet-hd-<device id>`.
            let node = dev["inserted"]["node-name"].as_str().unwrap_or("");
            let name = node
                .strip_prefix("maqet-drive")
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| i.status.vm.config.storage.get(n))
                .map(|d| d.name().as_str())
                .or_else(|| node.strip_prefix("maqet-hd-"))
                .unwrap_or("?");
            let file = dev["inserted"]["file"].as_str().unwrap_or("(no media)");
            let fmt = dev["inserted"]["drv"].as_str().unwrap_or("");
            rows.push((
                if n == 0 { "block" } else { "" },
                format!("{name} {fmt} {file}"),
            ));
        }
    }
    if let Some(ports) = &i.hotplug_ports {
        let free = ports.iter().filter(|p| p.device.is_none()).count();
        rows.push((
            "hotplug",
            match ports.len() {
                0 => ports_text(0),
                n => format!("{}, {free} free", ports_text(n)),
            },
        ));
        for port in ports {
            rows.push((
                "",
                format!("{} {}", port.id, port.device.as_deref().unwrap_or("(free)")),
            ));
        }
    }
    let forwards: Vec<String> = i
        .status
        .vm
        .config
        .network
        .iter()
        .flat_map(|Network::User(n)| n.forwards.iter().map(forward_text))
        .collect();
    for (n, fwd) in forwards.into_iter().enumerate() {
        rows.push((if n == 0 { "forwards" } else { "" }, fwd));
    }
    key_values(&rows)
}

fn status_json(s: &VmStatus) -> Value {
    let exit = s.vm.last_exit.as_ref().filter(|_| s.vm.runtime.is_none());
    json!({
        "id": s.vm.id.as_str(),
        "name": s.vm.name.as_str(),
        "state": s.state,
        "pid": s.pid,
        "uptime_seconds": s.uptime_seconds,
        "accel": s.vm.runtime.as_ref().map(|r| r.accel.as_str()),
        "accel_note": s.vm.runtime.as_ref().and_then(|r| r.accel_note.as_deref()),
        "confined": s.vm.runtime.as_ref().map(|r| r.confinement.is_confined()),
        "confinement": s.vm.runtime.as_ref().map(|r| r.confinement.describe()),
        "trusted": s.vm.trusted,
        "pending_restart": s.vm.pending_restart(),
        "run_state": s.run_state,
        "unreachable": s.unreachable,
        "last_exit": exit.map(|e| json!({
            "at": e.at.rfc3339(),
            "reason": e.reason,
            "log_tail": e.log_tail,
        })),
    })
}

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
    if let Some(Liveness::Unproven { why }) = observe(&status.vm) {
        status.unreachable = Some(format!(
            "pid {} runs with the recorded start time but {why}; maqet will not signal it",
            rt.pid
        ));
        return Ok((status, None));
    }
    match Qmp::connect_pipelined(&rt.qmp_socket, QMP_TIMEOUT) {
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
