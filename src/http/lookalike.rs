//! Paths beyond ASCII: what different servers could read as different paths. Encoded bytes
//! that are not UTF-8, characters that fold into ASCII (so an origin could read `/admın` as
//! `/admin`), and invisible ones are refused; other non-ASCII text is kept.

use crate::http::path::{hex, PathError};

#[path = "lookalike_table.rs"]
mod table;
use table::FOLDS;

/// Refuses what different servers could read as different paths beyond ASCII: encoded bytes
/// that are not UTF-8, characters that fold into ASCII, and invisible ones. Other non-ASCII
/// text (`é`, `日本`) is kept. `decoded` has escapes in canonical `%XX` form.
pub(super) fn check_non_ascii(decoded: &str) -> Result<(), PathError> {
    let bytes = decoded.as_bytes();
    let mut i = 0;
    let mut run: Vec<u8> = Vec::new();
    let check_run = |run: &mut Vec<u8>| -> Result<(), PathError> {
        if run.is_empty() {
            return Ok(());
        }
        let text = std::str::from_utf8(run).map_err(|_| PathError::InvalidUtf8)?;
        text.chars().try_for_each(check_char)?;
        run.clear();
        Ok(())
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let v = bytes
                .get(i + 1)
                .copied()
                .and_then(hex)
                .zip(bytes.get(i + 2).copied().and_then(hex))
                .map(|(h, l)| h * 16 + l);
            if let Some(v) = v.filter(|v| *v >= 0x80) {
                run.push(v);
                i += 3;
                continue;
            }
        }
        check_run(&mut run)?;
        if b >= 0x80 {
            // Raw (unencoded) non-ASCII: one whole character.
            let c = decoded[i..].chars().next().ok_or(PathError::InvalidUtf8)?;
            check_char(c)?;
            i += c.len_utf8();
        } else {
            i += 1;
        }
    }
    check_run(&mut run)
}

fn check_char(c: char) -> Result<(), PathError> {
    if c.is_ascii() {
        return Ok(());
    }
    let found = FOLDS.binary_search_by(|&(first, last, _)| {
        if last < c {
            std::cmp::Ordering::Less
        } else if first > c {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    match found.ok().and_then(|i| FOLDS.get(i)) {
        Some((_, _, Fold::Invisible)) => Err(PathError::Invisible),
        Some((_, _, Fold::Ascii)) => Err(PathError::AsciiLookalike),
        None => Ok(()),
    }
}

/// What a character in [`FOLDS`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fold {
    /// Shows nothing, or UTS 46 drops it.
    Invisible,
    /// Folds into ASCII.
    Ascii,
}

#[cfg(test)]
mod tests {
    use super::{check_char, Fold, FOLDS};
    use crate::http::path::{PathError, RequestPath};

    /// The rule the table is made from, with the Unicode data of ICU4X (a host dependency only).
    fn classify(c: char) -> Result<(), PathError> {
        if c.is_ascii() {
            return Ok(());
        }
        if is_invisible(c) {
            return Err(PathError::Invisible);
        }
        let uts46 = icu_normalizer::uts46::Uts46MapperBorrowed::new();
        let mut mapped = uts46.map_normalize(std::iter::once(c)).peekable();
        if mapped.peek().is_none() {
            // UTS 46 ignores it: a default-ignorable (zero-width, variation selector, ...).
            return Err(PathError::Invisible);
        }
        let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc();
        let folds = mapped.any(|m| m.is_ascii())
            || nfkc
                .normalize_iter(std::iter::once(c))
                .flat_map(|n| n.to_lowercase())
                .any(|n| n.is_ascii())
            || c.to_uppercase().any(|u| u.is_ascii())
            || c.to_lowercase().any(|l| l.is_ascii())
            || is_best_fit_separator(c);
        if folds {
            return Err(PathError::AsciiLookalike);
        }
        Ok(())
    }

    /// Characters Windows "best fit" code-page conversion turns into a path separator, which no
    /// Unicode normalization does: division and fraction slashes, set minus, and the currency
    /// signs that Japanese and Korean code pages print as `\`.
    fn is_best_fit_separator(c: char) -> bool {
        matches!(
            c,
            '\u{2215}'
                | '\u{2044}'
                | '\u{2216}'
                | '\u{29F5}'
                | '\u{29F8}'
                | '\u{29F9}'
                | '\u{A5}'
                | '\u{20A9}'
        )
    }

    /// Format and control characters that show nothing: zero-width, bidirectional controls,
    /// invisible separators, tags, and the C1 controls.
    fn is_invisible(c: char) -> bool {
        matches!(c,
            '\u{80}'..='\u{9F}'
            | '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{2000}'..='\u{200F}'
            | '\u{2028}'..='\u{202F}'
            | '\u{205F}'..='\u{206F}'
            | '\u{3000}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}')
    }

    /// The table, as `classify` says it must be: every non-ASCII character, in ranges.
    fn derived_table() -> Vec<(char, char, Fold)> {
        let mut table: Vec<(char, char, Fold)> = Vec::new();
        for c in (0x80..=0x10FFFF).filter_map(char::from_u32) {
            let fold = match classify(c) {
                Ok(()) => continue,
                Err(PathError::Invisible) => Fold::Invisible,
                Err(_) => Fold::Ascii,
            };
            match table.last_mut() {
                Some((_, last, f)) if *f == fold && u32::from(*last) + 1 == u32::from(c) => {
                    *last = c
                }
                _ => table.push((c, c, fold)),
            }
        }
        table
    }

    fn render(table: &[(char, char, Fold)]) -> String {
        let mut out = String::from(
            "//! Generated by `PORTCULLIS_WRITE_TABLES=1 cargo test lookalike` from the Unicode data\n\
             //! of ICU4X (UTS 46 mapping, NFKC, case mapping; see `classify` in lookalike.rs's\n\
             //! tests). Do not edit: the test fails when this differs from what the data says.\n\n\
             use super::Fold::{self, Ascii, Invisible};\n\n\
             /// Non-ASCII characters a path may not carry, in ascending ranges.\n\
             #[rustfmt::skip]\n\
             pub(super) static FOLDS: &[(char, char, Fold)] = &[\n",
        );
        for (first, last, fold) in table {
            out.push_str(&format!(
                "    ('\\u{{{:X}}}', '\\u{{{:X}}}', {fold:?}),\n",
                u32::from(*first),
                u32::from(*last)
            ));
        }
        out.push_str("];\n");
        out
    }

    #[test]
    fn the_table_is_what_the_unicode_data_says() {
        let derived = derived_table();
        if derived != FOLDS {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/lookalike_table.rs");
            if std::env::var_os("PORTCULLIS_WRITE_TABLES").is_some() {
                std::fs::write(path, render(&derived)).unwrap();
            }
            panic!("{path} is out of date: run PORTCULLIS_WRITE_TABLES=1 cargo test lookalike");
        }
        // And the lookup answers as the rule does, character by character.
        for c in (0x80..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(check_char(c), classify(c), "U+{:04X}", u32::from(c));
        }
    }

    fn norm(p: &str) -> Result<String, PathError> {
        RequestPath::parse(p).map(|r| r.as_str().to_owned())
    }

    #[test]
    fn characters_that_fold_into_ascii_are_refused() {
        for p in [
            "/adm%C4%B1n/",      // dotless i: .NET upper-cases it to I
            "/%EF%BD%81dmin",    // fullwidth a: IIS maps it to a
            "/admin%E2%84%AA",   // Kelvin sign: lower-cases to k
            "/%C5%BFecret",      // long s: upper-cases to S
            "/%C4%B0nternal",    // I with dot above: lower-cases to i + dot
            "/%EF%AC%81le",      // ligature fi: NFKC gives fi
            "/a%E2%91%A0",       // circled 1: NFKC gives 1
            "/%F0%9D%90%9Admin", // mathematical bold a
            "/x%EF%BC%8Fadmin",  // fullwidth solidus
        ] {
            assert_eq!(norm(p), Err(PathError::AsciiLookalike), "{p}");
        }
    }

    #[test]
    fn invisible_characters_and_bad_utf8_are_refused() {
        for p in [
            "/ad%E2%80%8Bmin", // zero-width space
            "/ad%E2%80%8Dmin", // zero-width joiner
            "/admin%E2%80%AE", // right-to-left override
            "/ad%C2%ADmin",    // soft hyphen
            "/ad%EF%BB%BFmin", // byte order mark
            "/a%E2%81%A0b",    // word joiner
            "/a%C2%85b",       // C1 control
        ] {
            assert_eq!(norm(p), Err(PathError::Invisible), "{p}");
        }
        for p in ["/%C0%AF", "/%C0%AE%C0%AE/", "/%FF", "/%E2%82", "/a%80b"] {
            assert_eq!(norm(p), Err(PathError::InvalidUtf8), "{p}");
        }
    }

    #[test]
    fn other_non_ascii_text_is_kept() {
        for p in [
            "/caf%C3%A9",
            "/%E6%97%A5%E6%9C%AC",
            "/%D0%B0%D0%B1",
            "/%F0%9F%98%80",
        ] {
            assert_eq!(norm(p).as_deref(), Ok(p), "{p}");
        }
        // Full case folding turns sharp s into ss: refused like the other foldings.
        assert_eq!(norm("/stra%C3%9Fe"), Err(PathError::AsciiLookalike));
    }
}
