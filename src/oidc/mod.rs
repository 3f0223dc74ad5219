//! OpenID Connect and OAuth 2.0 with each provider: discovery, the provider cache, the login
//! transaction with PKCE, token endpoint calls, ID token and logout token rules, and GitHub's
//! OAuth 2.0 and REST API.

pub mod discovery;
pub mod github;
pub mod graph;
pub mod id_token;
pub mod logout_token;
pub mod pkce;
pub mod provider;
pub mod token_endpoint;
pub mod transaction;
