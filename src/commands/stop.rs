use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use super::{Env, Note, notify, read, read_id, save};
use crate::error::{Error, Result};
use crate::qemu::process::{Liveness, Pidfd};
use crate::qmp::Qmp;
use crate::reconcile::{observe, settle, settle_gone};
use crate::render::Output;
use crate::vm::{Status, Vm};

/// Stop a VM: ACPI power button, then QMP quit, then SIGKILL.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "stop",
    note = "Stopping a stopped VM succeeds. Logs are kept for `status`.",
    example = "maqet stop web\nmaqet stop web --force"
)]
pub struct Args {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// seconds the guest gets to power off (default 30, or the settings
    /// file's stop_timeout)
    #[argh(option, arg_name = "SECONDS")]
    pub timeout: Option<u64>,

    /// do not ask the guest: quit QEMU at once (SIGKILL if it hangs)
    #[argh(switch)]
    pub force: bool,
}

pub fn run(env: &Env, args: Args) -> Result<StopOutcome> {
    let seconds = args.timeout.or(env.settings.stop_timeout).unwrap_or(30);
    let opts = StopOptions {
        timeout: Duration::from_secs(seconds),
        force: args.force,
    };
    stop(env, &args.vm, &opts, &mut notify)
}

impl Output for StopOutcome {
    fn json(&self) -> Value {
        let (vm, how) = match self {
            StopOutcome::AlreadyStopped(vm) => (vm, None),
            StopOutcome::Stopped { vm, how } => (vm, Some(*how)),
        };
        json!({
            "id": vm.id.as_str(),
            "name": vm.name.as_str(),
            "was_running": how.is_some(),
            "how": how,
            "status": vm.status.as_str(),
        })
    }

    fn text(&self) -> String {
        match self {
            StopOutcome::AlreadyStopped(vm) => {
                format!("{} is not running ({})\n", vm.name, vm.status)
            }
            StopOutcome::Stopped { vm, how } => format!("stopped {}: {how}\n", vm.name),
        }
    }
}

pub struct StopOptions {
    /// How long the guest gets to power off after the ACPI button.
    pub timeout: Duration,
    /// Skip the guest: `quit`, then SIGKILL.
    pub force: bool,
}

pub enum StopOutcome {
    /// It was not running (`status` says why, if it had crashed).
    AlreadyStopped(Box<Vm>),
    Stopped {
        vm: Box<Vm>,
        how: &'static str,
    },
}

/// What reaching QMP for `quit` gets after the guest's time (or at once
/// with `--force`): a stopped or hung QEMU never greets, and is killed, so
/// `stop` ends within `--timeout` plus this.
const QUIT_BUDGET: Duration = Duration::from_millis(900);
/// How long a QEMU that took `quit` gets to exit.
const QUIT_WAIT: Duration = Duration::from_secs(5);
/// How long the guest phase may spend reaching QMP.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a SIGKILLed QEMU gets to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Stop a VM: ACPI power button, then QMP `quit`, then SIGKILL through a
/// pidfd after the identity check. Stopping a stopped VM succeeds.
pub fn stop(
    env: &Env,
    query: &str,
    opts: &StopOptions,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<StopOutcome> {
    let vm = read(env, query)?;
    crate::dirs::ensure_private_dir(&env.dirs.runtime)?;
    let paths = env.dirs.vm(&vm.id);
    let _vm_lock = crate::lock::exclusive(&paths.lock, &format!("VM `{}`", vm.name))?;
    let mut vm = read_id(env, &vm.id)?;
    // A QEMU whose start was interrupted before it was recorded is still
    // this VM's: stop it too.
    if crate::reconcile::resolve_starting(&mut vm)
        || crate::reconcile::adopt_orphan(&mut vm, &paths.runtime.dir)
    {
        save(env, &vm)?;
    }
    let Some(rt) = vm.runtime.clone() else {
        return Ok(StopOutcome::AlreadyStopped(Box::new(vm)));
    };
    match observe(&vm) {
        None => return Ok(StopOutcome::AlreadyStopped(Box::new(vm))),
        Some(Liveness::Gone { clean }) => {
            settle_gone(&mut vm, clean);
            save(env, &vm)?;
            return Ok(StopOutcome::AlreadyStopped(Box::new(vm)));
        }
        Some(Liveness::Running | Liveness::Orphaned) => {}
        Some(Liveness::Unproven { why }) => return Err(unproven(&vm.name, rt.pid, why)),
    }
    let process = match Pidfd::open_checked(rt.pid, rt.start_ticks) {
        Ok(fd) => fd,
        Err(_) => {
            settle_gone(&mut vm, !rt.pidfile.exists());
            save(env, &vm)?;
            return Ok(StopOutcome::AlreadyStopped(Box::new(vm)));
        }
    };

    let mut how = None;
    // Every wait below, connecting and QEMU's greeting included, comes out
    // of one budget: a stopped or hung QEMU must not hold `stop` longer.
    let deadline = Instant::now() + opts.timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    if !opts.force && !left().is_zero() {
        match Qmp::connect(&rt.qmp_socket, QMP_TIMEOUT.min(left())) {
            Ok(mut qmp) => {
                qmp.execute("system_powerdown", None)?;
                // QEMU serves one QMP client at a time: let go, so `status`
                // can ask while the guest shuts down.
                drop(qmp);
                note(Note::Progress(&format!(
                    "asked the guest to power off; waiting up to {} s",
                    opts.timeout.as_secs()
                )));
                if process.wait_exit(left()) {
                    how = Some("the guest powered off");
                }
            }
            Err(err) => note(Note::Warning(&format!(
                "cannot reach QMP ({err}); stopping QEMU without the guest"
            ))),
        }
    }
    if how.is_none() {
        let asked = match Qmp::connect(&rt.qmp_socket, QUIT_BUDGET) {
            Ok(mut qmp) => {
                // The reply may never come: QEMU can close the socket as it
                // quits.
                let _ = qmp.execute("quit", None);
                true
            }
            Err(_) => false,
        };
        if asked && process.wait_exit(QUIT_WAIT) {
            how = Some(if opts.force {
                "QEMU quit"
            } else {
                "the guest did not power off in time; QEMU quit"
            });
        }
    }
    if how.is_none() {
        process
            .signal(Signal::SIGKILL)
            .map_err(|e| Error::io("cannot kill QEMU", format!("pid {}", rt.pid), e))?;
        if !process.wait_exit(KILL_WAIT) {
            return Err(Error::TimedOut {
                what: format!("QEMU (pid {}) to die after SIGKILL", rt.pid),
                seconds: KILL_WAIT.as_secs(),
                last_seen: None,
                help: "the process may be stuck in the kernel (e.g. on a hung disk); check `ps`"
                    .into(),
            });
        }
        how = Some("QEMU was killed");
    }
    let how = how.unwrap_or("stopped");
    settle(&mut vm, Status::Stopped, format!("stopped by maqet: {how}"));
    save(env, &vm)?;
    if vm.auto_remove {
        // Started with `run --rm`: stopped means gone.
        crate::reconcile::reconcile_one(&env.dirs, vm.clone())?;
    }
    Ok(StopOutcome::Stopped {
        vm: Box::new(vm),
        how,
    })
}

/// The refusal to signal a process the identity check could not prove to be
/// the VM's QEMU.
pub fn unproven(name: &impl std::fmt::Display, pid: i32, why: &str) -> Error {
    Error::Refused {
        message: format!(
            "refusing to signal pid {pid}: it has VM `{name}`'s recorded start time but {why}, so it may not be the VM's QEMU"
        ),
        help: format!(
            "see what it is with `ps -fp {pid}`; if it is the VM's QEMU, end it yourself (`kill {pid}`): maqet then records the VM as no longer running"
        ),
    }
}
