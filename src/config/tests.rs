use super::*;

fn name(s: &str) -> Name {
    s.parse().expect("valid name")
}

fn qcow2(n: &str, size: &str) -> Storage {
    Storage::Qcow2(Qcow2Drive {
        name: name(n),
        file: None,
        size: Some(DiskSize::parse(size).expect("size")),
        interface: Interface::Virtio,
        backing_file: None,
        backing_format: None,
        readonly: false,
    })
}

#[test]
fn sizes_take_binary_units_in_any_case() {
    for (text, bytes) in [
        ("1K", 1024),
        ("512M", 512 << 20),
        ("2G", 2 << 30),
        ("2g", 2 << 30),
        ("2GiB", 2 << 30),
        ("2GB", 2 << 30),
        ("1T", 1 << 40),
    ] {
        assert_eq!(Bytes::parse(text), Ok(Bytes(bytes)), "{text}");
    }
}

#[test]
fn sizes_without_a_unit_or_number_are_refused() {
    for text in ["512", "", "G", "-1G", "1.5G", "2X", "1 P"] {
        assert!(Bytes::parse(text).is_err(), "{text} should be refused");
    }
}

#[test]
fn sizes_that_overflow_are_refused_not_wrapped() {
    assert!(Bytes::parse("18446744073709551615T").is_err());
    assert!(Bytes::parse("99999999999999999999999K").is_err());
    assert!(Bytes::parse("16777216T").is_err());
}

#[test]
fn memory_and_disk_sizes_stay_in_bounds() {
    assert!(Memory::parse("8M").is_err());
    assert!(Memory::parse("16M").is_ok());
    assert!(Memory::parse("4T").is_ok());
    assert!(Memory::parse("5T").is_err());
    assert!(Memory::parse("1025K").is_err(), "not whole MiB");
    assert!(DiskSize::parse("512K").is_err());
    assert!(DiskSize::parse("64T").is_ok());
    assert!(DiskSize::parse("65T").is_err());
}

#[test]
fn sizes_print_in_the_largest_exact_unit() {
    assert_eq!(Bytes(2 << 30).human(), "2G");
    assert_eq!(Bytes(1536 << 20).human(), "1536M");
    assert_eq!(Bytes(1000).human(), "1000B");
}

#[test]
fn names_follow_the_rule() {
    for ok in ["a", "web-1", "A.b_c", "9lives", &"x".repeat(64)] {
        assert!(ok.parse::<Name>().is_ok(), "{ok}");
    }
    for bad in ["", "-a", ".a", "a b", "a/b", "é", &"x".repeat(65)] {
        assert!(bad.parse::<Name>().is_err(), "{bad}");
    }
}

#[test]
fn cpus_are_between_one_and_the_limit() {
    assert!("0".parse::<Cpus>().is_err());
    assert!("1".parse::<Cpus>().is_ok());
    assert!("1024".parse::<Cpus>().is_ok());
    assert!("1025".parse::<Cpus>().is_err());
    assert!("four".parse::<Cpus>().is_err());
}

#[test]
fn later_layers_win_and_lists_merge_by_name() {
    let first = Layer {
        memory: Some(Memory::parse("1G").expect("mem")),
        storage: Some(vec![qcow2("root", "10G"), qcow2("data", "1G")]),
        arguments: Some(vec!["-a".into()]),
        boot: Some(BootLayer {
            append: Some("console=ttyS0".into()),
            ..BootLayer::default()
        }),
        ..Layer::default()
    };
    let second = Layer {
        memory: Some(Memory::parse("2G").expect("mem")),
        storage: Some(vec![qcow2("root", "20G"), qcow2("extra", "5G")]),
        arguments: Some(vec!["-b".into()]),
        boot: Some(BootLayer {
            kernel: Some(UserPath::checked("/tmp/vmlinuz".into())),
            ..BootLayer::default()
        }),
        ..Layer::default()
    };
    let (config, _) = merge(VmConfig::default(), vec![first, second]).expect("merge");
    assert_eq!(config.memory, Memory::parse("2G").expect("mem"));
    let drives: Vec<(&str, String)> = config
        .storage
        .iter()
        .map(|d| match d {
            Storage::Qcow2(q) => (
                q.name.as_str(),
                q.size.map(|s| s.0.human()).unwrap_or_default(),
            ),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        drives,
        [
            ("root", "20G".into()),
            ("data", "1G".into()),
            ("extra", "5G".into())
        ]
    );
    assert_eq!(config.arguments, ["-a", "-b"]);
    assert_eq!(config.boot.append.as_deref(), Some("console=ttyS0"));
    assert!(config.boot.kernel.is_some(), "boot merges field by field");
}

#[test]
fn append_without_a_kernel_is_refused_after_merging() {
    let layer = Layer {
        boot: Some(BootLayer {
            append: Some("quiet".into()),
            ..BootLayer::default()
        }),
        ..Layer::default()
    };
    assert!(merge(VmConfig::default(), vec![layer]).is_err());
}

#[test]
fn owned_options_are_refused_in_any_spelling() {
    for args in [
        vec!["-qmp", "unix:/tmp/x"],
        vec!["--qmp", "x"],
        vec!["-monitor", "stdio"],
        vec!["-mon", "chardev=x"],
        vec!["-daemonize"],
        vec!["-pidfile", "/tmp/p"],
        vec!["-serial", "stdio"],
        vec!["-nographic"],
        vec!["-chardev", "socket,id=maqet-qmp,path=/tmp/x"],
        vec!["-device", "isa-serial,chardev=maqet-console"],
        vec!["-m 2G"],
    ] {
        let owned: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        assert!(
            check_arguments(&owned).is_err(),
            "{args:?} should be refused"
        );
    }
}

#[test]
fn ordinary_arguments_pass() {
    let args: Vec<String> = [
        "-device",
        "virtio-rng-pci",
        "-smbios",
        "type=1,serial=maqet-like",
        "-cpu",
        "max",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert!(check_arguments(&args).is_ok());
}

#[test]
fn ide_devices_go_one_per_port_on_q35_and_two_per_bus_on_the_pc() {
    let q35 = IdeBuses::of("q35").expect("q35 is known");
    assert_eq!(IdeBuses::of("pc-q35-7.2"), Some(q35));
    assert_eq!(q35.slots(), 6);
    assert_eq!(q35.place(0), ("ide.0".into(), 0));
    assert_eq!(q35.place(5), ("ide.5".into(), 0));
    let pc = IdeBuses::of("pc").expect("pc is known");
    assert_eq!(IdeBuses::of("pc-i440fx-7.2"), Some(pc));
    assert_eq!(pc.slots(), 4);
    let places: Vec<_> = (0..4).map(|n| pc.place(n)).collect();
    assert_eq!(
        places,
        [
            ("ide.0".into(), 0),
            ("ide.0".into(), 1),
            ("ide.1".into(), 0),
            ("ide.1".into(), 1)
        ]
    );
    assert_eq!(IdeBuses::of("microvm"), None);
    assert_eq!(IdeBuses::of("pcx"), None);
}

#[test]
fn differences_name_each_field_and_entry() {
    let stored = VmConfig {
        storage: vec![qcow2("a", "1G"), qcow2("b", "1G")],
        ..VmConfig::default()
    };
    assert!(stored.differences(&stored.clone()).is_empty());
    let reordered = VmConfig {
        storage: vec![qcow2("b", "1G"), qcow2("a", "1G")],
        ..stored.clone()
    };
    assert_eq!(stored.differences(&reordered), ["storage (the order)"]);
    let mut given = VmConfig {
        storage: vec![qcow2("a", "2G"), qcow2("c", "1G")],
        accel: Accel::Tcg,
        arguments: vec!["-S".into()],
        ..stored.clone()
    };
    given.boot.append = Some("quiet".into());
    assert_eq!(
        stored.differences(&given),
        [
            "accel (stored Auto, given Tcg)",
            "boot.append",
            "storage `a`",
            "storage `b` (stored, not given)",
            "storage `c` (given, not stored)",
            "arguments",
        ]
    );
    let more_ports = VmConfig {
        hotplug_ports: Some(HotplugPorts(8)),
        ..stored.clone()
    };
    assert_eq!(
        stored.differences(&more_ports),
        ["hotplug_ports (stored 4, given 8)"]
    );
}

#[test]
fn hotplug_ports_default_to_four_on_q35_and_none_elsewhere() {
    let config = |machine: &str, ports: Option<u8>| VmConfig {
        machine: name(machine),
        hotplug_ports: ports.map(HotplugPorts),
        ..VmConfig::default()
    };
    assert_eq!(VmConfig::default().hotplug_port_count(), 4);
    assert_eq!(config("pc-q35-7.2", Some(9)).hotplug_port_count(), 9);
    assert_eq!(config("q35", Some(0)).hotplug_port_count(), 0);
    assert_eq!(config("pc", None).hotplug_port_count(), 0);
    assert_eq!(config("microvm", None).hotplug_port_count(), 0);
    assert!(HotplugPorts::new(32).is_ok());
    assert!(HotplugPorts::new(33).is_err());
    assert!(HotplugPorts::new(-1).is_err());

    // A later layer sets the count; one without it keeps it.
    let layer = |ports: Option<u8>| Layer {
        hotplug_ports: ports.map(HotplugPorts),
        ..Layer::default()
    };
    let (merged, _) =
        merge(VmConfig::default(), vec![layer(Some(8)), layer(None)]).expect("q35 takes ports");
    assert_eq!(merged.hotplug_ports, Some(HotplugPorts(8)));
    // Ports asked for on a machine that gets none are refused, 0 is not.
    let pc = || Layer {
        machine: Some(name("pc")),
        ..Layer::default()
    };
    assert!(merge(VmConfig::default(), vec![layer(Some(8)), pc()]).is_err());
    assert!(merge(VmConfig::default(), vec![layer(Some(0)), pc()]).is_ok());
    assert!(merge(VmConfig::default(), vec![pc()]).is_ok());
}
