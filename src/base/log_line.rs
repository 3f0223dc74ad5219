//! A JSON log line written directly, for the line every request writes (the access log):
//! no `serde_json::Value` map to build and walk. Other lines, rare, use `serde_json`.

use std::fmt::Write;

/// `{"key":value,...}` with string values escaped per RFC 8259.
pub struct LogLine(String);

impl LogLine {
    pub fn new() -> Self {
        let mut s = String::with_capacity(192);
        s.push('{');
        Self(s)
    }

    fn key(&mut self, key: &'static str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        escape_into(&mut self.0, key);
        self.0.push(':');
    }

    pub fn str(mut self, key: &'static str, value: &str) -> Self {
        self.key(key);
        escape_into(&mut self.0, value);
        self
    }

    pub fn num(mut self, key: &'static str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

impl Default for LogLine {
    fn default() -> Self {
        Self::new()
    }
}

/// A JSON string: quotes, backslashes and control characters escaped; the rest as it is
/// (valid UTF-8 is valid JSON).
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 || c == '\u{7f}' => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_line_is_the_json_of_its_fields_in_order() {
        let line = LogLine::new()
            .str("event", "access")
            .num("time", 1_800_000_000)
            .str("path", "/a\"b\\c\n\u{1}\u{7f}é")
            .finish();
        assert_eq!(
            line,
            r#"{"event":"access","time":1800000000,"path":"/a\"b\\c\n\u0001\u007fé"}"#
        );
        assert_eq!(LogLine::new().finish(), "{}");
    }

    proptest! {
        #[test]
        fn any_string_survives_a_json_parser(value in any::<String>(), n in any::<u64>()) {
            let line = LogLine::new().str("v", &value).num("n", n).finish();
            let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
            prop_assert_eq!(parsed["v"].as_str(), Some(value.as_str()));
            prop_assert_eq!(parsed["n"].as_u64(), Some(n));
            prop_assert!(!line.contains('\n'));
        }
    }
}
