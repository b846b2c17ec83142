//! Kernel confinement of every QEMU with Landlock (DESIGN.md §6a,
//! docs/security.md).
//!
//! maqet's path filter is a check; this is the guarantee. Before the fork,
//! maqet builds a Landlock ruleset that allows this VM's QEMU exactly what
//! it needs — its program, the system's libraries and firmware, the VM's
//! runtime directory, its images, kernel, initrd, firmware and shares, and
//! the TCP ports it forwards — and nothing else. The child enforces it
//! just before `exec`, so whatever raw `arguments`, a raw QMP command or a
//! file swapped under maqet's feet make QEMU try, the kernel refuses.
//!
//! Rules are put on inodes maqet opened itself (`O_PATH`) and then checked
//! where they really are, so renaming a symlink in later grants nothing.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use camino::{Utf8Path, Utf8PathBuf};
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    Ruleset, RulesetAttr, RulesetCreatedAttr, Scope,
};

use super::argv::Accelerator;
use crate::config::{Display, Network, Protocol, Storage, VmConfig};
use crate::error::{Error, Result};
use crate::layout::RuntimePaths;
use crate::paths::PathPolicy;
use crate::settings::Settings;
use crate::storage::Chains;
use crate::vm::Confinement;

/// The newest Landlock ABI maqet knows; newer kernels are used at this level.
const TARGET: ABI = ABI::V6;

/// What the system gives every QEMU to read: its libraries and loader
/// cache, and the firmware and option ROMs QEMU ships. Absent ones are
/// skipped.
const SYSTEM_READ: &[&str] = &[
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib32",
    "/lib",
    "/lib64",
    "/lib32",
    "/etc/ld.so.cache",
    "/usr/share/qemu",
    "/usr/share/seabios",
    "/usr/share/ipxe",
    "/usr/share/OVMF",
    "/usr/share/ovmf",
    "/usr/share/qemu-efi",
    "/usr/share/edk2",
    "/dev/urandom",
    "/dev/random",
];

/// QEMU opens /dev/null for writing (it redirects its own descriptors).
const SYSTEM_WRITE: &[&str] = &["/dev/null"];

/// A window on the host's display (`Gtk`, `Sdl`) needs its fonts, themes
/// and the display server's sockets. Wider, and said so by `status`.
const DISPLAY_READ: &[&str] = &[
    "/usr/share",
    "/usr/local/share/fonts",
    "/etc/fonts",
    "/var/cache/fontconfig",
    "/tmp/.X11-unix",
];

/// Everything one VM's QEMU may touch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs {
    /// Programs it may run: QEMU itself (and a script's interpreter).
    pub execute: Vec<Utf8PathBuf>,
    /// Files and directories to read, from the system (skipped if absent).
    pub system_read: Vec<Utf8PathBuf>,
    pub system_write: Vec<Utf8PathBuf>,
    /// The VM's own files, checked by the path filter: read-only...
    pub read: Vec<Utf8PathBuf>,
    /// ...and read-write (writable images and shares).
    pub write: Vec<Utf8PathBuf>,
    /// maqet's own files for this VM, read-write: its runtime directory and
    /// the images maqet made (inside maqet's directories, which the filter
    /// keeps VM configs out of).
    pub own: Vec<Utf8PathBuf>,
    /// maqet's own files for this VM, read-only: its cloud-init seed.
    pub own_read: Vec<Utf8PathBuf>,
    /// Devices it drives with ioctls (/dev/kvm).
    pub devices: Vec<Utf8PathBuf>,
    /// TCP ports it may listen on (forwards, VNC).
    pub bind: Vec<u16>,
    /// Whether it may make outgoing TCP connections (user-mode networking
    /// makes the guest's connections from QEMU).
    pub connect: bool,
    /// Whether it may reach abstract Unix sockets and signal processes
    /// outside its domain (a window on the host's display needs the first).
    pub unscoped: bool,
}

impl Needs {
    /// The base every QEMU gets; the caller adds the VM's own files.
    pub fn base(program: &Utf8Path) -> Needs {
        let mut execute = vec![program.to_owned()];
        // The kernel runs a dynamic program's loader (`PT_INTERP`) as part
        // of exec, and a trusted script's (`#!`) interpreter, and that
        // interpreter's loader.
        if let Some(interpreter) = shebang(program) {
            execute.extend(elf_interpreter(&interpreter));
            execute.push(interpreter);
        }
        execute.extend(elf_interpreter(program));
        Needs {
            execute,
            system_read: SYSTEM_READ.iter().map(Utf8PathBuf::from).collect(),
            system_write: SYSTEM_WRITE.iter().map(Utf8PathBuf::from).collect(),
            ..Needs::default()
        }
    }

    /// A window on the host's display.
    pub fn add_display(&mut self) {
        self.system_read
            .extend(DISPLAY_READ.iter().map(Utf8PathBuf::from));
        let var = |k: &str| std::env::var(k).ok().filter(|v| v.starts_with('/'));
        if let Some(auth) = var("XAUTHORITY") {
            self.system_read.push(auth.into());
        } else if let Some(home) = var("HOME") {
            self.system_read
                .push(Utf8PathBuf::from(home).join(".Xauthority"));
        }
        if let Some(run) = var("XDG_RUNTIME_DIR") {
            self.system_write.push(run.into());
        }
        self.unscoped = true;
    }
}

/// What one VM's QEMU needs: the base, its runtime directory, its images
/// and their chains (read-only below the top), kernel, initrd, firmware,
/// shares, /dev/kvm with KVM, its forwarded and VNC ports, and what the
/// settings file allows every VM.
pub fn needs(
    config: &VmConfig,
    accel: Accelerator,
    program: &Utf8Path,
    runtime: &RuntimePaths,
    disks_dir: &Utf8Path,
    chains: &Chains,
    settings: &Settings,
) -> Needs {
    let mut needs = Needs::base(program);
    needs.own.push(runtime.dir.clone());
    if accel == Accelerator::Kvm {
        needs.devices.push("/dev/kvm".into());
    }
    let boot = &config.boot;
    for path in [&boot.kernel, &boot.initrd, &boot.firmware]
        .into_iter()
        .flatten()
    {
        needs.read.push(path.as_path().to_owned());
    }
    for drive in &config.storage {
        if let Some(chain) = chains.get(drive.name().as_str()) {
            needs
                .read
                .extend(chain.backing.iter().map(|(p, _)| p.clone()));
        }
        let (path, writable) = match drive {
            Storage::Qcow2(q) => match &q.file {
                Some(file) => (file.as_path().to_owned(), !q.readonly),
                // maqet's own image, in its data directory.
                None => {
                    needs.own.push(q.image(disks_dir));
                    continue;
                }
            },
            Storage::Raw(r) => (r.file.as_path().to_owned(), !r.readonly),
            // The seed maqet wrote, in its data directory.
            Storage::Cdrom(c) if c.file.as_path().starts_with(disks_dir) => {
                needs.own_read.push(c.file.as_path().to_owned());
                continue;
            }
            Storage::Cdrom(c) => (c.file.as_path().to_owned(), false),
            Storage::Virtfs(v) => (v.path.as_path().to_owned(), !v.readonly),
        };
        if writable {
            needs.write.push(path);
        } else {
            needs.read.push(path);
        }
    }
    for Network::User(user) in &config.network {
        // The guest's own connections leave through QEMU (slirp).
        needs.connect = true;
        needs.bind.extend(
            user.forwards
                .iter()
                .filter(|f| f.protocol == Protocol::Tcp)
                .map(|f| f.host.0),
        );
    }
    match config.display {
        Display::Vnc { display, .. } => needs.bind.push(5900 + u16::from(display)),
        Display::Gtk | Display::Sdl => needs.add_display(),
        Display::Headless => {}
    }
    needs
        .system_read
        .extend(settings.allow_read.iter().map(Utf8PathBuf::from));
    needs
        .system_write
        .extend(settings.allow_write.iter().map(Utf8PathBuf::from));
    needs
        .execute
        .extend(settings.allow_execute.iter().map(Utf8PathBuf::from));
    needs
}

/// The loader a dynamically linked 64-bit little-endian ELF program names
/// (`PT_INTERP`); `None` for a static program or anything else.
fn elf_interpreter(program: &Utf8Path) -> Option<Utf8PathBuf> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(program).ok()?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header).ok()?;
    // Magic, 64-bit class, little-endian.
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"));
    let table = u64_at(&header, 0x20);
    let entry_size = u64::from(u16_at(&header, 0x36));
    let entries = u16_at(&header, 0x38);
    if entry_size < 56 {
        return None;
    }
    for index in 0..u64::from(entries) {
        let mut entry = [0u8; 56];
        file.seek(SeekFrom::Start(table + index * entry_size))
            .ok()?;
        file.read_exact(&mut entry).ok()?;
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes(entry[..4].try_into().expect("four bytes")) != PT_INTERP {
            continue;
        }
        let (offset, size) = (u64_at(&entry, 8), u64_at(&entry, 32));
        if size > 4096 {
            return None;
        }
        let mut name = vec![0u8; usize::try_from(size).ok()?];
        file.seek(SeekFrom::Start(offset)).ok()?;
        file.read_exact(&mut name).ok()?;
        let name = name.split(|b| *b == 0).next()?;
        return String::from_utf8(name.to_vec()).ok().map(Utf8PathBuf::from);
    }
    None
}

/// The interpreter a `#!` script names.
fn shebang(program: &Utf8Path) -> Option<Utf8PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = File::open(program).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?.trim();
    let interpreter = text.split_whitespace().next()?;
    interpreter.starts_with('/').then(|| interpreter.into())
}

/// The Landlock ABI of the running kernel, or why there is none.
pub fn kernel_abi() -> std::result::Result<u8, String> {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute and a
    // zero size only asks for the version; nothing is read or written.
    let abi = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    if abi > 0 {
        return Ok(u8::try_from(abi).unwrap_or(u8::MAX));
    }
    Err(match io::Error::last_os_error().raw_os_error() {
        Some(nix::libc::ENOSYS) => {
            "this kernel has no Landlock (Linux 5.13 or later has it)".into()
        }
        Some(nix::libc::EOPNOTSUPP) => {
            "Landlock is built in but disabled (add `landlock` to the kernel's lsm= boot option)"
                .into()
        }
        other => format!("Landlock is not available (errno {other:?})"),
    })
}

/// A ruleset and a socket filter, ready for the child to enforce.
#[derive(Debug)]
pub struct Prepared {
    fd: OwnedFd,
    filter: Vec<nix::libc::sock_filter>,
    pub confinement: Confinement,
}

impl Prepared {
    /// What the child needs, as plain values it can use without
    /// allocating.
    pub fn parts(&self) -> (RawFd, &[nix::libc::sock_filter]) {
        (self.fd.as_raw_fd(), &self.filter)
    }
}

/// The socket filter (seccomp), which covers what Landlock (ABI 6) cannot:
/// Landlock has no rule for connecting to a Unix socket by path (a session
/// bus, docker.sock, an ssh agent), for UDP, or for protocols beside TCP.
/// So QEMU may create only plain TCP/UDP sockets (no raw ones, no MPTCP or
/// SCTP), no UDP without a user-mode NIC (the guest's own traffic), Unix
/// sockets only for a window on the host's display, no io_uring (which
/// creates sockets past the filter), and may not touch kernel keyrings.
/// Sockets it inherits (its monitors, the console) are not affected.
fn socket_filter(needs: &Needs) -> Result<Vec<nix::libc::sock_filter>> {
    use nix::libc::{
        AF_INET, AF_INET6, AF_UNIX, EACCES, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM, SOCK_RAW,
    };
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
        SeccompFilter, SeccompRule, TargetArch,
    };
    let fail = |e: &dyn std::fmt::Display| Error::Confinement {
        message: format!("cannot build the socket filter: {e}"),
    };
    let arg = |index, op, value: i32| {
        Cond::new(index, Len::Dword, op, u64::from(value.unsigned_abs())).map_err(|e| fail(&e))
    };
    let rule = |conditions| SeccompRule::new(conditions).map_err(|e| fail(&e));
    // Refused: any family but IPv4, IPv6 (and Unix for a window)...
    let mut other = vec![arg(0, Op::Ne, AF_INET)?, arg(0, Op::Ne, AF_INET6)?];
    if needs.unscoped {
        other.push(arg(0, Op::Ne, AF_UNIX)?);
    }
    let mut socket = vec![rule(other)?];
    // ...any protocol but the default, TCP or UDP (MPTCP and SCTP get past
    // Landlock's TCP rules)...
    socket.push(rule(vec![
        arg(2, Op::Ne, 0)?,
        arg(2, Op::Ne, IPPROTO_TCP)?,
        arg(2, Op::Ne, IPPROTO_UDP)?,
    ])?);
    // ...raw sockets (as root, UDP and ICMP past everything else; the
    // type's low bits, flags sit above)...
    socket.push(rule(vec![arg(1, Op::MaskedEq(0xf), SOCK_RAW)?])?);
    // ...and UDP without a NIC.
    if !needs.connect {
        for family in [AF_INET, AF_INET6] {
            socket.push(rule(vec![
                arg(0, Op::Eq, family)?,
                arg(1, Op::MaskedEq(0xf), SOCK_DGRAM)?,
            ])?);
        }
    }
    // The kernel keyrings of the caller's session are no business of QEMU's.
    let rules = [
        (nix::libc::SYS_socket, socket),
        (nix::libc::SYS_io_uring_setup, Vec::new()),
        (nix::libc::SYS_keyctl, Vec::new()),
        (nix::libc::SYS_add_key, Vec::new()),
        (nix::libc::SYS_request_key, Vec::new()),
    ]
    .into_iter()
    .collect();
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| fail(&e))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(EACCES.unsigned_abs()),
        arch,
    )
    .map_err(|e| fail(&e))?;
    let program: seccompiler::BpfProgram = filter.try_into().map_err(|e| fail(&e))?;
    Ok(program
        .into_iter()
        .map(|i| nix::libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// Build the ruleset for `needs`. `Ok(None)` when the kernel has no
/// Landlock. A file of the VM's own that no longer passes the path filter
/// where it really is (swapped since it was checked) is refused.
pub fn prepare(needs: &Needs, policy: &PathPolicy) -> Result<Option<Prepared>> {
    let Ok(abi) = kernel_abi() else {
        return Ok(None);
    };
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let write = read
        | AccessFs::WriteFile
        | AccessFs::Truncate
        | AccessFs::MakeReg
        | AccessFs::MakeDir
        | AccessFs::RemoveFile
        | AccessFs::RemoveDir;
    let device = read | AccessFs::WriteFile | AccessFs::IoctlDev;

    let mut rules = Vec::new();
    for path in &needs.execute {
        if let Some(fd) = open_path(path)? {
            rules.push(rule(fd, read | AccessFs::Execute));
        }
    }
    for (paths, access) in [
        (&needs.system_read, read),
        (&needs.system_write, write),
        (&needs.devices, device),
    ] {
        for path in paths {
            if let Some(fd) = open_path(path)? {
                rules.push(rule(fd, access));
            }
        }
    }
    for (paths, access) in [(&needs.read, read), (&needs.write, write)] {
        for path in paths {
            rules.push(rule(open_checked(path, Some(policy))?, access));
        }
    }
    for path in &needs.own {
        rules.push(rule(open_checked(path, None)?, write));
    }
    for path in &needs.own_read {
        rules.push(rule(open_checked(path, None)?, read));
    }

    let fail = |e: landlock::RulesetError| Error::Confinement {
        message: format!("cannot build the Landlock ruleset: {e}"),
    };
    let mut net = AccessNet::BindTcp | AccessNet::ConnectTcp;
    if needs.connect {
        net = AccessNet::BindTcp.into();
    }
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET))
        .map_err(fail)?
        .handle_access(net)
        .map_err(fail)?;
    if !needs.unscoped {
        ruleset = ruleset.scope(Scope::from_all(TARGET)).map_err(fail)?;
    }
    let created =
        ruleset
            .create()
            .map_err(fail)?
            .add_rules(rules.into_iter().map(Ok::<_, landlock::RulesetError>))
            .map_err(fail)?
            .add_rules(needs.bind.iter().map(|port| {
                Ok::<_, landlock::RulesetError>(NetPort::new(*port, AccessNet::BindTcp))
            }))
            .map_err(fail)?;
    let fd = Option::<OwnedFd>::from(created).ok_or_else(|| Error::Confinement {
        message: "the kernel gave no Landlock ruleset".into(),
    })?;
    Ok(Some(Prepared {
        fd,
        filter: socket_filter(needs)?,
        confinement: Confinement::Landlock {
            abi: abi.min(6),
            net: abi >= 4,
            scoped: abi >= 6 && !needs.unscoped,
        },
    }))
}

/// A rule on one opened file or directory; rights that only make sense on
/// directories are dropped for a file (the kernel refuses them).
fn rule(fd: File, access: BitFlags<AccessFs>) -> PathBeneath<File> {
    let is_dir = fd.metadata().is_ok_and(|m| m.is_dir());
    let access = if is_dir {
        access
    } else {
        access & AccessFs::from_file(TARGET)
    };
    PathBeneath::new(fd, access)
}

/// Open a system path as `O_PATH` (no read, no write: a handle for the
/// rule), or `None` when it does not exist on this host.
fn open_path(path: &Utf8Path) -> Result<Option<File>> {
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_PATH | nix::libc::O_CLOEXEC)
        .open(path)
    {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot open for the Landlock ruleset", path, e)),
    }
}

/// Open one of the VM's own files, then check where the opened inode
/// really is: a name swapped for a symlink between maqet's check and this
/// open is caught here, and a swap after it changes nothing (the rule is
/// on this inode).
fn open_checked(path: &Utf8Path, policy: Option<&PathPolicy>) -> Result<File> {
    let fd = open_path(path)?.ok_or_else(|| {
        Error::invalid(
            format!("{path} does not exist"),
            "it existed when the VM was checked; put it back or change the config",
        )
    })?;
    let real = crate::paths::dir::real_path(&fd, path)?;
    if let Some(policy) = policy {
        policy
            .check_vm(real.as_os_str(), Utf8Path::new("/"))
            .map_err(|e| Error::Refused {
                message: format!("{path}: {e}"),
                help: format!("{} (the file changed since it was checked)", e.help()),
            })?;
    }
    if real != path.as_std_path() {
        return Err(Error::Refused {
            message: format!("{path} moved while maqet opened it"),
            help: "someone is changing the directories above it; check who can write there".into(),
        });
    }
    Ok(fd)
}

/// In the forked child, just before `exec`: enforce the ruleset and load
/// the socket filter. Only three system calls, all async-signal-safe.
/// `no_new_privs` is what lets an unprivileged process restrict itself; it
/// also keeps a setuid program QEMU might run from gaining privileges.
pub fn enforce(ruleset: RawFd, filter: &[nix::libc::sock_filter]) -> io::Result<()> {
    let program = nix::libc::sock_fprog {
        len: u16::try_from(filter.len()).unwrap_or(u16::MAX),
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain system calls; `program` points at `filter`, which the
    // parent built before the fork and outlives these calls.
    unsafe {
        if nix::libc::prctl(nix::libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if nix::libc::syscall(nix::libc::SYS_landlock_restrict_self, ruleset, 0u32) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mode = nix::libc::SECCOMP_MODE_FILTER;
        if nix::libc::prctl(nix::libc::PR_SET_SECCOMP, mode, &raw const program) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_program_names_its_loader_and_a_script_its_interpreter() {
        // This test binary itself is a dynamic ELF program (on glibc).
        let me = Utf8PathBuf::from_path_buf(std::env::current_exe().expect("exe")).expect("utf-8");
        let loader = elf_interpreter(&me);
        if cfg!(target_env = "gnu") {
            let loader = loader.expect("a PT_INTERP");
            assert!(loader.as_str().contains("ld-linux"), "{loader}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let script = Utf8PathBuf::from_path_buf(dir.path().join("qemu")).expect("utf-8");
        std::fs::write(&script, "#! /bin/sh -e\nexec qemu \"$@\"\n").expect("write");
        assert_eq!(shebang(&script), Some("/bin/sh".into()));
        assert_eq!(elf_interpreter(&script), None, "a script is not ELF");
        std::fs::write(&script, "#!sh\n").expect("write");
        assert_eq!(shebang(&script), None, "a relative interpreter is not run");
    }

    #[test]
    fn the_socket_filter_builds_for_every_kind_of_vm() {
        for (connect, unscoped) in [(false, false), (true, false), (false, true), (true, true)] {
            let needs = Needs {
                connect,
                unscoped,
                ..Needs::default()
            };
            let program = socket_filter(&needs).expect("a filter");
            assert!(!program.is_empty() && program.len() < 200);
        }
    }
}
