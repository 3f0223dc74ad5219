//! Typed protocol values. Issuers and client ids compare on the exact string they were built
//! from: OpenID Connect compares issuers without canonicalization.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::base::random::{random_token, RandomError};

macro_rules! string_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            // State and Nonce are made by `generate` outside tests.
            #[allow(dead_code)]
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

string_type!(
    /// The provider's issuer identifier, exactly as configured.
    Issuer
);
string_type!(
    /// The OAuth client id registered at the provider.
    ClientId
);
string_type!(
    /// The `state` parameter binding a callback to its login transaction.
    State
);
string_type!(
    /// The `nonce` binding an ID token to its login transaction.
    Nonce
);

impl State {
    pub fn generate() -> Result<Self, RandomError> {
        random_token().map(Self)
    }

    /// Constant-time equality: a state is a bearer secret until it is used.
    pub fn matches(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl Nonce {
    pub fn generate() -> Result<Self, RandomError> {
        random_token().map(Self)
    }

    pub fn matches(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_states_are_long_and_distinct() {
        let a = State::generate().unwrap();
        let b = State::generate().unwrap();
        assert!(a.as_str().len() >= 43);
        assert_ne!(a, b);
    }

    #[test]
    fn state_matches_only_itself() {
        let s = State::new("abc");
        assert!(s.matches("abc"));
        assert!(!s.matches("abd"));
        assert!(!s.matches("ab"));
        assert!(!s.matches(""));
    }
}
