//! Internal qcow2 snapshots: with `qemu-img` while the VM is stopped, with
//! QMP snapshot jobs while it runs (docs/storage.md).

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use serde_json::{Value, json};

use super::Env;
use super::qmp::{Monitor, connect};
use crate::config::Storage;
use crate::error::{Error, Result};
use crate::qemu::argv::owned_image;
use crate::qemu::process::Liveness;
use crate::qmp::Qmp;
use crate::reconcile::observe;
use crate::storage::{SnapshotInfo, info_chain, qemu_img};

use crate::vm::Vm;

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

pub fn snapshot(env: &Env, query: &str, req: &Request) -> Result<Outcome> {
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
        _ => false,
    };
    let name = match (req.action, &req.name) {
        (Action::List, _) => String::new(),
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
        live_snapshot(&mut session.qmp, &vm, &image, req, &name)
    } else {
        offline_snapshot(&image, req, &name)
    }
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
            let path = q.file.as_ref().map_or_else(
                || owned_image(&env.disks_dir(&vm.id), q.name.as_str()),
                |f| f.as_path().to_owned(),
            );
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
    // `qemu-img snapshot` has no `-f`; `--image-opts` names the driver
    // instead, so the format is still never probed.
    let opts = format!(
        "driver=qcow2,file.driver=file,file.filename={}",
        crate::qemu::argv::escape(image.as_str())
    );
    let snap = |flag: &str, name: &str| {
        qemu_img(&["snapshot", "--image-opts", flag, name, opts.as_str()]).map(drop)
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

/// The format node QEMU has for `image`, and every writable qcow2 node (a
/// live snapshot covers all of them, with RAM in the chosen one).
fn nodes(qmp: &mut Qmp, image: &Utf8PathBuf) -> Result<(String, Vec<String>, Vec<String>)> {
    let list = qmp.execute("query-named-block-nodes", Some(json!({"flat": true})))?;
    let nodes = list.as_array().cloned().unwrap_or_default();
    let is_format = |n: &Value| n["drv"] == "qcow2" || n["drv"] == "raw";
    let maqet_node = |n: &Value| {
        n["node-name"]
            .as_str()
            .is_some_and(|s| s.starts_with("maqet-drive"))
    };
    let target = nodes
        .iter()
        .find(|n| maqet_node(n) && n["drv"] == "qcow2" && n["file"].as_str() == Some(image.as_str()))
        .and_then(|n| n["node-name"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::invalid(
            format!("the running VM has no qcow2 node for {image}"),
            "the config changed since the VM started; stop and start it, or snapshot it stopped",
        ))?;
    let writable = |n: &&Value| maqet_node(n) && is_format(n) && n["ro"] != true;
    let qcow2: Vec<String> = nodes
        .iter()
        .filter(writable)
        .filter(|n| n["drv"] == "qcow2")
        .filter_map(|n| n["node-name"].as_str().map(str::to_owned))
        .collect();
    let raw: Vec<String> = nodes
        .iter()
        .filter(writable)
        .filter(|n| n["drv"] == "raw")
        .filter_map(|n| n["file"].as_str().map(str::to_owned))
        .collect();
    Ok((target, qcow2, raw))
}

fn live_snapshot(
    qmp: &mut Qmp,
    vm: &Vm,
    image: &Utf8PathBuf,
    req: &Request,
    name: &str,
) -> Result<Outcome> {
    let (node, devices, raw) = nodes(qmp, image)?;
    let list = qmp.execute("query-named-block-nodes", Some(json!({"flat": true})))?;
    let have: Vec<SnapshotInfo> = list
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node-name"] == node.as_str()))
        .and_then(|n| n["image"]["snapshots"].as_array())
        .map(|s| s.iter().map(SnapshotInfo::from_json).collect())
        .unwrap_or_default();
    let exists = have.iter().any(|s| s.name == name);
    let job = format!("maqet-snapshot-{}", std::process::id());
    let (command, args) = match req.action {
        Action::List => {
            return Ok(Outcome::List {
                drive: req.drive.clone(),
                live: true,
                snapshots: have,
            });
        }
        Action::Create => {
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
            if !raw.is_empty() {
                crate::log::warn(format_args!(
                    "writable raw images are not in the snapshot: {}",
                    raw.join(", ")
                ));
            }
            (
                "snapshot-save",
                json!({"job-id": job, "tag": name, "vmstate": node, "devices": devices}),
            )
        }
        Action::Load => {
            if !exists {
                return Err(unknown(name, &req.drive, &have));
            }
            (
                "snapshot-load",
                json!({"job-id": job, "tag": name, "vmstate": node, "devices": devices}),
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
    run_job(qmp, command, args, req.timeout).map_err(|e| explain_live_failure(e, vm))?;
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
    loop {
        let jobs = qmp.execute("query-jobs", None)?;
        let ours = jobs
            .as_array()
            .and_then(|a| a.iter().find(|j| j["id"] == job.as_str()))
            .cloned();
        match ours {
            Some(j) if j["status"] == "concluded" => {
                let _ = qmp.execute("job-dismiss", Some(json!({"id": job})));
                return match j["error"].as_str() {
                    Some(error) => Err(Error::Invalid {
                        message: format!("QEMU's {command} failed: {error}"),
                        help: "see docs/storage.md for what live snapshots need".into(),
                    }),
                    None => Ok(()),
                };
            }
            None => return Ok(()),
            Some(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(Error::TimedOut {
                what: format!("the {command} job"),
                seconds: timeout.as_secs(),
                last_seen: None,
                help: "a snapshot of a large guest takes time; give --timeout more".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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
