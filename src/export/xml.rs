//! A small XML writer for the libvirt export: elements with attributes and
//! text, indented two spaces, every value escaped.

use std::fmt::Write as _;

/// An XML document being written, one element per line.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
    open: Vec<&'static str>,
}

/// Attributes of one element, in order.
pub type Attrs<'a> = &'a [(&'a str, &'a str)];

impl Xml {
    /// `<tag attrs>`; later elements go inside it until [`Xml::close`].
    pub fn open(&mut self, tag: &'static str, attrs: Attrs<'_>) {
        self.start(tag, attrs);
        self.out.push_str(">\n");
        self.open.push(tag);
    }

    /// The `</tag>` of the innermost open element.
    pub fn close(&mut self) {
        let tag = self.open.pop().expect("close follows an open");
        self.indent();
        let _ = writeln!(self.out, "</{tag}>");
    }

    /// `<tag attrs/>`.
    pub fn empty(&mut self, tag: &str, attrs: Attrs<'_>) {
        self.start(tag, attrs);
        self.out.push_str("/>\n");
    }

    /// `<tag attrs>text</tag>`.
    pub fn text(&mut self, tag: &str, attrs: Attrs<'_>, text: &str) {
        self.start(tag, attrs);
        let _ = writeln!(self.out, ">{}</{tag}>", escape(text));
    }

    /// The document, every element closed.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }

    fn start(&mut self, tag: &str, attrs: Attrs<'_>) {
        self.indent();
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attrs {
            let _ = write!(self.out, " {name}='{}'", escape(value));
        }
    }

    fn indent(&mut self) {
        for _ in &self.open {
            self.out.push_str("  ");
        }
    }
}

/// `value` as XML text or a single-quoted attribute value. Whitespace other than a space
/// is written as a character reference, which a parser keeps as it is (a
/// literal tab or newline in an attribute would read back as a space); so
/// are the characters a terminal would act on (DEL, C1 controls, bidi
/// overrides), so the document prints as it is.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() || crate::terminal::is_bidi_control(c) => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// The first character XML 1.0 cannot carry at all, even escaped: the
/// control characters other than tab, newline and carriage return, and
/// U+FFFE/U+FFFF.
pub fn unwritable(value: &str) -> Option<char> {
    value.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_elements_nest() {
        let mut x = Xml::default();
        x.open("domain", &[("type", "qemu")]);
        x.text("name", &[], "a<b>&'c\"");
        x.empty("source", &[("file", "/x/it's\nhere\t\u{202e}\u{9b}")]);
        let doc = x.finish();
        assert_eq!(
            doc,
            "<domain type='qemu'>\n  <name>a&lt;b&gt;&amp;&apos;c\"</name>\n  \
             <source file='/x/it&apos;s&#10;here&#9;&#8238;&#155;'/>\n</domain>\n"
        );
    }

    #[test]
    fn only_what_xml_cannot_carry_is_unwritable() {
        assert_eq!(unwritable("tab\tnewline\ncr\r\u{7f}\u{85}é"), None);
        assert_eq!(unwritable("bell\u{7}"), Some('\u{7}'));
        assert_eq!(unwritable("esc\u{1b}[1m"), Some('\u{1b}'));
        assert_eq!(unwritable("\u{fffe}"), Some('\u{fffe}'));
    }
}
