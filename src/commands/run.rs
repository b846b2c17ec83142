use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use argh::{ArgsInfo, FromArgs};
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Value, json};

use crate::config::Cpus;
use crate::render::Output;

use super::define::{defined, new_vm, store_new};
use super::wait::Condition;
use super::{
    ConfigInput, Env, Note, StartOptions, StartOutcome, WaitFor, find_reconciled, load_files,
    read_id, start,
};
use crate::config::{
    CloudInit, DiskSize, Display, Forward, ImageFormat, Layer, Memory, Name, Network, Overrides,
    Port, Protocol, Qcow2Drive, Storage, UserNetwork, UserPath, VmConfig,
};
use crate::console::Ended;
use crate::error::{Error, Result};
use crate::reconcile::{forget_files, reconcile_one};
use crate::store::{Access, Store};
use crate::vm::{Vm, VmId};

/// Add and start a VM in one go: from config files, or the default VM.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "run",
    note = "Without CONFIG, runs the default VM: diskless, headless, 256M, a serial console, and\n\
            user networking with the guest's port 22 forwarded from a free port on 127.0.0.1 —\n\
            enough to check that this host can run VMs. Its name is run-XXXXXX unless --name.\n\
            --wait-for takes the conditions of `maqet start` (see `maqet start --help`).\n\
            --rm removes the VM and the images maqet created for it once it has stopped: at\n\
            once when it stops while the console is attached or through `maqet stop`, else the\n\
            next time a maqet command finds it stopped. Run again, a VM of the same name whose\n\
            config is what the files and options give is started, or reported running (exit 0);\n\
            one configured otherwise is an error that says what differs (exit 3).",
    example = "maqet run\nmaqet run vm.ron --console --rm\nmaqet run vm.ron --wait-for ssh --timeout 120\n\
               maqet run --image debian-12-genericcloud-amd64.qcow2 --ssh --rm\n\
               maqet run --image debian.qcow2 --ssh -- cloud-init status --wait"
)]
pub struct Args {
    /// config files (RON)
    #[argh(positional, arg_name = "CONFIG")]
    pub configs: Vec<Utf8PathBuf>,

    /// the VM's name (wins over the files)
    #[argh(option, arg_name = "NAME")]
    pub name: Option<Name>,

    /// guest memory, e.g. 2G (wins over the files)
    #[argh(option, arg_name = "MEMORY")]
    pub memory: Option<Memory>,

    /// virtual CPUs (wins over the files)
    #[argh(option, arg_name = "CPUS")]
    pub cpus: Option<Cpus>,

    /// QEMU program name or path (wins over the files)
    #[argh(option, arg_name = "BINARY")]
    pub binary: Option<String>,

    /// allow this VM's raw QEMU `arguments` and custom `binary` (see
    /// docs/security.md): a config file alone cannot grant them
    #[argh(switch)]
    pub trust: bool,

    /// attach the serial console in the foreground (Ctrl-] detaches)
    #[argh(switch)]
    pub console: bool,

    /// remove the VM, and the images maqet created for it, once it stops
    #[argh(switch)]
    pub rm: bool,

    /// what "ready" means: qmp (default; ssh with --image), console:REGEX,
    /// port:N, ssh or file:PATH
    #[argh(option, arg_name = "COND")]
    pub wait_for: Option<WaitFor>,

    /// a cloud image to boot (qcow2): the root disk is a new overlay on it,
    /// which is never written; cloud-init makes your account with your SSH
    /// keys, and SSH is forwarded from a free local port
    #[argh(option, arg_name = "IMAGE")]
    pub image: Option<Utf8PathBuf>,

    /// the format of --image: qcow2 (default) or raw
    #[argh(option, arg_name = "FORMAT")]
    pub image_format: Option<ImageFormat>,

    /// the size of the root disk with --image (default 20G)
    #[argh(option, arg_name = "SIZE")]
    pub disk_size: Option<DiskSize>,

    /// with --image: once SSH answers, open a session (`maqet ssh`)
    #[argh(switch)]
    pub ssh: bool,

    /// seconds to wait for the VM to be ready (default 60)
    #[argh(option, arg_name = "SECONDS", default = "60")]
    pub timeout: u64,
}

pub fn run(env: &Env, mut args: Args) -> Result<Box<dyn Output>> {
    // With --image there are no config files: the words are the command
    // --ssh runs in the guest (`maqet run --image X --ssh -- uname -a`).
    let command: Vec<String> = match &args.image {
        Some(_) => std::mem::take(&mut args.configs)
            .into_iter()
            .map(Utf8PathBuf::into_string)
            .collect(),
        None => Vec::new(),
    };
    if !command.is_empty() && !args.ssh {
        return Err(Error::usage(
            "--image runs a VM of its own and takes no config files",
            "to run a command in the guest once it is up, add --ssh: \
             `maqet run --image IMAGE --ssh -- COMMAND`",
        ));
    }
    let image = match &args.image {
        Some(path) => Some(cloud_image(env, &args, path)?),
        None => {
            let needs_image = [
                (args.image_format.is_some(), "--image-format"),
                (args.disk_size.is_some(), "--disk-size"),
                (args.ssh, "--ssh"),
            ];
            if let Some((_, option)) = needs_image.iter().find(|(given, _)| *given) {
                return Err(Error::usage(
                    format!("{option} goes with --image"),
                    "give the cloud image to boot with --image IMAGE",
                ));
            }
            None
        }
    };
    let input = ConfigInput::new(
        env,
        args.configs,
        (args.name, args.memory, args.cpus, args.binary),
        args.trust,
    )?;
    let wait_for = args.wait_for.unwrap_or(if image.is_some() {
        WaitFor::Ssh
    } else {
        WaitFor::Qmp
    });
    let opts = RunOptions {
        console: args.console,
        rm: args.rm,
        wait_for,
        timeout: Duration::from_secs(args.timeout),
        image,
    };
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let outcome = run_vm(env, input, &opts, tty, &mut super::notify)?;
    if args.ssh
        && let RunOutcome::Started { vm, .. } = &outcome
    {
        let ssh = super::ssh::Args {
            vm: vm.id.to_string(),
            user: None,
            print: false,
            command,
        };
        return super::ssh::run(env, ssh);
    }
    Ok(Box::new(outcome))
}

/// The root disk and cloud-init of `run --image`: a checked base image
/// and the layer that boots it.
fn cloud_image(env: &Env, args: &Args, image: &Utf8Path) -> Result<Layer> {
    if args.console && args.ssh {
        return Err(Error::usage(
            "--console and --ssh both take the terminal",
            "give one of them",
        ));
    }
    // The image is a VM file (its contents reach the guest); checked and
    // made absolute like a path in a config file.
    let base = env
        .policy
        .check_vm(image.as_os_str(), &env.cwd)
        .map_err(Error::path)?;
    let format = args.image_format.unwrap_or(ImageFormat::Qcow2);
    // Read as that format, never probed; its backing chain checked too.
    crate::storage::check_chain("root", &base, format.as_str(), &env.policy)?;
    let size = match args.disk_size {
        Some(size) => size,
        None => DiskSize::parse("20G").map_err(|e| Error::invalid(e, "internal default"))?,
    };
    Ok(Layer {
        memory: Some(Memory::parse("1G").map_err(|e| Error::invalid(e, "internal default"))?),
        storage: Some(vec![Storage::Qcow2(Qcow2Drive {
            name: "root"
                .parse()
                .map_err(|e: String| Error::invalid(e, "internal default"))?,
            file: None,
            size: Some(size),
            interface: Default::default(),
            backing_file: Some(UserPath::checked(base)),
            backing_format: Some(format),
            readonly: false,
        })]),
        cloud_init: Some(CloudInit::default()),
        ..Layer::default()
    })
}

impl Output for RunOutcome {
    fn json(&self) -> Value {
        match self {
            RunOutcome::Started {
                vm,
                ssh_port,
                created,
                already_running,
            } => json!({
                "id": vm.id.as_str(),
                "name": vm.name.as_str(),
                "pid": vm.runtime.as_ref().map(|r| r.pid),
                "ssh_port": ssh_port,
                "auto_remove": vm.auto_remove,
                "created": created,
                "already_running": already_running,
            }),
            RunOutcome::Console { vm, removed, .. } => json!({
                "id": vm.id.as_str(),
                "name": vm.name.as_str(),
                "removed": removed,
            }),
        }
    }

    fn text(&self) -> String {
        match self {
            RunOutcome::Started {
                vm,
                ssh_port,
                already_running,
                ..
            } => {
                let pid = vm.runtime.as_ref().map_or(0, |rt| rt.pid);
                let mut text = if *already_running {
                    format!("{} is already running (pid {pid})\n", vm.name)
                } else {
                    format!("started {} (pid {pid})\n", vm.name)
                };
                if let Some(port) = ssh_port {
                    let _ = writeln!(text, "guest ssh: 127.0.0.1:{port}");
                }
                text
            }
            RunOutcome::Console { .. } => String::new(),
        }
    }
}

pub struct RunOptions {
    pub console: bool,
    pub rm: bool,
    pub wait_for: WaitFor,
    pub timeout: Duration,
    /// `--image`: the root disk and cloud-init, laid over the default VM.
    pub image: Option<Layer>,
}

pub enum RunOutcome {
    /// Started in the background, like `start`; or found running.
    Started {
        vm: Box<Vm>,
        /// The host port forwarded to the guest's SSH, for the default VM.
        ssh_port: Option<u16>,
        /// False when a VM of that name and config was there already.
        created: bool,
        /// It was running already: nothing was started.
        already_running: bool,
    },
    /// The console session ended.
    Console {
        vm: Box<Vm>,
        ended: Ended,
        /// The VM had stopped and `--rm` removed it.
        removed: bool,
    },
}

/// The default VM of `maqet run` without a config: diskless, headless, a
/// serial console, and user networking with the guest's SSH forwarded from
/// local `port`. Enough to check that a host can run VMs at all.
fn default_vm(name: Name, port: u16) -> Result<Layer> {
    let layer = Layer {
        name: Some(name),
        memory: Some(Memory::parse("256M").map_err(|e| Error::invalid(e, "internal default"))?),
        display: Some(Display::Headless),
        network: Some(vec![Network::User(UserNetwork {
            name: "net0"
                .parse()
                .map_err(|e: String| Error::invalid(e, "internal default"))?,
            model: Default::default(),
            mac: None,
            forwards: vec![Forward {
                host: Port(port),
                guest: Port(22),
                protocol: Protocol::Tcp,
                bind: std::net::Ipv4Addr::LOCALHOST,
            }],
        })]),
        ..Layer::default()
    };
    Ok(layer)
}

/// A local port for the default VM's SSH forward, held from the moment the
/// kernel chose it until QEMU has bound it: a socket bound to it with
/// SO_REUSEADDR that never listens. Meanwhile the kernel gives the port to
/// no other `bind(0)` and no outgoing connection, and a listener without
/// SO_REUSEADDR cannot take it, while QEMU (whose user network sets
/// SO_REUSEADDR) binds and listens beside it. Only a program that binds
/// that very port with SO_REUSEADDR can still come first; then QEMU fails
/// and `run` chooses again ([`forward_taken`]).
struct PortClaim {
    port: u16,
    _socket: std::os::fd::OwnedFd,
}

fn claim_port() -> Result<PortClaim> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, setsockopt, socket,
        sockopt,
    };
    use std::os::fd::AsRawFd as _;
    let failed = |e: nix::errno::Errno| {
        Error::io(
            "cannot find a free port on",
            "127.0.0.1",
            std::io::Error::from(e),
        )
    };
    let socket = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(failed)?;
    setsockopt(&socket, sockopt::ReuseAddr, &true).map_err(failed)?;
    bind(socket.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).map_err(failed)?;
    let port = getsockname::<SockaddrIn>(socket.as_raw_fd())
        .map_err(failed)?
        .port();
    Ok(PortClaim {
        port,
        _socket: socket,
    })
}

/// How many times `run` chooses another port for the default VM's SSH
/// forward when a program took the one it chose before QEMU bound it.
const PORT_TRIES: usize = 5;

/// Did QEMU fail because host `port` was taken? Its words (QEMU 7.2):
/// `Could not set up host forwarding rule 'tcp:127.0.0.1:PORT-:22'`.
fn forward_taken(log_tail: &[String], port: u16) -> bool {
    let rule = format!("Could not set up host forwarding rule 'tcp:127.0.0.1:{port}-:22'");
    log_tail.iter().any(|line| line.contains(&rule))
}

/// Point the default VM's SSH forward at host `port`, in one transaction
/// on the record as it is now.
fn move_ssh_forward(env: &Env, id: &VmId, port: u16) -> Result<()> {
    Store::open(&env.dirs)?.write(|tx| {
        let mut vm = tx.get(id)?;
        for network in &mut vm.config.network {
            let Network::User(user) = network;
            for forward in &mut user.forwards {
                if forward.guest.0 == 22 {
                    forward.host = Port(port);
                }
            }
        }
        tx.put(&vm)
    })
}

/// The port the default VM's config forwards to the guest's SSH.
fn default_ssh_port(config: &VmConfig) -> Option<u16> {
    match config.network.as_slice() {
        [Network::User(user)] if user.name.as_str() == "net0" => match user.forwards.as_slice() {
            [fwd] if fwd.guest.0 == 22 => Some(fwd.host.0),
            _ => None,
        },
        _ => None,
    }
}

/// The VM named exactly `name`, as it is now (a `run --rm` VM found
/// stopped is removed, and so not there).
fn named(env: &Env, name: &Name) -> Result<Option<Vm>> {
    match find_reconciled(env, name.as_str()) {
        Ok(vm) if vm.name == *name => Ok(Some(vm)),
        // An id prefix that happens to match is not a VM of that name.
        Ok(_) | Err(Error::VmNotFound { .. } | Error::Ambiguous { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `maqet apply NAME FILES OPTIONS`, to bring a VM to what `run` was given.
fn apply_command(
    name: &Name,
    files: &[camino::Utf8PathBuf],
    overrides: &Overrides,
    trust: bool,
) -> String {
    let mut words: Vec<String> = vec!["maqet".into(), "apply".into(), name.to_string()];
    words.extend(files.iter().map(ToString::to_string));
    if let Some(memory) = overrides.memory {
        words.extend(["--memory".into(), memory.0.human()]);
    }
    if let Some(cpus) = overrides.cpus {
        words.extend(["--cpus".into(), cpus.0.to_string()]);
    }
    if let Some(binary) = &overrides.binary {
        words.extend(["--binary".into(), binary.as_str().to_owned()]);
    }
    if trust {
        words.push("--trust".into());
    }
    crate::qemu::argv::shell_line(&words)
}

/// `add` and `start` in one go; with `console`, attach in the foreground;
/// with `rm`, remove the VM once it has stopped. A VM of the same name
/// whose config is what the files and options give is started (or found
/// running) instead; one configured otherwise is an error that says what
/// differs.
pub fn run_vm(
    env: &Env,
    mut input: ConfigInput,
    opts: &RunOptions,
    tty: bool,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<RunOutcome> {
    let (mut layers, sources) = load_files(env, &input.files)?;
    let mut ssh_port = None;
    // The port chosen for a new default VM, held until QEMU has bound it.
    let mut claim = None;
    if input.files.is_empty() {
        let name = match input.overrides.name.take() {
            Some(name) => name,
            None => format!("run-{}", &VmId::random()?.as_str()[..6])
                .parse()
                .map_err(|e: String| Error::invalid(e, "give --name"))?,
        };
        // Run again, the default VM keeps the port it was given.
        let port = match named(env, &name)?.and_then(|vm| default_ssh_port(&vm.config)) {
            Some(port) => port,
            None => {
                let held = claim_port()?;
                let port = held.port;
                claim = Some(held);
                port
            }
        };
        let layer = default_vm(name, port)?;
        layers.insert(0, layer);
        if let Some(image) = &opts.image {
            layers.insert(1, image.clone());
        }
        ssh_port = Some(port);
    }
    let overrides = input.overrides.clone();
    layers.push(input.overrides.into_layer());
    let (name, config) = defined(env, layers)?;
    let (vm, created) = match named(env, &name)? {
        None => {
            let vm = new_vm(env, name, config, sources, opts.rm, input.trust)?;
            // A condition this VM can never meet (`ssh` without a forward
            // to port 22) is refused before the VM is added.
            Condition::of(env, &opts.wait_for, &vm.config)?;
            store_new(env, &vm)?;
            (vm, true)
        }
        Some(vm) => {
            let mut differences = vm.config.differences(&config);
            if vm.auto_remove != opts.rm {
                differences.push(format!(
                    "--rm (the VM was added {} it)",
                    if vm.auto_remove { "with" } else { "without" }
                ));
            }
            if !differences.is_empty() {
                let apply = apply_command(&name, &input.files, &overrides, input.trust);
                return Err(Error::NameTaken {
                    help: format!(
                        "`maqet start {name}` starts it as it is; `{apply}` merges what is \
                         given into it (a running VM takes it at its next start); `maqet rm \
                         {name}` removes it, to run it anew; or give --name to run another VM"
                    ),
                    name: name.to_string(),
                    id: vm.id.to_string(),
                    differences,
                });
            }
            Condition::of(env, &opts.wait_for, &vm.config)?;
            (vm, false)
        }
    };
    let start_opts = StartOptions {
        timeout: opts.timeout,
        wait_for: opts.wait_for.clone(),
        dry_run: false,
    };
    // By name: names are looked up first and are unique, so it is exact.
    let mut result = start(env, vm.name.as_str(), &start_opts, note);
    for _ in 1..PORT_TRIES {
        let Err(Error::QemuExited { log_tail, .. }) = &result else {
            break;
        };
        // Only a port this run chose for a VM it added moves.
        let Some(taken) = claim.as_ref().map(|c| c.port).filter(|_| created) else {
            break;
        };
        if !forward_taken(log_tail, taken) {
            break;
        }
        let held = claim_port()?;
        note(Note::Warning(&format!(
            "another program took port {taken} before QEMU could; forwarding the guest's SSH from port {} instead",
            held.port
        )));
        move_ssh_forward(env, &vm.id, held.port)?;
        ssh_port = Some(held.port);
        claim = Some(held);
        result = start(env, vm.name.as_str(), &start_opts, note);
    }
    // QEMU has bound the port, or will not.
    drop(claim);
    let (started, already_running) = match result {
        Ok(StartOutcome::Started { vm, .. } | StartOutcome::DryRun { vm, .. }) => (vm, false),
        // What was asked for is there: like `start`, nothing is started,
        // but for `run` that is success.
        Err(Error::VmActive { .. }) if !created => (Box::new(read_id(env, &vm.id)?), true),
        Err(mut e) => {
            // With --rm the VM goes too: the error must not send the user
            // to `maqet status` of a VM that is no longer there. A start
            // that timed out waiting left QEMU running: it is stopped
            // first, so no QEMU is left that no record names.
            if opts.rm && stop_and_remove(env, &vm) {
                let gone = format!(
                    "`{}` was removed (run --rm); fix what is reported above and run it again",
                    vm.name
                );
                match &mut e {
                    Error::QemuExited { help, .. } | Error::TimedOut { help, .. } => *help = gone,
                    _ => {}
                }
            }
            return Err(e);
        }
    };
    if !opts.console {
        return Ok(RunOutcome::Started {
            vm: started,
            ssh_port,
            created,
            already_running,
        });
    }
    let ended = super::console_attach(env, started.name.as_str(), tty, note)?;
    let after = match Store::open_existing(&env.dirs, Access::Read)? {
        Some(store) => store.get(&started.id).ok(),
        None => None,
    };
    // With --rm, a VM that stopped while attached goes now; one still
    // running goes when a later command finds it stopped.
    let removed = match after {
        Some(vm) => reconcile_one(&env.dirs, vm)?.is_none(),
        None => true,
    };
    Ok(RunOutcome::Console {
        vm: started,
        ended,
        removed,
    })
}

/// Stop the VM if its QEMU runs (at once: the start failed), then remove
/// it; true when it is gone.
fn stop_and_remove(env: &Env, vm: &Vm) -> bool {
    let force = super::StopOptions {
        timeout: Duration::from_secs(5),
        force: true,
    };
    let _ = super::stop(env, vm.id.as_str(), &force, &mut |_| {});
    match read_id(env, &vm.id) {
        // Stopping a `run --rm` VM removes it.
        Err(Error::VmNotFound { .. }) => true,
        Ok(_) => remove_now(env, vm).is_ok(),
        Err(_) => false,
    }
}

fn remove_now(env: &Env, vm: &Vm) -> Result<()> {
    let store = Store::open(&env.dirs)?;
    let current = store.write(|tx| {
        let current = tx.get(&vm.id)?;
        tx.remove(&current)?;
        Ok(current)
    })?;
    drop(store);
    forget_files(&env.dirs, &current);
    Ok(())
}
