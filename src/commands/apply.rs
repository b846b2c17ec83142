use crate::config::{self, Layer, Name, VmConfig};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::vm::{Timestamp, Vm};

use super::{ConfigInput, Env, check_images, load_files, needs_trust, untrusted};

pub struct Applied {
    pub vm: Vm,
    /// True when the VM did not exist and was created.
    pub created: bool,
}

/// Merge config files and overrides into the VM `query`, or create it under
/// that name when no VM matches. A `name` in a file must agree with the VM's
/// name; renaming takes `--name`.
pub fn apply(env: &Env, query: &str, mut input: ConfigInput) -> Result<Applied> {
    let rename = input.overrides.name.take();
    let (mut layers, sources) = load_files(env, &input.files)?;
    let nothing_given = input.is_empty() && rename.is_none() && !input.trust;
    let trust = input.trust;
    layers.push(input.overrides.into_layer());

    let store = Store::open(&env.dirs)?;
    store.write(|tx| match tx.find(query) {
        Ok(mut vm) => {
            if nothing_given {
                return Err(Error::usage(
                    format!("nothing to apply to `{}`", vm.name),
                    "give config files, or options such as --memory or --cpus",
                ));
            }
            if let Some(new_name) = rename {
                vm.name = new_name;
            }
            let before = vm.config.clone();
            vm.config = merged(vm.config.clone(), layers, &vm.name)?;
            // Trust covers the arguments and binary it was given for: a
            // change to either needs it again.
            let changed =
                before.arguments != vm.config.arguments || before.binary != vm.config.binary;
            vm.trusted = trust || (vm.trusted && !changed);
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
            for source in sources {
                if !vm.sources.contains(&source) {
                    vm.sources.push(source);
                }
            }
            vm.updated = Timestamp::now();
            check_images(env, &vm)?;
            tx.put(&vm)?;
            Ok(Applied { vm, created: false })
        }
        Err(Error::VmNotFound { .. }) if nothing_given => Err(Error::usage(
            format!("no VM `{query}`, and nothing to define it from"),
            "give config files or options, or use `maqet add --empty --name NAME`",
        )),
        Err(Error::VmNotFound { .. }) => {
            let name = match rename {
                Some(n) => n,
                None => query.parse::<Name>().map_err(|why| {
                    Error::invalid(why, "give the new VM a valid name, or --name")
                })?,
            };
            let config = merged(env.base_config(), layers, &name)?;
            if let Some(what) = needs_trust(env, &config)
                && !trust
            {
                return Err(untrusted(name.as_str(), what, "apply it with --trust"));
            }
            let mut vm = Vm::new(name, config, sources, false)?;
            vm.trusted = trust;
            check_images(env, &vm)?;
            tx.put(&vm)?;
            Ok(Applied { vm, created: true })
        }
        Err(other) => Err(other),
    })
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
