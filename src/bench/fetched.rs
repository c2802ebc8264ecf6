//! The fetched-trust half of `bench verify`: a did:web issuer served over
//! local HTTPS (its DID document and its status list, a CA made here),
//! registered with `key_sources: ["did"]` and no key, and presentations of
//! one of its credentials. The first verification resolves the key and
//! fetches the list; the rest find both cached, as a service in steady
//! state does.

use axum::http::header;
use axum::response::IntoResponse;
use proofline_commands::signing::ServiceKey;
use proofline_domain::did::Did;
use serde_json::json;

use crate::https::LocalCa;
use crate::wallet::{self, DEMO_VCT, Issuer, okp_jwk};

pub struct World {
    pub presentations: Vec<(String, String)>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl World {
    /// Serves the issuer, registers it (as `operator` on the service at
    /// `base`), and makes `count` presentations for `audience`; checks
    /// that one verifies as `lender_key`.
    pub async fn start(
        client: &reqwest::Client,
        base: &str,
        operator: &str,
        lender_key: &str,
        ca: &LocalCa,
        audience: &str,
        count: usize,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let did = format!("did:web:localhost%3A{port}");
        let kid = format!("{did}#key-1");
        let key = ServiceKey::generate()?;
        let document = json!({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "verificationMethod": [{"id": kid, "type": "JsonWebKey2020", "controller": did,
                                    "publicKeyJwk": okp_jwk(&key.verifying_key())}],
            "assertionMethod": [kid],
        })
        .to_string();
        let issuer = Issuer::with_did(key, Did::parse(&did)?, kid);
        let uri = format!("https://localhost:{port}/status/1");
        let now = chrono::Utc::now().timestamp();
        let list = issuer.status_list_for(&uri, &[0; 1024], now - 10, 3_600);
        let router = axum::Router::new()
            .route(
                "/.well-known/did.json",
                axum::routing::get(move || {
                    let document = document.clone();
                    async move {
                        ([(header::CONTENT_TYPE, "application/did+json")], document).into_response()
                    }
                }),
            )
            .route(
                "/status/1",
                axum::routing::get(move || {
                    let list = list.clone();
                    async move {
                        ([(header::CONTENT_TYPE, "application/statuslist+jwt")], list)
                            .into_response()
                    }
                }),
            );
        let server = crate::https::serve(listener, ca.server_config(&["localhost"])?, router);
        let world = |presentations| Self {
            presentations,
            server,
        };
        let answer = client
            .post(format!("{base}/v1/issuers"))
            .bearer_auth(operator)
            .json(&json!({"did": did, "name": "Bench did:web Issuer", "credential_types": [DEMO_VCT], "key_sources": ["did"]}))
            .send()
            .await?;
        anyhow::ensure!(
            answer.status() == 201,
            "registering the did:web issuer: {}",
            answer.status()
        );
        let holder = ServiceKey::generate()?;
        let (claims, concealed) = wallet::demo_claims();
        let (issued, disclosures) = issuer.issue(
            &holder.verifying_key(),
            claims,
            concealed,
            Some((&uri, 7)),
            now - 60,
        );
        let present = || {
            let nonce = wallet::random_token();
            let presentation =
                wallet::present_to(&holder, &issued, &disclosures, &nonce, audience, now);
            (presentation, nonce)
        };
        // The first one resolves the key and fetches the list.
        let (presentation, nonce) = present();
        let first: serde_json::Value = client
            .post(format!("{base}/v1/verifications"))
            .bearer_auth(lender_key)
            .json(&json!({"presentation": presentation, "nonce": nonce, "required_claims": ["address.country"]}))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            first["verified"] == true,
            "the fetched-trust presentation did not verify: {}",
            first["steps"]
        );
        Ok(world((0..count).map(|_| present()).collect()))
    }
}
