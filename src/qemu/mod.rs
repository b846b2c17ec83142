//! Running QEMU: the command line, the process, and its runtime files.

pub mod argv;
pub mod confine;
pub mod process;
pub mod spawn;

use camino::{Utf8Path, Utf8PathBuf};

use crate::config::{Accel, Program};
use crate::error::{Error, Result};
use argv::Accelerator;

/// True when this user can open /dev/kvm for reading and writing.
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Decide `Auto`, and refuse `Kvm` where KVM cannot be used.
pub fn choose_accel(wanted: Accel) -> Result<Accelerator> {
    match wanted {
        Accel::Tcg => Ok(Accelerator::Tcg),
        Accel::Auto if kvm_usable() => Ok(Accelerator::Kvm),
        Accel::Auto => Ok(Accelerator::Tcg),
        Accel::Kvm if kvm_usable() => Ok(Accelerator::Kvm),
        Accel::Kvm => Err(Error::invalid(
            "the config asks for KVM, but /dev/kvm cannot be opened",
            "load the kvm module and join the `kvm` group, or set `accel: Auto` (TCG when KVM is missing)",
        )),
    }
}

/// `accel: Auto` is KVM when /dev/kvm opens, unless KVM already failed
/// with `program` in this boot (`memo`). Also returns why the choice
/// differs from what was asked.
pub fn decide_accel(
    wanted: Accel,
    memo: &Utf8Path,
    program: Option<&Utf8Path>,
) -> Result<(Accelerator, Option<String>)> {
    let accel = choose_accel(wanted)?;
    if accel == Accelerator::Kvm
        && wanted == Accel::Auto
        && let Some(program) = program
        && let Some(message) = kvm_known_broken(memo, program)
    {
        return Ok((
            Accelerator::Tcg,
            Some(format!("KVM failed earlier in this boot: {message}")),
        ));
    }
    Ok((accel, None))
}

/// Start `program` with KVM for a moment — no disk, 16 MiB, paused, quit at
/// once over QMP on stdin — to learn whether KVM really works: on hosts
/// with half-working nested virtualisation /dev/kvm opens, but QEMU aborts
/// as it sets up a vCPU. `Err` carries QEMU's message.
pub fn probe_kvm(program: &Utf8Path) -> std::result::Result<(), String> {
    use std::io::{Read, Write};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let mut command = Command::new(program.as_std_path());
    command
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-machine",
            "q35",
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-m",
            "16M",
            "-S",
            "-qmp",
            "stdio",
        ])
        .env_clear()
        .envs(
            spawn::QEMU_ENVIRONMENT
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: async-signal-safe system calls only, in the child.
    unsafe {
        command.pre_exec(|| {
            spawn::close_on_exec_from(3);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // QEMU may be gone already: a broken pipe says nothing more.
        let _ = stdin.write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let waited =
        crate::deadline::poll_until(deadline, std::time::Duration::from_millis(10), || {
            child.try_wait()
        });
    let Ok(Some(status)) = waited else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("QEMU did not answer within 10 s with KVM".into());
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(2)..].join(" / ");
    Err(if tail.is_empty() {
        format!("QEMU exited with {status}")
    } else {
        tail
    })
}

/// What a failed KVM start is remembered by: this boot of the host and this
/// QEMU program (a reboot, a kernel module change or a new QEMU tries again).
fn kvm_memo_key(program: &Utf8Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let meta = std::fs::metadata(program).ok()?;
    Some(format!(
        "{} {program} {}:{}:{}:{}",
        boot.trim(),
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime()
    ))
}

/// QEMU's message from a KVM start that failed earlier in this boot, with
/// this program.
/// `memo` is [`Dirs::kvm_memo`](crate::dirs::Dirs::kvm_memo).
pub fn kvm_known_broken(memo: &Utf8Path, program: &Utf8Path) -> Option<String> {
    let text = std::fs::read_to_string(memo).ok()?;
    let (key, message) = text.split_once('\n')?;
    (Some(key) == kvm_memo_key(program).as_deref()).then(|| message.trim().to_owned())
}

/// Remember that KVM failed with `program` in this boot, so later starts go
/// straight to TCG.
pub fn remember_kvm_broken(memo: &Utf8Path, program: &Utf8Path, message: &str) {
    let Some(key) = kvm_memo_key(program) else {
        return;
    };
    if let Ok(mut file) = spawn::private_file(memo, true) {
        use std::io::Write;
        let _ = write!(file, "{key}\n{message}\n");
    }
}

/// Where the QEMU program is: a path as configured, or the first match in
/// PATH.
pub fn find_program(program: &Program) -> Result<Utf8PathBuf> {
    let name = program.as_str();
    let executable = |p: &Utf8Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let path = Utf8PathBuf::from(name);
        return if executable(&path) {
            Ok(path)
        } else {
            Err(spawn::missing_qemu(name))
        };
    }
    let search = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    search
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Utf8Path::new(dir).join(name))
        .find(|candidate| executable(candidate))
        .ok_or_else(|| spawn::missing_qemu(name))
}

/// When systemd-logind would kill this user's processes at logout, a VM
/// started over SSH dies with the session. Returns the warning to print.
pub fn logind_warning() -> Option<String> {
    let user = crate::dirs::user_name("").ok()?;
    logind_warning_in(Utf8Path::new("/"), &user)
}

/// [`logind_warning`] for a system rooted at `root` (tests use a temp dir).
pub fn logind_warning_in(root: &Utf8Path, user: &str) -> Option<String> {
    if !root.join("run/systemd/system").exists() {
        return None;
    }
    let mut files = vec![root.join("etc/systemd/logind.conf")];
    if let Ok(dir) = std::fs::read_dir(root.join("etc/systemd/logind.conf.d")) {
        let mut extra: Vec<Utf8PathBuf> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| Utf8PathBuf::from_path_buf(e.path()).ok())
            .filter(|p| p.extension() == Some("conf"))
            .collect();
        extra.sort();
        files.extend(extra);
    }
    // Later files override earlier ones, as logind reads them.
    let mut kill = false;
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines() {
            if let Some(value) = line.trim().strip_prefix("KillUserProcesses=") {
                kill = matches!(value.trim(), "yes" | "true" | "1" | "on");
            }
        }
    }
    if !kill || root.join("var/lib/systemd/linger").join(user).exists() {
        return None;
    }
    Some(format!(
        "systemd-logind is set to kill your processes when you log out (KillUserProcesses=yes), \
         and lingering is off for {user}: the VM would stop when this session ends. \
         Run `loginctl enable-linger {user}` to keep it running."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Utf8Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn logind_killing_user_processes_without_lingering_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Utf8Path::from_path(dir.path()).expect("utf-8");
        assert_eq!(
            logind_warning_in(root, "ann"),
            None,
            "no systemd: no warning"
        );
        std::fs::create_dir_all(root.join("run/systemd/system")).expect("mkdir");
        assert_eq!(
            logind_warning_in(root, "ann"),
            None,
            "the default keeps processes"
        );
        write(
            root,
            "etc/systemd/logind.conf",
            "[Login]\nKillUserProcesses=yes\n",
        );
        let warning = logind_warning_in(root, "ann").expect("a warning");
        assert!(warning.contains("loginctl enable-linger ann"), "{warning}");
        write(
            root,
            "etc/systemd/logind.conf.d/10-keep.conf",
            "[Login]\nKillUserProcesses=no\n",
        );
        assert_eq!(logind_warning_in(root, "ann"), None, "a drop-in overrides");
        std::fs::remove_file(root.join("etc/systemd/logind.conf.d/10-keep.conf")).expect("rm");
        write(root, "var/lib/systemd/linger/ann", "");
        assert_eq!(
            logind_warning_in(root, "ann"),
            None,
            "lingering keeps the VM"
        );
        assert!(logind_warning_in(root, "bob").is_some(), "but only for ann");
    }
}
