//! JOSE: compact JWS parsing, key sets and key choice, signature verification.

pub mod jwks;
pub mod jws;
