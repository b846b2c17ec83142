use std::time::Duration;

use super::add::{new_vm, store_new};
use super::wait::Condition;
use super::{ConfigInput, Env, Note, StartOptions, StartOutcome, WaitFor, load_files, start};
use crate::config::{Display, Forward, Layer, Memory, Name, Network, Port, Protocol, UserNetwork};
use crate::console::Ended;
use crate::error::{Error, Result};
use crate::reconcile::{forget_files, reconcile_one};
use crate::store::{Access, Store};
use crate::vm::{Vm, VmId};

pub struct RunOptions {
    pub console: bool,
    pub rm: bool,
    pub wait_for: WaitFor,
    pub timeout: Duration,
}

pub enum RunOutcome {
    /// Started in the background, like `start`.
    Started {
        vm: Box<Vm>,
        /// The host port forwarded to the guest's SSH, for the default VM.
        ssh_port: Option<u16>,
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
/// a free local port. Enough to check that a host can run VMs at all.
fn default_vm(name: Name) -> Result<(Layer, u16)> {
    let port = free_port()?;
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
    Ok((layer, port))
}

/// A port nobody listens on now. Another program may take it before QEMU
/// does; then `run` fails with QEMU's message and can simply be run again.
fn free_port() -> Result<u16> {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("cannot find a free port on", "127.0.0.1", e))
}

/// `add` and `start` in one go; with `console`, attach in the foreground;
/// with `rm`, remove the VM once it has stopped.
pub fn run(
    env: &Env,
    mut input: ConfigInput,
    opts: &RunOptions,
    tty: bool,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<RunOutcome> {
    let (mut layers, sources) = load_files(env, &input.files)?;
    let mut ssh_port = None;
    if input.files.is_empty() {
        let name = match input.overrides.name.take() {
            Some(name) => name,
            None => format!("run-{}", &VmId::random()?.as_str()[..6])
                .parse()
                .map_err(|e: String| Error::invalid(e, "give --name"))?,
        };
        let (layer, port) = default_vm(name)?;
        layers.insert(0, layer);
        ssh_port = Some(port);
    }
    layers.push(input.overrides.into_layer());
    let vm = new_vm(env, layers, sources, opts.rm, input.trust)?;
    // A condition this VM can never meet (`ssh` without a forward to port
    // 22) is refused before the VM is added.
    Condition::of(env, &opts.wait_for, &vm.config)?;
    store_new(env, &vm)?;
    let start_opts = StartOptions {
        timeout: opts.timeout,
        wait_for: opts.wait_for.clone(),
        dry_run: false,
    };
    // By name: names are looked up first and are unique, so it is exact.
    let started = match start(env, vm.name.as_str(), &start_opts, note) {
        Ok(StartOutcome::Started { vm, .. }) => vm,
        Ok(StartOutcome::DryRun { vm, .. }) => vm,
        Err(mut e) => {
            // With --rm the VM goes too: the error must not send the user
            // to `maqet status` of a VM that is no longer there.
            if opts.rm && remove_now(env, &vm).is_ok() {
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
