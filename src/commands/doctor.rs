//! `doctor`: is this host ready to run VMs, and is maqet's state sound?
//! `cleanup`: reconcile every VM now and remove stale runtime files.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;

use camino::{Utf8Path, Utf8PathBuf};

use std::fmt::Write as _;

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use super::Env;
use super::survey::{Survey, survey};
use crate::dirs::check_private_dir;
use crate::error::Result;
use crate::layout::{RuntimePaths, runtime_entry_vm};
use crate::qemu::{find_program, kvm_usable, logind_warning};
use crate::render::{Output, grid};
use crate::store::{Access, Store};
use crate::terminal::safe_field;
use crate::vm::{Status, VmId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// Check that this host can run VMs and that maqet's files are sound.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "doctor",
    note = "Checks QEMU, qemu-img, KVM, the data and runtime directories, logind lingering, the\n\
            database, crashed VMs, stale runtime files and orphan disks. --fix repairs what is\n\
            safe (directory modes, stale runtime files) and says what it left. Exit 1 when a\n\
            check fails."
)]
pub struct Args {
    /// repair what is safe to repair
    #[argh(switch)]
    pub fix: bool,
}

/// Reconcile every VM now and remove stale runtime files.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "cleanup")]
pub struct CleanupArgs {
    /// say what would be done, change nothing
    #[argh(switch)]
    pub dry_run: bool,
}

pub fn run(env: &Env, args: Args) -> Result<Checks> {
    doctor(env, args.fix).map(Checks)
}

pub fn run_cleanup(env: &Env, args: CleanupArgs) -> Result<Cleaned> {
    let cleanup = cleanup(env, args.dry_run)?;
    Ok(Cleaned {
        cleanup,
        dry_run: args.dry_run,
    })
}

/// Every check `doctor` made. A failed one exits 1.
pub struct Checks(pub Vec<Check>);

impl Checks {
    fn failed(&self) -> bool {
        self.0.iter().any(|c| c.verdict == Verdict::Fail)
    }
}

impl Output for Checks {
    fn json(&self) -> Value {
        let checks: Vec<Value> = self
            .0
            .iter()
            .map(|c| {
                json!({
                    "check": c.name,
                    "status": c.verdict.as_str(),
                    "detail": c.detail,
                    "fixed": c.fixed,
                })
            })
            .collect();
        json!({ "ok": !self.failed(), "checks": checks })
    }

    fn text(&self) -> String {
        let rows: Vec<[String; 3]> = self
            .0
            .iter()
            .map(|c| {
                let mut detail = c.detail.clone();
                if let Some(fixed) = &c.fixed {
                    let _ = write!(detail, " (fixed: {fixed})");
                }
                [c.verdict.as_str().to_owned(), c.name.to_owned(), detail]
            })
            .collect();
        grid(&["", "CHECK", "DETAIL"], &rows)
    }

    fn exit_code(&self) -> u8 {
        if self.failed() {
            crate::error::exit::FAILED
        } else {
            crate::error::exit::SUCCESS
        }
    }
}

/// What `cleanup` did, or with `--dry-run` would do.
pub struct Cleaned {
    pub cleanup: Cleanup,
    pub dry_run: bool,
}

impl Output for Cleaned {
    fn json(&self) -> Value {
        let reconciled: Vec<Value> = self
            .cleanup
            .reconciled
            .iter()
            .map(|(n, s)| json!({"name": n, "status": s.as_str()}))
            .collect();
        json!({
            "dry_run": self.dry_run,
            "reconciled": reconciled,
            "removed": self.cleanup.removed,
        })
    }

    fn text(&self) -> String {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let now = if self.dry_run { "would be" } else { "now" };
        let mut text = String::new();
        for (name, status) in &self.cleanup.reconciled {
            let _ = writeln!(text, "{}: {now} {status}", safe_field(name));
        }
        for path in &self.cleanup.removed {
            let _ = writeln!(text, "{verb} {}", safe_field(path.as_str()));
        }
        if text.is_empty() {
            text.push_str("nothing to clean up\n");
        }
        text
    }
}

pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// What `--fix` did about it.
    pub fixed: Option<String>,
}

fn check(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        name,
        verdict,
        detail: detail.into(),
        fixed: None,
    }
}

pub fn doctor(env: &Env, fix: bool) -> Result<Vec<Check>> {
    let mut checks = vec![
        program_check(env),
        qemu_img_check(),
        kvm_check(env),
        confinement_check(env),
    ];
    checks.push(dir_check("data dir", &env.dirs.data, fix));
    checks.push(dir_check("runtime dir", &env.dirs.runtime, fix));
    checks.push(match logind_warning() {
        Some(w) => check("lingering", Verdict::Warn, w),
        None => check("lingering", Verdict::Ok, "VMs outlive your login sessions"),
    });
    checks.extend(store_checks(env, fix)?);
    Ok(checks)
}

fn first_line(program: &str, arg: &str) -> Option<String> {
    let out = std::process::Command::new(program).arg(arg).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    })
}

fn program_check(env: &Env) -> Check {
    let binary = env.base_config().binary;
    match find_program(&binary) {
        Ok(path) => match first_line(path.as_str(), "--version") {
            Some(version) => check("qemu", Verdict::Ok, format!("{path}: {version}")),
            None => check("qemu", Verdict::Fail, format!("{path} does not run")),
        },
        Err(e) => check("qemu", Verdict::Fail, format!("{e}; {}", help_of(&e))),
    }
}

fn help_of(e: &crate::Error) -> String {
    use miette::Diagnostic;
    e.help().map(|h| h.to_string()).unwrap_or_default()
}

fn qemu_img_check() -> Check {
    match first_line("qemu-img", "--version") {
        Some(version) => check("qemu-img", Verdict::Ok, version),
        None => check(
            "qemu-img",
            Verdict::Warn,
            "not installed: disks cannot be created or snapshotted (apt-get install qemu-utils)",
        ),
    }
}

/// What kernel confinement VMs started now would get (docs/security.md).
fn confinement_check(env: &Env) -> Check {
    use crate::settings::ConfinementMode;
    let mode = env.settings.confinement.unwrap_or_default();
    if mode == ConfinementMode::Off {
        return check(
            "confinement",
            Verdict::Warn,
            "turned off in the settings (confinement: Off): QEMU can reach whatever you can",
        );
    }
    match crate::qemu::confine::kernel_abi() {
        Ok(abi) => {
            let mut parts = vec!["files"];
            if abi >= 4 {
                parts.push("TCP ports");
            }
            if abi >= 6 {
                parts.push("signals and abstract sockets");
            }
            check(
                "confinement",
                Verdict::Ok,
                format!(
                    "Landlock (ABI {abi}): each VM's QEMU reaches only its own {}",
                    parts.join(", ")
                ),
            )
        }
        Err(why) if mode == ConfinementMode::Required => check(
            "confinement",
            Verdict::Fail,
            format!("{why}; the settings require confinement, so VMs will not start"),
        ),
        Err(why) => check(
            "confinement",
            Verdict::Warn,
            format!("{why}; VMs start unconfined (only maqet's own checks stand)"),
        ),
    }
}

fn kvm_check(env: &Env) -> Check {
    let program = find_program(&env.base_config().binary).ok();
    if let Some(message) = program
        .as_ref()
        .and_then(|p| crate::qemu::kvm_known_broken(&env.dirs.kvm_memo(), p))
    {
        return check(
            "kvm",
            Verdict::Warn,
            format!(
                "/dev/kvm is present, but QEMU failed with it in this boot ({message}); VMs use TCG"
            ),
        );
    }
    if kvm_usable() {
        // Opening /dev/kvm is not enough (nested virtualisation that aborts
        // QEMU): run QEMU with it for a moment.
        let Some(program) = program else {
            return check(
                "kvm",
                Verdict::Warn,
                "/dev/kvm opens, but there is no QEMU to try it with",
            );
        };
        return match crate::qemu::probe_kvm(&program) {
            Ok(()) => check(
                "kvm",
                Verdict::Ok,
                "usable: QEMU ran with KVM; VMs run at native speed",
            ),
            Err(message) => check(
                "kvm",
                Verdict::Warn,
                format!(
                    "present but unusable: {message}; VMs with `accel: Auto` use TCG (much slower)"
                ),
            ),
        };
    }
    let why = match std::fs::metadata("/dev/kvm") {
        Err(_) => {
            "/dev/kvm does not exist (no virtualisation support, or the kvm module is not loaded)"
                .to_owned()
        }
        Ok(meta) => format!(
            "/dev/kvm (mode {:04o}) cannot be opened by you: join its group (usually `kvm`)",
            meta.permissions().mode() & 0o7777
        ),
    };
    check(
        "kvm",
        Verdict::Warn,
        format!("{why}; VMs use TCG, much slower"),
    )
}

fn dir_check(name: &'static str, dir: &Utf8Path, fix: bool) -> Check {
    if !dir.exists() {
        return check(name, Verdict::Ok, format!("{dir} (not created yet)"));
    }
    match check_private_dir(dir) {
        Ok(()) => check(name, Verdict::Ok, format!("{dir} (0700, yours)")),
        Err(e) => {
            let mut c = check(name, Verdict::Fail, e.to_string());
            // Only the mode is safe to repair: a symlink or another owner
            // needs a person to decide.
            let ours = std::fs::symlink_metadata(dir).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.is_dir() && m.uid() == nix::unistd::geteuid().as_raw()
            });
            if fix
                && ours
                && std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_ok()
            {
                c.verdict = Verdict::Ok;
                c.fixed = Some("set its mode to 0700".into());
            }
            c
        }
    }
}

/// The store read whole (`vms` records); now redb's own check of every
/// page and checksum.
fn database_check(env: &Env, vms: usize) -> Check {
    let (verdict, integrity) = match Store::check_integrity(&env.dirs) {
        Ok(Some(true)) | Ok(None) => (Verdict::Ok, "integrity check passed".to_owned()),
        Ok(Some(false)) => (
            Verdict::Fail,
            "redb's integrity check found damage; the store was left as it was".to_owned(),
        ),
        Err(e) => (Verdict::Fail, e.to_string()),
    };
    check(
        "database",
        verdict,
        format!(
            "{} ({vms} VM{}, every record readable, {integrity})",
            env.dirs.database(),
            if vms == 1 { "" } else { "s" }
        ),
    )
}

fn store_checks(env: &Env, fix: bool) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    // Reading every record is the first check: each must decode.
    let mut survey = match survey(env) {
        Ok(Some(survey)) => {
            checks.push(database_check(env, survey.rows.len()));
            survey
        }
        Ok(None) => {
            checks.push(check("database", Verdict::Ok, "no store yet"));
            Survey::default()
        }
        Err(e) => {
            checks.push(check("database", Verdict::Fail, e.to_string()));
            return Ok(checks);
        }
    };
    survey.reconcile(env)?;
    let mut crashed: Vec<&str> = survey
        .rows
        .iter()
        .filter(|row| row.status == Status::Crashed)
        .map(|row| row.name)
        .collect();
    crashed.sort_unstable();
    checks.push(if crashed.is_empty() {
        check("crashed VMs", Verdict::Ok, "none")
    } else {
        check(
            "crashed VMs",
            Verdict::Warn,
            format!("{} (`maqet status NAME` says why)", crashed.join(", ")),
        )
    });
    checks.push(match stale_runtime_files(env, &survey) {
        Err(e) => check(
            "runtime files",
            Verdict::Fail,
            format!("not looked at: {e}"),
        ),
        Ok(stale) if stale.is_empty() => check("runtime files", Verdict::Ok, "no stale files"),
        Ok(stale) => {
            let mut c = check(
                "runtime files",
                Verdict::Warn,
                format!("{} stale: {}", stale.len(), join(&stale)),
            );
            if fix {
                let removed = remove_all(&stale);
                c.fixed = Some(format!("removed {removed}"));
                c.verdict = Verdict::Ok;
            }
            c
        }
    });
    let orphans = super::storage::orphans(env, false)?;
    checks.push(if orphans.is_empty() {
        check("orphan disks", Verdict::Ok, "none")
    } else {
        check(
            "orphan disks",
            Verdict::Warn,
            format!(
                "{}; left alone (they are data): `maqet storage orphans --delete` removes them",
                join(&orphans)
            ),
        )
    });
    Ok(checks)
}

fn join(paths: &[Utf8PathBuf]) -> String {
    paths
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runtime files nothing uses: directories (and locks) of VMs the store
/// does not know, and sockets and pidfiles of VMs that do not run. Only
/// names maqet makes count — a VM id, or an id and `.lock` — and only in a
/// runtime directory that is private and ours: anything else there is left
/// alone, and a runtime directory given by mistake (a home, someone
/// else's) is refused, not emptied.
fn stale_runtime_files(env: &Env, survey: &Survey) -> Result<Vec<Utf8PathBuf>> {
    if std::fs::symlink_metadata(&env.dirs.runtime).is_err() {
        return Ok(Vec::new());
    }
    crate::dirs::check_private_dir(&env.dirs.runtime)?;
    let Ok(entries) = env.dirs.runtime.read_dir_utf8() else {
        return Ok(Vec::new());
    };
    let known = survey.rows.ids();
    // Only the VMs reconciled may run; any other has no QEMU.
    let running: HashSet<&str> = survey
        .live
        .iter()
        .filter(|vm| vm.runtime.is_some())
        .map(|vm| vm.id.as_str())
        .collect();
    let mut stale = Vec::new();
    let mut unknown = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        // Only names maqet makes, of the kind it makes there.
        let Some((id, lock)) = runtime_entry_vm(name) else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let kind_ok = if lock {
            meta.file_type().is_file()
        } else {
            meta.file_type().is_dir()
        };
        if !kind_ok {
            continue;
        }
        if !known.contains(id) {
            unknown.push((id.to_owned(), entry.path().to_owned()));
            continue;
        }
        if !running.contains(id) && entry.path().is_dir() {
            let paths = RuntimePaths::new(entry.path().to_owned());
            stale.extend(
                paths
                    .stale()
                    .into_iter()
                    .filter(|p| p.exists())
                    .map(ToOwned::to_owned),
            );
        }
    }
    // Added (and perhaps started) since the survey read the store: look
    // again before calling a VM's files stale.
    if !unknown.is_empty() {
        let store = Store::open_existing(&env.dirs, Access::Read).ok().flatten();
        for (id, path) in unknown {
            let added = match (&store, VmId::parse(&id)) {
                (Some(store), Some(id)) => store.get(&id).is_ok(),
                _ => false,
            };
            if !added {
                stale.push(path);
            }
        }
    }
    stale.sort();
    Ok(stale)
}

fn remove_all(paths: &[Utf8PathBuf]) -> usize {
    paths
        .iter()
        .filter(|p| {
            // Never through a symlink.
            if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir()) {
                std::fs::remove_dir_all(p).is_ok()
            } else {
                std::fs::remove_file(p).is_ok()
            }
        })
        .count()
}

/// What `cleanup` did (or would do, with `dry_run`).
pub struct Cleanup {
    pub reconciled: Vec<(String, Status)>,
    pub removed: Vec<Utf8PathBuf>,
}

pub fn cleanup(env: &Env, dry_run: bool) -> Result<Cleanup> {
    let mut survey = survey(env)?.unwrap_or_default();
    if dry_run {
        // Says what the real run would mark, without marking it.
        survey.preview();
    } else {
        survey.reconcile(env)?;
    }
    let stale = stale_runtime_files(env, &survey)?;
    if !dry_run {
        remove_all(&stale);
    }
    Ok(Cleanup {
        reconciled: survey.changed,
        removed: stale,
    })
}
