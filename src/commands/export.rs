use argh::{ArgsInfo, FromArgs};
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Value, json};

use super::{Env, Note, notify};
use crate::config::Accel;
use crate::error::{Error, Result};
use crate::export::systemd::Restart;
use crate::export::{Exported, libvirt, systemd};
use crate::qemu::argv::Accelerator;
use crate::render::Output;

/// Print a VM's definition for libvirt (domain XML) or systemd (a unit).
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "export",
    note = "Every config field maps, or the export is refused naming the field. Notes on what \
            the target does differently go to stderr. See docs/export.md.",
    example = "maqet export web --to libvirt | virsh -c qemu+ssh://host/system define /dev/stdin\n\
               maqet export web --to libvirt --image-dir /var/lib/libvirt/images --output web.xml\n\
               maqet export web --to systemd --user --output ~/.config/systemd/user/maqet-web.service"
)]
pub struct Args {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// the engine: libvirt or systemd
    #[argh(option, arg_name = "ENGINE")]
    pub to: Target,

    /// write the definition to FILE (mode 0600) instead of stdout
    #[argh(option, arg_name = "FILE")]
    pub output: Option<Utf8PathBuf>,

    /// libvirt: the accelerator, kvm or tcg (default: the VM's; `Auto` is
    /// decided on this host)
    #[argh(option, arg_name = "ACCEL")]
    pub accel: Option<ExportAccel>,

    /// libvirt: the directory the images will be in on the host that runs
    /// the domain; the files to copy are listed
    #[argh(option, arg_name = "DIR")]
    pub image_dir: Option<Utf8PathBuf>,

    /// libvirt: where libvirt keeps the serial console's output (default
    /// /var/log/libvirt/qemu/NAME.serial)
    #[argh(option, arg_name = "FILE")]
    pub console_log: Option<Utf8PathBuf>,

    /// libvirt: pass the VM's raw `arguments` into the domain, where
    /// maqet's confinement does not reach them
    #[argh(switch)]
    pub trust: bool,

    /// systemd: a user unit (`systemctl --user`) instead of a system unit
    #[argh(switch)]
    pub user: bool,

    /// systemd: when to start the VM again after QEMU ends: no,
    /// on-failure (default) or always
    #[argh(option, arg_name = "WHEN")]
    pub restart: Option<Restart>,

    /// systemd: seconds `maqet stop` gives the guest to power off (default
    /// 30, or the settings file's stop_timeout)
    #[argh(option, arg_name = "SECONDS")]
    pub stop_timeout: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Libvirt,
    Systemd,
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "libvirt" => Ok(Target::Libvirt),
            "systemd" => Ok(Target::Systemd),
            _ => Err(format!("`{s}` is not an engine: use libvirt or systemd")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportAccel(Accelerator);

impl std::str::FromStr for ExportAccel {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "kvm" => Ok(ExportAccel(Accelerator::Kvm)),
            "tcg" => Ok(ExportAccel(Accelerator::Tcg)),
            _ => Err(format!("`{s}` is not an accelerator: use kvm or tcg")),
        }
    }
}

pub fn run(env: &Env, args: Args) -> Result<Export> {
    check_options(&args)?;
    // Checked before anything is read, so a bad path changes nothing.
    let output = args
        .output
        .as_deref()
        .map(|file| super::output_file(env, file))
        .transpose()?;
    let vm = super::find_reconciled(env, &args.vm)?;
    let exported = match args.to {
        Target::Libvirt => to_libvirt(env, &vm, &args)?,
        Target::Systemd => to_systemd(env, &vm, &args)?,
    };
    for note in &exported.notes {
        notify(Note::Warning(note));
    }
    let written = match output {
        Some((dir, name)) => Some(dir.replace_file(&name, exported.text.as_bytes())?),
        None => None,
    };
    Ok(Export { exported, written })
}

/// Options of the other engine are a usage error, not silently ignored.
fn check_options(args: &Args) -> Result<()> {
    let (wrong, engine): (&[(bool, &str)], _) = match args.to {
        Target::Libvirt => (
            &[
                (args.user, "--user"),
                (args.restart.is_some(), "--restart"),
                (args.stop_timeout.is_some(), "--stop-timeout"),
            ],
            "libvirt",
        ),
        Target::Systemd => (
            &[
                (args.accel.is_some(), "--accel"),
                (args.image_dir.is_some(), "--image-dir"),
                (args.console_log.is_some(), "--console-log"),
                (args.trust, "--trust"),
            ],
            "systemd",
        ),
    };
    if let Some((_, option)) = wrong.iter().find(|(given, _)| *given) {
        return Err(Error::usage(
            format!("{option} does not apply to --to {engine}"),
            "see `maqet export --help` for which options go with which engine",
        ));
    }
    if args.stop_timeout.is_some_and(|s| s > MAX_STOP_TIMEOUT) {
        return Err(Error::usage(
            format!("--stop-timeout is at most {MAX_STOP_TIMEOUT} seconds (a day)"),
            "give the seconds the guest needs to power off",
        ));
    }
    Ok(())
}

/// The longest stop a unit waits for: a day.
const MAX_STOP_TIMEOUT: u64 = 86_400;

fn to_libvirt(env: &Env, vm: &crate::vm::Vm, args: &Args) -> Result<Exported> {
    if !vm.config.arguments.is_empty() && !args.trust {
        return Err(Error::Refused {
            message: format!(
                "VM `{}` has raw `arguments`; in a libvirt domain they run outside maqet's \
                 confinement, with whatever rights libvirt gives QEMU",
                vm.name
            ),
            help: "check what they open, then export with --trust".into(),
        });
    }
    // libvirt opens every file by the name the domain gives: each is
    // checked again now and named as it resolves.
    let config = &crate::storage::resolved_paths(&vm.config, &env.policy)?;
    let mut notes = Vec::new();
    // maqet runs QEMU to ask it things only when it is found by name in
    // PATH: a `binary` given as a path runs confined, at start, or not.
    let program = (!config.binary.as_str().contains('/'))
        .then(|| crate::qemu::find_program(&config.binary).ok())
        .flatten();
    let accel = match args.accel {
        Some(ExportAccel(accel)) => accel,
        None => {
            let (mut accel, mut why) =
                crate::qemu::decide_accel(config.accel, &env.dirs.kvm_memo(), program.as_deref())?;
            // A start would find out by trying; the export asks QEMU now
            // (hosts whose nested KVM opens but aborts).
            if accel == Accelerator::Kvm
                && config.accel == Accel::Auto
                && let Some(program) = &program
                && let Err(message) = crate::qemu::probe_kvm(program)
            {
                accel = Accelerator::Tcg;
                why = Some(format!("KVM fails here: {message}"));
            }
            if config.accel == Accel::Auto {
                notes.push(format!(
                    "accel Auto: the domain uses {} as this host would{}; give --accel kvm or \
                     --accel tcg for the host that runs it",
                    accel.as_str(),
                    why.map(|w| format!(" ({w})")).unwrap_or_default()
                ));
            }
            accel
        }
    };
    let absolute = |flag: &str, path: &Utf8Path| {
        if path.is_absolute() {
            Ok(path.to_owned())
        } else {
            Err(Error::usage(
                format!("{flag} {path} is not an absolute path"),
                "it names a place on the host that runs the domain: give it from /",
            ))
        }
    };
    let image_dir = args
        .image_dir
        .as_deref()
        .map(|d| absolute("--image-dir", d))
        .transpose()?;
    let console_log = match &args.console_log {
        Some(file) => console_log(env, &absolute("--console-log", file)?)?,
        // Not NAME-console.log: the log of a domain named NAME-console.
        None => format!("{LIBVIRT_LOGS}/{}.serial", vm.name).into(),
    };
    let disks_dir = env.disks_dir(&vm.id);
    let chains = crate::storage::check_images(config, &disks_dir, &env.policy)?;
    // The cloud-init seed as `start` makes it (from what its inputs say
    // now), named as the same drive; written only once the domain is
    // made, so a refused export changes nothing.
    let seed = crate::cloud_init::seed_image(vm, &env.policy)?;
    let seeded;
    let config = match &seed {
        Some(_) => {
            seeded = crate::cloud_init::attach(config, &crate::cloud_init::seed_path(&disks_dir));
            &seeded
        }
        None => config,
    };
    let source = libvirt::Source {
        name: vm.name.as_str(),
        id: vm.id.as_str(),
        config,
        disks_dir: &disks_dir,
        chains: &chains,
    };
    let opts = libvirt::Options {
        accel,
        image_dir,
        console_log,
    };
    let mut device_types = |driver: &str| device_help(program.as_ref(), driver);
    let mut exported = libvirt::domain(&source, opts, &mut device_types)?;
    if let Some(image) = &seed {
        crate::cloud_init::store_seed(&disks_dir, image)?;
    }
    notes.append(&mut exported.notes);
    exported.notes = notes;
    if !exported.copies.is_empty() {
        exported.notes.push(format!(
            "copy these files to the host that runs the domain: {}",
            exported
                .copies
                .iter()
                .map(|c| format!("{} -> {}", c.from, c.to))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(exported)
}

/// libvirt's own log directory for QEMU domains.
const LIBVIRT_LOGS: &str = "/var/log/libvirt/qemu";

/// A `--console-log` the guest's output may be appended to: through the
/// path filter like every path a user gives, or directly in libvirt's log
/// directory; not a file that exists as anything but a regular file.
fn console_log(env: &Env, file: &Utf8Path) -> Result<Utf8PathBuf> {
    let in_logs = file.parent() == Some(Utf8Path::new(LIBVIRT_LOGS))
        && file.file_name().is_some_and(|n| !n.starts_with('.'));
    let path = if in_logs {
        file.to_owned()
    } else {
        env.policy
            .check(file.as_os_str(), &env.cwd)
            .map_err(Error::path)?
    };
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if !meta.is_file() => {
            Err(Error::not_a_file("--console-log", &path, meta.file_type()))
        }
        _ => Ok(path),
    }
}

/// The property types of a QEMU device driver, from the VM's QEMU (found
/// by name in PATH).
fn device_help(
    program: Option<&Utf8PathBuf>,
    driver: &str,
) -> Result<crate::export::device::Types> {
    let program = program.ok_or_else(|| {
        crate::export::unmappable(
            format!(
                "arguments: maqet asks QEMU what device `{driver}` takes only of a QEMU found by \
                 name in PATH, and this VM's binary is not one"
            ),
            "write the device in `arguments` in JSON form (`-device {\"driver\": ...}`)",
        )
    })?;
    let out = std::process::Command::new(program)
        .args(["-nodefaults", "-machine", "none", "-device"])
        .arg(format!("{driver},help"))
        .envs(crate::qemu::spawn::qemu_environment())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("cannot run", program.clone(), e))?;
    let types = crate::export::device::parse_help(&String::from_utf8_lossy(&out.stdout));
    if types.is_empty() {
        return Err(crate::export::unmappable(
            format!(
                "arguments: this QEMU ({program}) knows no device `{driver}`: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "fix the device in `arguments`",
        ));
    }
    Ok(types)
}

fn to_systemd(env: &Env, vm: &crate::vm::Vm, args: &Args) -> Result<Exported> {
    let exe =
        std::env::current_exe().map_err(|e| Error::io("cannot find", "this maqet program", e))?;
    let maqet = Utf8PathBuf::from_path_buf(exe).map_err(|p| {
        Error::invalid(
            format!("this maqet's path {} is not UTF-8", p.display()),
            "install maqet under a UTF-8 path",
        )
    })?;
    let user = crate::dirs::user_name("a unit runs as a named user: add one")?;
    let pidfile = env.dirs.vm(&vm.id).runtime.pidfile;
    let source = systemd::Source {
        name: vm.name.as_str(),
        id: vm.id.as_str(),
        maqet: &maqet,
        data_dir: &env.dirs.data,
        runtime_dir: &env.dirs.runtime,
        pidfile: &pidfile,
        settings: env.settings.source.as_deref(),
    };
    let opts = systemd::Options {
        user_unit: args.user,
        user: &user,
        restart: args.restart.unwrap_or(Restart::OnFailure),
        stop_timeout: args
            .stop_timeout
            .or(env.settings.stop_timeout)
            .unwrap_or(30),
    };
    systemd::unit(&source, &opts)
}

/// The definition, or where it was written.
pub struct Export {
    exported: Exported,
    written: Option<Utf8PathBuf>,
}

impl Output for Export {
    fn json(&self) -> Value {
        let e = &self.exported;
        json!({
            "definition": e.text,
            "file": self.written.as_ref().map(|p| p.as_str()),
            "notes": e.notes,
            "copies": e.copies.iter().map(|c| json!({"from": c.from.as_str(), "to": c.to.as_str()})).collect::<Vec<_>>(),
        })
    }

    fn text(&self) -> String {
        match &self.written {
            Some(path) => format!("{path}\n"),
            None => self.exported.text.clone(),
        }
    }
}
