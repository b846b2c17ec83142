//! Property tests: the invariant of the `argv` fuzz target (docs/fuzzing.md),
//! run by `cargo test` with the fuzz target's own check
//! (src/invariants/argv.rs). No user string adds, removes or overrides an option
//! key: every `KEY=VALUE,...` word, split the way QEMU splits it, has exactly
//! maqet's keys and gives the user's text back whole; every `-blockdev` and
//! `-device` is a JSON object with exactly maqet's keys; verbatim words and
//! the VM's own `arguments` pass through unchanged.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::config::{
    Boot, Bytes, CdromDrive, Cpus, Forward, HotplugPorts, ImageFormat, Mac, Memory, MountTag, Name,
    Port, Program, Qcow2Drive, RawDrive, UserNetwork, UserPath, VirtfsShare,
};
use crate::config::{Protocol, SecurityModel};
use crate::invariants::{self, opts};
use crate::storage::Chains;

/// Text a user might put anywhere: anything at all, or the characters that
/// mean something to QEMU's parsers.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        r#"[-,=a-z/{}":\\. ]{0,16}"#,
        select(vec![
            ",",
            ",,",
            "a,b=c",
            "/x,readonly=on",
            "/x,,,id=maqet-qmp",
            "json:{\"driver\":\"nbd\"}",
            "\",\"driver\":\"nbd",
            "-qmp",
            "",
        ])
        .prop_map(str::to_owned),
    ]
}

fn name() -> impl Strategy<Value = Name> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,10}".prop_map(|n| n.parse().expect("valid name"))
}

fn path() -> impl Strategy<Value = UserPath> {
    text().prop_map(|t| UserPath::checked(t.into()))
}

fn interface() -> impl Strategy<Value = Interface> {
    select(vec![
        Interface::Virtio,
        Interface::Sata,
        Interface::Ide,
        Interface::Scsi,
    ])
}

fn drive() -> impl Strategy<Value = Storage> {
    prop_oneof![
        (
            name(),
            prop::option::of(path()),
            interface(),
            prop::option::of(path()),
            any::<bool>()
        )
            .prop_map(|(name, file, interface, backing, readonly)| {
                Storage::Qcow2(Qcow2Drive {
                    name,
                    file,
                    size: None,
                    interface,
                    backing_format: backing.as_ref().map(|_| ImageFormat::Qcow2),
                    backing_file: backing,
                    readonly,
                })
            }),
        (name(), path(), interface(), any::<bool>()).prop_map(
            |(name, file, interface, readonly)| {
                Storage::Raw(RawDrive {
                    name,
                    file,
                    size: None,
                    interface,
                    readonly,
                })
            }
        ),
        (name(), path(), interface()).prop_map(|(name, file, interface)| {
            Storage::Cdrom(CdromDrive {
                name,
                file,
                interface,
            })
        }),
        (
            name(),
            path(),
            prop::option::of("[A-Za-z0-9._-]{1,31}"),
            select(vec![
                SecurityModel::MappedXattr,
                SecurityModel::MappedFile,
                SecurityModel::Passthrough
            ]),
            any::<bool>()
        )
            .prop_map(|(name, path, tag, security_model, readonly)| {
                Storage::Virtfs(VirtfsShare {
                    name,
                    path,
                    mount_tag: tag.map(|t| MountTag::new(&t).expect("valid tag")),
                    security_model,
                    readonly,
                })
            }),
    ]
}

fn network() -> impl Strategy<Value = Network> {
    let forward =
        (1u16.., 1u16.., any::<bool>(), any::<[u8; 4]>()).prop_map(|(host, guest, udp, bind)| {
            Forward {
                host: Port(host),
                guest: Port(guest),
                protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                bind: Ipv4Addr::from(bind),
            }
        });
    (
        name(),
        select(vec![
            NicModel::VirtioNet,
            NicModel::E1000,
            NicModel::Rtl8139,
        ]),
        prop::option::of("[0-9a-f][02468ace](:[0-9a-fA-F]{2}){5}"),
        prop::collection::vec(forward, 0..3),
    )
        .prop_map(|(name, model, mac, forwards)| {
            Network::User(UserNetwork {
                name,
                model,
                mac: mac.map(|m| Mac::new(&m).expect("valid MAC")),
                forwards,
            })
        })
}

fn config() -> impl Strategy<Value = VmConfig> {
    let display = prop_oneof![
        Just(Display::Headless),
        Just(Display::Gtk),
        Just(Display::Sdl),
        (any::<u8>(), any::<[u8; 4]>()).prop_map(|(display, bind)| Display::Vnc {
            display,
            bind: Ipv4Addr::from(bind),
        }),
    ];
    let boot = (
        prop::option::of(path()),
        prop::option::of(path()),
        prop::option::of(text()),
        prop::option::of(path()),
    )
        .prop_map(|(kernel, initrd, append, firmware)| Boot {
            kernel,
            initrd,
            append,
            firmware,
        });
    // q35 adds hot-plug root ports (0 to 32, or the default 4).
    let machine = prop_oneof![
        name(),
        select(vec!["q35", "pc-q35-7.2"]).prop_map(|m| m.parse().expect("valid name")),
    ];
    let ports = prop::option::of((0u8..=32).prop_map(HotplugPorts));
    (
        (
            text(),
            machine,
            16u64..=(4 << 20),
            1u32..=Cpus::MAX,
            display,
        ),
        (boot, ports),
        prop::collection::vec(drive(), 0..5),
        prop::collection::vec(network(), 0..3),
        prop::collection::vec(text(), 0..4),
    )
        .prop_map(
            |(
                (binary, machine, mib, cpus, display),
                (boot, hotplug_ports),
                storage,
                network,
                arguments,
            )| {
                VmConfig {
                    binary: Program::new(&binary),
                    machine,
                    memory: Memory(Bytes(mib << 20)),
                    cpus: Cpus(cpus),
                    display,
                    boot,
                    storage,
                    network,
                    hotplug_ports,
                    arguments,
                    ..VmConfig::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn escaped_text_is_one_whole_value(key in "[a-z]{1,8}", value in text(), more in text()) {
        let word = format!("{key}={},x={}", escape(&value), escape(&more));
        prop_assert_eq!(
            opts::parse(&word, "implied"),
            [(key, value), ("x".to_owned(), more)]
        );
    }

    #[test]
    fn user_strings_never_change_an_option_key(
        config in config(),
        vm in name(),
        kvm in any::<bool>(),
        runtime_dir in text(),
        disks_dir in text(),
    ) {
        let runtime = RuntimePaths::new(runtime_dir.into());
        let disks_dir = Utf8PathBuf::from(disks_dir);
        let plan = Plan {
            name: vm.as_str(),
            config: &config,
            accel: if kvm { Accelerator::Kvm } else { Accelerator::Tcg },
            runtime: &runtime,
            disks_dir: &disks_dir,
            chains: &Chains::new(),
        };
        let argv = build(&plan);
        invariants::argv::check(&plan, &argv)
            .map_err(|e| TestCaseError::fail(format!("{e}\nargv: {argv:?}")))?;
    }
}
