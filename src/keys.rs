//! Keyboard input for `qmp keys` and `qmp type`: QEMU's key codes, and US
//! layout text turned into key presses — all checked before anything is sent.

/// Every QKeyCode of QEMU 7.2 (`query-qmp-schema`, enum QKeyCode), in
/// QEMU's order.
pub const QCODES: [&str; 150] = [
    "unmapped",
    "shift",
    "shift_r",
    "alt",
    "alt_r",
    "ctrl",
    "ctrl_r",
    "menu",
    "esc",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "0",
    "minus",
    "equal",
    "backspace",
    "tab",
    "q",
    "w",
    "e",
    "r",
    "t",
    "y",
    "u",
    "i",
    "o",
    "p",
    "bracket_left",
    "bracket_right",
    "ret",
    "a",
    "s",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "semicolon",
    "apostrophe",
    "grave_accent",
    "backslash",
    "z",
    "x",
    "c",
    "v",
    "b",
    "n",
    "m",
    "comma",
    "dot",
    "slash",
    "asterisk",
    "spc",
    "caps_lock",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
    "f7",
    "f8",
    "f9",
    "f10",
    "num_lock",
    "scroll_lock",
    "kp_divide",
    "kp_multiply",
    "kp_subtract",
    "kp_add",
    "kp_enter",
    "kp_decimal",
    "sysrq",
    "kp_0",
    "kp_1",
    "kp_2",
    "kp_3",
    "kp_4",
    "kp_5",
    "kp_6",
    "kp_7",
    "kp_8",
    "kp_9",
    "less",
    "f11",
    "f12",
    "print",
    "home",
    "pgup",
    "pgdn",
    "end",
    "left",
    "up",
    "down",
    "right",
    "insert",
    "delete",
    "stop",
    "again",
    "props",
    "undo",
    "front",
    "copy",
    "open",
    "paste",
    "find",
    "cut",
    "lf",
    "help",
    "meta_l",
    "meta_r",
    "compose",
    "pause",
    "ro",
    "hiragana",
    "henkan",
    "yen",
    "muhenkan",
    "katakanahiragana",
    "kp_comma",
    "kp_equals",
    "power",
    "sleep",
    "wake",
    "audionext",
    "audioprev",
    "audiostop",
    "audioplay",
    "audiomute",
    "volumeup",
    "volumedown",
    "mediaselect",
    "mail",
    "calculator",
    "computer",
    "ac_home",
    "ac_back",
    "ac_forward",
    "ac_refresh",
    "ac_bookmarks",
    "lang1",
    "lang2",
];

/// A key press: the keys held together, e.g. `["shift", "a"]`.
pub type Chord = Vec<&'static str>;

/// Find a QEMU key code by name (case-insensitive), or the nearest names.
pub fn qcode(name: &str) -> Result<&'static str, Vec<&'static str>> {
    let lower = name.to_ascii_lowercase();
    if let Some(code) = QCODES.iter().find(|c| **c == lower) {
        return Ok(code);
    }
    // Names people reach for that QEMU spells differently.
    let alias = match lower.as_str() {
        "enter" | "return" => Some("ret"),
        "space" => Some("spc"),
        "escape" => Some("esc"),
        "control" | "ctl" => Some("ctrl"),
        "del" => Some("delete"),
        "ins" => Some("insert"),
        "pageup" => Some("pgup"),
        "pagedown" => Some("pgdn"),
        "super" | "win" | "windows" => Some("meta_l"),
        _ => None,
    };
    if let Some(code) = alias {
        return Ok(code);
    }
    let mut near: Vec<(usize, &'static str)> = QCODES
        .iter()
        .map(|c| (distance(&lower, c), *c))
        .filter(|(d, c)| {
            *d <= 2 || c.starts_with(&lower) || (lower.len() > 2 && c.contains(&lower))
        })
        .collect();
    near.sort();
    Err(near.into_iter().take(5).map(|(_, c)| c).collect())
}

/// The keys that type `c` on a US keyboard, or None.
pub fn chord_for(c: char) -> Option<Chord> {
    const SHIFTED_DIGITS: [(char, &str); 10] = [
        ('!', "1"),
        ('@', "2"),
        ('#', "3"),
        ('$', "4"),
        ('%', "5"),
        ('^', "6"),
        ('&', "7"),
        ('*', "8"),
        ('(', "9"),
        (')', "0"),
    ];
    const PUNCTUATION: [(char, char, &str); 11] = [
        // (plain, shifted, key)
        ('-', '_', "minus"),
        ('=', '+', "equal"),
        ('[', '{', "bracket_left"),
        (']', '}', "bracket_right"),
        ('\\', '|', "backslash"),
        (';', ':', "semicolon"),
        ('\'', '"', "apostrophe"),
        ('`', '~', "grave_accent"),
        (',', '<', "comma"),
        ('.', '>', "dot"),
        ('/', '?', "slash"),
    ];
    let key = |name: &str| QCODES.iter().copied().find(|q| *q == name);
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        return key(&c.to_string()).map(|k| vec![k]);
    }
    if c.is_ascii_uppercase() {
        return key(&c.to_ascii_lowercase().to_string()).map(|k| vec!["shift", k]);
    }
    match c {
        ' ' => return Some(vec!["spc"]),
        '\t' => return Some(vec!["tab"]),
        '\n' => return Some(vec!["ret"]),
        _ => {}
    }
    if let Some((_, k)) = SHIFTED_DIGITS.iter().find(|(s, _)| *s == c) {
        return key(k).map(|k| vec!["shift", k]);
    }
    PUNCTUATION.iter().find_map(|(plain, shifted, k)| {
        if *plain == c {
            key(k).map(|k| vec![k])
        } else if *shifted == c {
            key(k).map(|k| vec!["shift", k])
        } else {
            None
        }
    })
}

/// Turn text into key presses, refusing the whole text if any character
/// cannot be typed (nothing is sent then).
pub fn chords_for(text: &str) -> Result<Vec<Chord>, (usize, char)> {
    text.chars()
        .enumerate()
        .map(|(i, c)| chord_for(c).ok_or((i, c)))
        .collect()
}

fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_and_aliases_resolve() {
        assert_eq!(qcode("ctrl"), Ok("ctrl"));
        assert_eq!(qcode("F2"), Ok("f2"));
        assert_eq!(qcode("Enter"), Ok("ret"));
        assert_eq!(qcode("space"), Ok("spc"));
    }

    #[test]
    fn unknown_keys_suggest_close_names() {
        let near = qcode("ctlr").expect_err("unknown");
        assert!(near.contains(&"ctrl"), "{near:?}");
        let near = qcode("bracket").expect_err("unknown");
        assert!(near.contains(&"bracket_left"), "{near:?}");
    }

    #[test]
    fn us_text_becomes_key_presses() {
        let chords = chords_for("Hi! a_b\n").expect("typable");
        assert_eq!(
            chords,
            vec![
                vec!["shift", "h"],
                vec!["i"],
                vec!["shift", "1"],
                vec!["spc"],
                vec!["a"],
                vec!["shift", "minus"],
                vec!["b"],
                vec!["ret"],
            ]
        );
        assert_eq!(
            chords_for("~|\"?"),
            Ok(vec![
                vec!["shift", "grave_accent"],
                vec!["shift", "backslash"],
                vec!["shift", "apostrophe"],
                vec!["shift", "slash"],
            ])
        );
    }

    #[test]
    fn untypable_characters_are_refused_with_their_position() {
        assert_eq!(chords_for("ok é"), Err((3, 'é')));
        assert_eq!(chords_for("\u{7}"), Err((0, '\u{7}')));
    }

    #[test]
    fn every_key_used_for_typing_is_a_real_qcode() {
        for c in (' '..='~').chain(['\n', '\t']) {
            let chord = chord_for(c).unwrap_or_else(|| panic!("{c:?} is typable"));
            for key in chord {
                assert!(QCODES.contains(&key), "{key}");
            }
        }
    }
}
