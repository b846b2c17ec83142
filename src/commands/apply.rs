use std::time::Instant;

use std::fmt::Write as _;

use argh::{ArgsInfo, FromArgs};
use camino::Utf8PathBuf;
use serde_json::{Value, json};

use crate::config::{self, Cpus, Layer, Memory, Name, VmConfig};
use crate::error::{Error, Result};
use crate::render::Output;
use crate::store::Store;
use crate::vm::{Timestamp, Vm};

use super::{ConfigInput, Env, check_images, load_files, needs_trust, untrusted};

/// Merge config files and options into a VM, creating it if it does not exist.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "apply",
    example = "maqet apply web more-memory.ron\nmaqet apply web --cpus 4"
)]
pub struct Args {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// config files (RON)
    #[argh(positional, arg_name = "CONFIG")]
    pub configs: Vec<Utf8PathBuf>,

    /// rename the VM
    #[argh(option, arg_name = "NAME")]
    pub name: Option<Name>,

    /// guest memory, e.g. 2G
    #[argh(option, arg_name = "MEMORY")]
    pub memory: Option<Memory>,

    /// virtual CPUs
    #[argh(option, arg_name = "CPUS")]
    pub cpus: Option<Cpus>,

    /// QEMU program name or path
    #[argh(option, arg_name = "BINARY")]
    pub binary: Option<String>,

    /// allow this VM's raw QEMU `arguments` and custom `binary` (see
    /// docs/security.md): a config file alone cannot grant them
    #[argh(switch)]
    pub trust: bool,
}

pub fn run(env: &Env, args: Args) -> Result<Applied> {
    let input = ConfigInput::new(
        env,
        args.configs,
        (args.name, args.memory, args.cpus, args.binary),
        args.trust,
    )?;
    apply(env, &args.vm, input)
}

impl Output for Applied {
    fn json(&self) -> Value {
        json!({
            "id": self.vm.id.as_str(),
            "name": self.vm.name.as_str(),
            "created": self.created,
            "pending_restart": self.vm.pending_restart(),
        })
    }

    fn text(&self) -> String {
        let vm = &self.vm;
        let verb = if self.created { "created" } else { "updated" };
        let mut text = format!("{verb} {} ({})\n", vm.name, vm.id.short());
        if vm.pending_restart() {
            let _ = writeln!(
                text,
                "  it is running: the change applies at its next start (`maqet stop {0}`, then `maqet start {0}`)",
                vm.name
            );
        }
        text
    }
}

pub struct Applied {
    pub vm: Vm,
    /// True when the VM did not exist and was created.
    pub created: bool,
}

/// Merge config files and overrides into the VM `query`, or create it under
/// that name when no VM matches. A `name` in a file must agree with the VM's
/// name; renaming takes `--name`.
///
/// The new record is worked out and its images checked (qemu-img) without
/// holding the store. The write then takes it only if the VM is still as it
/// was read; if another command changed it meanwhile, apply starts over from
/// what is stored now, so the outcome is that of one apply after the other.
pub fn apply(env: &Env, query: &str, mut input: ConfigInput) -> Result<Applied> {
    let rename = input.overrides.name.take();
    let (mut layers, sources) = load_files(env, &input.files)?;
    let nothing_given = input.is_empty() && rename.is_none() && !input.trust;
    let trust = input.trust;
    layers.push(input.overrides.into_layer());
    let request = Request {
        query,
        rename,
        layers,
        sources,
        nothing_given,
        trust,
    };
    let began = Instant::now();
    loop {
        // Read, then let go of the store: the image checks run qemu-img,
        // and no command should wait on the store for that. Reconciled, so
        // a QEMU that died unnoticed is not taken for a running VM (the
        // change was said to wait for a start that had already ended).
        let before = find(super::find_reconciled(env, query))?;
        let checked = request.applied_to(env, before.as_ref())?;
        check_images(env, &checked)?;
        let written = Store::open(&env.dirs)?.write(|tx| {
            // Apply to what is stored now. Another command may have changed
            // the VM meanwhile; the images checked above still stand if the
            // result names the same ones.
            let now = find(tx.find(query))?;
            let vm = match (&before, &now) {
                (None, None) => checked.clone(),
                (_, Some(now)) => {
                    let vm = request.applied_to(env, Some(now))?;
                    if vm.id != checked.id || vm.config.storage != checked.config.storage {
                        return Ok(None);
                    }
                    vm
                }
                // Removed meanwhile: start over, to define it anew.
                (Some(_), None) => return Ok(None),
            };
            tx.put(&vm)?;
            Ok(Some(Applied {
                vm,
                created: now.is_none(),
            }))
        })?;
        if let Some(applied) = written {
            return Ok(applied);
        }
        if began.elapsed() > crate::lock::wait() {
            return Err(Error::Busy {
                what: format!("VM `{query}`"),
                lock: env.dirs.database(),
                waited_ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
        }
    }
}

/// The VM a lookup found, or none; other errors stay errors.
fn find(found: Result<Vm>) -> Result<Option<Vm>> {
    match found {
        Ok(vm) => Ok(Some(vm)),
        Err(Error::VmNotFound { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// What `apply` was asked, to be applied to the VM as it is read.
struct Request<'a> {
    query: &'a str,
    rename: Option<Name>,
    layers: Vec<Layer>,
    sources: Vec<camino::Utf8PathBuf>,
    nothing_given: bool,
    trust: bool,
}

impl Request<'_> {
    /// The record `before` becomes, or the new VM when there is none.
    fn applied_to(&self, env: &Env, before: Option<&Vm>) -> Result<Vm> {
        let layers = self.layers.clone();
        let Some(before) = before else {
            if self.nothing_given {
                return Err(Error::usage(
                    format!("no VM `{}`, and nothing to define it from", self.query),
                    "give config files or options, or use `maqet add --empty --name NAME`",
                ));
            }
            let name = match &self.rename {
                Some(n) => n.clone(),
                None => self.query.parse::<Name>().map_err(|why| {
                    Error::invalid(why, "give the new VM a valid name, or --name")
                })?,
            };
            let config = merged(env.base_config(), layers, &name)?;
            if let Some(what) = needs_trust(env, &config)
                && !self.trust
            {
                return Err(untrusted(name.as_str(), what, "apply it with --trust"));
            }
            let mut vm = Vm::new(name, config, self.sources.clone(), false)?;
            vm.trusted = self.trust;
            return Ok(vm);
        };
        if self.nothing_given {
            return Err(Error::usage(
                format!("nothing to apply to `{}`", before.name),
                "give config files, or options such as --memory or --cpus",
            ));
        }
        let mut vm = before.clone();
        if let Some(new_name) = &self.rename {
            vm.name = new_name.clone();
        }
        vm.config = merged(vm.config.clone(), layers, &vm.name)?;
        // Trust covers the arguments and binary it was given for: a change
        // to either needs it again.
        let changed = before.config.arguments != vm.config.arguments
            || before.config.binary != vm.config.binary;
        vm.trusted = self.trust || (vm.trusted && !changed);
        if let Some(what) = needs_trust(env, &vm.config)
            && !vm.trusted
        {
            return Err(untrusted(
                vm.name.as_str(),
                what,
                &format!(
                    "apply it with --trust (`maqet apply {} ... --trust`)",
                    vm.name
                ),
            ));
        }
        // Each file once, in the order first applied.
        for source in &self.sources {
            if !vm.sources.contains(source) {
                vm.sources.push(source.clone());
            }
        }
        // After the running QEMU's start, even within its second: the
        // record keeps whole seconds, and an apply right after `start`
        // read as already in effect (docs/lifecycle.md).
        vm.updated = match &vm.runtime {
            Some(rt) => Timestamp::now().max(Timestamp(rt.started.0 + 1)),
            None => Timestamp::now(),
        };
        Ok(vm)
    }
}

/// Merge `layers` onto a VM's config. The files' `arguments`, if any
/// gives some, replace the stored list (appended among themselves, as at
/// `add`): applying the same files twice gives the same VM.
fn merged(mut base: VmConfig, layers: Vec<Layer>, name: &Name) -> Result<VmConfig> {
    if layers.iter().any(|l| l.arguments.is_some()) {
        base.arguments.clear();
    }
    let (config, file_name) = config::merge(base, layers)?;
    match file_name {
        Some(other) if &other != name => Err(Error::invalid(
            format!("the config names the VM `{other}`, but it is being applied to `{name}`"),
            format!(
                "to rename `{name}`, give --name {other}; otherwise remove `name` from the file"
            ),
        )),
        _ => Ok(config),
    }
}
