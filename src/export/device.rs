//! `-device DRIVER,KEY=VALUE,...` from a config's `arguments`, rewritten in
//! QEMU's JSON form for a libvirt domain.
//!
//! libvirt gives its own devices as JSON and fixed PCI addresses; QEMU
//! creates devices written the old way first, so one of those takes a slot
//! libvirt assigned ("PCI: slot 1 function 0 not available for VGA"). In
//! JSON QEMU checks each value's type strictly (`"chassis": "1"` fails:
//! "Parameter 'chassis' expects uint64"), so the types are asked of the
//! VM's own QEMU (`-device DRIVER,help`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::unmappable;
use crate::error::Result;

/// A property's QEMU type, as `-device DRIVER,help` names it: `uint32`,
/// `bool`, `str`, `OnOffAuto`, `link<...>`, ...
pub type Types = BTreeMap<String, String>;

/// Split QEMU's `KEY=VALUE,...` syntax into its parts: a comma doubled is
/// a comma in the value.
pub fn split_options(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                parts.last_mut().expect("never empty").push(',');
            } else {
                parts.push(String::new());
            }
        } else {
            parts.last_mut().expect("never empty").push(c);
        }
    }
    parts
}

/// The driver a `-device` value names (its first part, or `driver=`).
pub fn driver(text: &str) -> Option<String> {
    let parts = split_options(text);
    let first = parts.first()?;
    match first.split_once('=') {
        None => Some(first.clone()),
        Some(("driver", d)) => Some(d.to_owned()),
        Some(_) => parts
            .iter()
            .find_map(|p| p.strip_prefix("driver=").map(str::to_owned)),
    }
}

/// The property types of `-device DRIVER,help` output.
pub fn parse_help(text: &str) -> Types {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim_start().split_once("=<")?;
            let end = rest.find('>')?;
            // `link<rng-backend>` nests one more pair.
            let kind = if rest[..end].contains('<') {
                rest.split_once(">>").map_or(&rest[..end], |(k, _)| k)
            } else {
                &rest[..end]
            };
            Some((name.to_owned(), kind.to_owned()))
        })
        .collect()
}

/// `-device` `text` as a JSON object, each value typed as `types` says.
pub fn to_json(text: &str, types: &Types) -> Result<Value> {
    let refuse = |why: String| {
        unmappable(
            format!("arguments: `-device {text}`: {why}"),
            "write the device in QEMU's JSON form in `arguments` \
             (`-device {\"driver\": ..., ...}`), which libvirt passes as it is",
        )
    };
    let mut object = Map::new();
    for (i, part) in split_options(text).into_iter().enumerate() {
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None if i == 0 => ("driver".to_owned(), part),
            // A bare `key` is QEMU's deprecated short form of `key=on`.
            None => (part, "on".to_owned()),
        };
        let typed = if key == "driver" || key == "id" || key == "bus" || key == "addr" {
            // addr is an int32 property that takes text ("06.0").
            Value::String(value)
        } else {
            let kind = types
                .get(&key)
                .ok_or_else(|| refuse(format!("this QEMU's device has no property `{key}`")))?;
            typed_value(kind, &value).ok_or_else(|| {
                refuse(format!(
                    "`{key}={value}` is not a {kind} as JSON needs it (QEMU's own syntax \
                     accepts more forms)"
                ))
            })?
        };
        object.insert(key, typed);
    }
    Ok(Value::Object(object))
}

/// `value` as JSON for a property of QEMU type `kind`.
fn typed_value(kind: &str, value: &str) -> Option<Value> {
    if let Some((signed, bits)) = integer_kind(kind) {
        let n = parse_integer(value)?;
        let (min, max) = if signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        };
        if !(min..=max).contains(&n) {
            return None;
        }
        return if n < 0 {
            i64::try_from(n).ok().map(Value::from)
        } else {
            u64::try_from(n).ok().map(Value::from)
        };
    }
    match kind {
        "bool" => match value {
            "on" | "yes" | "true" | "y" => Some(Value::Bool(true)),
            "off" | "no" | "false" | "n" => Some(Value::Bool(false)),
            _ => None,
        },
        "size" => crate::config::Bytes::parse(value)
            .ok()
            .map(|b| Value::from(b.0)),
        _ => Some(Value::String(value.to_owned())),
    }
}

/// `int8` ... `uint64`: signed, and how many bits.
fn integer_kind(kind: &str) -> Option<(bool, u32)> {
    let (signed, bits) = match kind.strip_prefix('u') {
        Some(rest) => (false, rest.strip_prefix("int")?),
        None => (true, kind.strip_prefix("int")?),
    };
    match bits.parse() {
        Ok(bits @ (8 | 16 | 32 | 64)) => Some((signed, bits)),
        _ => None,
    }
}

/// An integer as QEMU's option parser reads it (`strtoll` base 0): `0x`
/// hexadecimal, a leading `0` octal, else decimal; an optional sign.
fn parse_integer(value: &str) -> Option<i128> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let n = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i128::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i128::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse::<i128>().ok()?
    };
    // `from_str_radix` takes a sign of its own; QEMU would not.
    if digits.starts_with(['+', '-']) || digits.get(2..).is_some_and(|d| d.starts_with(['+', '-']))
    {
        return None;
    }
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RNG_HELP: &str = "virtio-rng-pci options:
  acpi-index=<uint32>    -  (default: 0)
  addr=<int32>           - Slot and optional function number, example: 06.0 or 06 (default: -1)
  disable-legacy=<OnOffAuto> - on/off/auto (default: \"auto\")
  failover_pair_id=<str>
  max-bytes=<uint64>     -  (default: 9223372036854775807)
  multifunction=<bool>   - on/off (default: false)
  rng=<link<rng-backend>>
  virtio-backend=<child<virtio-rng-device>>
";

    #[test]
    fn help_output_gives_each_property_its_type() {
        let types = parse_help(RNG_HELP);
        assert_eq!(types["max-bytes"], "uint64");
        assert_eq!(types["multifunction"], "bool");
        assert_eq!(types["disable-legacy"], "OnOffAuto");
        assert_eq!(types["rng"], "link<rng-backend");
        assert_eq!(types.len(), 8);
    }

    #[test]
    fn a_device_becomes_typed_json() {
        let types = parse_help(RNG_HELP);
        let json = to_json(
            "virtio-rng-pci,id=rng0,max-bytes=0x400,multifunction,disable-legacy=on,failover_pair_id=a,,b,addr=06.0",
            &types,
        )
        .unwrap();
        assert_eq!(
            json.to_string(),
            r#"{"addr":"06.0","disable-legacy":"on","driver":"virtio-rng-pci","failover_pair_id":"a,b","id":"rng0","max-bytes":1024,"multifunction":true}"#
        );
        assert_eq!(
            driver("driver=virtio-rng-pci,id=x").as_deref(),
            Some("virtio-rng-pci")
        );
        assert_eq!(driver("id=x,driver=e1000").as_deref(), Some("e1000"));
    }

    #[test]
    fn integers_read_as_qemu_reads_them() {
        assert_eq!(parse_integer("010"), Some(8));
        assert_eq!(parse_integer("0x1F"), Some(31));
        assert_eq!(parse_integer("0"), Some(0));
        assert_eq!(parse_integer("-5"), Some(-5));
        assert_eq!(parse_integer("+5"), Some(5));
        assert_eq!(parse_integer("09"), None);
        assert_eq!(parse_integer("--5"), None);
        assert_eq!(parse_integer("0x-1"), None);
        assert_eq!(typed_value("uint8", "256"), None);
        assert_eq!(typed_value("uint8", "255"), Some(Value::from(255u64)));
        assert_eq!(typed_value("int32", "2147483648"), None);
        assert_eq!(
            typed_value("int32", "-2147483648"),
            Some(Value::from(-2147483648i64))
        );
        assert_eq!(typed_value("uint32", "-1"), None);
        assert_eq!(typed_value("uint16", "010"), Some(Value::from(8u64)));
    }

    #[test]
    fn what_cannot_be_typed_is_refused() {
        let types = parse_help(RNG_HELP);
        let err = to_json("virtio-rng-pci,period=5", &types).unwrap_err();
        assert_eq!(
            err.to_string(),
            "arguments: `-device virtio-rng-pci,period=5`: this QEMU's device has no property `period`"
        );
        let err = to_json("virtio-rng-pci,max-bytes=lots", &types).unwrap_err();
        assert!(
            err.to_string().contains("`max-bytes=lots` is not a uint64"),
            "{err}"
        );
    }
}
