//! Plain HTTP values the core works with; the shell converts to and from `worker` types.

pub mod authorization;
pub mod cookies;
pub mod form_replay;
pub mod http_url;
pub mod lookalike;
pub mod pages;
pub mod path;
pub mod return_to;
pub mod upstream;
pub mod wire;

use crate::http::http_url::HttpUrl;

/// Hosts where plain http is allowed (local development).
pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// The first value of `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Replaces every value of `name` with one.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.0.push((name.to_owned(), value.into()));
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl Default for Headers {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Headers {
    fn from(pairs: [(&str, &str); N]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    /// Any case: some origins (ASP.NET) read `patch` as PATCH, and the runtime upper-cases
    /// only the methods the Fetch standard names.
    pub fn parse(s: &str) -> Self {
        const KNOWN: [(&str, Method); 7] = [
            ("GET", Method::Get),
            ("HEAD", Method::Head),
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("PATCH", Method::Patch),
            ("DELETE", Method::Delete),
            ("OPTIONS", Method::Options),
        ];
        KNOWN
            .iter()
            .find(|(name, _)| s.eq_ignore_ascii_case(name))
            .map_or(Self::Other, |(_, m)| *m)
    }

    /// The method as `API_ROUTES` names it; unknown methods match only `*` routes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other => "*OTHER*",
        }
    }
}

/// An outbound request the core asks the platform to make (token endpoint, discovery, JWKS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Headers,
    pub body: Option<String>,
}

impl OutboundRequest {
    pub fn get(url: &HttpUrl) -> Self {
        let mut headers = Headers::new();
        headers.append("Accept", "application/json");
        Self {
            method: "GET",
            url: url.to_string(),
            headers,
            body: None,
        }
    }
}

/// A response the core produced, or one the platform fetched for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    pub fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers.set("Content-Type", content_type);
        self.body = body.into();
        self
    }

    /// A 302 that must not be cached (it usually sets or clears cookies).
    pub fn redirect(location: &str) -> Self {
        Self::new(302)
            .with_header("Location", location)
            .with_header("Cache-Control", "no-store")
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status)
            .with_body("application/json", value.to_string())
            .with_header("Cache-Control", "no-store")
    }

    #[cfg(test)]
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
