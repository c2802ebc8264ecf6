//! An issuer and a holder, as `proofline demo` and `proofline bench verify`
//! need them: credentials with selectively disclosable claims, status
//! lists, and presentations bound to a lender's nonce and audience.
//!
//! Keys are Ed25519 and live in PKCS#8 PEM files of mode 0600, like the
//! service's own key. Salts come from the OS random source.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use proofline_commands::signing::ServiceKey;
use proofline_domain::did::Did;
use proofline_domain::jose::b64url_encode;
use proofline_domain::sd_jwt::{Issuance, KeyBinding, present};
use proofline_domain::status_list::{TOKEN_TYPE, encode_lst};
use serde_json::{Map, Value, json};

/// The credential type of the demo.
pub const DEMO_VCT: &str = "https://credentials.proofline.example/identity";

/// 128 random bits, base64url: a Disclosure salt or a nonce.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The public JWK of an Ed25519 key.
pub fn okp_jwk(key: &VerifyingKey) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(key.as_bytes())})
}

/// An issuer with an Ed25519 key: identified by the did:key of its key
/// ([`Issuer::new`]), or by a DID of its own whose document names the key
/// ([`Issuer::with_did`], a did:web say).
pub struct Issuer {
    pub key: ServiceKey,
    pub did: Did,
    kid: String,
    /// An `x5c` chain (standard base64 DER, leaf first) its credentials
    /// carry instead of a `kid`.
    x5c: Option<Vec<String>>,
}

impl Issuer {
    pub fn new(key: ServiceKey) -> Self {
        let did = Did::from_ed25519(&key.verifying_key());
        let multibase = did.did_key_multibase().unwrap_or_default();
        let kid = format!("{}#{multibase}", did.as_str());
        Self {
            key,
            did,
            kid,
            x5c: None,
        }
    }

    /// An issuer known as `did`, its JWTs naming the key `kid` (a DID URL
    /// such as `<did>#key-1`).
    pub fn with_did(key: ServiceKey, did: Did, kid: String) -> Self {
        Self {
            key,
            did,
            kid,
            x5c: None,
        }
    }

    /// An issuer known as `iss` (an https URL) whose credentials carry the
    /// certificate chain `x5c` (standard base64 DER, leaf first; the leaf
    /// certifies `key`) instead of a `kid`.
    pub fn with_x5c(key: ServiceKey, iss: Did, x5c: Vec<String>) -> Self {
        Self {
            key,
            did: iss,
            kid: String::new(),
            x5c: Some(x5c),
        }
    }

    /// The `kid` of its JWTs: the DID with its key fragment.
    pub fn kid(&self) -> String {
        self.kid.clone()
    }

    /// A status list token for `uri`, one bit per entry, good for an hour.
    pub fn status_list(&self, uri: &str, statuses: &[u8], iat: i64) -> String {
        self.status_list_for(uri, statuses, iat, 3600)
    }

    /// A status list token for `uri`, one bit per entry, to be fetched
    /// again after `ttl` seconds.
    pub fn status_list_for(&self, uri: &str, statuses: &[u8], iat: i64, ttl: u64) -> String {
        self.key.sign_jws(
            &json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": self.kid()}),
            &json!({"iss": self.did.as_str(), "sub": uri, "iat": iat, "ttl": ttl,
                    "status_list": {"bits": 1, "lst": encode_lst(statuses, 1)}}),
        )
    }

    /// An SD-JWT VC for `holder` whose `concealed` claims (dotted paths)
    /// are selectively disclosable; returns it and its Disclosures. Its
    /// `vct` is the demo's unless `claims` names one.
    pub fn issue(
        &self,
        holder: &VerifyingKey,
        claims: Map<String, Value>,
        concealed: &[&str],
        status: Option<(&str, u64)>,
        iat: i64,
    ) -> (String, Vec<String>) {
        self.issue_to(okp_jwk(holder), claims, concealed, status, iat)
    }

    /// [`Issuer::issue`] to a holder key given as a public JWK (an ES256
    /// holder's EC key, say).
    pub fn issue_to(
        &self,
        holder_jwk: Value,
        claims: Map<String, Value>,
        concealed: &[&str],
        status: Option<(&str, u64)>,
        iat: i64,
    ) -> (String, Vec<String>) {
        let mut payload = claims;
        payload.insert("iss".into(), self.did.as_str().into());
        payload.insert("iat".into(), iat.into());
        payload.insert("exp".into(), (iat + 365 * 24 * 3600).into());
        if !payload.contains_key("vct") {
            payload.insert("vct".into(), DEMO_VCT.into());
        }
        payload.insert("cnf".into(), json!({"jwk": holder_jwk}));
        if let Some((uri, idx)) = status {
            payload.insert(
                "status".into(),
                json!({"status_list": {"idx": idx, "uri": uri}}),
            );
        }
        let mut issuance = Issuance::new(payload, random_token);
        for path in concealed {
            issuance
                .conceal(path)
                .expect("the demo conceals claims it has");
        }
        issuance.decoy();
        let header = match &self.x5c {
            Some(chain) => json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "x5c": chain}),
            None => json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": self.kid()}),
        };
        issuance.sign(&header, |input| self.key.sign(input).to_bytes().to_vec())
    }
}

/// A presentation of `issued` with `disclosures`, bound by `holder` to a
/// verifier's `nonce` and `audience`.
pub fn present_to(
    holder: &ServiceKey,
    issued: &str,
    disclosures: &[String],
    nonce: &str,
    audience: &str,
    iat: i64,
) -> String {
    let header = json!({"alg": "EdDSA", "typ": "kb+jwt"});
    let mut sign = |input: &[u8]| holder.sign(input).to_bytes().to_vec();
    let chosen: Vec<&str> = disclosures.iter().map(String::as_str).collect();
    present(
        issued,
        &chosen,
        Some(KeyBinding {
            header: &header,
            sign: &mut sign,
            nonce,
            audience,
            iat,
        }),
    )
}

/// The demo's claims: a person with an address, all but the country
/// selectively disclosable.
pub fn demo_claims() -> (Map<String, Value>, &'static [&'static str]) {
    let claims = json!({
        "given_name": "Ada",
        "family_name": "Lovelace",
        "birthdate": "1815-12-10",
        "age_over_18": true,
        "address": {"country": "GB", "locality": "London"},
    });
    (
        claims.as_object().cloned().unwrap_or_default(),
        &[
            "given_name",
            "family_name",
            "birthdate",
            "age_over_18",
            "address.locality",
        ],
    )
}
