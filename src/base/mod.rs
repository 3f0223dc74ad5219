//! What every folder uses: typed protocol values, secrets, randomness.

pub mod random;
pub mod secret;
pub mod types;
