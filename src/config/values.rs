//! Small validated values of a VM config. Each checks itself while the RON
//! file is parsed, so an error points at the value that is wrong.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// A VM, drive or network name: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
///
/// Names end up in file names, QEMU ids and table output, so they are kept to
/// characters that need no quoting anywhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

pub const NAME_RULE: &str = "a name is 1 to 64 characters: letters, digits, `.`, `_` and `-`, starting with a letter or digit";

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if first_ok && rest_ok && s.len() <= 64 {
            Ok(Name(s.to_owned()))
        } else {
            Err(format!("`{s}` is not a valid name: {NAME_RULE}"))
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A quantity of bytes written with a binary unit: `512M`, `2G`, `20GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

const KIB: u64 = 1024;
const MIB: u64 = KIB * 1024;
const GIB: u64 = MIB * 1024;
const TIB: u64 = GIB * 1024;

impl Bytes {
    /// Parse `<number><unit>`, where the unit is K, M, G or T (optionally
    /// followed by `iB` or `B`), case-insensitive. A bare number is refused:
    /// QEMU reads `-m 512` as MiB but `qemu-img create x 512` as bytes, and a
    /// config should not depend on which one the reader remembers.
    pub fn parse(text: &str) -> Result<Bytes, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        if digits.is_empty() {
            return Err(format!(
                "`{text}` is not a size: write a whole number and a unit, like \"512M\" or \"2G\""
            ));
        }
        let unit_mult = match unit.trim().to_ascii_uppercase().as_str() {
            "K" | "KB" | "KIB" => KIB,
            "M" | "MB" | "MIB" => MIB,
            "G" | "GB" | "GIB" => GIB,
            "T" | "TB" | "TIB" => TIB,
            "" => {
                return Err(format!(
                    "`{text}` has no unit: write \"{text}M\" or \"{text}G\" (K, M, G, T are binary units)"
                ));
            }
            other => {
                return Err(format!(
                    "`{other}` in `{text}` is not a unit: use K, M, G or T (binary units)"
                ));
            }
        };
        let too_big = || format!("`{text}` is too large");
        let number: u64 = digits.parse().map_err(|_| too_big())?;
        number.checked_mul(unit_mult).map(Bytes).ok_or_else(too_big)
    }

    /// The size in the largest unit that divides it exactly.
    pub fn human(self) -> String {
        let n = self.0;
        for (unit, mult) in [("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)] {
            if n >= mult && n.is_multiple_of(mult) {
                return format!("{}{unit}", n / mult);
            }
        }
        format!("{n}B")
    }

    /// The size rounded to one decimal in the largest unit it reaches, for
    /// figures that are not whole units (snapshot state sizes).
    pub fn human_approx(self) -> String {
        let n = self.0 as f64;
        for (unit, mult) in [("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)] {
            if self.0 >= mult {
                return format!("{:.1}{unit}", n / mult as f64);
            }
        }
        format!("{}B", self.0)
    }

    pub fn mib(self) -> u64 {
        self.0 / MIB
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.human())
    }
}

/// Memory given to a guest: whole MiB, from 16 MiB to 4 TiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory(pub Bytes);

impl Memory {
    pub const MIN: Bytes = Bytes(16 * MIB);
    pub const MAX: Bytes = Bytes(4 * TIB);

    pub fn parse(text: &str) -> Result<Memory, String> {
        let bytes = Bytes::parse(text)?;
        if !bytes.0.is_multiple_of(MIB) {
            return Err(format!("memory `{text}` is not a whole number of MiB"));
        }
        if bytes < Self::MIN || bytes > Self::MAX {
            return Err(format!(
                "memory `{text}` is out of range: give between {} and {}",
                Self::MIN,
                Self::MAX
            ));
        }
        Ok(Memory(bytes))
    }
}

/// The size of a disk image: from 1 MiB to 64 TiB (qcow2's own limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSize(pub Bytes);

impl DiskSize {
    pub const MIN: Bytes = Bytes(MIB);
    pub const MAX: Bytes = Bytes(64 * TIB);

    pub fn parse(text: &str) -> Result<DiskSize, String> {
        let bytes = Bytes::parse(text)?;
        if bytes < Self::MIN || bytes > Self::MAX {
            return Err(format!(
                "disk size `{text}` is out of range: give between {} and {}",
                Self::MIN,
                Self::MAX
            ));
        }
        if !bytes.0.is_multiple_of(512) {
            return Err(format!("disk size `{text}` is not a multiple of 512 bytes"));
        }
        Ok(DiskSize(bytes))
    }
}

/// Sizes are stored and serialized as their text form ("2G"), which reads
/// well in `info` and round-trips exactly.
macro_rules! size_serde {
    ($ty:ident) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0.human())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // A config file (RON) may hold a bare number: refuse it with
                // the unit hint. The store (postcard) has the text only.
                let text = if d.is_human_readable() {
                    d.deserialize_any(SizeText)?
                } else {
                    String::deserialize(d)?
                };
                $ty::parse(&text).map_err(de::Error::custom)
            }
        }
    };
}

/// A size as written in a config: text, or a number without a unit, which
/// gets the same message as on the command line.
struct SizeText;

impl de::Visitor<'_> for SizeText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size in quotes with a unit, like \"512M\" or \"2G\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<String, E> {
        Err(E::custom(format!(
            "`{n}` has no unit: write the size in quotes with one, like \"{n}M\" or \"{n}G\""
        )))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
        Err(E::custom(format!(
            "`{n}` is not a size: write a whole number and a unit in quotes, like \"512M\""
        )))
    }
}

size_serde!(Memory);

impl FromStr for Memory {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Memory::parse(s)
    }
}
size_serde!(DiskSize);

impl FromStr for DiskSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DiskSize::parse(s)
    }
}

/// Virtual CPUs: 1 to 1024 (QEMU's q35 limit with x2APIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpus(pub u32);

impl Cpus {
    pub const MAX: u32 = 1024;

    pub fn new(n: u64) -> Result<Cpus, String> {
        match u32::try_from(n) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Cpus(n)),
            _ => Err(format!("cpus must be between 1 and {}, not {n}", Self::MAX)),
        }
    }
}

impl FromStr for Cpus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n: u64 = s
            .parse()
            .map_err(|_| format!("cpus must be a whole number, not `{s}`"))?;
        Cpus::new(n)
    }
}

// Read and written as i64 both ways: postcard is not self-describing, and a
// negative count in RON should get our message, not "integer out of bounds".
impl Serialize for Cpus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(i64::from(self.0))
    }
}

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        let n = u64::try_from(n).map_err(|_| {
            de::Error::custom(format!("cpus must be between 1 and {}, not {n}", Cpus::MAX))
        })?;
        Cpus::new(n).map_err(de::Error::custom)
    }
}

/// A virtio-9p mount tag: what the guest names in `mount -t 9p TAG DIR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MountTag(String);

impl MountTag {
    /// virtio-9p stores the tag in a 31-byte config field.
    pub const MAX_LEN: usize = 31;

    pub fn new(text: &str) -> Result<MountTag, String> {
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(MountTag(text.to_owned()))
        } else {
            Err(format!(
                "mount tag `{text}` must be 1 to {} letters, digits, `.`, `_` or `-`",
                Self::MAX_LEN
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for MountTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        MountTag::new(&text).map_err(de::Error::custom)
    }
}

/// A Unix account name for the guest (cloud-init `users`): what Debian's
/// `adduser` takes by default, 1 to 32 of `a-z`, `0-9`, `_`, `-`, starting
/// with a letter or `_`. Nothing in it can reach YAML syntax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Account(String);

impl Account {
    pub fn new(text: &str) -> Result<Account, String> {
        let mut chars = text.chars();
        let ok = text.len() <= 32
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
        if ok {
            Ok(Account(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not an account name: 1 to 32 of a-z, 0-9, `_` and `-`, starting with \
                 a letter or `_`"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Account::new(&text).map_err(de::Error::custom)
    }
}

/// A host name (RFC 1123 label): 1 to 63 letters, digits and `-`, not
/// starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    pub fn new(text: &str) -> Result<Hostname, String> {
        let ok = !text.is_empty()
            && text.len() <= 63
            && !text.starts_with('-')
            && !text.ends_with('-')
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if ok {
            Ok(Hostname(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not a host name: 1 to 63 letters, digits and `-`, not starting or \
                 ending with `-`"
            ))
        }
    }

    /// A VM name as a host name: `.` and `_` become `-`.
    pub fn from_name(name: &str) -> Hostname {
        let text: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let text = text.trim_matches('-');
        Hostname::new(&text[..text.len().min(63)]).unwrap_or_else(|_| Hostname("vm".to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Hostname {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Hostname::new(&text).map_err(de::Error::custom)
    }
}

/// How many free PCIe root ports maqet adds on a q35 machine for
/// hot-plugging (`hotplug_ports`): 0 to 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotplugPorts(pub u8);

impl HotplugPorts {
    /// Four slots of eight functions each (docs/config.md): past that, the
    /// ports would start to crowd the slots QEMU gives other devices.
    pub const MAX: u8 = 32;
    /// What a q35 VM gets when its config says nothing, as libvirt does.
    pub const DEFAULT: HotplugPorts = HotplugPorts(4);

    pub fn new(n: i64) -> Result<HotplugPorts, String> {
        match u8::try_from(n) {
            Ok(n) if n <= Self::MAX => Ok(HotplugPorts(n)),
            _ => Err(format!(
                "hotplug_ports must be between 0 and {}, not {n}",
                Self::MAX
            )),
        }
    }
}

// As i64 both ways, like `Cpus`: a negative or huge count in RON gets our
// message, not "integer out of bounds".
impl Serialize for HotplugPorts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(i64::from(self.0))
    }
}

impl<'de> Deserialize<'de> for HotplugPorts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HotplugPorts::new(i64::deserialize(d)?).map_err(de::Error::custom)
    }
}
