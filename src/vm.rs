//! What the store keeps about a VM.

use std::fmt;
use std::io::Read;

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use crate::config::{Name, VmConfig};
use crate::error::{Error, Result};
pub use crate::time::Timestamp;

/// A VM id: 128 random bits as 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VmId(String);

impl VmId {
    pub const LEN: usize = 32;
    /// The shortest prefix accepted in place of a full id.
    pub const MIN_PREFIX: usize = 4;
    /// How many characters tables show.
    pub const SHORT: usize = 12;

    pub fn random() -> Result<VmId> {
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| Error::io("read random bytes from", "/dev/urandom", e))?;
        Ok(VmId(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// Accept a full id as stored (lowercase hex), for lookups.
    pub fn parse(text: &str) -> Option<VmId> {
        let ok = text.len() == Self::LEN && text.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| VmId(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn short(&self) -> &str {
        &self.0[..Self::SHORT]
    }
}

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Defined, never started.
    Created,
    Running,
    Stopped,
    Crashed,
    /// `start` is spawning QEMU: its pid is not recorded yet. (Last, so
    /// records written before it existed read the same.)
    Starting,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Created,
        Status::Starting,
        Status::Running,
        Status::Stopped,
        Status::Crashed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Crashed => "crashed",
        }
    }

    /// A QEMU may be there: running, or being started.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Starting)
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a status: use created, starting, running, stopped or crashed")
            })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach a running VM; written by `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat at spawn: with the pid, names the process.
    pub start_ticks: u64,
    /// `<runtime root>/<vm-id>`: sockets, pidfile, logs.
    pub dir: Utf8PathBuf,
    pub qmp_socket: Utf8PathBuf,
    pub console_socket: Utf8PathBuf,
    pub pidfile: Utf8PathBuf,
    pub started: Timestamp,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// The command line QEMU was started with.
    pub argv: Vec<String>,
    /// Why the accelerator is not the one asked for (KVM that failed).
    pub accel_note: Option<String>,
    /// What kept this QEMU from the rest of the host.
    pub confinement: Confinement,
}

/// The kernel confinement a QEMU was started under (DESIGN.md §6a).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Confinement {
    /// A Landlock domain: files always; TCP ports and scoping (abstract
    /// Unix sockets, signals) when the kernel's ABI has them.
    Landlock { abi: u8, net: bool, scoped: bool },
    /// No Landlock domain, and why.
    None { reason: String },
    /// A QEMU maqet adopted after a killed start: how it was started is
    /// not known.
    Unknown,
}

impl Confinement {
    pub fn is_confined(&self) -> bool {
        matches!(self, Confinement::Landlock { .. })
    }

    /// One line for `status` and `inspect`.
    pub fn describe(&self) -> String {
        match self {
            Confinement::Landlock { abi, net, scoped } => {
                let mut parts = vec!["files"];
                if *net {
                    parts.push("TCP ports");
                }
                if *scoped {
                    parts.push("signals and abstract sockets");
                }
                format!(
                    "landlock (ABI {abi}): {}; seccomp: socket kinds",
                    parts.join(", ")
                )
            }
            Confinement::None { reason } => format!("none: {reason}"),
            Confinement::Unknown => "unknown (adopted after an interrupted start)".into(),
        }
    }
}

/// How a VM's last run ended, kept for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    pub at: Timestamp,
    pub reason: String,
    /// The last lines of qemu.log when the end was noticed.
    pub log_tail: Vec<String>,
}

/// A VM as maqet knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub id: VmId,
    pub name: Name,
    pub config: VmConfig,
    /// The config files it was built from, oldest first, as absolute paths.
    pub sources: Vec<Utf8PathBuf>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub status: Status,
    pub runtime: Option<Runtime>,
    pub last_exit: Option<ExitInfo>,
    /// Disk images maqet created for this VM (`rm --clean-storage` deletes
    /// these and nothing else).
    pub owned: Vec<Utf8PathBuf>,
    /// `maqet run --rm`: remove the VM (and its owned images) as soon as a
    /// command finds it stopped.
    pub auto_remove: bool,
    /// Raw `arguments` and a custom `binary` were granted on the command
    /// line (`--trust`), not by a config file alone (docs/security.md).
    pub trusted: bool,
}

impl Vm {
    /// True when the config changed (by `apply`) after the running QEMU was
    /// started: it runs with the old one until its next start. The record
    /// keeps whole seconds: `apply` counts a change to a running VM a
    /// second after its start at least, and `start` counts itself no
    /// earlier than the last change.
    pub fn pending_restart(&self) -> bool {
        self.runtime
            .as_ref()
            .is_some_and(|rt| rt.pid > 0 && self.updated > rt.started)
    }

    /// A newly defined VM, never started.
    pub fn new(
        name: Name,
        config: VmConfig,
        sources: Vec<Utf8PathBuf>,
        auto_remove: bool,
    ) -> Result<Vm> {
        let now = Timestamp::now();
        Ok(Vm {
            id: VmId::random()?,
            name,
            config,
            sources,
            created: now,
            updated: now,
            status: Status::Created,
            runtime: None,
            last_exit: None,
            owned: Vec::new(),
            auto_remove,
            trusted: false,
        })
    }
}

/// The stored form of a VM. postcard is not self-describing, so a stored
/// layout never changes: a new layout is a new variant, and older ones are
/// converted when read.
#[derive(Debug, Serialize, Deserialize)]
pub enum VmRecord {
    V1(legacy::VmV1),
    V2(legacy::VmV2),
    V3(legacy::VmV3),
    V4(Vm),
}

impl VmRecord {
    pub fn encode(vm: &Vm) -> Result<Vec<u8>, postcard::Error> {
        // Variants are numbered by position: V1 to V3 hold their places,
        // never written again.
        #[derive(Serialize)]
        enum Borrowed<'a> {
            #[allow(dead_code)]
            V1,
            #[allow(dead_code)]
            V2,
            #[allow(dead_code)]
            V3,
            V4(&'a Vm),
        }
        postcard::to_stdvec(&Borrowed::V4(vm))
    }

    pub fn decode(bytes: &[u8]) -> Result<Vm, postcard::Error> {
        match postcard::from_bytes(bytes)? {
            VmRecord::V1(vm) => Ok(vm.into()),
            VmRecord::V2(vm) => Ok(vm.into()),
            VmRecord::V3(vm) => Ok(vm.into()),
            VmRecord::V4(vm) => Ok(vm),
        }
    }
}

/// Stored layouts of earlier versions, frozen, and how they convert.
pub mod legacy {
    use camino::Utf8PathBuf;
    use serde::{Deserialize, Serialize};

    use super::{Confinement, ExitInfo, Runtime, Status, Timestamp, Vm, VmId};
    use crate::config::{
        Accel, Boot, Cpus, Display, HotplugPorts, Memory, Name, Network, Program, Storage, Vga,
        VmConfig,
    };

    /// The config of V1 and V2 records: no `hotplug_ports`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct VmConfigV1 {
        pub binary: Program,
        pub machine: Name,
        pub accel: Accel,
        pub memory: Memory,
        pub cpus: Cpus,
        pub display: Display,
        pub vga: Vga,
        pub boot: Boot,
        pub storage: Vec<Storage>,
        pub network: Vec<Network>,
        pub arguments: Vec<String>,
    }

    impl From<VmConfigV1> for VmConfig {
        /// The default count: a q35 VM gets hot-plug ports at its next
        /// start, as a new one does.
        fn from(c: VmConfigV1) -> VmConfig {
            VmConfig {
                binary: c.binary,
                machine: c.machine,
                accel: c.accel,
                memory: c.memory,
                cpus: c.cpus,
                display: c.display,
                vga: c.vga,
                hotplug_ports: None,
                boot: c.boot,
                storage: c.storage,
                network: c.network,
                arguments: c.arguments,
                cloud_init: None,
            }
        }
    }

    /// The config of V3 records: no `cloud_init`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct VmConfigV3 {
        pub binary: Program,
        pub machine: Name,
        pub accel: Accel,
        pub memory: Memory,
        pub cpus: Cpus,
        pub display: Display,
        pub vga: Vga,
        pub hotplug_ports: Option<HotplugPorts>,
        pub boot: Boot,
        pub storage: Vec<Storage>,
        pub network: Vec<Network>,
        pub arguments: Vec<String>,
    }

    impl From<VmConfigV3> for VmConfig {
        fn from(c: VmConfigV3) -> VmConfig {
            VmConfig {
                binary: c.binary,
                machine: c.machine,
                accel: c.accel,
                memory: c.memory,
                cpus: c.cpus,
                display: c.display,
                vga: c.vga,
                hotplug_ports: c.hotplug_ports,
                boot: c.boot,
                storage: c.storage,
                network: c.network,
                arguments: c.arguments,
                cloud_init: None,
            }
        }
    }

    /// The VM with `hotplug_ports`, before `cloud_init`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct VmV3 {
        pub id: VmId,
        pub name: Name,
        pub config: VmConfigV3,
        pub sources: Vec<Utf8PathBuf>,
        pub created: Timestamp,
        pub updated: Timestamp,
        pub status: Status,
        pub runtime: Option<Runtime>,
        pub last_exit: Option<ExitInfo>,
        pub owned: Vec<Utf8PathBuf>,
        pub auto_remove: bool,
        pub trusted: bool,
    }

    impl From<VmV3> for Vm {
        fn from(v: VmV3) -> Vm {
            Vm {
                id: v.id,
                name: v.name,
                config: v.config.into(),
                sources: v.sources,
                created: v.created,
                updated: v.updated,
                status: v.status,
                runtime: v.runtime,
                last_exit: v.last_exit,
                owned: v.owned,
                auto_remove: v.auto_remove,
                trusted: v.trusted,
            }
        }
    }

    /// maqet 0.1.0's VM with `--trust` and confinement, before
    /// `hotplug_ports`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct VmV2 {
        pub id: VmId,
        pub name: Name,
        pub config: VmConfigV1,
        pub sources: Vec<Utf8PathBuf>,
        pub created: Timestamp,
        pub updated: Timestamp,
        pub status: Status,
        pub runtime: Option<Runtime>,
        pub last_exit: Option<ExitInfo>,
        pub owned: Vec<Utf8PathBuf>,
        pub auto_remove: bool,
        pub trusted: bool,
    }

    impl From<VmV2> for Vm {
        fn from(v: VmV2) -> Vm {
            Vm {
                id: v.id,
                name: v.name,
                config: v.config.into(),
                sources: v.sources,
                created: v.created,
                updated: v.updated,
                status: v.status,
                runtime: v.runtime,
                last_exit: v.last_exit,
                owned: v.owned,
                auto_remove: v.auto_remove,
                trusted: v.trusted,
            }
        }
    }

    /// maqet 0.1.0's first VM: no trust flag, no confinement.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct VmV1 {
        pub id: VmId,
        pub name: Name,
        pub config: VmConfigV1,
        pub sources: Vec<Utf8PathBuf>,
        pub created: Timestamp,
        pub updated: Timestamp,
        pub status: Status,
        pub runtime: Option<RuntimeV1>,
        pub last_exit: Option<ExitInfo>,
        pub owned: Vec<Utf8PathBuf>,
        pub auto_remove: bool,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RuntimeV1 {
        pub pid: i32,
        pub start_ticks: u64,
        pub dir: Utf8PathBuf,
        pub qmp_socket: Utf8PathBuf,
        pub console_socket: Utf8PathBuf,
        pub pidfile: Utf8PathBuf,
        pub started: Timestamp,
        pub accel: String,
        pub argv: Vec<String>,
    }

    impl From<VmV1> for Vm {
        /// A VM from before `--trust` is not trusted: its raw arguments or
        /// custom binary came from a config file, and starting it says how
        /// to grant them.
        fn from(v: VmV1) -> Vm {
            Vm {
                id: v.id,
                name: v.name,
                config: v.config.into(),
                sources: v.sources,
                created: v.created,
                updated: v.updated,
                status: v.status,
                runtime: v.runtime.map(|rt| Runtime {
                    pid: rt.pid,
                    start_ticks: rt.start_ticks,
                    dir: rt.dir,
                    qmp_socket: rt.qmp_socket,
                    console_socket: rt.console_socket,
                    pidfile: rt.pidfile,
                    started: rt.started,
                    accel: rt.accel,
                    argv: rt.argv,
                    accel_note: None,
                    confinement: Confinement::None {
                        reason: "started by an earlier maqet, without confinement".into(),
                    },
                }),
                last_exit: v.last_exit,
                owned: v.owned,
                auto_remove: v.auto_remove,
                trusted: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::legacy::{RuntimeV1, VmConfigV1, VmV1};
    use super::*;
    use crate::config::VmConfig;

    fn v1_config(c: VmConfig) -> VmConfigV1 {
        VmConfigV1 {
            binary: c.binary,
            machine: c.machine,
            accel: c.accel,
            memory: c.memory,
            cpus: c.cpus,
            display: c.display,
            vga: c.vga,
            boot: c.boot,
            storage: c.storage,
            network: c.network,
            arguments: c.arguments,
        }
    }

    /// A V2 record as maqet wrote it before `hotplug_ports` (bytes taken
    /// from that build): a running, trusted `pc` VM with a drive, a
    /// forward and raw arguments.
    const V2_RECORD: &str = "01203031323334353637383961626364656630313233343536373839616263646566\
        037765621271656d752d73797374656d2d7838365f36340270630002314704000000000000010004726f6f7400\
        01023147000000000100046e657430000001ae1116007f00000102072d6465766963650e76697274696f2d726e\
        672d70636901102f686f6d652f6d652f7765622e726f6e010201015407062f72756e2f780f2f72756e2f782f71\
        6d702e736f636b132f72756e2f782f636f6e736f6c652e736f636b0f2f72756e2f782f71656d752e7069640303\
        746367010471656d75000006010100011b2f646174612f6469736b732f303132332f726f6f742e71636f77320001";

    /// A V3 record as maqet wrote it before `cloud_init` (bytes taken from
    /// that build): the V2 record above with `hotplug_ports: 2`.
    const V3_RECORD: &str = "02203031323334353637383961626364656630313233343536373839616263646566037765621271656d752d7379\
        7374656d2d7838365f363402706300023147040000010400000000010004726f6f74000102314700000000010004\
        6e657430000001ae1116007f00000102072d6465766963650e76697274696f2d726e672d70636901102f686f6d65\
        2f6d652f7765622e726f6e010201015407062f72756e2f780f2f72756e2f782f716d702e736f636b132f72756e2f\
        782f636f6e736f6c652e736f636b0f2f72756e2f782f71656d752e7069640303746367010471656d750000060101\
        00011b2f646174612f6469736b732f303132332f726f6f742e71636f77320001";

    #[test]
    fn a_v3_record_reads_with_no_cloud_init() {
        let bytes: Vec<u8> = (0..V3_RECORD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&V3_RECORD[i..i + 2], 16).expect("hex"))
            .collect();
        let vm = VmRecord::decode(&bytes).expect("decode");
        assert_eq!(vm.name.as_str(), "web");
        assert_eq!(
            vm.config.hotplug_ports,
            Some(crate::config::HotplugPorts(2))
        );
        assert_eq!(vm.config.cloud_init, None);
        assert_eq!(vm.config.arguments, ["-device", "virtio-rng-pci"]);
        assert!(vm.trusted);
        let again = VmRecord::encode(&vm).expect("encode");
        assert_eq!(again[0], 3, "the V4 variant");
        assert_eq!(VmRecord::decode(&again).expect("decode"), vm);
    }

    #[test]
    fn a_v2_record_reads_with_the_default_hotplug_ports() {
        let bytes: Vec<u8> = (0..V2_RECORD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&V2_RECORD[i..i + 2], 16).expect("hex"))
            .collect();
        let vm = VmRecord::decode(&bytes).expect("decode");
        assert_eq!(vm.name.as_str(), "web");
        assert_eq!(vm.config.machine.as_str(), "pc");
        assert_eq!(vm.config.cpus.0, 2);
        assert_eq!(vm.config.hotplug_ports, None);
        assert_eq!(vm.config.storage[0].name().as_str(), "root");
        assert_eq!(vm.config.arguments, ["-device", "virtio-rng-pci"]);
        assert_eq!(vm.sources, [Utf8PathBuf::from("/home/me/web.ron")]);
        assert!(vm.trusted);
        assert_eq!(vm.owned, [Utf8PathBuf::from("/data/disks/0123/root.qcow2")]);
        let rt = vm.runtime.as_ref().expect("a runtime");
        assert_eq!((rt.pid, rt.start_ticks, rt.accel.as_str()), (42, 7, "tcg"));
        assert!(rt.confinement.is_confined());
        // Written back, it is a V4 record that reads the same.
        let again = VmRecord::encode(&vm).expect("encode");
        assert_eq!(again[0], 3, "the V4 variant");
        assert_eq!(VmRecord::decode(&again).expect("decode"), vm);
    }

    /// A record written by maqet 0.1.0 reads as a VM that is not trusted,
    /// whose running QEMU is reported unconfined.
    #[test]
    fn a_v1_record_reads_as_untrusted_and_unconfined() {
        let old = VmV1 {
            id: VmId::parse("0123456789abcdef0123456789abcdef").expect("an id"),
            name: "web".parse().expect("a name"),
            config: v1_config(VmConfig {
                arguments: vec!["-device".into(), "virtio-rng-pci".into()],
                ..VmConfig::default()
            }),
            sources: Vec::new(),
            created: Timestamp(1),
            updated: Timestamp(2),
            status: Status::Running,
            runtime: Some(RuntimeV1 {
                pid: 42,
                start_ticks: 7,
                dir: "/run/x".into(),
                qmp_socket: "/run/x/qmp.sock".into(),
                console_socket: "/run/x/console.sock".into(),
                pidfile: "/run/x/qemu.pid".into(),
                started: Timestamp(3),
                accel: "tcg".into(),
                argv: vec!["qemu".into()],
            }),
            last_exit: None,
            owned: Vec::new(),
            auto_remove: false,
        };
        let bytes = postcard::to_stdvec(&VmRecord::V1(old)).expect("encode");
        let vm = VmRecord::decode(&bytes).expect("decode");
        assert!(!vm.trusted);
        let rt = vm.runtime.as_ref().expect("a runtime");
        assert_eq!(rt.pid, 42);
        assert!(!rt.confinement.is_confined());
        // Written back, it is a V4 record that reads the same.
        let again = VmRecord::decode(&VmRecord::encode(&vm).expect("encode")).expect("decode");
        assert_eq!(again, vm);
    }
}
