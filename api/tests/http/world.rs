//! A world for verification cases: an issuer with a status list, a lender
//! and a holder, on a fresh app.

use std::future::Future;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use proofline_api::ApiSettings;
use proofline_domain::jose::testing::TestKey;
use proofline_domain::sd_jwt::{Issuance, KeyBinding, present};
use proofline_domain::status_list::TOKEN_TYPE;
use proofline_domain::status_list::testing::lst;
use serde_json::{Value, json};

use crate::support::{Answer, TestApp};

pub const VCT: &str = "https://credentials.example/identity";

/// An issuer (did:web, Ed25519 `key-1` and P-256 `key-2`) with a status
/// list in which entry 5 is revoked and entry 6 suspended, a lender, and a
/// holder.
pub struct World {
    pub app: TestApp,
    pub did: String,
    pub uri: String,
    pub lender_id: String,
    pub lender_key: String,
    pub audience: String,
    pub holder: TestKey,
}

pub fn jwk(key: &TestKey) -> Value {
    serde_json::to_value(key.public().to_jwk()).unwrap()
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub async fn world<F, Fut>(open: F) -> World
where
    F: Fn(ApiSettings) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let app = open(ApiSettings::default()).await;
    let did = format!("did:web:issuer-{}.example", uuid::Uuid::now_v7().simple());
    let registered = app
        .post(
            "/v1/issuers",
            Some(&app.operator_key),
            &json!({
                "did": did,
                "name": "State ID Office",
                "keys": [{"kid": "key-1", "jwk": jwk(&TestKey::ed25519(1))}, {"kid": "key-2", "jwk": jwk(&TestKey::p256(2))}],
                "credential_types": [VCT],
            }),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let uri = format!("https://{}.example/status/1", uuid::Uuid::now_v7().simple());
    let statuses = [0, 0, 0, 0, 0, 1, 2, 0];
    let key = TestKey::ed25519(1);
    let token = key.sign(
        &json!({"alg": key.alg(), "typ": TOKEN_TYPE, "kid": "key-1"}),
        &json!({"iss": did, "sub": uri, "iat": now() - 60, "status_list": {"bits": 2, "lst": lst(&statuses, 2)}}),
    );
    let published = app
        .post(
            "/v1/status-lists",
            Some(&app.operator_key),
            &json!({"uri": uri, "token": token}),
        )
        .await;
    assert_eq!(published.status, 201, "{}", published.text);
    let email = format!("l-{}@acme.example", uuid::Uuid::now_v7().simple());
    let (lender_id, lender_key) = app.register_lender(&email).await;
    let me = app.get("/v1/lenders/me", Some(&lender_key)).await;
    let audience = me.body["audience"].as_str().unwrap().to_owned();
    World {
        app,
        did,
        uri,
        lender_id,
        lender_key,
        audience,
        holder: TestKey::ed25519(9),
    }
}

impl World {
    /// A credential signed by `signer` under `kid`, with given_name,
    /// family_name, address.country (nested) and one nationality (an array
    /// element) selectively disclosable, at status list entry `idx`.
    pub fn issue(&self, signer: &TestKey, kid: &str, iat: i64, idx: u64) -> (String, Vec<String>) {
        let payload = json!({
            "iss": self.did,
            "iat": iat,
            "exp": now() + 3600,
            "vct": VCT,
            "given_name": "Erika",
            "family_name": "Mustermann",
            "address": {"country": "DE", "locality": "Köln"},
            "nationalities": ["DE", "FR"],
            "cnf": {"jwk": jwk(&self.holder)},
            "status": {"status_list": {"idx": idx, "uri": self.uri}},
        });
        let mut counter = 0u32;
        let mut issuance = Issuance::new(payload.as_object().unwrap().clone(), || {
            counter += 1;
            format!("salt-{counter}-{}", uuid::Uuid::now_v7().simple())
        });
        issuance
            .conceal("given_name")
            .unwrap()
            .conceal("family_name")
            .unwrap()
            .conceal("address.country")
            .unwrap()
            .conceal_element("nationalities", 1)
            .unwrap()
            .decoy();
        issuance.sign(
            &json!({"alg": signer.alg(), "typ": "dc+sd-jwt", "kid": kid}),
            |input| signer.sign_raw(input),
        )
    }

    pub fn present(&self, issued: &str, disclosures: &[String], nonce: &str) -> String {
        self.present_for(issued, disclosures, nonce, &self.audience)
    }

    /// A presentation bound to `audience` (another than the lender's own).
    pub fn present_for(
        &self,
        issued: &str,
        disclosures: &[String],
        nonce: &str,
        audience: &str,
    ) -> String {
        let header = json!({"alg": self.holder.alg(), "typ": "kb+jwt"});
        let mut sign = |input: &[u8]| self.holder.sign_raw(input);
        let chosen: Vec<&str> = disclosures.iter().map(String::as_str).collect();
        present(
            issued,
            &chosen,
            Some(KeyBinding {
                header: &header,
                sign: &mut sign,
                nonce,
                audience,
                iat: now() - 2,
            }),
        )
    }

    pub async fn verify(&self, presentation: &str, nonce: &str) -> Answer {
        self.app
            .post(
                "/v1/verifications",
                Some(&self.lender_key),
                &json!({"presentation": presentation, "nonce": nonce, "required_claims": ["address.country"]}),
            )
            .await
    }
}

pub fn fresh_nonce() -> String {
    format!("n-{}", uuid::Uuid::now_v7().simple())
}

/// Checks a receipt with nothing but the public key: EdDSA over
/// `header.payload`, and returns its payload.
pub fn open_receipt(receipt: &str, public_key: &Value) -> Value {
    let x = URL_SAFE_NO_PAD
        .decode(public_key["public_key"].as_str().unwrap())
        .unwrap();
    let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
    let parts: Vec<&str> = receipt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], public_key["kid"]);
    let signature =
        Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).expect("64 bytes");
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the receipt verifies with the published key");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}
