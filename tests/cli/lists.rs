//! The lists maqet checks, held against lists written here independently
//! from QEMU 7.2's own documentation — not copied from maqet's code, so a
//! name missing from maqet's list fails a test instead of being skipped by
//! it.
//!
//! - Command-line options (and `-object`/`-chardev`/`-netdev`/`-blockdev`/
//!   `-device` kinds) that open a host file, a socket or a monitor, or run a
//!   program, each tried in a config's `arguments` through the real `add`.
//!   Every option of the installed QEMU's `-help` must be classified here.
//! - QMP commands, each sent through the raw form `maqet qmp VM COMMAND` to
//!   one running VM; and every command the running QEMU lists
//!   (`query-commands`) must be classified in a table here, so a command a
//!   new QEMU adds fails the test until someone has read what it does.
//! - Device drivers and properties, each given to `maqet qmp device-add`;
//!   every string property of every device type the running QEMU has must
//!   be classified here.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::guest::{bios_config, have_qemu};
use crate::harness::Test;

// ------------------------------------------------------------- options

/// What maqet must do with an option in `arguments`.
enum Want {
    /// Refused at `add`, trusted or not (exit 3), with this message after
    /// `FILE: `: maqet owns it, or it opens a monitor.
    Refused(&'static str),
    /// Accepted only with `--trust` (exit 4 without): it acts on the host
    /// with the user's rights, which the person grants on the command line;
    /// QEMU then runs confined by Landlock, so a file or socket the VM was
    /// not given fails to open (`confinement::` tests). The text says what
    /// it opens.
    Trusted(&'static str),
}

use Want::{Refused, Trusted};

/// One option: the words in `arguments`, what maqet must do, and where the
/// entry comes from in QEMU 7.2's documentation: `-help` is
/// `qemu-system-x86_64 -help`, `-object help` etc. are those listings, and
/// `qemu-options.hx` is QEMU's option table (for options `-help` hides).
struct Opt {
    words: &'static [&'static str],
    want: Want,
    from: &'static str,
}

const fn opt(words: &'static [&'static str], want: Want, from: &'static str) -> Opt {
    Opt { words, want, from }
}

const OWNED: &str = "is set by maqet and cannot be passed in `arguments`";
const MONITOR: &str =
    "opens a QEMU monitor, which is set by maqet and cannot be passed in `arguments`";
const QTEST: &str = "opens QEMU's qtest channel, a monitor by another name, which is set by maqet \
                     and cannot be passed in `arguments`";

/// Every option of QEMU 7.2 (x86_64) that opens a host file, a socket or a
/// monitor, or runs a program, and the `-object`, `-chardev`, `-netdev`,
/// `-blockdev` and `-device` kinds that do.
#[rustfmt::skip]
const OPTIONS: &[Opt] = &[
    // Monitors and control channels: a second one would let the guest's
    // owner bypass maqet, and maqet's own is set by maqet.
    opt(&["-qmp", "unix:/tmp/q,server=on"], Refused(OWNED), "-help: QMP monitor on a chardev"),
    opt(&["-qmp-pretty", "unix:/tmp/q,server=on"], Refused(OWNED), "-help: QMP monitor, pretty"),
    opt(&["-monitor", "stdio"], Refused(OWNED), "-help: HMP monitor on a chardev"),
    opt(&["-mon", "chardev=c,mode=control"], Refused(OWNED), "-help: a monitor on a chardev"),
    opt(&["-qtest", "unix:/tmp/t,server=on"], Refused(OWNED), "qemu-options.hx (hidden): qtest protocol, reads and writes guest memory"),
    opt(&["-object", "qtest,id=t,chardev=c"], Refused(QTEST), "-object help: qtest"),
    opt(&["-object", "qom-type=qtest,id=t,chardev=c"], Refused(QTEST), "-object help: qtest, type given by key"),
    opt(&["-object", r#"{"qom-type": "qtest", "id": "t", "chardev": "c"}"#], Refused(QTEST), "-object help: qtest, as JSON"),
    opt(&["-parallel", "mon:stdio"], Refused(MONITOR), "-help: -parallel takes a chardev; `mon:` multiplexes an HMP monitor onto it"),
    opt(&["-debugcon", "mon:unix:/tmp/d,server=on"], Refused(MONITOR), "-help: -debugcon takes a chardev; `mon:` as above"),
    opt(&["-gdb", "mon:stdio"], Refused(MONITOR), "-help: -gdb takes a chardev; `mon:` as above"),
    opt(&["-serial", "file:/tmp/s"], Refused(OWNED), "-help: the first serial port is maqet's console"),
    opt(&["-nographic"], Refused(OWNED), "-help: puts the serial port and a monitor on stdio"),
    // The process: maqet detaches QEMU, owns its pidfile and its rights.
    opt(&["-daemonize"], Refused(OWNED), "-help"),
    opt(&["-pidfile", "/tmp/p"], Refused(OWNED), "-help: writes a host file"),
    opt(&["-runas", "nobody"], Refused(OWNED), "-help"),
    opt(&["-chroot", "/tmp"], Refused(OWNED), "-help"),
    opt(&["-incoming", "exec:cat /tmp/m"], Refused(OWNED), "-help: exec: runs a program, tcp:/unix: listen"),
    opt(&["-incoming", "tcp:127.0.0.1:4444"], Refused(OWNED), "-help"),
    // Files by name.
    opt(&["-add-fd", "fd=3,set=1"], Trusted("an inherited descriptor"), "-help"),
    opt(&["-mem-path", "/dev/hugepages"], Trusted("guest RAM from a host file"), "-help"),
    opt(&["-audiodev", "wav,id=a,path=/tmp/a.wav"], Trusted("writes a WAV file"), "-help: -audiodev wav"),
    opt(&["-audio", "driver=wav,model=ac97,path=/tmp/a.wav"], Trusted("an audio backend: a WAV file, the host's sound server"), "-help: -audio"),
    opt(&["-global", "e1000.romfile=/tmp/r.rom"], Trusted("any device property, file names included"), "-help: -global"),
    opt(&["-set", "device.n.romfile=/tmp/r.rom"], Trusted("any option's property, file names included"), "-help: -set"),
    opt(&["-fda", "/tmp/f.img"], Trusted("a disk image"), "-help"),
    opt(&["-fdb", "/tmp/f.img"], Trusted("a disk image"), "-help"),
    opt(&["-hda", "/tmp/h.img"], Trusted("a disk image"), "-help"),
    opt(&["-hdb", "/tmp/h.img"], Trusted("a disk image"), "-help"),
    opt(&["-hdc", "/tmp/h.img"], Trusted("a disk image"), "-help"),
    opt(&["-hdd", "/tmp/h.img"], Trusted("a disk image"), "-help"),
    opt(&["-cdrom", "/tmp/c.iso"], Trusted("a disk image"), "-help"),
    opt(&["-drive", "file=/tmp/d.img,if=virtio"], Trusted("a disk image"), "-help"),
    opt(&["-mtdblock", "/tmp/m.img"], Trusted("a flash image"), "-help"),
    opt(&["-sd", "/tmp/s.img"], Trusted("an SD card image"), "-help"),
    opt(&["-pflash", "/tmp/p.fd"], Trusted("a flash image"), "-help"),
    opt(&["-snapshot"], Trusted("temporary overlay files in $TMPDIR"), "-help"),
    opt(&["-bios", "/tmp/bios.bin"], Trusted("firmware"), "-help"),
    opt(&["-L", "/tmp/fw"], Trusted("a firmware directory"), "-help"),
    opt(&["-kernel", "/tmp/vmlinuz"], Trusted("a kernel"), "-help"),
    opt(&["-initrd", "/tmp/initrd"], Trusted("an initrd"), "-help"),
    opt(&["-dtb", "/tmp/x.dtb"], Trusted("a device tree"), "-help"),
    opt(&["-option-rom", "/tmp/rom.bin"], Trusted("an option ROM"), "-help"),
    opt(&["-acpitable", "file=/tmp/t.aml"], Trusted("ACPI tables"), "-help"),
    opt(&["-smbios", "file=/tmp/s.bin"], Trusted("SMBIOS entries"), "-help"),
    opt(&["-fw_cfg", "name=opt/x,file=/tmp/x"], Trusted("a blob for the guest"), "-help"),
    opt(&["-boot", "menu=on,splash=/tmp/s.jpg"], Trusted("a splash picture"), "-help"),
    opt(&["-machine", "q35,dumpdtb=/tmp/x.dtb"], Trusted("writes the device tree to a host file"), "-help: -machine dumpdtb"),
    opt(&["-fsdev", "local,id=f,path=/tmp,security_model=none"], Trusted("a host directory"), "-help"),
    opt(&["-virtfs", "local,path=/tmp,mount_tag=t,security_model=none"], Trusted("a host directory"), "-help"),
    opt(&["-readconfig", "/tmp/q.cfg"], Trusted("a config file of options"), "-help"),
    opt(&["-dump-vmstate", "/tmp/v.json"], Trusted("writes a host file"), "-help"),
    opt(&["-D", "/tmp/q.log"], Trusted("writes a log file"), "-help"),
    opt(&["-trace", "events=/tmp/ev,file=/tmp/tr"], Trusted("reads and writes files"), "-help"),
    opt(&["-qtest-log", "/tmp/q.log"], Trusted("writes a log file"), "qemu-options.hx (hidden)"),
    opt(&["-icount", "shift=auto,rr=record,rrfile=/tmp/rr"], Trusted("writes a replay file"), "-help"),
    opt(&["-plugin", "/tmp/p.so"], Trusted("loads a shared library: runs its code"), "-help"),
    // Sockets and displays.
    opt(&["-vnc", "unix:/tmp/v"], Trusted("listens on a socket"), "-help"),
    opt(&["-spice", "unix=on,addr=/tmp/s"], Trusted("listens on a socket"), "-help"),
    opt(&["-display", "spice-app"], Trusted("runs a viewer program"), "-help: -display"),
    opt(&["-gdb", "tcp::1234"], Trusted("listens on a socket (a debug stub)"), "-help"),
    opt(&["-s"], Trusted("-gdb tcp::1234"), "-help"),
    opt(&["-parallel", "file:/tmp/p"], Trusted("a chardev: file, socket, pty"), "-help"),
    opt(&["-debugcon", "file:/tmp/d"], Trusted("a chardev"), "-help"),
    opt(&["-tpmdev", "passthrough,id=t,path=/dev/tpm0"], Trusted("a host TPM"), "-help"),
    opt(&["-tpmdev", "emulator,id=t,chardev=c"], Trusted("a socket to swtpm"), "-help"),
    opt(&["-usbdevice", "braille"], Trusted("the host's braille display"), "-help"),
    // -chardev kinds (`-chardev help`) that open something on the host.
    opt(&["-chardev", "file,id=c,path=/tmp/c"], Trusted("writes a file"), "-chardev help: file"),
    opt(&["-chardev", "pipe,id=c,path=/tmp/c"], Trusted("opens FIFOs"), "-chardev help: pipe"),
    opt(&["-chardev", "socket,id=c,path=/tmp/c,server=on"], Trusted("listens"), "-chardev help: socket"),
    opt(&["-chardev", "socket,id=c,host=127.0.0.1,port=4444,server=on"], Trusted("listens on TCP"), "-chardev help: socket"),
    opt(&["-chardev", "udp,id=c,host=127.0.0.1,port=5555"], Trusted("a socket"), "-chardev help: udp"),
    opt(&["-chardev", "serial,id=c,path=/dev/ttyS0"], Trusted("a host tty"), "-chardev help: serial"),
    opt(&["-chardev", "parallel,id=c,path=/dev/parport0"], Trusted("a host port"), "-chardev help: parallel"),
    opt(&["-chardev", "pty,id=c"], Trusted("a host pty"), "-chardev help: pty"),
    opt(&["-chardev", "stdio,id=c,mux=on"], Trusted("QEMU's stdio (qemu.log)"), "-chardev help: stdio"),
    opt(&["-chardev", "file,id=c,path=/tmp/c,logfile=/tmp/l"], Trusted("every chardev's logfile"), "-chardev help"),
    // -netdev kinds (`-netdev help`).
    opt(&["-netdev", "tap,id=n,script=/tmp/up,downscript=/tmp/down"], Trusted("runs scripts"), "-netdev help: tap"),
    opt(&["-netdev", "bridge,id=n,br=br0,helper=/tmp/h"], Trusted("runs a helper"), "-netdev help: bridge"),
    opt(&["-netdev", "user,id=n,smb=/tmp"], Trusted("runs smbd"), "-netdev help: user"),
    opt(&["-netdev", "user,id=n,guestfwd=tcp:10.0.2.100:1-cmd:/tmp/x"], Trusted("runs a program"), "-netdev help: user"),
    opt(&["-netdev", "user,id=n,tftp=/tmp"], Trusted("serves a directory"), "-netdev help: user"),
    opt(&["-netdev", "user,id=n,hostfwd=tcp::2222-:22"], Trusted("listens"), "-netdev help: user"),
    opt(&["-netdev", "socket,id=n,listen=:1234"], Trusted("listens"), "-netdev help: socket"),
    opt(&["-netdev", "stream,id=n,server=on,addr.type=unix,addr.path=/tmp/s",], Trusted("listens"), "-netdev help: stream"),
    opt(&["-netdev", "dgram,id=n,local.type=unix,local.path=/tmp/d"], Trusted("a socket"), "-netdev help: dgram"),
    opt(&["-netdev", "l2tpv3,id=n,src=127.0.0.1,dst=127.0.0.1"], Trusted("a raw socket"), "-netdev help: l2tpv3"),
    opt(&["-netdev", "vde,id=n,sock=/tmp/v"], Trusted("a socket"), "-netdev help: vde"),
    opt(&["-netdev", "vhost-user,id=n,chardev=c"], Trusted("a socket"), "-netdev help: vhost-user"),
    opt(&["-netdev", "vhost-vdpa,id=n,vhostdev=/dev/vhost-vdpa-0"], Trusted("a host device"), "-netdev help: vhost-vdpa"),
    opt(&["-nic", "tap,script=/tmp/up"], Trusted("runs a script"), "-help"),
    opt(&["-net", "tap,script=/tmp/up"], Trusted("runs a script"), "-help"),
    // -blockdev drivers (BlockdevDriver in qapi/block-core.json).
    opt(&["-blockdev", "driver=file,node-name=f,filename=/tmp/f"], Trusted("a host file"), "qapi/block-core.json: file"),
    opt(&["-blockdev", "driver=host_device,node-name=f,filename=/dev/sda",], Trusted("a host device"), "qapi/block-core.json: host_device"),
    opt(&["-blockdev", "driver=host_cdrom,node-name=f,filename=/dev/sr0",], Trusted("a host device"), "qapi/block-core.json: host_cdrom"),
    opt(&["-blockdev", "driver=nbd,node-name=f,server.type=unix,server.path=/tmp/n",], Trusted("a socket"), "qapi/block-core.json: nbd"),
    opt(&["-blockdev", "driver=ssh,node-name=f,server.host=h,path=/x"], Trusted("a connection"), "qapi/block-core.json: ssh"),
    opt(&["-blockdev", "driver=http,node-name=f,url=http://127.0.0.1/x",], Trusted("a connection"), "qapi/block-core.json: http"),
    opt(&["-blockdev", "driver=vvfat,node-name=f,dir=/tmp"], Trusted("a host directory"), "qapi/block-core.json: vvfat"),
    opt(&["-blockdev", "driver=blkdebug,node-name=f,config=/tmp/c,image.driver=null-co",], Trusted("a config file"), "qapi/block-core.json: blkdebug"),
    // -object kinds (`-object help`).
    opt(&["-object", "memory-backend-file,id=m,size=1M,mem-path=/tmp/m",], Trusted("guest RAM in a host file"), "-object help: memory-backend-file"),
    opt(&["-object", "secret,id=s,file=/tmp/s"], Trusted("reads a file"), "-object help: secret"),
    opt(&["-object", "tls-creds-x509,id=t,dir=/tmp"], Trusted("reads a directory"), "-object help: tls-creds-x509"),
    opt(&["-object", "tls-creds-psk,id=t,dir=/tmp"], Trusted("reads a directory"), "-object help: tls-creds-psk"),
    opt(&["-object", "rng-random,id=r,filename=/dev/urandom"], Trusted("a host device"), "-object help: rng-random"),
    opt(&["-object", "rng-egd,id=r,chardev=c"], Trusted("a chardev"), "-object help: rng-egd"),
    opt(&["-object", "input-linux,id=i,evdev=/dev/input/event0"], Trusted("a host input device"), "-object help: input-linux"),
    opt(&["-object", "authz-list-file,id=a,filename=/tmp/a"], Trusted("reads a file"), "-object help: authz-list-file"),
    opt(&["-object", "filter-dump,id=f,netdev=n,file=/tmp/d"], Trusted("writes a file"), "-object help: filter-dump"),
    opt(&["-object", "filter-mirror,id=f,netdev=n,outdev=c"], Trusted("a chardev"), "-object help: filter-mirror"),
    opt(&["-object", "pr-manager-helper,id=p,path=/tmp/pr"], Trusted("a socket"), "-object help: pr-manager-helper"),
    opt(&["-object", "dbus-vmstate,id=d,addr=unix:path=/tmp/b"], Trusted("a D-Bus socket"), "-object help: dbus-vmstate"),
    opt(&["-object", "cryptodev-vhost-user,id=c,chardev=c"], Trusted("a socket"), "-object help: cryptodev-vhost-user"),
    opt(&["-object", "can-host-socketcan,id=c,if=can0,canbus=b"], Trusted("a host CAN socket"), "-object help: can-host-socketcan"),
    opt(&["-object", "input-barrier,id=b,name=vm,server=127.0.0.1"], Trusted("a connection to a Barrier server"), "-object help: input-barrier"),
    opt(&["-object", "tls-creds-anon,id=t,dir=/tmp"], Trusted("reads a directory"), "-object help: tls-creds-anon"),
    opt(&["-object", "sev-guest,id=s,cbitpos=47,reduced-phys-bits=1,sev-device=/dev/sev"], Trusted("a host device"), "-object help: sev-guest"),
    opt(&["-object", "filter-redirector,id=f,netdev=n,queue=tx,outdev=c"], Trusted("a chardev"), "-object help: filter-redirector"),
    opt(&["-object", "colo-compare,id=c,primary_in=a,secondary_in=b,outdev=o,iothread=t",], Trusted("chardevs"), "-object help: colo-compare"),
    // -device kinds (`-device help`) that open host things themselves.
    opt(&["-device", "loader,file=/tmp/x,addr=0x1000"], Trusted("loads a host file into the guest"), "-device help: loader"),
    opt(&["-device", "guest-loader,kernel=/tmp/k,addr=0x1000"], Trusted("loads a host file"), "-device help: guest-loader"),
    opt(&["-device", "e1000,romfile=/tmp/r.rom"], Trusted("every PCI device's romfile"), "-device e1000,help: romfile"),
    opt(&["-device", "vfio-pci,host=0000:00:01.0"], Trusted("a host PCI device"), "-device help: vfio-pci"),
    opt(&["-device", "usb-host,hostbus=1,hostaddr=2"], Trusted("a host USB device"), "-device help: usb-host"),
    opt(&["-device", "u2f-passthru,hidraw=/dev/hidraw0"], Trusted("a host device"), "-device help: u2f-passthru"),
    opt(&["-device", "usb-mtp,rootdir=/tmp"], Trusted("a host directory"), "-device help: usb-mtp"),
    opt(&["-device", "vhost-vsock-pci,guest-cid=3"], Trusted("/dev/vhost-vsock"), "-device help: vhost-vsock-pci"),
    opt(&["-device", "vhost-user-fs-pci,chardev=c,tag=t"], Trusted("a socket"), "-device help: vhost-user-*"),
    opt(&["-device", "vhost-scsi-pci,wwpn=naa.1"], Trusted("/dev/vhost-scsi"), "-device help: vhost-scsi-pci"),
    opt(&["-device", "pvrdma,ibdev=mlx0,netdev=n"], Trusted("a host RDMA device"), "-device pvrdma,help: ibdev"),
    opt(&["-device", "ipmi-bmc-sim,id=b,sdrfile=/tmp/s"], Trusted("reads a file"), "-device ipmi-bmc-sim,help: sdrfile"),
    opt(&["-device", "ccid-card-emulated,backend=certificates,db=/tmp/db"], Trusted("an NSS database"), "-device ccid-card-emulated,help: db"),
    opt(&["-device", "ivshmem-doorbell,chardev=c"], Trusted("a socket"), "-device help: ivshmem-doorbell"),
];

/// Options of `qemu-system-x86_64 -help` (7.2) that open nothing on the
/// host themselves: machine and CPU shape, guest-visible settings, QEMU's
/// own behaviour, and logs that go to QEMU's stderr (maqet's `qemu.log`).
/// Like every raw argument they need `--trust`.
#[rustfmt::skip]
const PLAIN: &[&str] = &[
    "h", "version", "cpu", "accel", "smp", "numa", "m", "mem-prealloc", "k", "audio-help", "name",
    "uuid", "usb", "portrait", "rotate", "vga", "full-screen", "win2k-hack", "no-fd-bootchk",
    "no-acpi", "no-hpet", "append", "compat", "singlestep", "preconfig", "S", "overcommit", "d",
    "dfilter", "seed", "enable-kvm", "xen-domid", "xen-attach", "xen-domid-restrict", "no-reboot",
    "no-shutdown", "action", "loadvm", "rtc", "watchdog-action", "echr", "only-migratable",
    "nodefaults", "sandbox", "no-user-config", "async-teardown", "msg", "enable-sync-profile",
    "iscsi",
];

/// Every option the installed QEMU's `-help` lists is in `OPTIONS` or
/// `PLAIN`, so an option a new QEMU adds fails this test until someone has
/// read what it opens.
#[test]
fn every_option_qemu_lists_is_classified() {
    let test = "every_option_qemu_lists_is_classified";
    if !have_qemu(test) {
        return;
    }
    let help = std::process::Command::new("qemu-system-x86_64")
        .arg("-help")
        .output()
        .expect("run qemu-system-x86_64 -help");
    assert!(help.status.success(), "{help:?}");
    let help = String::from_utf8(help.stdout).expect("UTF-8 help");
    let known: BTreeSet<&str> = OPTIONS
        .iter()
        .map(|o| o.words[0].trim_start_matches('-'))
        .chain(PLAIN.iter().copied())
        .collect();
    let listed: BTreeSet<&str> = help
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().next())
        .flat_map(|w| w.split('/'))
        .map(|w| w.trim_start_matches('-'))
        .collect();
    assert!(listed.len() > 80, "{} options in -help", listed.len());
    let unclassified: Vec<&&str> = listed.iter().filter(|o| !known.contains(*o)).collect();
    assert!(
        unclassified.is_empty(),
        "QEMU options no table here classifies; read what each opens and put it in \
         OPTIONS or PLAIN: {unclassified:?}"
    );
}

/// `add` of a config with `words` as its arguments, with and without
/// `--trust`, in both of QEMU's spellings (`-opt`, `--opt`); the failures.
fn check_option(t: &mut Test, n: usize, o: &Opt) -> Vec<String> {
    let mut failures = Vec::new();
    for dashes in ["-", "--"] {
        let words: Vec<String> = o
            .words
            .iter()
            .map(|w| match w.strip_prefix('-') {
                Some(rest) if dashes == "--" => format!("--{rest}"),
                _ => (*w).to_owned(),
            })
            .collect();
        let file = format!("opt{n}{}.ron", dashes.len());
        let name = format!("o{n}-{}", dashes.len());
        let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
        t.file(
            &file,
            &format!("(name: \"{name}\", arguments: [{}])\n", quoted.join(", ")),
        );
        for trust in [false, true] {
            let mut args = vec!["--json", "add", &file];
            if trust {
                args.push("--trust");
            }
            let out = t.command(args.clone()).output().expect("run maqet");
            let label = format!(
                "{words:?} ({}){}",
                o.from,
                if trust { " --trust" } else { "" }
            );
            let error: Value = serde_json::from_slice(&out.stderr).unwrap_or(Value::Null);
            let (code, message) = (out.status.code(), error["error"]["message"].as_str());
            match (&o.want, trust) {
                (Refused(says), _) => {
                    let word = match says {
                        s if *s == OWNED => words[0].clone(),
                        _ => words.join(" "),
                    };
                    let want = format!("{file}: `{word}` {says}");
                    if code != Some(3) || message != Some(want.as_str()) {
                        failures.push(format!(
                            "{label}: exit {code:?}, {message:?}; want 3, {want:?}"
                        ));
                    }
                }
                (Trusted(_), false) => {
                    let want = format!(
                        "VM `{name}` has raw QEMU `arguments`: these act on the host with your rights, and a config file alone cannot grant that"
                    );
                    if code != Some(4) || message != Some(want.as_str()) {
                        failures.push(format!(
                            "{label}: exit {code:?}, {message:?}; want 4, {want:?}"
                        ));
                    }
                }
                (Trusted(what), true) => {
                    if code != Some(0) {
                        failures.push(format!(
                            "{label}, which opens {what}: exit {code:?}, want 0 (trusted): {}",
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                }
            }
        }
    }
    failures
}

#[test]
fn every_option_that_opens_a_host_file_socket_or_monitor_is_owned_or_needs_trust() {
    let mut t = Test::new();
    let failures: Vec<String> = OPTIONS
        .iter()
        .enumerate()
        .flat_map(|(n, o)| check_option(&mut t, n, o))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Exactly the trusted ones were stored, once per spelling.
    let trusted = OPTIONS
        .iter()
        .filter(|o| matches!(o.want, Trusted(_)))
        .count();
    assert_eq!(t.list().len(), 2 * trusted);
}

/// The same words with the monitor prefix gone are an ordinary chardev:
/// the `mon:` check is about the prefix, not the option.
#[test]
fn chardev_options_without_mon_are_trusted_not_refused() {
    let mut t = Test::new();
    for (n, words) in [
        ["-parallel", "stdio"],
        ["-debugcon", "file:/tmp/mon:x"],
        ["-gdb", "unix:/tmp/g,server=on"],
    ]
    .iter()
    .enumerate()
    {
        let file = format!("c{n}.ron");
        t.file(
            &file,
            &format!(
                "(name: \"c{n}\", arguments: [{:?}, {:?}])\n",
                words[0], words[1]
            ),
        )
        .args(["add", &file, "--trust"])
        .stdout_any()
        .run();
    }
}

// ------------------------------------------------------------- QMP

/// QMP commands whose name says they only report (`query-*`, `x-query-*`,
/// QAPI's naming for commands that return state and change nothing; each
/// read in qapi/*.json of 7.2). The raw form sends them.
const QUERIES: &[&str] = &[
    "query-acpi-ospm-status",
    "query-balloon",
    "query-block",
    "query-block-exports",
    "query-block-jobs",
    "query-blockstats",
    "query-chardev",
    "query-chardev-backends",
    "query-colo-status",
    "query-command-line-options",
    "query-commands",
    "query-cpu-definitions",
    "query-cpu-model-expansion",
    "query-cpus-fast",
    "query-current-machine",
    "query-dirty-rate",
    "query-display-options",
    "query-dump",
    "query-dump-guest-memory-capability",
    "query-fdsets",
    "query-hotpluggable-cpus",
    "query-iothreads",
    "query-jobs",
    "query-kvm",
    "query-machines",
    "query-memdev",
    "query-memory-devices",
    "query-memory-size-summary",
    "query-mice",
    "query-migrate",
    "query-migrate-capabilities",
    "query-migrate-parameters",
    "query-name",
    "query-named-block-nodes",
    "query-pci",
    "query-pr-managers",
    "query-qmp-schema",
    "query-replay",
    "query-rocker",
    "query-rocker-of-dpa-flows",
    "query-rocker-of-dpa-groups",
    "query-rocker-ports",
    "query-rx-filter",
    "query-sev",
    "query-sev-attestation-report",
    "query-sev-capabilities",
    "query-sev-launch-measure",
    "query-sgx",
    "query-sgx-capabilities",
    "query-spice",
    "query-stats",
    "query-stats-schemas",
    "query-status",
    "query-target",
    "query-tpm",
    "query-tpm-models",
    "query-tpm-types",
    "query-uuid",
    "query-vcpu-dirty-limit",
    "query-version",
    "query-vm-generation-id",
    "query-vnc",
    "query-vnc-servers",
    "query-xen-replication-status",
    "query-yank",
    "x-query-irq",
    "x-query-jit",
    "x-query-numa",
    "x-query-opcount",
    "x-query-profile",
    "x-query-ramblock",
    "x-query-rdma",
    "x-query-roms",
    "x-query-usb",
    "x-query-virtio",
    "x-query-virtio-queue-element",
    "x-query-virtio-queue-status",
    "x-query-virtio-status",
    "x-query-virtio-vhost-queue-status",
];

/// Commands the raw form sends although they change something: none opens
/// a host file or socket, listens or runs a program. Name, then why, from
/// the command's entry in QEMU 7.2's qapi/*.json.
#[rustfmt::skip]
const SAFE: &[(&str, &str)] = &[
    ("announce-self", "net.json: the guest's NICs send RARP packets"),
    ("balloon", "machine.json: a target for the guest's balloon driver"),
    ("block_set_io_throttle", "block.json: I/O limits on an attached disk"),
    ("chardev-send-break", "char.json: a break on an existing chardev"),
    ("cont", "misc.json: resume the vCPUs"),
    ("device-list-properties", "qdev.json: describes a device type"),
    ("eject", "block.json: removes a medium from a guest drive; opens nothing"),
    ("expire_password", "ui.json: VNC/SPICE password expiry"),
    ("inject-nmi", "misc.json: an NMI to the guest"),
    ("input-send-event", "ui.json: guest input"),
    ("qom-get", "qom.json: reads one property"),
    ("qom-list", "qom.json: lists an object's properties"),
    ("qom-list-types", "qom.json: lists type names"),
    ("ringbuf-read", "char.json: an in-memory ring buffer"),
    ("ringbuf-write", "char.json: an in-memory ring buffer"),
    ("rtc-reset-reinjection", "misc-target.json: the guest's RTC"),
    ("send-key", "ui.json: guest input"),
    ("set-action", "run-state.json: reboot/shutdown/panic/watchdog behaviour"),
    ("set_link", "net.json: a guest NIC's link state"),
    ("set_password", "ui.json: VNC/SPICE password"),
    ("stop", "misc.json: pause the vCPUs"),
    ("system_powerdown", "machine.json: the ACPI power button"),
    ("system_reset", "machine.json: reset the guest"),
    ("system_wakeup", "machine.json: wake a suspended guest"),
    ("watchdog-set-action", "run-state.json: the watchdog's action"),
];

/// Why a command is refused without `--allow-dangerous`.
#[derive(Clone, Copy)]
enum Deny {
    /// It opens or writes a host file, opens a socket or a monitor, or
    /// runs a program (the independent list of dangerous commands).
    Host(&'static str),
    /// Nothing on the host, but it takes apart what maqet set up, or acts
    /// on objects only the host-reaching commands create: refused until
    /// someone decides otherwise.
    Other(&'static str),
}

use Deny::{Host, Other};

/// Commands the raw form refuses, each with why, from its entry in QEMU
/// 7.2's qapi/*.json (and, for the first few, commands other versions or
/// targets have).
#[rustfmt::skip]
const DENIED: &[(&str, Deny)] = &[
    // Not in QEMU 7.2 x86_64, refused all the same.
    ("change", Host("ui.json before 6.0: opened a host file as a new medium")),
    ("dump-skeys", Host("misc-target.json (s390x): writes a host file")),
    ("x-blockdev-create", Host("block-core.json before 4.0: creates image files")),
    // QEMU 7.2.
    ("add-fd", Host("misc.json: puts a passed descriptor in an fd set QEMU opens /dev/fdset/N from")),
    ("add_client", Host("misc.json: hands a passed socket to VNC/SPICE/D-Bus")),
    ("block-commit", Host("block-core.json: writes into backing files, named by file name")),
    ("block-dirty-bitmap-add", Other("block-core.json: persistent bitmaps are written into maqet's images")),
    ("block-dirty-bitmap-clear", Other("block-core.json: as block-dirty-bitmap-add")),
    ("block-dirty-bitmap-disable", Other("block-core.json: as block-dirty-bitmap-add")),
    ("block-dirty-bitmap-enable", Other("block-core.json: as block-dirty-bitmap-add")),
    ("block-dirty-bitmap-merge", Other("block-core.json: as block-dirty-bitmap-add")),
    ("block-dirty-bitmap-remove", Other("block-core.json: as block-dirty-bitmap-add")),
    ("block-export-add", Host("block-export.json: NBD, FUSE (mounts a host path) or vhost-user export")),
    ("block-export-del", Other("block-export.json: ends an export")),
    ("block-job-cancel", Other("block-core.json: jobs come from host-reaching commands")),
    ("block-job-complete", Other("block-core.json: a mirror's pivot onto its target file")),
    ("block-job-dismiss", Other("block-core.json: as block-job-cancel")),
    ("block-job-finalize", Other("block-core.json: as block-job-cancel")),
    ("block-job-pause", Other("block-core.json: as block-job-cancel")),
    ("block-job-resume", Other("block-core.json: as block-job-cancel")),
    ("block-job-set-speed", Other("block-core.json: as block-job-cancel")),
    ("block-latency-histogram-set", Other("block.json: statistics; not read for the list")),
    ("block-set-write-threshold", Other("block-core.json: an event threshold; not read for the list")),
    ("block-stream", Host("block-core.json: rewrites an image and its backing-file name")),
    ("block_resize", Host("block-core.json: grows or truncates an image file on the host")),
    ("blockdev-add", Host("block-core.json: opens any host file, device, socket or URL")),
    ("blockdev-backup", Host("block-core.json: writes a disk into another node")),
    ("blockdev-change-medium", Host("block.json: opens a host file by name")),
    ("blockdev-close-tray", Other("block.json: media handling, maqet's drives")),
    ("blockdev-create", Host("block-core.json: creates image files on the host")),
    ("blockdev-del", Other("block-core.json: removes maqet's disks' nodes")),
    ("blockdev-insert-medium", Other("block.json: puts a node into a drive")),
    ("blockdev-mirror", Host("block-core.json: copies a disk into another node")),
    ("blockdev-open-tray", Other("block.json: media handling, maqet's drives")),
    ("blockdev-remove-medium", Other("block.json: media handling, maqet's drives")),
    ("blockdev-reopen", Host("block-core.json: reopens nodes with new options, read-only ones read-write")),
    ("blockdev-snapshot", Host("block-core.json: puts an overlay onto a disk")),
    ("blockdev-snapshot-delete-internal-sync", Host("block-core.json: writes an image")),
    ("blockdev-snapshot-internal-sync", Host("block-core.json: writes an image")),
    ("blockdev-snapshot-sync", Host("block-core.json: creates a host file by name")),
    ("calc-dirty-rate", Other("migration.json: a measurement; not read for the list")),
    ("cancel-vcpu-dirty-limit", Other("migration.json: dirty-page limits; not read for the list")),
    ("change-backing-file", Host("block-core.json: rewrites an image's backing-file name")),
    ("change-vnc-password", Other("ui.json: VNC password; not read for the list")),
    ("chardev-add", Host("char.json: file, pipe, socket, pty, serial, parallel backends")),
    ("chardev-change", Host("char.json: replaces a chardev, maqet's console too, with a file or socket")),
    ("chardev-remove", Other("char.json: removes maqet's chardevs")),
    ("client_migrate_info", Host("misc.json: tells SPICE clients to connect to another host")),
    ("closefd", Other("misc.json: closes a descriptor from getfd")),
    ("device_add", Host("qdev.json: romfile, host devices (vfio, usb-host), host-file loaders")),
    ("device_del", Other("qdev.json: unplugs maqet's disks and NICs too")),
    ("display-reload", Host("ui.json: rereads VNC TLS credentials from host files")),
    ("display-update", Host("ui.json: moves VNC to new listening addresses")),
    ("drive-backup", Host("block-core.json: creates a host file by name")),
    ("drive-mirror", Host("block-core.json: creates a host file by name")),
    ("dump-guest-memory", Host("dump.json: writes guest memory to a host file")),
    ("dumpdtb", Host("machine.json (Debian's 7.2): writes the device tree to a host file")),
    ("getfd", Host("misc.json: takes a descriptor passed over the socket")),
    ("human-monitor-command", Host("misc.json: HMP, which has its own file-writing commands")),
    ("job-cancel", Other("job.json: jobs come from host-reaching commands")),
    ("job-complete", Other("job.json: as job-cancel")),
    ("job-dismiss", Other("job.json: as job-cancel")),
    ("job-finalize", Other("job.json: as job-cancel")),
    ("job-pause", Other("job.json: as job-cancel")),
    ("job-resume", Other("job.json: as job-cancel")),
    ("memsave", Host("machine.json: writes guest memory to a host file")),
    ("migrate", Host("migration.json: exec: runs a program, tcp/unix connect")),
    ("migrate-continue", Other("migration.json: part of migrate")),
    ("migrate-incoming", Host("migration.json: listens, or exec: runs a program")),
    ("migrate-pause", Other("migration.json: part of migrate")),
    ("migrate-recover", Host("migration.json: listens on a new URI")),
    ("migrate-set-capabilities", Other("migration.json: part of migrate")),
    ("migrate-set-parameters", Other("migration.json: part of migrate (TLS credentials, ...)")),
    ("migrate-start-postcopy", Other("migration.json: part of migrate")),
    ("migrate_cancel", Other("migration.json: part of migrate")),
    ("nbd-server-add", Host("block.json: exports a disk on the NBD server")),
    ("nbd-server-remove", Other("block.json: part of the NBD server")),
    ("nbd-server-start", Host("block.json: listens on a socket")),
    ("nbd-server-stop", Other("block.json: part of the NBD server")),
    ("netdev_add", Host("net.json: tap scripts run programs; socket backends")),
    ("netdev_del", Other("net.json: removes maqet's NIC backends")),
    ("object-add", Host("qom.json: memory-backend-file, secret file, tls dir, rng-random, input-linux, qtest")),
    ("object-del", Other("qom.json: removes objects maqet may use")),
    ("pmemsave", Host("machine.json: writes guest memory to a host file")),
    ("qmp_capabilities", Other("control.json: maqet negotiates capabilities itself")),
    ("qom-list-properties", Other("qom.json: QEMU 7.2 aborts on some types (microvm-machine), ending the VM")),
    ("qom-set", Host("qom.json: sets any property of any object, file names included")),
    ("quit", Other("misc.json: QEMU exits behind maqet's back (maqet stop)")),
    ("remove-fd", Other("misc.json: removes the fd sets maqet's disks come from")),
    ("replay-break", Other("replay.json: record/replay only")),
    ("replay-delete-break", Other("replay.json: record/replay only")),
    ("replay-seek", Other("replay.json: record/replay only")),
    ("screendump", Host("ui.json: writes a host file by name (maqet qmp screendump)")),
    ("set-numa-node", Other("machine.json: preconfig only")),
    ("set-vcpu-dirty-limit", Other("migration.json: dirty-page limits; not read for the list")),
    ("sev-inject-launch-secret", Other("misc-target.json: SEV guests only")),
    ("snapshot-delete", Host("migration.json: writes images")),
    ("snapshot-load", Host("migration.json: reads VM state from an image")),
    ("snapshot-save", Host("migration.json: writes VM state into an image")),
    ("trace-event-get-state", Other("trace.json: not read for the list")),
    ("trace-event-set-state", Other("trace.json: fills the log")),
    ("transaction", Host("transaction.json: drive-backup, blockdev-snapshot-sync and the like at once")),
    ("x-blockdev-amend", Host("block-core.json: rewrites an image's options")),
    ("x-blockdev-change", Other("block-core.json: quorum children")),
    ("x-blockdev-set-iothread", Other("block-core.json: moves maqet's nodes")),
    ("x-colo-lost-heartbeat", Other("migration.json: COLO only")),
    ("x-debug-block-dirty-bitmap-sha256", Other("block-core.json: debugging")),
    ("x-debug-query-block-graph", Other("block-core.json: debugging; not a query- name")),
    ("x-exit-preconfig", Other("misc.json: preconfig only")),
    ("xen-colo-do-checkpoint", Other("migration.json: Xen only")),
    ("xen-load-devices-state", Host("migration.json: reads a host file by name")),
    ("xen-save-devices-state", Host("migration.json: writes a host file by name")),
    ("xen-set-global-dirty-log", Other("misc.json: Xen only")),
    ("xen-set-replication", Other("migration.json: Xen only")),
    ("yank", Other("yank.json: cuts connections, maqet's monitors too")),
];

#[test]
fn the_tables_name_each_command_once() {
    let mut seen = BTreeSet::new();
    let names = QUERIES
        .iter()
        .copied()
        .chain(SAFE.iter().map(|(n, _)| *n))
        .chain(DENIED.iter().map(|(n, _)| *n));
    let twice: Vec<&str> = names.filter(|n| !seen.insert(*n)).collect();
    assert!(twice.is_empty(), "classified twice: {twice:?}");
}

/// True when `message` is QEMU's refusal of a command's arguments, which
/// QMP's generated code gives before it calls the command: a required
/// parameter missing, or one the command does not take.
fn argument_check_refused(message: &str) -> bool {
    message
        .strip_prefix("QMP: GenericError: Parameter '")
        .and_then(|rest| rest.split_once('\''))
        .is_some_and(|(name, tail)| {
            !name.is_empty()
                && (tail == " is missing" || (name == "maqet-probe" && tail == " is unexpected"))
        })
}

/// One VM for every command: each denied one is refused before it reaches
/// QEMU (exit 4); each allowed one is sent with an argument no command
/// takes, so QEMU's own argument check refuses it without running it (exit
/// 1, QEMU's error: the argument is unexpected, or a required one is
/// missing) — which proves maqet sent it. And every command the
/// running QEMU knows is in one of the tables.
#[test]
fn raw_qmp_refuses_every_host_reaching_command_and_qemu_has_none_unclassified() {
    let test = "raw_qmp_refuses_every_host_reaching_command_and_qemu_has_none_unclassified";
    if !have_qemu(test) {
        return;
    }
    let mut t = Test::new();
    t.file("lists.ron", &bios_config("lists"))
        .args(["add", "lists.ron"])
        .stdout_any()
        .run();
    let _stop = t.stopper("lists");
    t.args(["start", "lists"]).stdout_any().run();

    let listed = t
        .args(["--json", "qmp", "lists", "query-commands"])
        .run()
        .json();
    let known: BTreeSet<&str> = QUERIES
        .iter()
        .copied()
        .chain(SAFE.iter().map(|(n, _)| *n))
        .chain(DENIED.iter().map(|(n, _)| *n))
        .collect();
    let unclassified: Vec<&str> = listed
        .as_array()
        .expect("query-commands answers an array")
        .iter()
        .map(|c| c["name"].as_str().expect("a command name"))
        .filter(|n| !known.contains(n))
        .collect();
    assert!(
        unclassified.is_empty(),
        "this QEMU has commands no table here classifies; read each in qapi/*.json \
         and put it in QUERIES, SAFE or DENIED: {unclassified:?}"
    );

    let mut failures = Vec::new();
    for &(command, deny) in DENIED {
        let (Host(why) | Other(why)) = deny;
        let out = t
            .command(["--json", "qmp", "lists", command])
            .output()
            .expect("run maqet");
        let error: Value = serde_json::from_slice(&out.stderr).unwrap_or(Value::Null);
        let message = error["error"]["message"].as_str().unwrap_or("");
        let want = format!("maqet does not send `{command}` through the raw form: ");
        if out.status.code() != Some(4)
            || error["error"]["code"] != "maqet::refused"
            || !message.starts_with(&want)
        {
            failures.push(format!(
                "{command} ({why}): exit {:?}, {error}; want 4, {want:?}…",
                out.status.code()
            ));
        }
    }
    let sent = QUERIES.iter().copied().chain(SAFE.iter().map(|(n, _)| *n));
    for command in sent {
        let out = t
            .command(["--json", "qmp", "lists", command, "--arg", "maqet-probe=1"])
            .output()
            .expect("run maqet");
        let error: Value = serde_json::from_slice(&out.stderr).unwrap_or(Value::Null);
        let message = error["error"]["message"].as_str().unwrap_or("");
        if out.status.code() != Some(1) || !argument_check_refused(message) {
            failures.push(format!(
                "{command}: exit {:?}, {error}; want 1 and QEMU's argument check",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing that was refused reached QEMU (quit, system_powerdown).
    let status = t.args(["--json", "status", "lists"]).run().json();
    assert_eq!(status["run_state"], "running");
}

// ------------------------------------------------- the device-add verb

/// Whether a device property, given to `maqet qmp device-add`, reaches the
/// host: it names a host file, directory, device, descriptor or address,
/// so the verb must refuse it whatever the driver.
const HOST: bool = true;
/// It names something inside the guest or QEMU, or is plain data.
const GUEST: bool = false;

/// Every string property of every device type QEMU 7.2 (x86_64) has, as
/// `device-list-properties` lists them for each concrete device type,
/// with what it names (from the property's device source and docs).
#[rustfmt::skip]
const DEVICE_PROPERTIES: &[(&str, bool, &str)] = &[
    ("audiodev", GUEST, "an -audiodev backend QEMU already has"),
    ("backend", GUEST, "ccid-card-emulated's certificate source kind"),
    ("bootargs", GUEST, "guest-loader's kernel command line"),
    ("cdat", HOST, "cxl: a CDAT table file"),
    ("cert1", GUEST, "ccid-card-emulated: a certificate name in `db` (its driver is refused)"),
    ("cert2", GUEST, "as cert1"),
    ("cert3", GUEST, "as cert1"),
    ("chardev", GUEST, "a chardev QEMU already has"),
    ("chardev0", GUEST, "as chardev"),
    ("chardev1", GUEST, "as chardev"),
    ("chardev2", GUEST, "as chardev"),
    ("chardev3", GUEST, "as chardev"),
    ("chardev4", GUEST, "as chardev"),
    ("chardev5", GUEST, "as chardev"),
    ("chardev6", GUEST, "as chardev"),
    ("chardev7", GUEST, "as chardev"),
    ("db", HOST, "ccid-card-emulated: an NSS database directory"),
    ("desc", GUEST, "usb-mtp's description"),
    ("device_id", GUEST, "a SCSI identifier"),
    ("display", GUEST, "a QEMU display to bind input to"),
    ("drive", GUEST, "a block node QEMU already has"),
    ("duplex", GUEST, "virtio-net's link duplex"),
    ("evdev", HOST, "virtio-input-host: a host input device"),
    ("failover_pair_id", GUEST, "a device id"),
    ("fd", HOST, "x-pci-proxy-dev: a descriptor"),
    ("file", HOST, "loader: a host file loaded into the guest"),
    ("filter", GUEST, "usb-redir's device filter"),
    ("fp_start_macaddr", GUEST, "rocker's MAC address"),
    ("frudatafile", HOST, "ipmi-bmc-sim: a FRU data file"),
    ("fsdev", GUEST, "an -fsdev QEMU already has"),
    ("guid", GUEST, "a GUID"),
    ("hba_serial", GUEST, "a serial number"),
    ("hidraw", HOST, "u2f-passthru: a host hidraw device"),
    ("host", HOST, "vfio-pci: a host PCI device"),
    ("host_ip", HOST, "hv-syndbg: a host address it sends UDP to"),
    ("hostdevice", HOST, "usb-host: a host device node"),
    ("hostport", HOST, "usb-host: a host USB port"),
    ("hv-vendor-id", GUEST, "a CPUID string"),
    ("ibdev", HOST, "pvrdma: a host RDMA device"),
    ("initrd", HOST, "guest-loader: a host file loaded into the guest"),
    ("kernel", HOST, "guest-loader: a host file loaded into the guest"),
    ("mac", GUEST, "a MAC address"),
    ("mad-chardev", GUEST, "pvrdma: a chardev QEMU already has"),
    ("masterbus", GUEST, "a USB bus"),
    ("model", GUEST, "a model string"),
    ("mount_tag", GUEST, "a 9p tag"),
    ("name", GUEST, "a port name"),
    ("netdev", GUEST, "a netdev QEMU already has"),
    ("nqn", GUEST, "an NVMe name"),
    ("osk", GUEST, "isa-applesmc's key"),
    ("pcap", HOST, "USB devices: writes a packet capture file"),
    ("port", GUEST, "a USB port of the guest's bus"),
    ("product", GUEST, "a SCSI product string"),
    ("romfile", HOST, "PCI devices: an option ROM file"),
    ("rootdir", HOST, "usb-mtp: a host directory"),
    ("sdrfile", HOST, "ipmi-bmc-sim: an SDR file"),
    ("serial", GUEST, "a serial number"),
    ("sysfsdev", HOST, "vfio-pci: a host sysfs path"),
    ("tag", GUEST, "a virtiofs tag"),
    ("tls-authz", GUEST, "migration (not user-creatable): an authz object's id"),
    ("tls-creds", GUEST, "migration (not user-creatable): a TLS credentials object's id"),
    ("tls-hostname", GUEST, "migration (not user-creatable): the name a TLS peer must have"),
    ("tpmdev", GUEST, "a -tpmdev QEMU already has"),
    ("tx", GUEST, "virtio-net's TX mode"),
    ("uuid", GUEST, "a UUID"),
    ("vendor", GUEST, "a SCSI vendor string"),
    ("ver", GUEST, "a version string"),
    ("vhostfd", HOST, "vhost devices: a descriptor"),
    ("world", GUEST, "rocker's world"),
    ("wwpn", GUEST, "a SCSI port name"),
];

/// Drivers that reach the host whatever their properties (from `-device
/// help` and the devices' docs): passthrough of host devices, vhost
/// backends, MTP shares, smart cards, and sound cards (a default audio
/// backend opens the host's sound server).
const HOST_DRIVERS: &[&str] = &[
    "usb-host",
    "u2f-passthru",
    "vfio-pci",
    "vfio-pci-nohotplug",
    "usb-mtp",
    "vhost-scsi-pci",
    "vhost-vsock-pci",
    "vhost-user-blk-pci",
    "vhost-user-fs-pci",
    "vhost-user-scsi-pci",
    "vhost-user-gpu-pci",
    "vhost-user-vga",
    "vhost-user-input-pci",
    "vhost-user-rng-pci",
    "vhost-user-vsock-pci",
    "virtio-input-host-pci",
    "ccid-card-passthru",
    "ccid-card-emulated",
    "x-pci-proxy-dev",
    "usb-audio",
    "intel-hda",
    "ich9-intel-hda",
    "AC97",
    "ES1370",
    "sb16",
];

/// `maqet qmp device-add` refuses every property that names something on
/// the host and every driver that reaches it (exit 4, exact message); and
/// every string property of every device type the running QEMU has is
/// classified here, so a new one fails the test until someone has read it.
#[test]
fn device_add_refuses_every_host_property_and_qemu_has_none_unclassified() {
    let test = "device_add_refuses_every_host_property_and_qemu_has_none_unclassified";
    if !have_qemu(test) {
        return;
    }
    let mut t = Test::new();
    t.file("devs.ron", &bios_config("devs"))
        .args(["add", "devs.ron"])
        .stdout_any()
        .run();
    let _stop = t.stopper("devs");
    t.args(["start", "devs"]).stdout_any().run();

    let types = t
        .args([
            "--json",
            "qmp",
            "devs",
            "qom-list-types",
            "--arg",
            "implements=device",
            "--arg",
            "abstract=false",
        ])
        .run()
        .json();
    let types: Vec<String> = types
        .as_array()
        .expect("qom-list-types answers an array")
        .iter()
        .map(|ty| ty["name"].as_str().expect("a type name").to_owned())
        .collect();
    assert!(types.len() > 100, "{} device types", types.len());
    let known: BTreeSet<&str> = DEVICE_PROPERTIES.iter().map(|(n, _, _)| *n).collect();
    let mut unclassified = BTreeSet::new();
    for ty in &types {
        let props = t
            .args(["--json", "qmp", "devs", "device-list-properties", "--arg"])
            .arg(format!("typename={ty}"))
            .run()
            .json();
        for prop in props.as_array().expect("an array of properties") {
            let name = prop["name"].as_str().expect("a property name");
            if prop["type"] == "str" && !known.contains(name) {
                unclassified.insert(format!("{name} ({ty})"));
            }
        }
    }
    assert!(
        unclassified.is_empty(),
        "device properties no table here classifies; read what each names and \
         put it in DEVICE_PROPERTIES: {unclassified:?}"
    );

    let mut failures = Vec::new();
    let mut refused = |args: Vec<String>, why: &str, want: String| {
        let out = t.command(args.clone()).output().expect("run maqet");
        let error: Value = serde_json::from_slice(&out.stderr).unwrap_or(Value::Null);
        if out.status.code() != Some(4) || error["error"]["message"] != want.as_str() {
            failures.push(format!(
                "{args:?} ({why}): exit {:?}, {error}; want 4, {want:?}",
                out.status.code()
            ));
        }
    };
    let verb = |rest: &[&str]| -> Vec<String> {
        ["--json", "qmp", "device-add", "devs"]
            .iter()
            .chain(rest)
            .map(|s| (*s).to_owned())
            .collect()
    };
    for &(name, _, why) in DEVICE_PROPERTIES.iter().filter(|(_, host, _)| *host) {
        let set = format!("{name}=/tmp/x");
        refused(
            verb(&["virtio-rng-pci", "--id", "p", "--prop", &set]),
            why,
            format!("the device property `{name}` names a host file or device"),
        );
    }
    for driver in HOST_DRIVERS {
        refused(
            verb(&[driver, "--id", "d"]),
            "a host-reaching driver",
            format!("the device `{driver}` passes a host device or file to the guest"),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was plugged.
    let plugged = t
        .args([
            "--json",
            "qmp",
            "devs",
            "qom-list",
            "--arg",
            "path=/machine/peripheral",
        ])
        .run()
        .json();
    let ids: Vec<&str> = plugged
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .filter(|n| *n == "p" || *n == "d")
        .collect();
    assert!(ids.is_empty(), "{plugged}");
}
