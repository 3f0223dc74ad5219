//! Paths beyond ASCII: what different servers could read as different paths. Encoded bytes
//! that are not UTF-8, characters that fold into ASCII (so an origin could read `/admın` as
//! `/admin`), and invisible ones are refused; other non-ASCII text is kept.

use crate::http::path::{hex, PathError};

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

#[cfg(test)]
mod tests {
    use crate::http::path::{PathError, RequestPath};

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
