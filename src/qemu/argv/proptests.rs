//! Property tests: the invariant of the `argv` fuzz target (docs/fuzzing.md),
//! run by `cargo test`. No user string adds, removes or overrides an option
//! key: every `KEY=VALUE,...` word, split the way QEMU splits it, has exactly
//! maqet's keys and gives the user's text back whole; every `-blockdev` and
//! `-device` is a JSON object with exactly maqet's keys; verbatim words and
//! the VM's own `arguments` pass through unchanged.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::config::{
    Boot, Bytes, CdromDrive, Cpus, Forward, ImageFormat, Mac, Memory, MountTag, Name, Port,
    Program, Qcow2Drive, RawDrive, UserNetwork, UserPath, VirtfsShare,
};
use crate::config::{Protocol, SecurityModel};
use crate::layout::owned_image;
use crate::storage::Chains;

/// QEMU's split of a `KEY=VALUE,...` option (`get_opt_name_value` in
/// util/qemu-option.c): a key runs to `=` or `,`; a value to the next comma
/// that is not doubled (`,,` is a literal comma); a first element without
/// `=` is the value of the `implied` key; a later one is a flag.
fn qemu_opts(text: &str, implied: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let key_len = rest.find(['=', ',']).unwrap_or(rest.len());
        let value_from = match rest[key_len..].starts_with('=') {
            true => Some((rest[..key_len].to_owned(), at + key_len + 1)),
            false if pairs.is_empty() => Some((implied.to_owned(), at)),
            false => None,
        };
        let Some((key, from)) = value_from else {
            pairs.push((rest[..key_len].to_owned(), "on".to_owned()));
            at += key_len + 1;
            continue;
        };
        let mut value = String::new();
        let mut end = text.len();
        let mut chars = text[from..].char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == ',' && chars.next_if(|&(_, next)| next == ',').is_none() {
                end = from + i;
                break;
            }
            value.push(c);
        }
        pairs.push((key, value));
        at = end + 1;
    }
    pairs
}

#[test]
fn the_model_splits_like_qemu() {
    let split = |t: &str| qemu_opts(t, "backend");
    let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(split("socket,id=a"), [p("backend", "socket"), p("id", "a")]);
    assert_eq!(split("path=/a,,b,x=1"), [p("path", "/a,b"), p("x", "1")]);
    assert_eq!(split("path=/a,b"), [p("path", "/a"), p("b", "on")]);
    assert_eq!(split("x=1,,,y=2"), [p("x", "1,"), p("y", "2")]);
    assert_eq!(split("x=a=b,"), [p("x", "a=b")]);
    assert_eq!(split(""), []);
}

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
    (
        (text(), name(), 16u64..=(4 << 20), 1u32..=Cpus::MAX, display),
        boot,
        prop::collection::vec(drive(), 0..5),
        prop::collection::vec(network(), 0..3),
        prop::collection::vec(text(), 0..4),
    )
        .prop_map(
            |((binary, machine, mib, cpus, display), boot, storage, network, arguments)| VmConfig {
                binary: Program::new(&binary),
                machine,
                memory: Memory(Bytes(mib << 20)),
                cpus: Cpus(cpus),
                display,
                boot,
                storage,
                network,
                arguments,
                ..VmConfig::default()
            },
        )
}

/// One of maqet's options as QEMU reads it.
enum Read {
    Opts(Vec<(String, String)>),
    Json(serde_json::Map<String, Value>),
    Word(String),
    Bare,
}

impl Read {
    fn keys(&self) -> Vec<&str> {
        match self {
            Read::Opts(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
            Read::Json(map) => map.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    fn key_set(&self) -> BTreeSet<&str> {
        self.keys().into_iter().collect()
    }

    fn get(&self, key: &str) -> Option<&str> {
        match self {
            Read::Opts(pairs) => pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()),
            Read::Json(map) => map.get(key).and_then(Value::as_str),
            _ => None,
        }
    }
}

/// Split maqet's part of `argv` into (flag, what QEMU reads), refusing any
/// word at a flag position that is not one of maqet's flags.
fn read_options(own: &[String]) -> Result<Vec<(&str, Read)>, TestCaseError> {
    let mut options = Vec::new();
    let mut words = own.iter();
    while let Some(flag) = words.next() {
        let implied = match flag.as_str() {
            "-name" => Some("guest"),
            "-machine" | "-display" | "-netdev" => Some("type"),
            "-m" => Some("size"),
            "-smp" => Some("cpus"),
            "-chardev" => Some("backend"),
            "-mon" => Some("chardev"),
            "-fsdev" => Some("fsdriver"),
            "-vnc" => Some("vnc"),
            "-accel" => Some("accel"),
            "-add-fd" => Some("fd"),
            _ => None,
        };
        let read = match flag.as_str() {
            "-nodefaults" | "-no-user-config" => Read::Bare,
            "-blockdev" | "-device" => {
                let word = words.next().ok_or_else(|| fail(&format!("{flag} alone")))?;
                match serde_json::from_str(word) {
                    Ok(Value::Object(map)) => Read::Json(map),
                    _ => return Err(fail(&format!("{flag} {word:?} is not a JSON object"))),
                }
            }
            "-kernel" | "-initrd" | "-append" | "-bios" | "-pidfile" | "-cpu" | "-vga"
            | "-serial" => Read::Word(
                words
                    .next()
                    .ok_or_else(|| fail(&format!("{flag} alone")))?
                    .clone(),
            ),
            _ => {
                let implied =
                    implied.ok_or_else(|| fail(&format!("{flag:?} at a flag position")))?;
                let word = words.next().ok_or_else(|| fail(&format!("{flag} alone")))?;
                prop_assert!(!word.starts_with('{'), "{} {:?} reads as JSON", flag, word);
                Read::Opts(qemu_opts(word, implied))
            }
        };
        options.push((flag.as_str(), read));
    }
    Ok(options)
}

fn fail(message: &str) -> TestCaseError {
    TestCaseError::fail(message.to_owned())
}

fn check_invariant(plan: &Plan<'_>, argv: &[String]) -> Result<(), TestCaseError> {
    let c = plan.config;
    prop_assert_eq!(&argv[0], c.binary.as_str());
    let own_end = argv.len() - c.arguments.len();
    prop_assert_eq!(&argv[own_end..], c.arguments.as_slice());
    let options = read_options(&argv[1..own_end])?;
    let all = |flag: &str| -> Vec<&Read> {
        options
            .iter()
            .filter(|(f, _)| *f == flag)
            .map(|(_, r)| r)
            .collect()
    };

    let [name] = all("-name")[..] else {
        return Err(fail("not one -name"));
    };
    prop_assert_eq!(name.keys(), ["guest", "debug-threads"]);
    prop_assert_eq!(name.get("guest"), Some(plan.name));
    let [machine] = all("-machine")[..] else {
        return Err(fail("not one -machine"));
    };
    prop_assert_eq!(machine.keys(), ["type"]);
    prop_assert_eq!(machine.get("type"), Some(c.machine.as_str()));
    for (flag, keys) in [
        ("-m", &["size"][..]),
        ("-smp", &["cpus"]),
        ("-accel", &["accel"]),
        ("-display", &["type"]),
        ("-vnc", &["vnc"]),
        ("-mon", &["chardev", "mode"]),
    ] {
        for read in all(flag) {
            prop_assert_eq!(read.keys(), keys, "{}", flag);
        }
    }
    let chardevs = all("-chardev");
    prop_assert_eq!(chardevs.len(), 3);
    let sockets = ["backend", "id", "fd", "server", "wait"];
    let logged = [&sockets[..], &["logfile", "logappend"]].concat();
    let with_log: Vec<&&Read> = chardevs.iter().filter(|r| r.keys() != sockets).collect();
    let [console] = with_log[..] else {
        return Err(fail("not one chardev with a log"));
    };
    prop_assert_eq!(console.keys(), logged);
    prop_assert_eq!(
        console.get("logfile"),
        Some(plan.runtime.console_log.as_str())
    );

    let words = |flag: &str| -> Vec<String> {
        all(flag)
            .into_iter()
            .filter_map(|r| match r {
                Read::Word(w) => Some(w.clone()),
                _ => None,
            })
            .collect()
    };
    let as_str = |p: &Option<UserPath>| p.as_ref().map(|p| p.as_path().to_string());
    prop_assert_eq!(words("-kernel"), Vec::from_iter(as_str(&c.boot.kernel)));
    prop_assert_eq!(words("-initrd"), Vec::from_iter(as_str(&c.boot.initrd)));
    prop_assert_eq!(words("-append"), Vec::from_iter(c.boot.append.clone()));
    prop_assert_eq!(words("-bios"), Vec::from_iter(as_str(&c.boot.firmware)));
    prop_assert_eq!(words("-pidfile"), [plan.runtime.pidfile.to_string()]);

    // Storage: two block nodes per drive, one fsdev and one 9p device per
    // share, each carrying the user's text unchanged.
    let set = |keys: &[&'static str]| -> BTreeSet<&'static str> { keys.iter().copied().collect() };
    let blockdevs = all("-blockdev");
    let fsdevs = all("-fsdev");
    let devices = all("-device");
    let ninep: Vec<&&Read> = devices
        .iter()
        .filter(|d| d.get("driver") == Some("virtio-9p-pci"))
        .collect();
    let (mut nodes, mut shares) = (blockdevs.chunks(2), fsdevs.iter().zip(ninep));
    for drive in &c.storage {
        let (file, format) = match drive {
            Storage::Qcow2(q) => (
                q.file.as_ref().map_or_else(
                    || owned_image(plan.disks_dir, q.name.as_str()),
                    |f| f.as_path().to_owned(),
                ),
                "qcow2",
            ),
            Storage::Raw(r) => (r.file.as_path().to_owned(), "raw"),
            Storage::Cdrom(d) => (d.file.as_path().to_owned(), "raw"),
            Storage::Virtfs(v) => {
                let (fsdev, device) = shares.next().ok_or_else(|| fail("a share is missing"))?;
                let mut keys = vec!["fsdriver", "id", "path", "security_model"];
                if v.readonly {
                    keys.push("readonly");
                }
                prop_assert_eq!(fsdev.keys(), keys);
                prop_assert_eq!(fsdev.get("path"), Some(v.path.as_path().as_str()));
                prop_assert_eq!(
                    device.key_set(),
                    set(&["driver", "fsdev", "mount_tag", "id"])
                );
                prop_assert_eq!(device.get("mount_tag"), Some(v.tag()));
                continue;
            }
        };
        let [file_node, format_node] = nodes.next().ok_or_else(|| fail("a drive is missing"))?
        else {
            return Err(fail("an odd number of -blockdev"));
        };
        prop_assert_eq!(
            file_node.key_set(),
            set(&["driver", "filename", "node-name", "read-only"])
        );
        // The file goes by descriptor: its node names an fd set whose
        // `-add-fd`s carry the path, whole, as their `opaque`.
        let fd_set = file_node
            .get("filename")
            .and_then(|f| f.strip_prefix("/dev/fdset/"))
            .ok_or_else(|| fail("a file node not on an fd set"))?;
        let add_fds: Vec<&Read> = all("-add-fd")
            .into_iter()
            .filter(|r| r.get("set") == Some(fd_set))
            .collect();
        prop_assert!(!add_fds.is_empty(), "no -add-fd for set {}", fd_set);
        for add_fd in add_fds {
            prop_assert_eq!(add_fd.keys(), ["fd", "set", "opaque"]);
            prop_assert_eq!(add_fd.get("opaque"), Some(file.as_str()));
        }
        // A qcow2 node always names its backing (null without a chain):
        // QEMU never follows the name the image records.
        let keys: &[&'static str] = if format == "qcow2" {
            &["driver", "file", "node-name", "read-only", "backing"]
        } else {
            &["driver", "file", "node-name", "read-only"]
        };
        prop_assert_eq!(format_node.key_set(), set(keys));
        prop_assert_eq!(format_node.get("driver"), Some(format));
    }
    prop_assert!(
        nodes.next().is_none() && shares.next().is_none(),
        "extra storage options"
    );

    // Networks: one netdev with one hostfwd per forward, one NIC each.
    let netdevs = all("-netdev");
    prop_assert_eq!(netdevs.len(), c.network.len());
    let nics: Vec<&&Read> = devices
        .iter()
        .filter(|d| d.get("netdev").is_some())
        .collect();
    prop_assert_eq!(nics.len(), c.network.len());
    for ((netdev, nic), Network::User(user)) in netdevs.iter().zip(nics).zip(&c.network) {
        let mut keys = vec!["type", "id"];
        keys.extend(std::iter::repeat_n("hostfwd", user.forwards.len()));
        prop_assert_eq!(netdev.keys(), keys);
        prop_assert_eq!(nic.get("mac"), user.mac.as_ref().map(Mac::as_str));
    }

    // Every device has one of maqet's shapes.
    let shapes = [
        set(&["driver", "id"]),
        set(&["driver", "drive", "id"]),
        set(&["driver", "drive", "bus", "id"]),
        set(&["driver", "fsdev", "mount_tag", "id"]),
        set(&["driver", "netdev", "id"]),
        set(&["driver", "netdev", "id", "mac"]),
    ];
    for device in devices {
        prop_assert!(
            shapes.contains(&device.key_set()),
            "-device keys {:?}",
            device.key_set()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn escaped_text_is_one_whole_value(key in "[a-z]{1,8}", value in text(), more in text()) {
        let word = format!("{key}={},x={}", escape(&value), escape(&more));
        prop_assert_eq!(
            qemu_opts(&word, "implied"),
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
        check_invariant(&plan, &argv).map_err(|e| fail(&format!("{e}\nargv: {argv:?}")))?;
    }
}
