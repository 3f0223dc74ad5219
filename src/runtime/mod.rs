//! The worker shell: the only code that knows `worker::*`.

mod durable;
mod shell;
mod webcrypto;
