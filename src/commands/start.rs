use std::convert::Infallible;
use std::process::Child;
use std::time::{Duration, Instant};

use camino::Utf8Path;
use nix::sys::signal::Signal;

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use super::wait::{Condition, WaitFor, Watch};
use super::{Env, Note, needs_trust, notify, read, read_id, save, untrusted};
use crate::config::{Accel, VmConfig};
use crate::deadline::poll_until;
use crate::dirs::ensure_private_dir;
use crate::error::{Error, Result};
use crate::layout::{RuntimePaths, VmPaths};
use crate::qemu::argv::{self, Accelerator, ImageFd, Plan};
use crate::qemu::confine::{self, Prepared, kernel_abi};
use crate::qemu::process::{Liveness, Pidfd, ProcStat};
use crate::qemu::spawn::{
    Listeners, bind_private, check_socket_path, open_images, private_file, spawn, tail,
};
use crate::qemu::{decide_accel, find_program, logind_warning, remember_kvm_broken};
use crate::qmp::{Qmp, QmpError};
use crate::reconcile::{LOG_TAIL, adopt_orphan, observe, settle, settle_gone};
use crate::render::Output;
use crate::settings::ConfinementMode;
use crate::storage::{Chains, check_images, create_image, missing_images, recheck_paths};
use crate::vm::{Confinement, Runtime, Status, Timestamp, Vm};

/// Start a VM in the background; returns once it is ready.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "start",
    note = "The VM keeps running after you log out. Conditions for --wait-for: qmp (the default:\n\
            QMP answers), console:REGEX (the guest printed a matching line), port:N (for one of\n\
            the VM's forwards: the guest answers behind it, i.e. sends data or keeps the\n\
            connection it took; for any other port: 127.0.0.1:N accepts connections), ssh (an\n\
            SSH- banner through the VM's forward of guest port 22), file:PATH (the file exists).\n\
            Not met in time: exit 5, the VM keeps running, and maqet says what it saw last.",
    example = "maqet start web\nmaqet start web --wait-for ssh --timeout 120\nmaqet start web --wait-for 'console:login:' --timeout 120\nmaqet start web --dry-run"
)]
pub struct Args {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// seconds to wait for the VM to be ready (default 60)
    #[argh(option, arg_name = "SECONDS", default = "60")]
    pub timeout: u64,

    /// what "ready" means: qmp, console:REGEX, port:N, ssh or file:PATH
    #[argh(option, arg_name = "COND", default = "WaitFor::Qmp")]
    pub wait_for: WaitFor,

    /// print the QEMU command line instead of running it
    #[argh(switch)]
    pub dry_run: bool,
}

pub fn run(env: &Env, args: Args) -> Result<StartOutcome> {
    let opts = StartOptions {
        timeout: Duration::from_secs(args.timeout),
        wait_for: args.wait_for,
        dry_run: args.dry_run,
    };
    start(env, &args.vm, &opts, &mut notify)
}

impl Output for StartOutcome {
    fn json(&self) -> Value {
        match self {
            StartOutcome::DryRun { argv, .. } => json!(argv),
            StartOutcome::Started { vm, run_state } => {
                let rt = vm.runtime.as_ref();
                json!({
                    "id": vm.id.as_str(),
                    "name": vm.name.as_str(),
                    "pid": rt.map(|r| r.pid),
                    "accel": rt.map(|r| r.accel.as_str()),
                    "accel_note": rt.and_then(|r| r.accel_note.as_deref()),
                    "confined": rt.map(|r| r.confinement.is_confined()),
                    "qmp_socket": rt.map(|r| r.qmp_socket.as_str()),
                    "console_socket": rt.map(|r| r.console_socket.as_str()),
                    "run_state": run_state,
                })
            }
        }
    }

    fn text(&self) -> String {
        match self {
            StartOutcome::DryRun { argv, .. } => format!("{}\n", argv::shell_line(argv)),
            StartOutcome::Started { vm, .. } => {
                let pid = vm.runtime.as_ref().map_or(0, |rt| rt.pid);
                format!("started {} (pid {pid})\n", vm.name)
            }
        }
    }
}

pub struct StartOptions {
    pub timeout: Duration,
    pub wait_for: WaitFor,
    pub dry_run: bool,
}

pub enum StartOutcome {
    /// `--dry-run`: the command line that would run.
    DryRun {
        vm: Box<Vm>,
        argv: Vec<String>,
    },
    Started {
        vm: Box<Vm>,
        run_state: String,
    },
}

/// Start a VM's QEMU detached, and wait until it is ready.
pub fn start(
    env: &Env,
    query: &str,
    opts: &StartOptions,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<StartOutcome> {
    let vm = read(env, query)?;
    check_trust(env, &vm)?;
    let VmPaths {
        runtime: paths,
        lock: vm_lock,
        disks: disks_dir,
        ..
    } = env.dirs.vm(&vm.id);
    if opts.dry_run {
        let (accel, _) = decide_accel(vm.config.accel, &env.dirs.kvm_memo(), None)?;
        let chains = check_images(&vm.config, &disks_dir, &env.policy)?;
        // The seed as it will be attached; not written by a dry run.
        let seeded = match vm.config.cloud_init {
            Some(_) => {
                crate::cloud_init::attach(&vm.config, &crate::cloud_init::seed_path(&disks_dir))
            }
            None => vm.config.clone(),
        };
        let argv = command_line(&vm, &seeded, accel, &paths, &disks_dir, &chains);
        return Ok(StartOutcome::DryRun {
            vm: Box::new(vm),
            argv,
        });
    }
    let condition = Condition::of(env, &opts.wait_for, &vm.config)?;
    check_socket_path(&paths.qmp_socket)?;
    check_socket_path(&paths.console_socket)?;
    check_socket_path(&paths.events_socket)?;
    let program = find_program(&vm.config.binary)?;

    ensure_private_dir(&env.dirs.runtime)?;
    // One start or stop of a VM at a time: two concurrent starts must not
    // give two QEMUs on the same disks.
    let _vm_lock = crate::lock::exclusive(&vm_lock, &format!("VM `{}`", vm.name))?;
    let mut vm = read_id(env, &vm.id)?;
    check_trust(env, &vm)?;
    // We hold the VM's lock: a record at STARTING, or a QEMU nobody
    // recorded, is what a killed start left.
    if crate::reconcile::resolve_starting(&mut vm) || adopt_orphan(&mut vm, &paths.dir) {
        save(env, &vm)?;
    }
    match observe(&vm) {
        Some(Liveness::Running | Liveness::Orphaned) => {
            let pid = vm.runtime.as_ref().map_or(0, |rt| rt.pid);
            return Err(Error::VmActive {
                name: vm.name.to_string(),
                status: format!("already running (pid {pid})"),
                help: format!("`maqet stop {}` stops it", vm.name),
            });
        }
        Some(Liveness::Unproven { why }) => {
            let pid = vm.runtime.as_ref().map_or(0, |rt| rt.pid);
            return Err(Error::VmActive {
                name: vm.name.to_string(),
                status: format!(
                    "recorded as running (pid {pid}), and pid {pid} runs with the recorded start time but {why}"
                ),
                help: format!(
                    "maqet starts no second QEMU on the VM's disks while that process may be its QEMU; see what it is with `ps -fp {pid}`"
                ),
            });
        }
        Some(Liveness::Gone { clean }) => settle_gone(&mut vm, clean),
        None => {}
    }

    recheck_paths(&vm.config, &env.policy)?;
    let mut chains = check_images(&vm.config, &disks_dir, &env.policy)?;
    let missing = missing_images(&vm.config, &disks_dir);
    for image in &missing {
        note(Note::Progress(&format!(
            "creating {} ({} bytes)",
            image.path, image.size_bytes
        )));
        create_image(image, &disks_dir)?;
        if !vm.owned.contains(&image.path) {
            vm.owned.push(image.path.clone());
        }
        // Recorded at once: a start that fails later must not forget it.
        save(env, &vm)?;
    }
    if !missing.is_empty() {
        chains = check_images(&vm.config, &disks_dir, &env.policy)?;
    }
    // The cloud-init seed, written from what its inputs say now, and
    // attached to the QEMU this start runs (not to the stored config).
    let seeded = match crate::cloud_init::write_seed(&vm, &disks_dir, &env.policy)? {
        Some(seed) => {
            if !vm.owned.contains(&seed) {
                vm.owned.push(seed.clone());
                save(env, &vm)?;
            }
            crate::cloud_init::attach(&vm.config, &seed)
        }
        None => vm.config.clone(),
    };
    if let Some(warning) = logind_warning() {
        note(Note::Warning(&warning));
    }
    ensure_private_dir(&paths.dir)?;
    let (mut accel, accel_note) =
        decide_accel(vm.config.accel, &env.dirs.kvm_memo(), Some(&program))?;
    let mut kvm_failure: Option<String> = None;
    let deadline = Instant::now() + opts.timeout;
    let (mut child, mut qmp) = loop {
        let mut argv = command_line(&vm, &seeded, accel, &paths, &disks_dir, &chains);
        argv[0] = program.clone().into_string();
        let attempt = Attempt {
            ruleset: confine(env, &seeded, accel, &program, &paths, &disks_dir, &chains)?,
            images: argv::image_fds(&seeded, &disks_dir, &chains),
            argv,
            accel,
            accel_note: kvm_failure
                .as_ref()
                .map(|message| format!("KVM failed at start: {message}"))
                .or_else(|| accel_note.clone()),
        };
        match launch(env, &mut vm, attempt, &paths, deadline, opts.timeout, note)? {
            Launch::Ready(child, qmp) => {
                if let Some(message) = &kvm_failure {
                    remember_kvm_broken(&env.dirs.kvm_memo(), &program, message);
                    note(Note::Warning(&format!(
                        "QEMU failed with KVM ({message}); started `{}` with TCG (software emulation) instead",
                        vm.name
                    )));
                }
                break (*child, qmp);
            }
            Launch::Exited(mut child) => {
                // `accel: Auto` ends with a running VM: KVM that is present
                // but aborts (nested virtualisation) falls back to TCG. It
                // is blamed on KVM only if TCG then runs (below).
                if accel == Accelerator::Kvm && vm.config.accel == Accel::Auto {
                    let log_tail = tail(&paths.qemu_log, LOG_TAIL);
                    let _ = child.wait();
                    kvm_failure = Some(log_tail.join(" / "));
                    accel = Accelerator::Tcg;
                    continue;
                }
                return Err(exited_early(env, &mut vm, &mut child, &paths));
            }
        }
    };
    let run_state = match qmp.execute("query-status", None) {
        Ok(status) => status["status"].as_str().unwrap_or("unknown").to_owned(),
        Err(_) => return Err(exited_early(env, &mut vm, &mut child, &paths)),
    };
    drop(qmp);

    if !matches!(condition, Condition::Qmp) {
        note(Note::Progress(&format!(
            "waiting for {}",
            condition.describe()
        )));
        let mut watch = Watch::new(&condition, &paths.console_log, &paths.qmp_socket);
        // `Some(true)`: QEMU exited first.
        let Ok(ended) = poll_until(deadline, Duration::from_millis(50), || {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            Ok::<_, Infallible>((exited || watch.met()).then_some(exited))
        });
        match ended {
            Some(true) => return Err(exited_early(env, &mut vm, &mut child, &paths)),
            Some(false) => {}
            // The VM stays up: it started, only the condition was not met.
            None => {
                return Err(Error::TimedOut {
                    what: condition.describe(),
                    seconds: opts.timeout.as_secs(),
                    last_seen: watch.last_seen(),
                    help: format!(
                        "the VM is running; `maqet console {0} --log` shows what it printed, `maqet stop {0}` stops it",
                        vm.name
                    ),
                });
            }
        }
    }
    Ok(StartOutcome::Started {
        vm: Box::new(vm),
        run_state,
    })
}

/// The QEMU command line of `vm` run as `config` (its own, with the seed
/// attached), program name first.
fn command_line(
    vm: &Vm,
    config: &VmConfig,
    accel: Accelerator,
    runtime: &RuntimePaths,
    disks_dir: &Utf8Path,
    chains: &Chains,
) -> Vec<String> {
    argv::build(&Plan {
        name: vm.name.as_str(),
        config,
        accel,
        runtime,
        disks_dir,
        chains,
    })
}

/// Raw `arguments` and a custom `binary` run only when granted on the
/// command line (`--trust`): a config file alone cannot give QEMU host
/// access (docs/security.md).
fn check_trust(env: &Env, vm: &Vm) -> Result<()> {
    match needs_trust(env, &vm.config) {
        Some(what) if !vm.trusted => Err(untrusted(
            vm.name.as_str(),
            what,
            &format!("grant them with `maqet apply {} --trust`", vm.name),
        )),
        _ => Ok(()),
    }
}

/// The Landlock ruleset for this VM's QEMU, or `None` where the kernel has
/// none (then `status` says so) or the settings turn it off.
fn confine(
    env: &Env,
    config: &VmConfig,
    accel: Accelerator,
    program: &Utf8Path,
    paths: &RuntimePaths,
    disks_dir: &Utf8Path,
    chains: &Chains,
) -> Result<(Option<Prepared>, Confinement)> {
    let mode = env.settings.confinement.unwrap_or_default();
    if mode == ConfinementMode::Off {
        return Ok((
            None,
            Confinement::None {
                reason: "turned off in the settings (confinement: Off)".into(),
            },
        ));
    }
    if let Err(reason) = kernel_abi() {
        if mode == ConfinementMode::Required {
            return Err(Error::Confinement {
                message: format!("the settings require confinement, but {reason}"),
            });
        }
        return Ok((None, Confinement::None { reason }));
    }
    let needs = confine::needs(
        config,
        accel,
        program,
        paths,
        disks_dir,
        chains,
        &env.settings,
    );
    let prepared = confine::prepare(&needs, &env.policy)?.ok_or_else(|| Error::Confinement {
        message: "the kernel stopped offering Landlock".into(),
    })?;
    let confinement = prepared.confinement.clone();
    Ok((Some(prepared), confinement))
}

/// One try at running QEMU.
struct Attempt {
    argv: Vec<String>,
    /// The images the argv names by fd set.
    images: Vec<ImageFd>,
    accel: Accelerator,
    accel_note: Option<String>,
    ruleset: (Option<Prepared>, Confinement),
}

enum Launch {
    /// QMP answered.
    Ready(Box<Child>, Qmp),
    /// QEMU exited before QMP answered (not yet reaped).
    Exited(Child),
}

/// Spawn QEMU with fresh sockets and wait for QMP, recording the VM as it
/// goes so a killed maqet leaves a record that leads to the process.
fn launch(
    env: &Env,
    vm: &mut Vm,
    attempt: Attempt,
    paths: &RuntimePaths,
    deadline: Instant,
    timeout: Duration,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<Launch> {
    let _ = std::fs::remove_file(&paths.pidfile);
    crate::console::rotate_log(&paths.console_log)
        .map_err(|e| Error::io("cannot rotate", paths.console_log.clone(), e))?;
    private_file(&paths.console_log, false)?;
    let listeners = Listeners {
        qmp: bind_private(&paths.qmp_socket)?,
        console: bind_private(&paths.console_socket)?,
        events: bind_private(&paths.events_socket)?,
    };
    let Attempt {
        argv,
        images: attempt_images,
        accel,
        accel_note,
        ruleset: (ruleset, confinement),
    } = attempt;
    crate::log::debug(format_args!("starting {}", argv::shell_line(&argv)));
    // Recorded as starting before the spawn: if this maqet is killed right
    // after it, the record still leads to the QEMU (through its pidfile).
    vm.status = Status::Starting;
    vm.last_exit = None;
    vm.runtime = Some(crate::reconcile::placeholder(&paths.dir));
    save(env, vm)?;
    let spawned = open_images(&attempt_images)
        .and_then(|images| spawn(&argv, paths, listeners, images, ruleset.as_ref()));
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            vm.status = Status::Stopped;
            vm.runtime = None;
            let _ = save(env, vm);
            return Err(e);
        }
    };
    drop(ruleset);
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    // Recorded before waiting: if this maqet is killed while QEMU boots, the
    // next command finds the process through the record instead of losing it.
    let Ok(stat) = ProcStat::read(pid) else {
        return Ok(Launch::Exited(child));
    };
    vm.status = Status::Running;
    vm.last_exit = None;
    vm.runtime = Some(Runtime {
        pid,
        start_ticks: stat.start_ticks,
        dir: paths.dir.clone(),
        qmp_socket: paths.qmp_socket.clone(),
        console_socket: paths.console_socket.clone(),
        pidfile: paths.pidfile.clone(),
        // Not before the config's last change (an apply made within the
        // second of an earlier start counts a second on): this QEMU runs
        // the config as it is now.
        started: Timestamp::now().max(vm.updated),
        accel: accel.as_str().into(),
        argv,
        accel_note,
        confinement,
    });
    save(env, vm)?;

    note(Note::Progress("waiting for QMP"));
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(Launch::Exited(child));
        }
        if Instant::now() >= deadline {
            return Err(abandon(env, vm, &mut child, timeout, "QMP".into(), None));
        }
        match Qmp::connect(&paths.qmp_socket, Duration::from_secs(1)) {
            Ok(qmp) => return Ok(Launch::Ready(Box::new(child), qmp)),
            Err(err @ QmpError::NotOurs { .. }) => {
                kill(&mut child);
                settle(
                    vm,
                    Status::Stopped,
                    "the QMP socket failed maqet's checks".into(),
                );
                let _ = save(env, vm);
                return Err(err.into());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// QEMU exited before it was ready: reap it, record why, report its log.
fn exited_early(env: &Env, vm: &mut Vm, child: &mut Child, paths: &RuntimePaths) -> Error {
    let status = child.wait().ok();
    let log_tail = tail(&paths.qemu_log, LOG_TAIL);
    let reason = match status.and_then(|s| s.code()) {
        Some(code) => format!("QEMU exited with status {code} while starting"),
        None => "QEMU was killed while starting".into(),
    };
    settle(vm, Status::Stopped, reason);
    let _ = save(env, vm);
    Error::QemuExited {
        name: vm.name.to_string(),
        log_tail,
        help: format!(
            "fix what QEMU reported above (`maqet status {}` shows it again); the VM was left stopped",
            vm.name
        ),
    }
}

/// Give up on a QEMU that did not become ready in time.
fn abandon(
    env: &Env,
    vm: &mut Vm,
    child: &mut Child,
    timeout: Duration,
    what: String,
    last_seen: Option<String>,
) -> Error {
    if let Some(rt) = &vm.runtime
        && let Ok(fd) = Pidfd::open_checked(rt.pid, rt.start_ticks)
    {
        let _ = fd.signal(Signal::SIGKILL);
    }
    let _ = child.wait();
    settle(
        vm,
        Status::Stopped,
        format!(
            "QEMU did not answer within {} s and was killed",
            timeout.as_secs()
        ),
    );
    let _ = save(env, vm);
    Error::TimedOut {
        what,
        seconds: timeout.as_secs(),
        last_seen,
        help: "QEMU was stopped again; try a longer --timeout, or check the VM's config".into(),
    }
}
