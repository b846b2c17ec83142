use super::*;
use crate::config::{
    CdromDrive, Program, Qcow2Drive, RawDrive, UserNetwork, UserPath, VirtfsShare,
};
use crate::storage::Chain;

struct Files {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
}

/// A directory with the files `names`.
fn files(names: &[&str]) -> Files {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Utf8PathBuf::from_path_buf(dir.path().canonicalize().expect("canonical"))
        .expect("UTF-8 temp dir");
    for name in names {
        std::fs::write(root.join(name), b"").expect("write");
    }
    Files { _dir: dir, root }
}

fn export(
    config: &VmConfig,
    disks: &Utf8Path,
    chains: &Chains,
    accel: Accelerator,
) -> Result<Exported> {
    let src = Source {
        name: "web",
        id: "0123",
        config,
        disks_dir: disks,
        chains,
    };
    let opts = Options {
        accel,
        image_dir: None,
        console_log: "/var/log/libvirt/qemu/web.serial".into(),
    };
    domain(&src, opts, &mut |driver| {
        Err(unmappable(format!("no types for {driver}"), "in a test"))
    })
}

fn path(p: &Utf8Path) -> UserPath {
    UserPath::checked(p.to_owned())
}

#[test]
fn a_vm_becomes_a_domain_field_by_field() {
    let f = files(&[
        "root.qcow2",
        "base.qcow2",
        "data.img",
        "install.iso",
        "vmlinuz",
    ]);
    let r = &f.root;
    let mut config = VmConfig::default();
    config.memory = crate::config::Memory::parse("512M").unwrap();
    config.cpus = crate::config::Cpus(2);
    config.display = Display::Vnc {
        display: 3,
        bind: std::net::Ipv4Addr::LOCALHOST,
    };
    config.vga = Vga::Virtio;
    config.hotplug_ports = Some(crate::config::HotplugPorts(1));
    config.boot.kernel = Some(path(&r.join("vmlinuz")));
    config.boot.append = Some("console=ttyS0 <&>".into());
    config.storage = vec![
        Storage::Qcow2(Qcow2Drive {
            name: "root".parse().unwrap(),
            file: None,
            size: None,
            interface: Interface::Virtio,
            backing_file: None,
            backing_format: None,
            readonly: false,
        }),
        Storage::Raw(RawDrive {
            name: "data".parse().unwrap(),
            file: path(&r.join("data.img")),
            size: None,
            interface: Interface::Scsi,
            readonly: true,
        }),
        Storage::Cdrom(CdromDrive {
            name: "install".parse().unwrap(),
            file: path(&r.join("install.iso")),
            interface: Interface::Sata,
        }),
        Storage::Virtfs(VirtfsShare {
            name: "share".parse().unwrap(),
            path: path(r),
            mount_tag: None,
            security_model: SecurityModel::Passthrough,
            readonly: true,
        }),
    ];
    config.network = vec![Network::User(UserNetwork {
        name: "net0".parse().unwrap(),
        model: NicModel::E1000,
        mac: Some(crate::config::Mac::new("52:54:00:00:00:01").unwrap()),
        forwards: Vec::new(),
    })];
    let mut chains = Chains::new();
    chains.insert(
        "root".into(),
        Chain {
            backing: vec![(r.join("base.qcow2"), "qcow2")],
        },
    );
    let out = export(&config, r, &chains, Accelerator::Kvm).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        out.text,
        format!(
            "<domain type='kvm'>
  <name>web</name>
  <description>maqet VM web (id 0123), exported by maqet {version}</description>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{r}/vmlinuz</kernel>
    <cmdline>console=ttyS0 &lt;&amp;&gt;</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <cpu mode='host-passthrough'/>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{r}/root.qcow2'/>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='{r}/base.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{r}/data.img'/>
      <target dev='sda' bus='scsi'/>
      <readonly/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='{r}/install.iso'/>
      <target dev='sdb' bus='sata'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <controller type='usb' model='none'/>
    <controller type='pci' index='1' model='pcie-root-port'/>
    <controller type='pci' index='2' model='pcie-root-port'/>
    <controller type='pci' index='3' model='pcie-root-port'/>
    <controller type='pci' index='4' model='pcie-root-port'/>
    <controller type='pci' index='5' model='pcie-root-port'/>
    <filesystem type='mount' accessmode='passthrough'>
      <driver type='path'/>
      <source dir='{r}'/>
      <target dir='share'/>
      <readonly/>
    </filesystem>
    <interface type='user'>
      <mac address='52:54:00:00:00:01'/>
      <model type='e1000'/>
    </interface>
    <serial type='pty'>
      <log file='/var/log/libvirt/qemu/web.serial' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <graphics type='vnc' port='5903' autoport='no' listen='127.0.0.1'/>
    <video>
      <model type='virtio'/>
    </video>
    <memballoon model='none'/>
  </devices>
</domain>
"
        )
    );
    assert!(out.notes.is_empty(), "{:?}", out.notes);
}

#[test]
fn what_libvirt_cannot_run_is_refused_naming_the_field() {
    let f = files(&["disk.img"]);
    let refused = |change: &dyn Fn(&mut VmConfig)| {
        let mut config = VmConfig::default();
        change(&mut config);
        export(&config, &f.root, &Chains::new(), Accelerator::Tcg)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refused(&|c| c.display = Display::Gtk),
        "display: libvirt has no GTK display"
    );
    assert_eq!(
        refused(&|c| c.binary = Program::new("/opt/qemu/bin/run-qemu")),
        "binary: `/opt/qemu/bin/run-qemu` is not named qemu-system-ARCH, so the guest's \
         architecture is unknown"
    );
    assert_eq!(
        refused(&|c| c.boot.append = Some("a\u{7}b".into())),
        "boot.append holds the control character U+0007"
    );
    assert_eq!(
        refused(&|c| c.storage = vec![Storage::Virtfs(VirtfsShare {
            name: "s".parse().unwrap(),
            path: path(&f.root),
            mount_tag: None,
            security_model: SecurityModel::MappedFile,
            readonly: false,
        })]),
        "storage `s`: libvirt has no mapped-file security model"
    );
    assert_eq!(
        refused(&|c| c.storage = vec![Storage::Qcow2(Qcow2Drive {
            name: "root".parse().unwrap(),
            file: None,
            size: None,
            interface: Interface::Virtio,
            backing_file: None,
            backing_format: None,
            readonly: false,
        })]),
        format!("storage `root`: {}/root.qcow2 does not exist yet", f.root)
    );
    assert_eq!(
        refused(&|c| {
            c.machine = "microvm".parse().unwrap();
            c.storage = vec![Storage::Raw(RawDrive {
                name: "d".parse().unwrap(),
                file: path(&f.root.join("disk.img")),
                size: None,
                interface: Interface::Ide,
                readonly: false,
            })];
        }),
        "storage `d`: maqet does not know where machine `microvm` puts IDE drives"
    );
    assert_eq!(
        refused(&|c| c.arguments = vec!["-nic".into(), "user".into()]),
        "arguments: `-nic user` makes QEMU add a device before libvirt's, taking a PCI slot \
         libvirt gave one of its own"
    );
    assert_eq!(
        refused(&|c| c.arguments = vec!["-drive".into(), "if=none,if=virtio,file=x".into()]),
        "arguments: `-drive if=none,if=virtio,file=x` makes QEMU add a device before libvirt's, \
         taking a PCI slot libvirt gave one of its own"
    );
    assert_eq!(
        refused(&|c| c.arguments = vec!["-hda".into(), "x.img".into()]),
        "arguments: `-hda` makes QEMU add a device before libvirt's, taking a place libvirt gave \
         one of its own"
    );
    assert_eq!(
        refused(&|c| c.boot.kernel = Some(path(&f.root.join("new\nline")))),
        "boot.kernel: the path holds the control character U+000A"
    );
    // The device's types come from QEMU; this test's lookup has none.
    assert_eq!(
        refused(&|c| c.arguments = vec!["-device".into(), "virtio-rng-pci".into()]),
        "no types for virtio-rng-pci"
    );
}

/// Each disk's target and drive address lines, trimmed.
fn disk_places(xml: &str) -> Vec<&str> {
    xml.lines()
        .filter(|l| l.contains("<target dev") || l.contains("<address type='drive'"))
        .map(str::trim)
        .collect()
}

#[test]
fn ide_on_q35_becomes_sata_and_on_pc_keeps_its_bus() {
    let f = files(&["a.img", "b.img", "c.img"]);
    let drive = |name: &str| {
        Storage::Raw(RawDrive {
            name: name.parse().unwrap(),
            file: path(&f.root.join(format!("{name}.img"))),
            size: None,
            interface: Interface::Ide,
            readonly: false,
        })
    };
    let mut config = VmConfig {
        storage: vec![drive("a"), drive("b"), drive("c")],
        ..VmConfig::default()
    };
    let out = export(&config, &f.root, &Chains::new(), Accelerator::Tcg).unwrap();
    let targets = disk_places(&out.text);
    assert_eq!(
        targets,
        [
            "<target dev='sda' bus='sata'/>",
            "<address type='drive' controller='0' bus='0' target='0' unit='0'/>",
            "<target dev='sdb' bus='sata'/>",
            "<address type='drive' controller='0' bus='0' target='0' unit='1'/>",
            "<target dev='sdc' bus='sata'/>",
            "<address type='drive' controller='0' bus='0' target='0' unit='2'/>",
        ]
    );
    assert_eq!(out.notes.len(), 3);
    config.machine = "pc".parse().unwrap();
    let out = export(&config, &f.root, &Chains::new(), Accelerator::Tcg).unwrap();
    let targets = disk_places(&out.text);
    assert_eq!(
        targets,
        [
            "<target dev='hda' bus='ide'/>",
            "<address type='drive' controller='0' bus='0' target='0' unit='0'/>",
            "<target dev='hdb' bus='ide'/>",
            "<address type='drive' controller='0' bus='0' target='0' unit='1'/>",
            "<target dev='hdc' bus='ide'/>",
            "<address type='drive' controller='0' bus='1' target='0' unit='0'/>",
        ]
    );
    assert!(out.notes.is_empty());
}

#[test]
fn disk_names_count_on_past_z() {
    let mut n = 0;
    let names: Vec<String> = (0..28).map(|_| letters("vd", &mut n)).collect();
    assert_eq!(names[0], "vda");
    assert_eq!(names[25], "vdz");
    assert_eq!(names[26], "vdaa");
    assert_eq!(names[27], "vdab");
}

#[test]
fn without_a_kernel_a_cdrom_boots_after_the_disks() {
    let f = files(&["disk.img", "install.iso", "bios.bin"]);
    let mut config = VmConfig {
        storage: vec![
            Storage::Raw(RawDrive {
                name: "disk".parse().unwrap(),
                file: path(&f.root.join("disk.img")),
                size: None,
                interface: Interface::Virtio,
                readonly: false,
            }),
            Storage::Cdrom(CdromDrive {
                name: "install".parse().unwrap(),
                file: path(&f.root.join("install.iso")),
                interface: Interface::Sata,
            }),
        ],
        ..VmConfig::default()
    };
    config.boot.firmware = Some(path(&f.root.join("bios.bin")));
    let out = export(&config, &f.root, &Chains::new(), Accelerator::Tcg).unwrap();
    let os: Vec<&str> = out
        .text
        .lines()
        .skip_while(|l| !l.contains("<os>"))
        .take_while(|l| !l.contains("</os>"))
        .map(str::trim)
        .collect();
    assert_eq!(
        os,
        [
            "<os>",
            "<type arch='x86_64' machine='q35'>hvm</type>",
            &format!("<loader type='rom'>{}/bios.bin</loader>", f.root),
            "<boot dev='hd'/>",
            "<boot dev='cdrom'/>",
        ]
    );
    // A kernel boots itself: no boot order.
    config.boot.kernel = Some(path(&f.root.join("disk.img")));
    let out = export(&config, &f.root, &Chains::new(), Accelerator::Tcg).unwrap();
    assert!(!out.text.contains("<boot "), "{}", out.text);
}
