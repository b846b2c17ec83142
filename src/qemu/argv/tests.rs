use super::*;
use crate::config::{
    CdromDrive, Forward, HotplugPorts, Port, Qcow2Drive, RawDrive, UserNetwork, UserPath,
    VirtfsShare,
};
use crate::config::{Protocol, SecurityModel};
use crate::storage::Chains;

fn runtime() -> RuntimePaths {
    RuntimePaths::new("/home/u/.local/state/maqet/run/0123".into())
}

fn argv_for(config: &VmConfig) -> Vec<String> {
    let rt = runtime();
    build(&Plan {
        name: "web",
        config,
        accel: Accelerator::Tcg,
        runtime: &rt,
        disks_dir: Utf8Path::new("/home/u/.local/share/maqet/disks/0123"),
        chains: &Chains::new(),
    })
}

/// The path an fd set stands for: the `opaque` of its `-add-fd`s, read
/// the way QEMU reads option values (`,,` is a comma), and the same in
/// each.
fn fdset_path(argv: &[String], filename: &serde_json::Value) -> String {
    let set = filename
        .as_str()
        .and_then(|f| f.strip_prefix("/dev/fdset/"))
        .expect("a file node on an fd set");
    let opaques: Vec<String> = argv
        .windows(2)
        .filter(|w| w[0] == "-add-fd")
        .filter_map(|w| {
            let rest = w[1].split_once(&format!(",set={set},opaque="))?.1;
            Some(rest.replace(",,", ","))
        })
        .collect();
    assert!(!opaques.is_empty(), "no -add-fd for set {set}");
    assert!(opaques.iter().all(|o| *o == opaques[0]), "{opaques:?}");
    opaques[0].clone()
}

fn raw(name: &str, file: &str) -> Storage {
    Storage::Raw(RawDrive {
        name: name.parse().expect("name"),
        file: UserPath::checked(file.into()),
        size: None,
        interface: Interface::Virtio,
        readonly: false,
    })
}

/// The JSON values of every `-blockdev` in an argv.
fn blockdevs(argv: &[String]) -> Vec<Value> {
    argv.windows(2)
        .filter(|w| w[0] == "-blockdev")
        .map(|w| serde_json::from_str(&w[1]).expect("blockdev is JSON"))
        .collect()
}

#[test]
fn a_diskless_vm_gets_sockets_by_fd_and_no_defaults() {
    let argv = argv_for(&VmConfig::default());
    assert_eq!(
        shell_line(&argv),
        concat!(
            "qemu-system-x86_64 -name guest=web,debug-threads=on -nodefaults -no-user-config \
             -machine type=q35 -accel tcg -m size=1024M -smp cpus=1 -display none -vga std \
             -chardev socket,id=maqet-qmp,fd=3,server=on,wait=off -mon chardev=maqet-qmp,mode=control \
             -chardev socket,id=maqet-events,fd=5,server=on,wait=off -mon chardev=maqet-events,mode=control \
             -chardev socket,id=maqet-console,fd=4,server=on,wait=off,logfile=/home/u/.local/state/maqet/run/0123/console.log,logappend=on \
             -serial chardev:maqet-console -pidfile /home/u/.local/state/maqet/run/0123/qemu.pid",
            r#" -device '{"addr":"0x1c.0","bus":"pcie.0","chassis":254,"driver":"pcie-root-port","id":"maqet-hp0","multifunction":true,"port":0,"slot":1}'"#,
            r#" -device '{"addr":"0x1c.1","bus":"pcie.0","chassis":254,"driver":"pcie-root-port","id":"maqet-hp1","port":1,"slot":2}'"#,
            r#" -device '{"addr":"0x1c.2","bus":"pcie.0","chassis":254,"driver":"pcie-root-port","id":"maqet-hp2","port":2,"slot":3}'"#,
            r#" -device '{"addr":"0x1c.3","bus":"pcie.0","chassis":254,"driver":"pcie-root-port","id":"maqet-hp3","port":3,"slot":4}'"#,
        )
    );
    assert!(!argv.iter().any(|a| a == "-drive"), "never -drive");
}

/// The JSON values of every `-device` in an argv.
fn devices(argv: &[String]) -> Vec<Value> {
    argv.windows(2)
        .filter(|w| w[0] == "-device")
        .map(|w| serde_json::from_str(&w[1]).expect("a -device of maqet's is JSON"))
        .collect()
}

#[test]
fn hot_plug_ports_are_added_on_q35_only_and_never_collide() {
    let ports = |machine: &str, count: Option<u8>| {
        let config = VmConfig {
            machine: machine.parse().expect("a machine name"),
            hotplug_ports: count.map(HotplugPorts),
            ..VmConfig::default()
        };
        devices(&argv_for(&config))
            .into_iter()
            .filter(|d| d["driver"] == "pcie-root-port")
            .collect::<Vec<_>>()
    };
    assert_eq!(ports("q35", None).len(), 4, "four by default");
    assert_eq!(ports("pc-q35-7.2", Some(1)).len(), 1);
    assert!(ports("q35", Some(0)).is_empty(), "0 turns them off");
    assert!(ports("pc", None).is_empty(), "pc hot-plugs on pci.0");
    assert!(ports("pc-i440fx-7.2", None).is_empty());

    let all = ports("q35", Some(HotplugPorts::MAX));
    assert_eq!(all.len(), 32);
    let mut addrs = std::collections::BTreeSet::new();
    let mut slots = std::collections::BTreeSet::new();
    for (n, port) in all.iter().enumerate() {
        assert_eq!(port["id"], format!("maqet-hp{n}"));
        assert_eq!(port["bus"], "pcie.0");
        let addr = port["addr"].as_str().expect("an addr").to_owned();
        let function = addr.rsplit('.').next().expect("a function");
        assert!(
            ["0x1c.", "0x1b.", "0x1a.", "0x19."]
                .iter()
                .any(|s| addr.starts_with(s)),
            "{addr}"
        );
        // Function 0 of a slot with more functions must say so.
        assert_eq!(port["multifunction"] == true, function == "0", "{port}");
        assert!(addrs.insert(addr), "{port}");
        assert!(
            slots.insert((port["chassis"].to_string(), port["slot"].to_string())),
            "QEMU refuses a chassis and slot given twice: {port}"
        );
    }
}

#[test]
fn hostile_file_names_stay_single_json_strings() {
    let names = [
        "/home/u/a.img,format=raw",
        "/home/u/b.img,driver=nbd,host=evil",
        "json:{\"driver\":\"nbd\",\"host\":\"evil\"}",
        "nbd:evil:10809",
        "/home/u/\"quoted\".img",
    ];
    let config = VmConfig {
        storage: names
            .iter()
            .enumerate()
            .map(|(i, n)| raw(&format!("d{i}"), n))
            .collect(),
        ..VmConfig::default()
    };
    let argv = argv_for(&config);
    let nodes = blockdevs(&argv);
    assert_eq!(nodes.len(), 2 * names.len());
    for (i, name) in names.iter().enumerate() {
        let file = &nodes[2 * i];
        assert_eq!(
            file["driver"], "file",
            "the protocol is always the file driver"
        );
        assert_eq!(file["filename"], format!("/dev/fdset/{}", i + 1));
        assert_eq!(
            fdset_path(&argv, &file["filename"]),
            *name,
            "the name is only the escaped opaque of its fd set"
        );
        let format = &nodes[2 * i + 1];
        assert_eq!(format["driver"], "raw", "the format is named, never probed");
        assert_eq!(format["file"], file["node-name"]);
        assert_eq!(
            format.as_object().map(|o| o.len()),
            Some(4),
            "no extra keys"
        );
    }
}

#[test]
fn commas_in_key_value_options_are_doubled() {
    let config = VmConfig {
        storage: vec![Storage::Virtfs(VirtfsShare {
            name: "share".parse().expect("name"),
            path: UserPath::checked("/home/u/a,b,security_model=none".into()),
            mount_tag: None,
            security_model: SecurityModel::MappedXattr,
            readonly: true,
        })],
        ..VmConfig::default()
    };
    let rt = RuntimePaths::new("/tmp/x,y".into());
    let argv = build(&Plan {
        name: "a",
        config: &config,
        accel: Accelerator::Tcg,
        runtime: &rt,
        disks_dir: Utf8Path::new("/tmp/d"),
        chains: &Chains::new(),
    });
    let fsdev = argv
        .windows(2)
        .find(|w| w[0] == "-fsdev")
        .map(|w| w[1].clone())
        .expect("fsdev");
    assert_eq!(
        fsdev,
        "local,id=maqet-fs0,path=/home/u/a,,b,,security_model=none,security_model=mapped-xattr,readonly=on"
    );
    assert!(
        argv.iter()
            .any(|a| a.contains("logfile=/tmp/x,,y/console.log,"))
    );
}

#[test]
fn qcow2_without_a_file_lives_in_the_data_dir() {
    let config = VmConfig {
        storage: vec![Storage::Qcow2(Qcow2Drive {
            name: "root".parse().expect("name"),
            file: None,
            size: None,
            interface: Interface::Scsi,
            backing_file: None,
            backing_format: None,
            readonly: false,
        })],
        ..VmConfig::default()
    };
    let argv = argv_for(&config);
    let nodes = blockdevs(&argv);
    assert_eq!(
        fdset_path(&argv, &nodes[0]["filename"]),
        "/home/u/.local/share/maqet/disks/0123/root.qcow2"
    );
    assert_eq!(nodes[1]["driver"], "qcow2");
    assert!(argv.iter().any(|a| a.contains("\"virtio-scsi-pci\"")));
    assert!(argv.iter().any(|a| a.contains("\"scsi-hd\"")));
}

#[test]
fn cdroms_are_read_only_cd_devices() {
    let config = VmConfig {
        storage: vec![Storage::Cdrom(CdromDrive {
            name: "iso".parse().expect("name"),
            file: UserPath::checked("/home/u/d.iso".into()),
            interface: Interface::Sata,
        })],
        ..VmConfig::default()
    };
    let argv = argv_for(&config);
    let nodes = blockdevs(&argv);
    assert_eq!(nodes[0]["read-only"], true);
    assert_eq!(nodes[1]["read-only"], true);
    assert!(
        argv.iter()
            .any(|a| a.contains("\"ide-cd\"") && a.contains("maqet-ahci.0"))
    );
}

#[test]
fn port_forwards_bind_where_the_config_says() {
    let config = VmConfig {
        network: vec![Network::User(UserNetwork {
            name: "net0".parse().expect("name"),
            model: NicModel::VirtioNet,
            mac: None,
            forwards: vec![
                Forward {
                    host: Port(2222),
                    guest: Port(22),
                    protocol: Protocol::Tcp,
                    bind: std::net::Ipv4Addr::LOCALHOST,
                },
                Forward {
                    host: Port(5353),
                    guest: Port(53),
                    protocol: Protocol::Udp,
                    bind: std::net::Ipv4Addr::UNSPECIFIED,
                },
            ],
        })],
        ..VmConfig::default()
    };
    let argv = argv_for(&config);
    let netdev = argv
        .windows(2)
        .find(|w| w[0] == "-netdev")
        .map(|w| w[1].clone())
        .expect("netdev");
    assert_eq!(
        netdev,
        "user,id=maqet-net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:0.0.0.0:5353-:53"
    );
}

#[test]
fn user_arguments_come_last_and_verbatim() {
    let config = VmConfig {
        arguments: vec!["-device".into(), "virtio-rng-pci".into()],
        ..VmConfig::default()
    };
    let argv = argv_for(&config);
    assert_eq!(&argv[argv.len() - 2..], ["-device", "virtio-rng-pci"]);
}

#[test]
fn shell_line_quotes_what_a_shell_would_split() {
    let argv: Vec<String> = ["qemu", "-append", "console=ttyS0 quiet", "it's"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(
        shell_line(&argv),
        r"qemu -append 'console=ttyS0 quiet' 'it'\''s'"
    );
}

/// Control characters are spelled out with bash's $'…', so the line reads
/// on a terminal and pastes back into bash as the same words.
#[test]
fn shell_line_spells_out_control_characters() {
    let words: Vec<String> = ["a\nb.ron", "x\u{1b}[2Jy", "tab\there", "q'\\", "é\u{7f}"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let line = shell_line(&words);
    assert_eq!(
        line,
        r"$'a\nb.ron' $'x\x1b[2Jy' $'tab\there' 'q'\''\' $'é\x7f'"
    );
    assert!(!line.chars().any(char::is_control), "{line:?}");
    let Ok(out) = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("printf '%s\\0' {line}"))
        .output()
    else {
        return;
    };
    let got: Vec<String> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .split_terminator('\0')
        .map(str::to_owned)
        .collect();
    assert_eq!(got, words);
}

/// Two names of one place (`///` and `/////`) are still two labels: each
/// node's fd set carries the very text it stands for (found by the `argv`
/// fuzz target).
#[test]
fn fd_sets_go_by_the_exact_path_text() {
    let config = VmConfig {
        storage: vec![raw("a", "/////"), raw("b", "///")],
        ..VmConfig::default()
    };
    let argv = argv_for(&config);
    let nodes = blockdevs(&argv);
    assert_eq!(fdset_path(&argv, &nodes[0]["filename"]), "/////");
    assert_eq!(fdset_path(&argv, &nodes[2]["filename"]), "///");
}
