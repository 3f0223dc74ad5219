//! JOSE: compact JWS parsing, key sets and key choice, signature verification, and the one
//! claims verifier every token kind uses.

pub mod claims;
pub mod jwks;
pub mod jws;
pub mod signing_key;
pub mod verify;
