//! Entra's group overage: a person in more groups than a token holds (200 in an ID token) gets
//! no `groups` claim, but `_claim_names.groups` (or `hasgroups`). The groups are then read from
//! Microsoft Graph (`/me/transitiveMemberOf`) with the sign-in's access token, page by page up
//! to a cap. Graph's own URL is the configured one (`OIDC_GRAPH_URL`, by cloud): the endpoint
//! the token names in `_claim_sources` is never called.

use serde::Deserialize;
use serde_json::Value;

use crate::base::log_line::log_line;
use crate::config::providers::{ProviderConfig, ProviderKind};
use crate::http::http_url::HttpUrl;
use crate::http::{Headers, OutboundRequest};
use crate::platform::Platform;

/// Pages read at most (Graph answers up to 999 entries a page with `$top=999`).
pub const MAX_PAGES: usize = 10;
/// Groups kept at most.
pub const MAX_GROUPS: usize = 2000;
const GROUP_TYPE: &str = "#microsoft.graph.group";

/// Whether the token left its groups out for being too many.
pub fn has_group_overage(claims: &Value) -> bool {
    let named = claims
        .get("_claim_names")
        .and_then(|n| n.get("groups"))
        .is_some();
    named || claims.get("hasgroups") == Some(&Value::Bool(true))
}

/// Why Graph gave no groups; the person signs in without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError(pub String);

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Entry>,
    #[serde(rename = "@odata.nextLink", default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "@odata.type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// The first page's URL.
pub fn first_page(graph: &HttpUrl) -> Option<HttpUrl> {
    let base = graph.as_str().trim_end_matches('/');
    HttpUrl::normalize(&format!(
        "{base}/v1.0/me/transitiveMemberOf?$select=id&$top=999"
    ))
    .ok()
}

/// A next page must stay on Graph's own origin.
fn same_origin(next: &str, graph: &HttpUrl) -> Option<HttpUrl> {
    let url = HttpUrl::normalize(next).ok()?;
    (url.origin() == graph.origin()).then_some(url)
}

/// The group ids of one page, and the next page's URL.
fn read_page(body: &[u8], graph: &HttpUrl) -> Result<(Vec<String>, Option<HttpUrl>), GraphError> {
    let page: Page = serde_json::from_slice(body)
        .map_err(|e| GraphError(format!("Graph's answer is not valid: {e}")))?;
    let groups = page
        .value
        .into_iter()
        .filter(|e| e.kind.as_deref() == Some(GROUP_TYPE))
        .filter_map(|e| e.id)
        .filter(|id| !id.is_empty() && id.len() <= 64)
        .collect();
    let next =
        match page.next {
            None => None,
            Some(n) => Some(same_origin(&n, graph).ok_or_else(|| {
                GraphError("Graph's next page is not on Graph's own origin".into())
            })?),
        };
    Ok((groups, next))
}

/// The person's groups when the token overflowed, for an Entra provider; `None` when the
/// token carries its groups (or the provider is not Entra).
pub async fn overage_groups<P: Platform>(
    provider: &ProviderConfig,
    platform: &P,
    claims: &Value,
    access_token: Option<&str>,
) -> Option<Result<Vec<String>, GraphError>> {
    if provider.kind != ProviderKind::Entra || !has_group_overage(claims) {
        return None;
    }
    let result = match (&provider.graph_url, access_token) {
        (None, _) => Err(GraphError("no Graph URL for this provider".into())),
        (_, None) => Err(GraphError(
            "the sign-in gave no access token for Graph".into(),
        )),
        (Some(graph), Some(token)) => read_all(platform, graph, token).await,
    };
    match &result {
        Ok(groups) => platform
            .log_json(log_line!("level":"info","event":"groups_from_graph","groups":groups.len())),
        Err(e) => {
            platform.log_json(log_line!("level":"warn","event":"groups_unresolved","reason":e.0))
        }
    }
    Some(result)
}

async fn read_all<P: Platform>(
    platform: &P,
    graph: &HttpUrl,
    token: &str,
) -> Result<Vec<String>, GraphError> {
    let mut url =
        first_page(graph).ok_or_else(|| GraphError("OIDC_GRAPH_URL is not a base URL".into()))?;
    let mut groups: Vec<String> = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut req = OutboundRequest::get(&url);
        req.headers = Headers::new();
        req.headers.append("Accept", "application/json");
        req.headers
            .append("Authorization", format!("Bearer {token}"));
        let resp = platform
            .fetch(req)
            .await
            .map_err(|e| GraphError(format!("Graph could not be reached: {e}")))?;
        if resp.status != 200 {
            let code = serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(GraphError(format!("Graph answered {} {code}", resp.status)));
        }
        let (page, next) = read_page(&resp.body, graph)?;
        groups.extend(page);
        if groups.len() >= MAX_GROUPS {
            groups.truncate(MAX_GROUPS);
            platform.log_json(log_line!("level":"warn","event":"groups_capped","kept":MAX_GROUPS));
            return Ok(groups);
        }
        match next {
            Some(n) => url = n,
            None => return Ok(groups),
        }
    }
    platform.log_json(log_line!("level":"warn","event":"groups_capped","pages":MAX_PAGES));
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn graph() -> HttpUrl {
        HttpUrl::normalize("https://graph.microsoft.com").unwrap()
    }

    #[test]
    fn overage_is_the_claim_names_or_hasgroups() {
        assert!(has_group_overage(
            &json!({"_claim_names": {"groups": "src1"}})
        ));
        assert!(has_group_overage(&json!({"hasgroups": true})));
        assert!(!has_group_overage(&json!({"groups": ["a"]})));
        assert!(!has_group_overage(
            &json!({"hasgroups": "true", "_claim_names": {"roles": "x"}})
        ));
    }

    #[test]
    fn only_groups_are_taken_and_the_next_page_stays_on_graph() {
        let body = json!({
            "value": [
                {"@odata.type": "#microsoft.graph.group", "id": "g1"},
                {"@odata.type": "#microsoft.graph.directoryRole", "id": "r1"},
                {"id": "untyped"},
                {"@odata.type": "#microsoft.graph.group", "id": "g2"},
            ],
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/me/transitiveMemberOf?$skiptoken=x",
        });
        let (groups, next) = read_page(body.to_string().as_bytes(), &graph()).unwrap();
        assert_eq!(groups, vec!["g1", "g2"]);
        assert_eq!(next.unwrap().host(), "graph.microsoft.com");
        for elsewhere in [
            "https://graph.windows.net/t/users/o/getMemberObjects",
            "http://graph.microsoft.com/v1.0/x",
            "https://graph.microsoft.com.evil/v1.0/x",
        ] {
            let body = json!({"value": [], "@odata.nextLink": elsewhere});
            assert!(
                read_page(body.to_string().as_bytes(), &graph()).is_err(),
                "{elsewhere}"
            );
        }
        assert_eq!(
            first_page(&graph()).unwrap().as_str(),
            "https://graph.microsoft.com/v1.0/me/transitiveMemberOf?$select=id&$top=999"
        );
    }
}
