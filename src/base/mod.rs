//! What every folder uses: typed protocol values, secrets, randomness, cookie sealing, the clock type and the
//! bounded cache.

pub mod cache;
pub mod log_line;
pub mod random;
pub mod seal;
pub mod secret;
pub mod time;
pub mod types;
