//! The `snapshot` command line: each verb's arguments, the request it
//! makes, and what it prints.

use std::time::Duration;

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use super::{Action, Outcome, Request, snapshot};
use crate::commands::{Env, notify};
use crate::error::Result;
use crate::render::{Output, grid};
use crate::terminal::safe_field;

/// Internal qcow2 snapshots: offline with qemu-img, live over QMP.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "snapshot",
    note = "`maqet snapshot VM create DRIVE NAME` also works (VM before the verb). On a running VM a\n\
            snapshot holds RAM and device state (in DRIVE) and every writable qcow2 disk; on a\n\
            stopped VM it holds DRIVE's disk only. See docs/storage.md.",
    example = "maqet snapshot create web root before-upgrade\nmaqet snapshot list web root\nmaqet snapshot load web root before-upgrade"
)]
pub struct Args {
    #[argh(subcommand)]
    pub action: Verb,
}

#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand)]
pub enum Verb {
    Create(CreateArgs),
    Load(LoadArgs),
    List(ListArgs),
    Delete(DeleteArgs),
}

/// Take a snapshot.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "create")]
pub struct CreateArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
    /// the qcow2 drive
    #[argh(positional, arg_name = "DRIVE")]
    pub drive: String,
    /// the snapshot's name
    #[argh(positional, arg_name = "NAME")]
    pub name: String,
    /// replace a snapshot of the same name
    #[argh(switch)]
    pub overwrite: bool,
    /// seconds to wait for a live snapshot (default 300)
    #[argh(option, arg_name = "SECONDS", default = "300")]
    pub timeout: u64,
}

/// Go back to a snapshot.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "load")]
pub struct LoadArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
    /// the qcow2 drive
    #[argh(positional, arg_name = "DRIVE")]
    pub drive: String,
    /// the snapshot's name
    #[argh(positional, arg_name = "NAME")]
    pub name: String,
    /// seconds to wait for a live load (default 300)
    #[argh(option, arg_name = "SECONDS", default = "300")]
    pub timeout: u64,
}

/// List a drive's snapshots.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "list")]
pub struct ListArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
    /// the qcow2 drive
    #[argh(positional, arg_name = "DRIVE")]
    pub drive: String,
}

/// Delete a snapshot.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "delete")]
pub struct DeleteArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
    /// the qcow2 drive
    #[argh(positional, arg_name = "DRIVE")]
    pub drive: String,
    /// the snapshot's name
    #[argh(positional, arg_name = "NAME")]
    pub name: String,
    /// seconds to wait for a live delete (default 300)
    #[argh(option, arg_name = "SECONDS", default = "300")]
    pub timeout: u64,
}

pub fn run(env: &Env, args: Args) -> Result<Outcome> {
    let request = |action, drive, name: Option<String>, overwrite, timeout| Request {
        action,
        drive,
        name,
        overwrite,
        timeout: Duration::from_secs(timeout),
    };
    let (vm, req) = match args.action {
        Verb::Create(a) => (
            a.vm,
            request(
                Action::Create,
                a.drive,
                Some(a.name),
                a.overwrite,
                a.timeout,
            ),
        ),
        Verb::Load(a) => (
            a.vm,
            request(Action::Load, a.drive, Some(a.name), false, a.timeout),
        ),
        Verb::Delete(a) => (
            a.vm,
            request(Action::Delete, a.drive, Some(a.name), false, a.timeout),
        ),
        Verb::List(a) => (a.vm, request(Action::List, a.drive, None, false, 60)),
    };
    snapshot(env, &vm, &req, &mut notify)
}

impl Output for Outcome {
    fn json(&self) -> Value {
        match self {
            Outcome::Done { action, name, live } => json!({
                "action": format!("{action:?}").to_lowercase(),
                "name": name,
                "live": live,
            }),
            Outcome::List {
                drive,
                live,
                snapshots,
            } => {
                let snapshots: Vec<Value> = snapshots
                    .iter()
                    .map(|s| {
                        json!({
                            "id": s.id,
                            "name": s.name,
                            "date": crate::vm::Timestamp(s.date).rfc3339(),
                            "vm_state_bytes": s.vm_state_size,
                            "guest_clock_seconds": s.vm_clock,
                        })
                    })
                    .collect();
                json!({ "drive": drive, "live": live, "snapshots": snapshots })
            }
        }
    }

    fn text(&self) -> String {
        match self {
            Outcome::Done { action, name, live } => {
                let verb = match action {
                    Action::Create => "created",
                    Action::Load => "loaded",
                    Action::Delete => "deleted",
                    Action::List => "listed",
                };
                let how = if *live {
                    "live: RAM, devices and every writable qcow2 disk"
                } else {
                    "offline: this disk"
                };
                format!("{verb} snapshot {} ({how})\n", safe_field(name))
            }
            Outcome::List { snapshots, .. } => snapshot_table(snapshots),
        }
    }
}

fn snapshot_table(snapshots: &[crate::storage::SnapshotInfo]) -> String {
    let rows: Vec<[String; 4]> = snapshots
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                crate::vm::Timestamp(s.date).rfc3339(),
                if s.vm_state_size == 0 {
                    "-".into()
                } else {
                    crate::config::Bytes(s.vm_state_size).human_approx()
                },
                format!("{}s", s.vm_clock),
            ]
        })
        .collect();
    grid(&["NAME", "DATE", "VM STATE", "GUEST CLOCK"], &rows)
}
