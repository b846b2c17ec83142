//! Text that is safe to print on a terminal.
//!
//! VM names are checked, but paths, QMP replies and whatever a user typed
//! can carry control characters: an escape sequence in a file name could
//! move the cursor, rewrite the screen or set the clipboard, and a
//! right-to-left override can make a path read differently from what it is.
//! Everything maqet prints for people goes through [`safe`]; JSON output
//! (`--json`, raw QMP results, events) goes through [`safe_json`] instead,
//! because `safe`'s `\u{..}` stand-ins are not JSON.

/// Replace control characters and bidirectional overrides with visible
/// stand-ins. With `keep_colour`, the SGR sequences maqet's own error
/// reports use (`ESC [ digits ; ... m`) are kept. Newlines and tabs are
/// kept: this is for whole reports, which are laid out with them.
pub fn safe(text: &str, keep_colour: bool) -> String {
    escape(text, keep_colour, true)
}

/// [`safe`] for one value in a table cell or a `key: value` line: newlines
/// and tabs become stand-ins too, so a value (an `append` line, a file
/// name, a snapshot name) cannot break its line, misalign its column or
/// print a line that looks like one of maqet's own.
pub fn safe_field(text: &str) -> String {
    escape(text, false, false)
}

fn escape(text: &str, keep_colour: bool, keep_layout: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\u{1b}'
            && keep_colour
            && let Some(len) = sgr_len(&text[i..])
        {
            out.push_str(&text[i..i + len]);
            // Skip the rest of the sequence.
            while chars.peek().is_some_and(|(j, _)| *j < i + len) {
                chars.next();
            }
            continue;
        }
        let layout = keep_layout && (c == '\n' || c == '\t');
        if (c.is_control() && !layout) || is_bidi_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// JSON that is also safe on a terminal: serde_json escapes U+0000–001F
/// only, so DEL, the C1 controls (U+009B is CSI on some terminals) and bidi
/// overrides become `\uXXXX` escapes too. They can only occur inside
/// strings, where the escape means the same character.
pub fn safe_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) || is_bidi_control(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The length of an SGR sequence at the start of `s`, if it is one.
fn sgr_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("\u{1b}[")?;
    let body = rest.find('m')?;
    rest[..body]
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b';')
        .then_some(2 + body + 1)
}

/// A character that reorders how a terminal shows the text around it.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(
            safe("a\u{1b}]52;c;aGk=\u{7}b", false),
            "a\\u{1b}]52;c;aGk=\\u{7}b"
        );
        assert_eq!(
            safe("x\u{1b}[2Jy", true),
            "x\\u{1b}[2Jy",
            "only colour survives"
        );
        assert_eq!(safe("evil\u{202e}gpj.exe", false), "evil\\u{202e}gpj.exe");
        assert_eq!(safe("line\nnext\tcol", false), "line\nnext\tcol");
    }

    #[test]
    fn a_field_stays_on_its_line() {
        assert_eq!(
            safe_field("x\u{1b}[2J\nstatus: ok\ty\u{202e}"),
            "x\\u{1b}[2J\\u{a}status: ok\\u{9}y\\u{202e}"
        );
        assert_eq!(safe(&safe_field("a\nb"), false), "a\\u{a}b", "escaped once");
    }

    #[test]
    fn json_escapes_what_serde_json_leaves_raw() {
        let json = serde_json::to_string("a\u{7f}b\u{9b}c\u{202e}d").expect("json");
        let safe = safe_json(&json);
        assert_eq!(safe, r#""a\u007fb\u009bc\u202ed""#);
        let back: String = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, "a\u{7f}b\u{9b}c\u{202e}d");
    }

    #[test]
    fn our_colours_survive_when_asked() {
        let red = "\u{1b}[31merror\u{1b}[0m";
        assert_eq!(safe(red, true), red);
        assert_eq!(safe(red, false), "\\u{1b}[31merror\\u{1b}[0m");
    }
}
