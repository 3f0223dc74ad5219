//! The one reader of wrangler vars and secrets: trimmed values, required ones, choices among
//! fixed words, durations in range, and the value parsers (URLs, issuers, cookie secrets).
//! Every error names the variable, never its value.

pub use crate::base::time::parse_duration;
use std::ops::RangeInclusive;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

use crate::base::seal::Sealer;
use crate::base::types::Issuer;
use crate::config::ConfigError;
use crate::http::http_url::HttpUrl;
use crate::http::is_loopback_host;

const MIN_SECRET_BYTES: usize = 32;

pub(super) fn err(variable: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.into(),
        problem: problem.into(),
    }
}

/// The variables, as the runtime hands them over.
pub(super) struct Vars<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// The value, trimmed; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name).ok_or_else(|| err(name, "is not set"))
    }

    /// One of fixed words (`default` when unset); the error lists them in the order given.
    pub fn choice<T: Copy>(
        &self,
        name: &str,
        default: T,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        self.choice_in(name, default, options, false)
    }

    /// [`Self::choice`], ignoring ASCII case.
    pub fn choice_any_case<T: Copy>(
        &self,
        name: &str,
        default: T,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        self.choice_in(name, default, options, true)
    }

    fn choice_in<T: Copy>(
        &self,
        name: &str,
        default: T,
        options: &[(&str, T)],
        any_case: bool,
    ) -> Result<T, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let v = if any_case { v.to_ascii_lowercase() } else { v };
        if let Some((_, t)) = options.iter().find(|(word, _)| *word == v) {
            return Ok(*t);
        }
        let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
        let listed = match words.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        Err(err(name, format!("must be {listed}")))
    }

    /// A duration in seconds within `range` (`None` when unset); `problem` says what is
    /// wanted.
    pub fn duration(
        &self,
        name: &str,
        range: RangeInclusive<u64>,
        problem: &str,
    ) -> Result<Option<u64>, ConfigError> {
        self.get(name)
            .map(|v| {
                parse_duration(&v)
                    .filter(|s| range.contains(s))
                    .ok_or_else(|| err(name, problem))
            })
            .transpose()
    }
}

pub(super) fn is_header_name(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn parse_issuer(v: &str) -> Result<Issuer, ConfigError> {
    parse_issuer_var("OIDC_ISSUER", v)
}

/// Any URL. The worker carries no Unicode data for international domain names (see
/// Cargo.toml), so their hosts are written in punycode.
fn parse_url(name: &str, v: &str) -> Result<HttpUrl, ConfigError> {
    HttpUrl::normalize(v).map_err(|e| err(name, e.to_string()))
}

/// An issuer from the variable `name`.
pub(super) fn parse_issuer_var(name: &str, v: &str) -> Result<Issuer, ConfigError> {
    let url = parse_url(name, v)?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(url.host()) => {}
        _ => {
            return Err(err(
                name,
                "must be an https URL (http only for localhost or 127.0.0.1)",
            ))
        }
    }
    if url.query().is_some() {
        return Err(err(name, "must not have a query or fragment"));
    }
    // Kept exactly as written: issuers compare as strings (a trailing slash matters).
    Ok(Issuer::new(v))
}

/// An https URL; plain http only on a loopback host (local development), as for the issuer.
pub(super) fn parse_http_url(name: &str, v: &str) -> Result<HttpUrl, ConfigError> {
    let url = parse_url(name, v)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_host(url.host()) => Ok(url),
        "http" => Err(err(
            name,
            "must be an https URL (http only for localhost or 127.0.0.1)",
        )),
        _ => Err(err(name, "must be an http(s) URL")),
    }
}

/// One or more base64 secrets (standard or url-safe, padded or not), newest first, separated
/// by commas or whitespace; each at least 32 bytes.
pub(super) fn parse_cookie_secret(v: &str) -> Result<Sealer, ConfigError> {
    let secrets = v
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(s).ok())
                .ok_or_else(|| err("COOKIE_SECRET", "is not base64 (generate one with: openssl rand -base64 32)"))
                .and_then(|bytes| {
                    if bytes.len() >= MIN_SECRET_BYTES {
                        Ok(bytes)
                    } else {
                        Err(err("COOKIE_SECRET", "must decode to at least 32 bytes (generate one with: openssl rand -base64 32)"))
                    }
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Sealer::new(&secrets).ok_or_else(|| err("COOKIE_SECRET", "is not set"))
}
