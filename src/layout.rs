//! Which file of one VM is where (DESIGN.md §2): the only place a per-VM
//! file name is spelled. [`Dirs`] says where the roots are; [`Dirs::vm`]
//! says what one VM keeps under them.

use camino::{Utf8Path, Utf8PathBuf};

use crate::dirs::Dirs;
use crate::vm::VmId;

/// The VM lock beside each VM's runtime directory: `<runtime root>/<id>.lock`.
const LOCK_SUFFIX: &str = ".lock";

/// Everything maqet keeps for one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmPaths {
    /// `<runtime root>/<id>/`: sockets, pidfile, logs.
    pub runtime: RuntimePaths,
    /// `<runtime root>/<id>.lock`: held by a `start`, `stop` or `rm` of the
    /// VM, so one runs at a time.
    pub lock: Utf8PathBuf,
    /// `<data>/disks/<id>/`: the images maqet creates for the VM.
    pub disks: Utf8PathBuf,
    /// `<data>/known_hosts/<id>`: the guest's SSH host key (`maqet ssh`).
    pub known_hosts: Utf8PathBuf,
}

impl Dirs {
    /// The files of the VM `id`.
    pub fn vm(&self, id: &VmId) -> VmPaths {
        VmPaths {
            runtime: RuntimePaths::new(self.runtime.join(id.as_str())),
            lock: self.runtime.join(format!("{id}{LOCK_SUFFIX}")),
            disks: self.disks().join(id.as_str()),
            known_hosts: self.data.join("known_hosts").join(id.as_str()),
        }
    }

    /// `<data>/disks`: every VM's disks directory is under it.
    pub fn disks(&self) -> Utf8PathBuf {
        self.data.join("disks")
    }
}

/// The VM an entry of the runtime root belongs to, and whether the entry is
/// its lock: a runtime directory is named by the VM's id, its lock by the
/// id and [`LOCK_SUFFIX`]. `None` for any other name (maqet's host files
/// such as the KVM memo, or what someone else put there).
pub fn runtime_entry_vm(name: &str) -> Option<(&str, bool)> {
    let (id, lock) = match name.strip_suffix(LOCK_SUFFIX) {
        Some(id) => (id, true),
        None => (name, false),
    };
    crate::vm::VmId::parse(id).is_some().then_some((id, lock))
}

/// The image maqet creates for a qcow2 drive without a `file`, in the VM's
/// disks directory.
pub fn owned_image(disks: &Utf8Path, drive: &str) -> Utf8PathBuf {
    disks.join(format!("{drive}.qcow2"))
}

/// Files of one VM's runtime directory (DESIGN.md §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePaths {
    pub dir: Utf8PathBuf,
    pub qmp_socket: Utf8PathBuf,
    /// A second QMP monitor, for `qmp events`: QEMU serves one client per
    /// monitor, so a follower must not hold the one commands use.
    pub events_socket: Utf8PathBuf,
    pub console_socket: Utf8PathBuf,
    pub pidfile: Utf8PathBuf,
    pub qemu_log: Utf8PathBuf,
    pub console_log: Utf8PathBuf,
    /// Where the spawned child writes its pid before exec, so a maqet killed
    /// between the fork and recording the pid leaves a way to the process.
    pub spawn_pid: Utf8PathBuf,
    /// Held while a maqet uses the QMP monitor: commands queue for it.
    pub qmp_lock: Utf8PathBuf,
    /// Held by the one `qmp events` follower.
    pub events_lock: Utf8PathBuf,
    /// Held by the one console session; it holds the session's pid.
    pub console_lock: Utf8PathBuf,
    /// Where QEMU writes a screendump before maqet moves it to the user's
    /// path (a confined QEMU can write nowhere else).
    pub screendump: Utf8PathBuf,
}

impl RuntimePaths {
    pub fn new(dir: Utf8PathBuf) -> RuntimePaths {
        RuntimePaths {
            qmp_socket: dir.join("qmp.sock"),
            events_socket: dir.join("events.sock"),
            console_socket: dir.join("console.sock"),
            pidfile: dir.join("qemu.pid"),
            qemu_log: dir.join("qemu.log"),
            console_log: dir.join("console.log"),
            spawn_pid: dir.join("spawn.pid"),
            qmp_lock: dir.join("qmp.lock"),
            events_lock: dir.join("events.lock"),
            console_lock: dir.join("console.lock"),
            screendump: dir.join("screendump.tmp"),
            dir,
        }
    }

    /// What the directory holds only while QEMU runs (the logs stay).
    pub fn stale(&self) -> [&Utf8Path; 8] {
        [
            &self.qmp_socket,
            &self.events_socket,
            &self.console_socket,
            &self.pidfile,
            &self.spawn_pid,
            &self.qmp_lock,
            &self.events_lock,
            &self.console_lock,
        ]
    }
}
