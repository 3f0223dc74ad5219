//! Microsoft Entra ID's multi-tenant authorities: issuer templates, tenant allow-lists, and
//! the clouds' own hosts and Graph.

use crate::base::types::Issuer;
use crate::http::http_url::HttpUrl;

/// `https://login.microsoftonline.com/{tenantid}/v2.0`: the issuer of each tenant, with its
/// tenant id in place of `{tenantid}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerTemplate {
    before: String,
    after: String,
}

pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

impl IssuerTemplate {
    /// A template that fits `configured`: the same text with one path segment (the
    /// authority's `common` or `organizations`) in place of the placeholder.
    pub fn fitting(template: &str, configured: &str) -> Option<Self> {
        let (before, after) = template.split_once(TENANT_PLACEHOLDER)?;
        // In the path, never the host: `https://host/` is three slashes.
        let in_path = before.ends_with('/') && before.matches('/').count() >= 3;
        if after.contains(TENANT_PLACEHOLDER) || !in_path {
            return None;
        }
        let segment = configured.strip_prefix(before)?.strip_suffix(after)?;
        let ok = !segment.is_empty() && !segment.contains(['/', '?', '#']);
        ok.then(|| Self {
            before: before.to_owned(),
            after: after.to_owned(),
        })
    }

    /// A template written in the configuration (`API_ISSUERS`): the placeholder once, in the
    /// path.
    pub fn parse(template: &str) -> Option<Self> {
        let (before, after) = template.split_once(TENANT_PLACEHOLDER)?;
        let in_path = before.ends_with('/') && before.matches('/').count() >= 3;
        let ok = in_path && !after.contains(TENANT_PLACEHOLDER) && !after.contains(['?', '#']);
        ok.then(|| Self {
            before: before.to_owned(),
            after: after.to_owned(),
        })
    }

    /// The tenant an issuer of this template names, when it is a tenant id (GUID).
    pub fn tenant_in<'a>(&self, iss: &'a str) -> Option<&'a str> {
        let tid = iss
            .strip_prefix(self.before.as_str())?
            .strip_suffix(self.after.as_str())?;
        is_guid(tid).then_some(tid)
    }

    /// The issuer of `tenant`.
    pub fn issuer_of(&self, tenant: &str) -> String {
        format!("{}{tenant}{}", self.before, self.after)
    }
}

/// The Entra tenants a multi-tenant provider lets in (`OIDC_ALLOWED_TENANTS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tenants {
    /// `*`, stated explicitly: any organization's users.
    Any,
    /// These tenant ids (GUIDs, lowercase).
    Listed(Vec<String>),
}

impl Tenants {
    pub fn parse(v: &str) -> Option<Self> {
        if v.trim() == "*" {
            return Some(Self::Any);
        }
        let listed: Option<Vec<String>> = crate::access::policy::list(v)
            .map(|t| is_guid(t).then(|| t.to_ascii_lowercase()))
            .collect();
        listed.filter(|l| !l.is_empty()).map(Self::Listed)
    }

    pub fn allows(&self, tid: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Listed(l) => l.iter().any(|t| t.eq_ignore_ascii_case(tid)),
        }
    }
}

/// `8-4-4-4-12` hex digits: an Entra tenant or object id.
pub fn is_guid(v: &str) -> bool {
    let groups: Vec<&str> = v.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Microsoft Graph for an Entra authority: the cloud's own (sovereign clouds have theirs).
pub(super) fn default_graph_url(issuer: &Issuer) -> Option<HttpUrl> {
    let host = HttpUrl::normalize(issuer.as_str()).ok()?.host().to_owned();
    let graph = match host.as_str() {
        "login.microsoftonline.us" => "https://graph.microsoft.us",
        "login.partner.microsoftonline.cn" | "login.chinacloudapi.cn" => {
            "https://microsoftgraph.chinacloudapi.cn"
        }
        _ => "https://graph.microsoft.com",
    };
    HttpUrl::normalize(graph).ok()
}

pub(super) fn is_entra_host(issuer: &str) -> bool {
    let host = HttpUrl::normalize(issuer)
        .ok()
        .map(|u| u.host().to_owned())
        .unwrap_or_default();
    matches!(
        host.as_str(),
        "login.microsoftonline.com"
            | "login.microsoftonline.us"
            | "login.partner.microsoftonline.cn"
            | "login.chinacloudapi.cn"
    ) || host.ends_with(".ciamlogin.com")
}
