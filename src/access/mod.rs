//! Who may reach what: the access policy, API routes, Bearer access-token rules and their
//! cache, and the signed identity assertion for the origin.

pub mod access_token;
pub mod api;
pub mod assertion;
pub mod policy;
pub mod step_up;
pub mod token_cache;
