//! Secret values: never printable, reached only through `.secret()`.

/// Declares a newtype around a secret. `Debug` prints `Name([redacted])`; there is no
/// `Display`, no `Clone` and no `Serialize` unless a call site opts in explicitly.
macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        pub struct $name($inner);

        impl $name {
            pub fn new(value: $inner) -> Self {
                Self(value)
            }

            /// The secret itself; the method name is the audit trail.
            pub fn secret(&self) -> &$inner {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

pub(crate) use secret_type;

secret_type!(
    /// The confidential client's secret (`OIDC_CLIENT_SECRET`).
    ClientSecret(String)
);

secret_type!(
    /// A one-time authorization code from the callback.
    AuthorizationCode(String)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = ClientSecret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert_eq!(s.secret(), "hunter2");
    }
}
