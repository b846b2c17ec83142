//! QEMU's `KEY=VALUE,...` option syntax, as QEMU itself splits it
//! (`get_opt_name_value` in util/qemu-option.c; util/keyval.c agrees on
//! everything used here).

/// The (key, value) pairs QEMU reads from `text`.
///
/// - A key runs to the first `=` or `,`.
/// - A value runs to the next `,` that is not doubled; `,,` is one literal
///   comma.
/// - A first element without `=` is the value of the option's `implied` key
///   (`-chardev socket,...` sets `backend`).
/// - A later element without `=` is a flag: QEMU reads `key` as `key=on`.
/// - A trailing comma ends the list; an empty string has no pairs.
pub fn parse(text: &str, implied: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut at = 0;
    let mut first = true;
    while at < text.len() {
        let rest = &text[at..];
        let key_len = rest.find(['=', ',']).unwrap_or(rest.len());
        let (key, value, end) = if rest[key_len..].starts_with('=') {
            let (value, end) = value_at(text, at + key_len + 1);
            (rest[..key_len].to_owned(), value, end)
        } else if first {
            let (value, end) = value_at(text, at);
            (implied.to_owned(), value, end)
        } else {
            (rest[..key_len].to_owned(), "on".to_owned(), at + key_len)
        };
        pairs.push((key, value));
        first = false;
        // Skip the comma that ended the element.
        at = end + 1;
    }
    pairs
}

/// The value starting at byte `start`, and the index of the comma (or the end
/// of `text`) that ends it.
fn value_at(text: &str, start: usize) -> (String, usize) {
    let mut value = String::new();
    let mut chars = text[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == ',' {
            if chars.peek().is_some_and(|&(_, next)| next == ',') {
                chars.next();
                value.push(',');
                continue;
            }
            return (value, start + i);
        }
        value.push(c);
    }
    (value, text.len())
}

/// The keys of [`parse`], in order.
pub fn keys(text: &str, implied: &str) -> Vec<String> {
    parse(text, implied).into_iter().map(|(k, _)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text, "backend")
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn splits_like_qemu() {
        assert_eq!(
            pairs("socket,id=a,server=on"),
            [p("backend", "socket"), p("id", "a"), p("server", "on")]
        );
        assert_eq!(pairs("path=/a,,b,x=1"), [p("path", "/a,b"), p("x", "1")]);
        assert_eq!(pairs("path=/a,b"), [p("path", "/a"), p("b", "on")]);
        assert_eq!(pairs("a,,b,c=d"), [p("backend", "a,b"), p("c", "d")]);
        assert_eq!(pairs("x=1,"), [p("x", "1")]);
        assert_eq!(pairs("x=1,,,y=2"), [p("x", "1,"), p("y", "2")]);
        assert_eq!(pairs("x=a=b"), [p("x", "a=b")]);
        assert_eq!(pairs(""), []);
        assert_eq!(pairs("x=1,,"), [p("x", "1,")]);
        assert_eq!(pairs("x=1,,,"), [p("x", "1,")]);
        assert_eq!(pairs("x=é,y=ü"), [p("x", "é"), p("y", "ü")]);
    }
}
