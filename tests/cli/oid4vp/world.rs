//! A running service with a registered issuer and lender, a holder's
//! credentials, and the CLI's wallet to answer the lender's links.

use std::path::PathBuf;
use std::process::Command;

use proofline::oid4vp_wallet::{self, Behaviour, Credential, HolderKey, Posted};
use proofline::wallet::{DEMO_VCT, Issuer};
use proofline_commands::signing::ServiceKey;
use serde_json::{Map, Value, json};

use crate::support::{Running, proofline};

pub struct World {
    /// The service, stopped when the world is dropped.
    _service: Running,
    pub base: String,
    pub operator_key: String,
    pub lender_key: String,
    pub client: reqwest::Client,
    /// Files the wallet process reads.
    pub files: tempfile::TempDir,
    ada: (String, String),
    ada_es256: (String, String),
}

/// The query the README shows: three claims of the demo's identity.
pub fn identity_query() -> Value {
    json!({"credentials": [{
        "id": "identity",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [DEMO_VCT]},
        "claims": [
            {"path": ["given_name"]},
            {"path": ["family_name"]},
            {"path": ["address", "country"]},
        ],
    }]})
}

/// A JSON array of strings, sorted.
pub fn names(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

fn claims() -> Map<String, Value> {
    json!({
        "given_name": "Ada",
        "family_name": "Lovelace",
        "birthdate": "1815-12-10",
        "age_over_18": true,
        "address": {"country": "GB", "locality": "London"},
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

const CONCEALED: [&str; 6] = [
    "given_name",
    "family_name",
    "birthdate",
    "age_over_18",
    "address.country",
    "address.locality",
];

impl World {
    /// Starts the service of `command` (its data directory `data`),
    /// registers an issuer and a lender.
    pub async fn start(command: Command, data: PathBuf) -> Self {
        proofline_projections::webhooks::client::install_crypto_provider();
        let service = Running::start(command);
        let base = service.base.clone();
        let operator_key = std::fs::read_to_string(data.join("operator.key"))
            .expect("the operator key file")
            .trim()
            .to_owned();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        let issuer = Issuer::new(ServiceKey::generate().unwrap());
        let post = |path: &str, key: &str, body: Value| {
            client
                .post(format!("{base}{path}"))
                .bearer_auth(key)
                .json(&body)
                .send()
        };
        let registered = post(
            "/v1/issuers",
            &operator_key,
            json!({"did": issuer.did.as_str(), "name": "Test Issuer", "credential_types": [DEMO_VCT]}),
        )
        .await
        .unwrap();
        assert_eq!(registered.status(), 201);
        let lender: Value = post(
            "/v1/lenders",
            &operator_key,
            json!({"name": "Wallet Lender", "contact_email": format!("l-{}@example.com", uuid::Uuid::now_v7().simple())}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let lender_key = lender["api_key"].as_str().expect("an api key").to_owned();
        let now = chrono::Utc::now().timestamp();
        let ed = ServiceKey::generate().unwrap();
        // The issued SD-JWT carries every Disclosure.
        let (issued, _) = issuer.issue(&ed.verifying_key(), claims(), &CONCEALED, None, now - 5);
        let ada = (issued, ed.to_pem().unwrap());
        let p256 = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let jwk = HolderKey::P256(p256.clone()).jwk();
        let (issued, _) = issuer.issue_to(jwk, claims(), &CONCEALED, None, now - 5);
        let pem = {
            use p256::pkcs8::EncodePrivateKey;
            p256.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
                .unwrap()
                .to_string()
        };
        let ada_es256 = (issued, pem);
        World {
            _service: service,
            base,
            operator_key,
            lender_key,
            client,
            files: tempfile::tempdir().unwrap(),
            ada,
            ada_es256,
        }
    }

    pub fn ada(&self) -> Credential {
        Credential {
            issued: self.ada.0.clone(),
            key: HolderKey::from_pem(&self.ada.1).unwrap(),
        }
    }

    pub fn ada_es256(&self) -> Credential {
        Credential {
            issued: self.ada_es256.0.clone(),
            key: HolderKey::from_pem(&self.ada_es256.1).unwrap(),
        }
    }

    /// Creates a presentation request as the lender (201).
    pub async fn create(&self, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/v1/presentation-requests", self.base))
            .bearer_auth(&self.lender_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}: {answer}");
        answer
    }

    /// `GET <path>` as the lender, 200.
    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.lender_key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    }

    /// The lender's view of a request.
    pub async fn result(&self, created: &Value) -> Value {
        let id = created["request_id"].as_str().unwrap();
        self.get(&format!("/v1/presentation-requests/{id}")).await
    }

    /// The CLI's wallet, in this process.
    pub async fn answer(
        &self,
        created: &Value,
        credentials: &[Credential],
        behaviour: &Behaviour,
    ) -> Posted {
        let link = created["authorization_request"].as_str().unwrap();
        oid4vp_wallet::answer(&self.client, link, credentials, behaviour)
            .await
            .unwrap_or_else(|e| panic!("the wallet refused: {e:#}"))
    }

    /// `proofline wallet present` as a process, with Ada's Ed25519
    /// credential; its JSON output.
    pub fn wallet_process(&self, created: &Value, extra: &[&str]) -> Value {
        let credential = self.files.path().join("ada.sd-jwt");
        let key = self.files.path().join("ada.key");
        std::fs::write(&credential, &self.ada.0).unwrap();
        std::fs::write(&key, &self.ada.1).unwrap();
        let link = created["authorization_request"].as_str().unwrap();
        let output = proofline(&self.files.path().join("wallet-data"))
            .args(["wallet", "present", link, "--credential"])
            .arg(&credential)
            .arg("--holder-key")
            .arg(&key)
            .args(extra)
            .output()
            .expect("run proofline wallet");
        assert!(
            output.status.success(),
            "the wallet failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the wallet prints JSON")
    }

    /// Every event of the log, as the operator reads it.
    pub async fn log(&self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let after = events
                .last()
                .and_then(|e: &Value| e["position"].as_u64())
                .unwrap_or(0);
            let page: Value = self
                .client
                .get(format!("{}/v1/events?after={after}&limit=1000", self.base))
                .bearer_auth(&self.operator_key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let more = page["events"].as_array().cloned().unwrap_or_default();
            if more.is_empty() {
                return events;
            }
            events.extend(more);
        }
    }

    /// Posts a form to the response endpoint: the status and the JSON.
    pub async fn post_response(&self, form: &[(&str, String)]) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/oid4vp/response", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}
