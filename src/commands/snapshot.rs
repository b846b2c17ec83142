//! Internal qcow2 snapshots: with `qemu-img` while the VM is stopped, with
//! QMP snapshot jobs while it runs (docs/storage.md).

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use serde_json::{Value, json};

use super::session::{Monitor, connect};
use super::{Env, Note};
use crate::config::Storage;
use crate::deadline::poll_until;
use crate::error::{Error, Result};
use crate::qemu::process::Liveness;
use crate::qmp::Qmp;
use crate::reconcile::observe;
use crate::storage::{
    PASSED_IMAGE, SnapshotInfo, check_chain, info_chain, open_image, qemu_img_on,
};

use crate::vm::Vm;

mod cli;
pub use cli::{Args, Verb, run};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Load,
    Delete,
    List,
}

pub struct Request {
    pub action: Action,
    pub drive: String,
    pub name: Option<String>,
    pub overwrite: bool,
    pub timeout: Duration,
}

pub enum Outcome {
    Done {
        action: Action,
        name: String,
        live: bool,
    },
    List {
        drive: String,
        live: bool,
        snapshots: Vec<SnapshotInfo>,
    },
}

pub fn snapshot(
    env: &Env,
    query: &str,
    req: &Request,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<Outcome> {
    let vm = super::find_reconciled(env, query)?;
    let image = qcow2_image(env, &vm, &req.drive)?;
    let live = match observe(&vm) {
        Some(Liveness::Running) => true,
        Some(Liveness::Orphaned) => {
            return Err(Error::NotRunning {
                name: vm.name.to_string(),
                status: "its QEMU runs, but its runtime files were deleted".into(),
                help: format!("`maqet stop --force {}`, then snapshot it offline", vm.name),
            });
        }
        // Its images may be in use: no offline snapshot either.
        Some(Liveness::Unproven { why }) => {
            let pid = vm.runtime.as_ref().map_or(0, |rt| rt.pid);
            return Err(Error::NotRunning {
                name: vm.name.to_string(),
                status: format!("pid {pid} runs with the recorded start time but {why}"),
                help: format!("see what it is with `ps -fp {pid}`"),
            });
        }
        _ => false,
    };
    let name = match (req.action, &req.name) {
        (Action::List, _) => String::new(),
        // QEMU looks a snapshot up by id before name: `load 1` would load
        // whichever snapshot has id 1.
        (_, Some(name)) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(Error::usage(
                format!("a snapshot name of digits only (`{name}`) would be read as a snapshot id"),
                "put a letter in the name, e.g. `s1`",
            ));
        }
        (_, Some(name)) if !name.is_empty() => name.clone(),
        _ => {
            return Err(Error::usage(
                "give the snapshot a name",
                "maqet snapshot VM create DRIVE NAME",
            ));
        }
    };
    if live {
        let mut session = connect(env, query, Monitor::Control, Duration::from_secs(10))?;
        live_snapshot(&mut session.qmp, &vm, &image, req, &name, note)
    } else {
        // qemu-img opens the backing chain too: check it first.
        check_chain(&req.drive, &image, "qcow2", &env.policy)?;
        if req.action != Action::List && drive_readonly(&vm, &req.drive) {
            return Err(Error::Refused {
                message: format!("drive `{}` is read-only in the config", req.drive),
                help: "a snapshot writes into the image; drop `readonly` to allow it".into(),
            });
        }
        offline_snapshot(&image, req, &name)
    }
}

fn drive_readonly(vm: &Vm, drive: &str) -> bool {
    vm.config.storage.iter().any(|d| match d {
        Storage::Qcow2(q) => q.name.as_str() == drive && q.readonly,
        _ => false,
    })
}

/// The qcow2 file of drive `drive`, or why there is none.
fn qcow2_image(env: &Env, vm: &Vm, drive: &str) -> Result<Utf8PathBuf> {
    let names: Vec<&str> = vm
        .config
        .storage
        .iter()
        .map(|d| d.name().as_str())
        .collect();
    let found = vm
        .config
        .storage
        .iter()
        .find(|d| d.name().as_str() == drive);
    match found {
        None => Err(Error::Invalid {
            message: format!("`{}` has no drive named `{drive}`", vm.name),
            help: if names.is_empty() {
                "it has no drives at all".into()
            } else {
                format!("its drives: {}", names.join(", "))
            },
        }),
        Some(Storage::Qcow2(q)) => {
            let path = q.image(&env.disks_dir(&vm.id));
            if path.exists() {
                Ok(path)
            } else {
                Err(Error::Invalid {
                    message: format!("drive `{drive}` has no image yet ({path})"),
                    help: format!(
                        "`maqet disk create {} {drive}` or `maqet start {}` creates it",
                        vm.name, vm.name
                    ),
                })
            }
        }
        Some(other) => Err(Error::Invalid {
            message: format!(
                "drive `{drive}` is {}, and only qcow2 images hold snapshots",
                other.kind()
            ),
            help: format!(
                "qcow2 drives of `{}`: {}",
                vm.name,
                vm.config
                    .storage
                    .iter()
                    .filter(|d| matches!(d, Storage::Qcow2(_)))
                    .map(|d| d.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn existing(image: &Utf8PathBuf) -> Result<Vec<SnapshotInfo>> {
    Ok(info_chain(image, "qcow2")?
        .into_iter()
        .next()
        .map(|top| top.snapshots)
        .unwrap_or_default())
}

fn unknown(name: &str, drive: &str, have: &[SnapshotInfo]) -> Error {
    Error::Invalid {
        message: format!("drive `{drive}` has no snapshot named `{name}`"),
        help: if have.is_empty() {
            "it has no snapshots".into()
        } else {
            format!(
                "its snapshots: {}",
                have.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    }
}

fn clash(name: &str, drive: &str) -> Error {
    Error::Invalid {
        message: format!("drive `{drive}` already has a snapshot named `{name}`"),
        help: "choose another name, or add --overwrite to replace it".into(),
    }
}

fn offline_snapshot(image: &Utf8PathBuf, req: &Request, name: &str) -> Result<Outcome> {
    let have = existing(image)?;
    let exists = have.iter().any(|s| s.name == name);
    // `qemu-img snapshot` has no `-f`; a `json:` description names the
    // driver instead, so the format is still never probed, and no backing
    // is opened (snapshots live in the image itself). qemu-img gets the
    // image maqet opened and checked, as its descriptor 3: a name another
    // user swaps meanwhile (for a symlink to another of your images)
    // reaches nothing.
    let opened = open_image(image, req.action != Action::List)?;
    let spec = format!(
        "json:{}",
        json!({"driver": "qcow2", "backing": null, "file": {"driver": "file", "filename": PASSED_IMAGE}})
    );
    let snap = |flag: &str, name: &str| {
        qemu_img_on(&opened, &["snapshot", flag, name, spec.as_str()]).map(drop)
    };
    match req.action {
        Action::List => {
            return Ok(Outcome::List {
                drive: req.drive.clone(),
                live: false,
                snapshots: have,
            });
        }
        Action::Create => {
            if exists && !req.overwrite {
                return Err(clash(name, &req.drive));
            }
            if exists {
                snap("-d", name)?;
            }
            snap("-c", name)?;
        }
        Action::Load => {
            if !exists {
                return Err(unknown(name, &req.drive, &have));
            }
            snap("-a", name)?;
        }
        Action::Delete => {
            if !exists {
                return Err(unknown(name, &req.drive, &have));
            }
            snap("-d", name)?;
        }
    }
    Ok(Outcome::Done {
        action: req.action,
        name: name.to_owned(),
        live: false,
    })
}

/// What a live snapshot works with: the format node QEMU has for `image`
/// (it takes the RAM state), every writable qcow2 node of maqet's (they take
/// the disk state), maqet's writable raw images (left out), and writable
/// nodes maqet did not make (a UEFI varstore on pflash, say).
struct Nodes {
    target: String,
    target_readonly: bool,
    qcow2: Vec<String>,
    raw: Vec<String>,
    foreign: Vec<String>,
    all: Vec<Value>,
}

/// The block nodes of the running VM; the target is the format node maqet
/// made for drive `index` (`maqet-drive<index>`), and it must be a qcow2
/// node on `image`.
fn nodes(qmp: &mut Qmp, image: &Utf8PathBuf, index: Option<usize>) -> Result<Nodes> {
    let mut list = qmp.execute("query-named-block-nodes", Some(json!({"flat": true})))?;
    let sets = qmp.execute("query-fdsets", None)?;
    super::status::name_fdsets(&mut list, &sets);
    let all = list.as_array().cloned().unwrap_or_default();
    let name = |n: &Value| n["node-name"].as_str().unwrap_or_default().to_owned();
    let ours = |n: &Value| {
        n["node-name"]
            .as_str()
            .is_some_and(|s| s.starts_with("maqet-"))
    };
    let maqet_format = |n: &Value| {
        n["node-name"]
            .as_str()
            .is_some_and(|s| s.starts_with("maqet-drive"))
    };
    let writable = |n: &Value| n["ro"] != true;
    // The top node's own `file` is a `json:` description once it has a
    // backing node: its protocol child names the image.
    let on_image = || {
        let child = format!("maqet-file{}", index.unwrap_or(usize::MAX));
        all.iter()
            .any(|c| c["node-name"] == child.as_str() && c["file"].as_str() == Some(image.as_str()))
    };
    let target = all
        .iter()
        .find(|n| {
            index.is_some_and(|i| n["node-name"] == format!("maqet-drive{i}").as_str())
                && n["drv"] == "qcow2"
                && on_image()
        })
        .ok_or_else(|| {
            Error::invalid(
                format!("the running VM has no qcow2 node for {image}"),
                "the config changed since the VM started; stop and start it, or snapshot it stopped",
            )
        })?;
    // Protocol nodes (`file`, `host_device`) sit under format nodes; the
    // format nodes are what hold (or cannot hold) snapshots.
    let protocol = |n: &Value| {
        matches!(
            n["drv"].as_str(),
            Some("file" | "host_device" | "host_cdrom")
        )
    };
    Ok(Nodes {
        target: name(target),
        target_readonly: target["ro"] == true,
        qcow2: all
            .iter()
            .filter(|n| maqet_format(n) && writable(n) && n["drv"] == "qcow2")
            .map(name)
            .collect(),
        raw: all
            .iter()
            .filter(|n| maqet_format(n) && writable(n) && n["drv"] == "raw")
            .filter_map(|n| n["file"].as_str().map(str::to_owned))
            .collect(),
        foreign: all
            .iter()
            .filter(|n| !ours(n) && writable(n) && !protocol(n))
            .map(|n| format!("{} ({})", name(n), n["file"].as_str().unwrap_or("?")))
            .collect(),
        all,
    })
}

/// The snapshots a format node holds.
fn snapshots_of(all: &[Value], node: &str) -> Vec<SnapshotInfo> {
    all.iter()
        .find(|n| n["node-name"] == node)
        .and_then(|n| n["image"]["snapshots"].as_array())
        .map(|s| s.iter().map(SnapshotInfo::from_json).collect())
        .unwrap_or_default()
}

fn live_snapshot(
    qmp: &mut Qmp,
    vm: &Vm,
    image: &Utf8PathBuf,
    req: &Request,
    name: &str,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<Outcome> {
    let index = vm
        .config
        .storage
        .iter()
        .position(|d| d.name().as_str() == req.drive);
    let n = nodes(qmp, image, index)?;
    let have = snapshots_of(&n.all, &n.target);
    let exists = have.iter().any(|s| s.name == name);
    if req.action == Action::List {
        return Ok(Outcome::List {
            drive: req.drive.clone(),
            live: true,
            snapshots: have,
        });
    }
    if !n.foreign.is_empty() && req.action != Action::Delete {
        return Err(Error::Refused {
            message: format!(
                "`{}` has writable block devices maqet does not manage: {}",
                vm.name,
                n.foreign.join(", ")
            ),
            help: "a live snapshot must hold every writable device, and these cannot hold one \
                   (a UEFI varstore on pflash cannot store internal snapshots); stop the VM \
                   and snapshot its disks offline"
                .into(),
        });
    }
    let job = format!("maqet-snapshot-{}", std::process::id());
    let devices = n.qcow2.clone();
    let (command, args) = match req.action {
        Action::List => unreachable!("answered above"),
        Action::Create => {
            if n.target_readonly {
                return Err(Error::Refused {
                    message: format!(
                        "drive `{}` is read-only, so it cannot take the VM's state",
                        req.drive
                    ),
                    help: "name a writable qcow2 drive: the RAM and device state are saved into it"
                        .into(),
                });
            }
            if exists && !req.overwrite {
                return Err(clash(name, &req.drive));
            }
            if exists {
                run_job(
                    qmp,
                    "snapshot-delete",
                    json!({"job-id": job, "tag": name, "devices": devices}),
                    req.timeout,
                )?;
            }
            if !n.raw.is_empty() {
                note(Note::Warning(&format!(
                    "writable raw images are not in the snapshot (raw cannot hold one): {}",
                    n.raw.join(", ")
                )));
            }
            (
                "snapshot-save",
                json!({"job-id": job, "tag": name, "vmstate": n.target, "devices": devices}),
            )
        }
        Action::Load => {
            if !exists {
                return Err(unknown(name, &req.drive, &have));
            }
            // A load that fails half-way leaves the VM paused in
            // `restore-vm`: make sure every disk has the snapshot first.
            let lacking: Vec<&String> = devices
                .iter()
                .filter(|d| !snapshots_of(&n.all, d).iter().any(|s| s.name == name))
                .collect();
            if !lacking.is_empty() {
                return Err(Error::Invalid {
                    message: format!(
                        "snapshot `{name}` is not on every disk of the running VM (missing on {})",
                        lacking.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    help: "it was probably taken offline, of one disk: stop the VM and load it offline".into(),
                });
            }
            (
                "snapshot-load",
                json!({"job-id": job, "tag": name, "vmstate": n.target, "devices": devices}),
            )
        }
        Action::Delete => {
            if !exists {
                return Err(unknown(name, &req.drive, &have));
            }
            (
                "snapshot-delete",
                json!({"job-id": job, "tag": name, "devices": devices}),
            )
        }
    };
    if let Err(e) = run_job(qmp, command, args, req.timeout) {
        let paused = qmp
            .execute("query-status", None)
            .ok()
            .and_then(|s| s["status"].as_str().map(str::to_owned))
            .filter(|s| s != "running");
        if let Some(state) = paused {
            note(Note::Warning(&format!(
                "the VM is left {state}; `maqet qmp resume {}` continues it",
                vm.name
            )));
        }
        return Err(explain_live_failure(e, vm));
    }
    Ok(Outcome::Done {
        action: req.action,
        name: name.to_owned(),
        live: true,
    })
}

/// Start a snapshot job and wait for it to conclude; report its error.
fn run_job(qmp: &mut Qmp, command: &str, args: Value, timeout: Duration) -> Result<()> {
    let job = args["job-id"].as_str().unwrap_or_default().to_owned();
    qmp.execute(command, Some(args))?;
    let deadline = Instant::now() + timeout;
    let done = poll_until(deadline, Duration::from_millis(50), || {
        let jobs = qmp.execute("query-jobs", None)?;
        let ours = jobs
            .as_array()
            .and_then(|a| a.iter().find(|j| j["id"] == job.as_str()))
            .cloned();
        match ours {
            Some(j) if j["status"] == "concluded" => {
                let _ = qmp.execute("job-dismiss", Some(json!({"id": job})));
                match j["error"].as_str() {
                    Some(error) => Err(Error::Invalid {
                        message: format!("QEMU's {command} failed: {error}"),
                        help: "see docs/storage.md for what live snapshots need".into(),
                    }),
                    None => Ok(Some(())),
                }
            }
            None => Ok(Some(())),
            Some(_) => Ok(None),
        }
    })?;
    done.ok_or_else(|| Error::TimedOut {
        what: format!("the {command} job"),
        seconds: timeout.as_secs(),
        last_seen: None,
        help: "a snapshot of a large guest takes time; give --timeout more".into(),
    })
}

/// UEFI guests keep their variables in a writable pflash device, which has
/// no internal snapshots; QEMU then refuses the whole live snapshot.
fn explain_live_failure(e: Error, vm: &Vm) -> Error {
    match e {
        Error::Invalid { message, .. } if message.contains("pflash") => Error::Invalid {
            message,
            help: format!(
                "`{}` boots UEFI with a writable varstore (pflash), which cannot hold an internal \
                 snapshot, so QEMU cannot take a live one: stop the VM and snapshot its disks offline",
                vm.name
            ),
        },
        other => other,
    }
}
