//! The QMP client's invariant, against a fake QEMU that sent a known
//! stream: every reply, command error and event the client returns is one
//! *whole* line of that stream (never the tail of an overlong line, never
//! two lines glued), of the right kind, within the reply cap; a reply's id
//! is absent or one the client sent; and nothing waits out a timeout when
//! QEMU has closed its side.

use serde_json::{Map, Value};

use crate::qmp::QmpError;

/// What the fake QEMU sent: the whole lines of its stream (each ended by
/// `\n`) that are JSON objects, with their length without the newline.
pub struct Sent {
    lines: Vec<(usize, Map<String, Value>)>,
}

impl Sent {
    pub fn new(stream: &[u8]) -> Sent {
        let mut pieces: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
        // What follows the last newline is not a line.
        pieces.pop();
        let lines = pieces
            .into_iter()
            .filter_map(|line| match serde_json::from_slice(line) {
                Ok(Value::Object(map)) => Some((line.len(), map)),
                _ => None,
            })
            .collect();
        Sent { lines }
    }

    fn any(&self, pred: impl Fn(usize, &Map<String, Value>) -> bool) -> bool {
        self.lines.iter().any(|(len, map)| pred(*len, map))
    }

    /// The outcome of `execute` when the client has sent commands with ids
    /// 2 to `sent` (1 is `qmp_capabilities`) under a reply cap of `cap`
    /// bytes.
    pub fn check_execute(
        &self,
        result: &Result<Value, QmpError>,
        sent: u64,
        cap: usize,
    ) -> Result<(), String> {
        let reply_line = |len: usize, m: &Map<String, Value>| {
            len <= cap
                && !m.contains_key("QMP")
                && !m.contains_key("event")
                && m.get("id")
                    .is_none_or(|id| id.as_u64().is_some_and(|id| (2..=sent).contains(&id)))
        };
        match result {
            Ok(value) => {
                if !self.any(|len, m| reply_line(len, m) && m.get("return") == Some(value)) {
                    return Err(format!("a reply {value} that is no whole reply line sent"));
                }
            }
            Err(QmpError::Command { class, desc }) => {
                let error_line = |len: usize, m: &Map<String, Value>| {
                    reply_line(len, m)
                        && !m.contains_key("return")
                        && m.get("error").and_then(|e| e.get("class"))
                            == Some(&Value::from(class.as_str()))
                        && m.get("error").and_then(|e| e.get("desc"))
                            == Some(&Value::from(desc.as_str()))
                };
                if !self.any(error_line) {
                    return Err(format!(
                        "an error {class}: {desc} that is no whole error line sent"
                    ));
                }
            }
            Err(QmpError::Timeout { what }) => {
                return Err(format!("timed out waiting for {what}, after QEMU closed"));
            }
            Err(err) => drop(err.to_string()),
        }
        Ok(())
    }

    /// The outcome of `next_event`.
    pub fn check_next_event(&self, result: &Result<Option<Value>, QmpError>) -> Result<(), String> {
        if let Ok(Some(event)) = result {
            let event_line = |_, m: &Map<String, Value>| {
                m.get("event").is_some_and(Value::is_string)
                    && !m.contains_key("QMP")
                    && Value::Object(m.clone()) == *event
            };
            if !self.any(event_line) {
                return Err(format!("an event {event} that is no whole event line sent"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_lines_of_the_right_kind_pass() {
        let sent =
            Sent::new(b"{\"return\": 1, \"id\": 2}\r\n{\"event\": \"STOP\"}\n{\"return\": 3}");
        assert!(sent.check_execute(&Ok(Value::from(1)), 2, 1024).is_ok());
        // Over the cap, an id not sent yet, a line without its newline.
        assert!(sent.check_execute(&Ok(Value::from(1)), 2, 10).is_err());
        assert!(sent.check_execute(&Ok(Value::from(1)), 1, 1024).is_err());
        assert!(sent.check_execute(&Ok(Value::from(3)), 2, 1024).is_err());
        let stop = serde_json::json!({"event": "STOP"});
        assert!(sent.check_next_event(&Ok(Some(stop))).is_ok());
        let start = serde_json::json!({"event": "START"});
        assert!(sent.check_next_event(&Ok(Some(start))).is_err());
        let timeout = QmpError::Timeout {
            what: "the reply".into(),
        };
        assert!(sent.check_execute(&Err(timeout), 2, 1024).is_err());
    }
}
