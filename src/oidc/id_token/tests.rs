use serde_json::{json, Value};

use super::*;
use crate::config::providers::Tenants;
use crate::jose::jwks::JwkSet;
use crate::jose::jws::UnverifiedJws;
use crate::jose::verify::{self, RustVerifier};
use crate::oidc::discovery::IssuerTemplate;
use crate::testing::{block_on, jwks_json, TestKey};

const NOW: i64 = 1_800_000_000;
const SKEW: i64 = MAX_CLOCK_SKEW_SECS as i64;
const ISS: &str = "https://idp.example.com";
const CLIENT: &str = "client-1";
const NONCE: &str = "n-0S6_WzA2Mj";

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "alice", "aud": CLIENT, "exp": NOW + 300, "iat": NOW,
        "nonce": NONCE, "email": "alice@example.com", "email_verified": true,
        "name": "Alice", "groups": ["staff", "admins"],
    })
}

/// The full path: parse, pick the key, check the signature, apply the claim rules.
fn check_with(
    key: &TestKey,
    jwks_keys: &[&TestKey],
    token: &str,
    access_token: Option<&str>,
) -> Result<VerifiedIdToken, String> {
    check_spelled(key, jwks_keys, token, access_token, None)
}

fn check_spelled(
    key: &TestKey,
    jwks_keys: &[&TestKey],
    token: &str,
    access_token: Option<&str>,
    issuer_spelling: Option<&str>,
) -> Result<VerifiedIdToken, String> {
    let set = JwkSet::parse(&jwks_json(jwks_keys)).unwrap();
    let jws = UnverifiedJws::parse(token).map_err(|e| format!("jws: {e}"))?;
    let jwk = set.select(&jws.header).map_err(|e| format!("key: {e:?}"))?;
    let _ = key;
    let verified =
        block_on(verify::verify(&RustVerifier, jws, jwk)).map_err(|e| format!("sig: {e}"))?;
    let at_hash = access_token
        .map(|t| block_on(access_token_hash(&RustVerifier, verified.header().alg, t)).unwrap());
    let (issuer, client, nonce) = (Issuer::new(ISS), ClientId::new(CLIENT), Nonce::new(NONCE));
    validate(
        verified,
        &Expectations {
            issuer: &issuer,
            issuer_spelling,
            client_id: &client,
            nonce: Some(&nonce),
            now: UnixTime::from_i64(NOW),
            at_hash: at_hash.as_deref(),
            tenancy: None,
        },
    )
    .map_err(|e| format!("claims: {e}"))
}

fn check(key: &TestKey, c: &Value) -> Result<VerifiedIdToken, String> {
    check_with(key, &[key], &key.sign(c), None)
}

fn with(mut c: Value, field: &str, v: Value) -> Value {
    c[field] = v;
    c
}

fn without(mut c: Value, field: &str) -> Value {
    c.as_object_mut().unwrap().remove(field);
    c
}

const TENANT_A: &str = "11111111-2222-3333-4444-555555555555";
const TENANT_B: &str = "99999999-8888-7777-6666-555555555555";
const OID: &str = "00000000-0000-0000-0000-00000000000A";

/// A multi-tenant (`organizations`) token of `tid` issued by the issuer of `iss_tenant`.
fn multi_tenant(claims: Value, allowed: &Tenants) -> Result<VerifiedIdToken, IdTokenError> {
    let key = TestKey::rsa(Some("r1"));
    let set = JwkSet::parse(&jwks_json(&[&key])).unwrap();
    let token = key.sign(&claims);
    let jws = UnverifiedJws::parse(&token).unwrap();
    let jwk = set.select(&jws.header).unwrap();
    let verified = block_on(verify::verify(&RustVerifier, jws, jwk)).unwrap();
    let template = IssuerTemplate::fitting(
        "https://login.example.com/{tenantid}/v2.0",
        "https://login.example.com/organizations/v2.0",
    )
    .unwrap();
    let (issuer, client, nonce) = (
        Issuer::new("https://login.example.com/organizations/v2.0"),
        ClientId::new(CLIENT),
        Nonce::new(NONCE),
    );
    validate(
        verified,
        &Expectations {
            issuer: &issuer,
            issuer_spelling: None,
            client_id: &client,
            nonce: Some(&nonce),
            now: UnixTime::from_i64(NOW),
            at_hash: None,
            tenancy: Some(Tenancy {
                template: &template,
                allowed,
            }),
        },
    )
}

fn tenant_claims(tid: &str, iss_tenant: &str) -> Value {
    let mut c = claims();
    c["iss"] = json!(format!("https://login.example.com/{iss_tenant}/v2.0"));
    c["tid"] = json!(tid);
    c["oid"] = json!(OID);
    c
}

#[test]
fn a_multi_tenant_token_is_its_own_tenants_and_keyed_on_tid_and_oid() {
    let only_a = Tenants::parse(TENANT_A).unwrap();
    let t = multi_tenant(tenant_claims(TENANT_A, TENANT_A), &only_a).unwrap();
    assert_eq!(t.tenant.as_deref(), Some(TENANT_A));
    assert_eq!(
        t.subject,
        format!("{TENANT_A}/{}", OID.to_ascii_lowercase())
    );
    assert_eq!(
        t.issuer.as_str(),
        "https://login.example.com/organizations/v2.0"
    );

    // A token claiming tenant A from tenant B's issuer, and the other way round.
    assert_eq!(
        multi_tenant(tenant_claims(TENANT_A, TENANT_B), &Tenants::Any).unwrap_err(),
        IdTokenError::IssuerMismatch
    );
    assert_eq!(
        multi_tenant(tenant_claims(TENANT_B, TENANT_A), &Tenants::Any).unwrap_err(),
        IdTokenError::IssuerMismatch
    );
    assert_eq!(
        multi_tenant(tenant_claims(TENANT_B, TENANT_B), &only_a).unwrap_err(),
        IdTokenError::TenantNotAllowed
    );
    assert!(multi_tenant(tenant_claims(TENANT_B, TENANT_B), &Tenants::Any).is_ok());
    for tid in [
        "organizations",
        "{tenantid}",
        "",
        "11111111-2222-3333-4444-55555555555g",
        "x/../y",
    ] {
        assert_eq!(
            multi_tenant(tenant_claims(tid, tid), &Tenants::Any).unwrap_err(),
            IdTokenError::BadTenant,
            "{tid}"
        );
    }
    let mut no_oid = tenant_claims(TENANT_A, TENANT_A);
    no_oid["oid"] = json!("alice");
    assert_eq!(
        multi_tenant(no_oid, &only_a).unwrap_err(),
        IdTokenError::BadObjectId
    );
    let mut template_iss = tenant_claims(TENANT_A, TENANT_A);
    template_iss["iss"] = json!("https://login.example.com/{tenantid}/v2.0");
    assert_eq!(
        multi_tenant(template_iss, &Tenants::Any).unwrap_err(),
        IdTokenError::IssuerMismatch
    );
}

#[test]
fn another_spelling_of_the_issuer_passes_only_when_the_provider_has_one() {
    let key = TestKey::rsa(Some("r1"));
    let bare = key.sign(&with(claims(), "iss", json!("idp.example.com")));
    let spelled = check_spelled(&key, &[&key], &bare, None, Some("idp.example.com")).unwrap();
    assert_eq!(
        spelled.issuer.as_str(),
        ISS,
        "the session keeps the canonical issuer"
    );
    assert!(check_spelled(&key, &[&key], &bare, None, None).is_err());
    let other = key.sign(&with(claims(), "iss", json!("evil.example.com")));
    assert!(check_spelled(&key, &[&key], &other, None, Some("idp.example.com")).is_err());
    let exact = key.sign(&claims());
    assert!(check_spelled(&key, &[&key], &exact, None, Some("idp.example.com")).is_ok());
}

#[test]
fn valid_tokens_pass_with_rsa_ec_and_eddsa() {
    for key in [
        TestKey::rsa(Some("r1")),
        TestKey::es256(Some("e1")),
        TestKey::ed25519(Some("d1")),
    ] {
        let t = check(&key, &claims()).unwrap_or_else(|e| panic!("{}: {e}", key.default_alg()));
        assert_eq!(t.subject, "alice");
        assert_eq!(t.email.as_deref(), Some("alice@example.com"));
        assert_eq!(t.email_verified, Some(true));
        assert_eq!(string_list(&t.claims, "groups"), vec!["staff", "admins"]);
    }
}

#[test]
fn pss_and_larger_rsa_hashes_verify() {
    let key = TestKey::rsa(Some("r1"));
    for alg in ["PS256", "PS384", "PS512", "RS384", "RS512"] {
        let token = key.sign_raw(&json!({"alg": alg, "kid": "r1"}), &claims());
        check_with(&key, &[&key], &token, None).unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
}

#[test]
fn signature_from_another_key_is_refused() {
    let signer = TestKey::rsa_other(Some("r1"));
    let published = TestKey::rsa(Some("r1"));
    let err = check_with(&published, &[&published], &signer.sign(&claims()), None).unwrap_err();
    assert!(err.starts_with("sig:"), "{err}");
}

#[test]
fn tampered_payload_is_refused() {
    let key = TestKey::es256(Some("e1"));
    let token = key.sign(&claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(with(claims(), "sub", "mallory".into()).to_string());
    let err = check_with(&key, &[&key], &parts.join("."), None).unwrap_err();
    assert!(err.starts_with("sig:"), "{err}");
}

#[test]
fn alg_none_is_refused() {
    let key = TestKey::rsa(Some("r1"));
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"r1"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert!(check_with(&key, &[&key], &unsigned, None)
        .unwrap_err()
        .starts_with("jws: algorithm"));
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    use hmac_sig::hs256;
    let key = TestKey::rsa(Some("r1"));
    let public = key.public_jwk().to_string();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"r1"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let token = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(hs256(public.as_bytes(), input.as_bytes()))
    );
    assert!(check_with(&key, &[&key], &token, None)
        .unwrap_err()
        .starts_with("jws: algorithm"));
}

mod hmac_sig {
    use jwt_compact::alg::{Hs256, Hs256Key};
    use jwt_compact::{Algorithm, AlgorithmSignature};

    pub fn hs256(key: &[u8], msg: &[u8]) -> Vec<u8> {
        Hs256.sign(&Hs256Key::new(key), msg).as_bytes().into_owned()
    }
}

#[test]
fn rs256_token_against_an_ec_key_with_same_kid_is_refused() {
    let ec = TestKey::es256(Some("k"));
    let rsa = TestKey::rsa(Some("k"));
    let err = check_with(&ec, &[&ec], &rsa.sign(&claims()), None).unwrap_err();
    assert!(err.starts_with("key:"), "{err}");
}

#[test]
fn unknown_kid_is_reported_for_refetch() {
    let key = TestKey::rsa(Some("new"));
    let old = TestKey::rsa_other(Some("old"));
    assert_eq!(
        check_with(&key, &[&old], &key.sign(&claims()), None).unwrap_err(),
        "key: UnknownKid"
    );
}

#[test]
fn token_without_kid_uses_the_one_fitting_key() {
    let key = TestKey::es256(None);
    let other = TestKey::rsa(Some("r"));
    assert!(check_with(&key, &[&other, &key], &key.sign(&claims()), None).is_ok());
}

fn claim_error(key: &TestKey, c: Value) -> String {
    check(key, &c).unwrap_err()
}

#[test]
fn wrong_issuer_is_refused() {
    let key = TestKey::es256(Some("e"));
    assert_eq!(
        claim_error(
            &key,
            with(claims(), "iss", "https://idp.example.com/".into())
        ),
        "claims: iss is not the configured issuer"
    );
    assert_eq!(
        claim_error(&key, with(claims(), "iss", "https://evil.example".into())),
        "claims: iss is not the configured issuer"
    );
}

#[test]
fn audience_without_client_is_refused() {
    let key = TestKey::es256(Some("e"));
    assert_eq!(
        claim_error(&key, with(claims(), "aud", "other".into())),
        "claims: aud does not contain our client_id"
    );
    assert_eq!(
        claim_error(&key, with(claims(), "aud", json!(["other"]))),
        "claims: aud does not contain our client_id"
    );
}

#[test]
fn untrusted_extra_audience_is_refused() {
    let key = TestKey::es256(Some("e"));
    let c = with(
        with(claims(), "aud", json!([CLIENT, "other"])),
        "azp",
        CLIENT.into(),
    );
    assert_eq!(
        claim_error(&key, c),
        "claims: aud contains an audience we do not trust"
    );
    assert!(check(&key, &with(claims(), "aud", json!([CLIENT]))).is_ok());
}

#[test]
fn azp_other_than_client_is_refused() {
    let key = TestKey::es256(Some("e"));
    assert_eq!(
        claim_error(&key, with(claims(), "azp", "someone-else".into())),
        "claims: azp is not our client_id"
    );
    assert!(check(&key, &with(claims(), "azp", CLIENT.into())).is_ok());
}

#[test]
fn expiry_rules() {
    let key = TestKey::es256(Some("e"));
    assert_eq!(
        claim_error(&key, without(claims(), "exp")),
        "claims: token has no exp"
    );
    assert_eq!(
        claim_error(&key, with(claims(), "exp", (NOW - SKEW - 1).into())),
        "claims: token has expired"
    );
    // Within the skew allowance it still passes.
    assert!(check(&key, &with(claims(), "exp", (NOW - 10).into())).is_ok());
}

#[test]
fn issued_at_rules() {
    let key = TestKey::es256(Some("e"));
    assert_eq!(
        claim_error(&key, without(claims(), "iat")),
        "claims: token has no iat"
    );
    assert_eq!(
        claim_error(&key, with(claims(), "iat", (NOW + SKEW + 5).into())),
        "claims: iat is in the future"
    );
    assert_eq!(
        claim_error(&key, with(claims(), "iat", (NOW - SKEW - 5).into())),
        "claims: iat is too far in the past"
    );
    assert!(check(&key, &with(claims(), "iat", json!(NOW as f64 + 0.5))).is_ok());
}

#[test]
fn not_before_in_the_future_is_refused() {
    let key = TestKey::es256(Some("e"));
    assert_eq!(
        claim_error(&key, with(claims(), "nbf", (NOW + 3600).into())),
        "claims: nbf is in the future"
    );
}

#[test]
fn nonce_rules() {
    let key = TestKey::es256(Some("e"));
    assert_eq!(
        claim_error(&key, without(claims(), "nonce")),
        "claims: nonce is missing or does not match the login"
    );
    assert_eq!(
        claim_error(&key, with(claims(), "nonce", "other".into())),
        "claims: nonce is missing or does not match the login"
    );
}

#[test]
fn missing_subject_is_refused() {
    let key = TestKey::es256(Some("e"));
    assert_eq!(
        claim_error(&key, without(claims(), "sub")),
        "claims: token has no sub"
    );
    assert_eq!(
        claim_error(&key, with(claims(), "sub", "".into())),
        "claims: token has no sub"
    );
}

#[test]
fn access_token_typed_jwt_is_not_an_id_token() {
    let key = TestKey::es256(Some("e"));
    let token = key.sign_raw(&json!({"alg":"ES256","kid":"e","typ":"at+jwt"}), &claims());
    assert_eq!(
        check_with(&key, &[&key], &token, None).unwrap_err(),
        "claims: header typ is not that of an ID token"
    );
}

#[test]
fn claims_of_the_wrong_shape_are_refused() {
    let key = TestKey::es256(Some("e"));
    assert!(claim_error(&key, with(claims(), "aud", 5.into()))
        .starts_with("claims: claims are not valid JSON"));
    assert!(claim_error(&key, without(claims(), "iss"))
        .starts_with("claims: claims are not valid JSON"));
}

#[test]
fn at_hash_is_checked_when_present() {
    let key = TestKey::rsa(Some("r"));
    let at = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    let good = with(
        claims(),
        "at_hash",
        block_on(access_token_hash(&RustVerifier, JwsAlg::Rs256, at))
            .unwrap()
            .into(),
    );
    assert!(check_with(&key, &[&key], &key.sign(&good), Some(at)).is_ok());
    let bad = with(claims(), "at_hash", "AAAAAAAAAAAAAAAAAAAAAA".into());
    assert_eq!(
        check_with(&key, &[&key], &key.sign(&bad), Some(at)).unwrap_err(),
        "claims: at_hash does not match the access token"
    );
    // A claim of the wrong type is refused, never skipped.
    for (field, v) in [
        ("at_hash", json!(5)),
        ("nonce", json!([NONCE])),
        ("email", json!(1)),
    ] {
        let odd = with(claims(), field, v);
        assert!(
            check_with(&key, &[&key], &key.sign(&odd), Some(at))
                .unwrap_err()
                .contains(field),
            "{field}"
        );
    }
}

#[test]
fn at_hash_matches_the_oidc_spec_example() {
    // OpenID Connect Core, appendix A.3: access token and its at_hash (RS256).
    let at = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    let hash = |alg| block_on(access_token_hash(&RustVerifier, alg, at)).unwrap();
    assert_eq!(hash(JwsAlg::Rs256), "77QmUPtjPfzWtF2AnpK9RQ");
    // The wide hashes (from the platform in the worker): the left half, as for SHA-256.
    use sha2::Digest;
    let half = |d: &[u8]| URL_SAFE_NO_PAD.encode(&d[..d.len() / 2]);
    assert_eq!(hash(JwsAlg::Ps384), half(&sha2::Sha384::digest(at)));
    assert_eq!(hash(JwsAlg::EdDsa), half(&sha2::Sha512::digest(at)));
    assert_eq!(hash(JwsAlg::Rs512), hash(JwsAlg::EdDsa));
    assert_eq!(hash(JwsAlg::EdDsa).len(), 43);
}

#[test]
fn weak_rsa_keys_are_refused() {
    let weak = jwt_compact::alg::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let mut jwk =
        serde_json::to_value(jwt_compact::jwk::JsonWebKey::from(&weak).to_verifying_key()).unwrap();
    jwk["kid"] = "w".into();
    let set = JwkSet::parse(json!({"keys":[jwk]}).to_string().as_bytes()).unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"w"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    use jwt_compact::{Algorithm, AlgorithmSignature};
    let sig = jwt_compact::alg::Rsa::rs256().sign(&weak, input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_bytes()));
    let jws = UnverifiedJws::parse(&token).unwrap();
    let key = set.select(&jws.header).unwrap();
    assert!(matches!(
        block_on(verify::verify(&RustVerifier, jws, key)),
        Err(verify::SignatureError::UnusableKey(_))
    ));
}

#[test]
fn list_claims_are_read_by_path() {
    let c = json!({"groups":["a","b"],"scp":"x y","realm_access":{"roles":["r1"]},"n":5});
    assert_eq!(string_list(&c, "groups"), vec!["a", "b"]);
    assert_eq!(string_list(&c, "scp"), vec!["x y"], "only scopes are split");
    assert_eq!(string_list(&c, "realm_access.roles"), vec!["r1"]);
    assert!(string_list(&c, "n").is_empty());
    assert!(string_list(&c, "missing.path").is_empty());
}
