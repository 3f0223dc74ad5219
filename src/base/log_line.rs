//! A JSON log line written directly: no `serde_json::Value` map to build, sort and walk. The
//! access line (every request) is built with [`LogLine`]; every other line with
//! [`log_line!`], which writes the same JSON as `serde_json::json!` would for a
//! flat object, in far less wasm per call site.

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

/// What a log line's field can hold: strings, numbers, booleans, and `null` for `None`.
pub trait LogValue {
    fn write_to(&self, out: &mut String);
}

impl LogLine {
    /// Any [`LogValue`] (what [`log_line!`] calls).
    pub fn field<V: LogValue + ?Sized>(mut self, key: &'static str, value: &V) -> Self {
        self.key(key);
        value.write_to(&mut self.0);
        self
    }
}

impl LogValue for str {
    fn write_to(&self, out: &mut String) {
        escape_into(out, self);
    }
}

impl LogValue for String {
    fn write_to(&self, out: &mut String) {
        escape_into(out, self);
    }
}

impl LogValue for bool {
    fn write_to(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl LogValue for $t {
            fn write_to(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
numbers!(u16, u32, u64, usize, i64);

impl LogValue for crate::base::time::UnixTime {
    fn write_to(&self, out: &mut String) {
        self.as_i64().write_to(out);
    }
}

impl<T: LogValue + ?Sized> LogValue for &T {
    fn write_to(&self, out: &mut String) {
        (**self).write_to(out);
    }
}

impl<T: LogValue> LogValue for Option<T> {
    fn write_to(&self, out: &mut String) {
        match self {
            Some(v) => v.write_to(out),
            None => out.push_str("null"),
        }
    }
}

/// A log line from `"key": value` pairs: `log_line!("level": "info", "event": "x", "n": 3)`.
macro_rules! log_line {
    ($($key:literal : $value:expr),+ $(,)?) => {
        $crate::base::log_line::LogLine::new()$(.field($key, &$value))+.finish()
    };
}
pub(crate) use log_line;

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
    // Bytes, not chars: every byte that needs escaping is ASCII, and UTF-8 never uses an
    // ASCII byte inside a character, so `i` is always a character boundary.
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 || b == 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
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

    #[test]
    fn the_macro_writes_what_json_would() {
        let sub: Option<String> = None;
        let line = log_line!(
            "level": "warn", "event": "x", "sub": sub, "n": 3usize, "ok": true,
            "who": Some("a\"b".to_owned()), "status": 502u16,
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"level":"warn","event":"x","sub":null,"n":3,"ok":true,"who":"a\"b","status":502})
        );
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
