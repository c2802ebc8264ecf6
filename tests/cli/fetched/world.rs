//! A running service that fetches its trust from an issuer's HTTPS server
//! run here (a CA made by the test, trusted through
//! `PROOFLINE_FETCH_CA_FILE`), a registered issuer and lender, and
//! presentations of credentials that point at the server's documents.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use proofline::https::LocalCa;
use proofline::wallet::{DEMO_VCT, Issuer, demo_claims, present_to, random_token};
use proofline_commands::signing::ServiceKey;
use serde_json::{Value, json};

use crate::support::Running;

/// What the issuer's server answers at a path.
#[derive(Clone)]
pub enum Doc {
    Body {
        content_type: &'static str,
        body: Vec<u8>,
        /// Held this long before answering (to let many callers pile up).
        delay: Duration,
    },
    Redirect(String),
}

impl Doc {
    pub fn token(token: String) -> Self {
        Doc::Body {
            content_type: "application/statuslist+jwt",
            body: token.into_bytes(),
            delay: Duration::ZERO,
        }
    }
}

/// The issuer's HTTPS server: documents by path, and how often each was
/// asked for.
#[derive(Clone, Default)]
pub struct Published {
    docs: Arc<Mutex<HashMap<String, Doc>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Published {
    pub fn put(&self, path: &str, doc: Doc) {
        self.docs.lock().unwrap().insert(path.to_owned(), doc);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    async fn answer(&self, uri: Uri) -> Response {
        let path = uri.path().to_owned();
        *self.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        let doc = self.docs.lock().unwrap().get(&path).cloned();
        match doc {
            None => StatusCode::NOT_FOUND.into_response(),
            Some(Doc::Redirect(to)) => {
                (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
            }
            Some(Doc::Body {
                content_type,
                body,
                delay,
            }) => {
                tokio::time::sleep(delay).await;
                ([(header::CONTENT_TYPE, content_type)], body).into_response()
            }
        }
    }
}

pub struct IssuerServer {
    pub published: Published,
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl IssuerServer {
    pub async fn start(ca: &LocalCa) -> Self {
        let published = Published::default();
        let answering = published.clone();
        let router = axum::Router::new().fallback(move |uri: Uri| {
            let published = answering.clone();
            async move { published.answer(uri).await }
        });
        let (address, task) =
            proofline::https::start(ca, "127.0.0.1:0".parse().unwrap(), &["localhost"], router)
                .await
                .unwrap();
        Self {
            published,
            address,
            task,
        }
    }

    /// `https://localhost:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.address.port())
    }

    /// The server goes down: no new connection, and the open ones close.
    pub fn stop(&self) {
        self.task.abort();
    }
}

pub struct World {
    /// The service, stopped when the world is dropped.
    _service: Running,
    pub base: String,
    pub operator_key: String,
    pub lender_key: String,
    /// The lender's audience, which presentations are bound to.
    pub audience: String,
    pub client: reqwest::Client,
    pub issuer: Issuer,
    pub server: IssuerServer,
    /// The file the service wrote the operator's key to.
    pub operator_key_file: PathBuf,
    /// Every presentation [`World::verify`] had verified, in order.
    pub verified: Mutex<Vec<Verified>>,
    _ca_dir: tempfile::TempDir,
}

/// A presentation this world had verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The answer's `verification_id`.
    pub id: String,
    pub presentation: String,
    /// The nonce the lender gave.
    pub nonce: String,
    /// Its position in the log.
    pub position: u64,
}

impl World {
    /// Starts the issuer's server, then the service (`command`, data under
    /// `data`) trusting the server's CA and allowed to reach loopback
    /// unless `extra` says otherwise; registers a did:key issuer and a
    /// lender without a request rate limit.
    pub async fn start(mut command: Command, data: PathBuf, extra: &[(&str, &str)]) -> Self {
        proofline_projections::webhooks::client::install_crypto_provider();
        let ca = LocalCa::new("Fetched Trust Test CA").unwrap();
        let server = IssuerServer::start(&ca).await;
        let ca_dir = tempfile::tempdir().unwrap();
        let ca_file = ca_dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        command
            .env("PROOFLINE_FETCH_CA_FILE", &ca_file)
            .env("PROOFLINE_FETCH_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
            .env("PROOFLINE_RATE_LIMIT_PER_KEY", "0")
            .envs(extra.iter().copied());
        let service = Running::start(command);
        let base = service.base.clone();
        let operator_key_file = data.join("operator.key");
        let operator_key = read_key(&operator_key_file);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let issuer = Issuer::new(ServiceKey::generate().unwrap());
        let mut world = Self {
            _service: service,
            base,
            operator_key,
            lender_key: String::new(),
            audience: String::new(),
            client,
            issuer,
            server,
            operator_key_file,
            verified: Mutex::default(),
            _ca_dir: ca_dir,
        };
        let did = world.issuer.did.as_str().to_owned();
        let (status, body) = world
            .post_as_operator(
                "/v1/issuers",
                json!({"did": did, "name": "Fetched Issuer", "credential_types": [DEMO_VCT]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, lender) = world
            .post_as_operator(
                "/v1/lenders",
                json!({"name": "Fetching Lender", "contact_email": format!("f-{}@example.com", uuid::Uuid::now_v7().simple())}),
            )
            .await;
        assert_eq!(status, 201, "{lender}");
        world.lender_key = lender["api_key"].as_str().unwrap().to_owned();
        world.audience = lender["audience"].as_str().unwrap().to_owned();
        world
    }

    pub async fn post_as_operator(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.operator_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A list token of this world's issuer for `uri`, `ttl` seconds.
    pub fn list(&self, uri: &str, statuses: &[u8], iat: i64, ttl: u64) -> String {
        list_token(&self.issuer, uri, statuses, iat, ttl)
    }

    /// A presentation, bound to a fresh nonce, of a credential whose status
    /// is entry `idx` of the list at `uri`; and that nonce.
    pub fn presentation(&self, uri: &str, idx: u64) -> (String, String) {
        presentation_of(&self.issuer, Some((uri, idx)), &self.audience)
    }

    /// Verifies as the lender: the answer (201 expected). Remembered, to
    /// be replayed from the log.
    pub async fn verify(&self, (presentation, nonce): &(String, String)) -> Value {
        let response = self
            .client
            .post(format!("{}/v1/verifications", self.base))
            .bearer_auth(&self.lender_key)
            .json(&json!({"presentation": presentation, "nonce": nonce}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        self.verified.lock().unwrap().push(Verified {
            id: body["verification_id"].as_str().unwrap().to_owned(),
            presentation: presentation.clone(),
            nonce: nonce.clone(),
            position: body["position"].as_u64().unwrap(),
        });
        body
    }

    /// `GET <path>` as the operator: the JSON answer (null if none).
    pub async fn get_as_operator(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.operator_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// The service's public key (base64url), as an auditor fetches it
    /// apart from the log, once a signed checkpoint covers every
    /// verification made so far (the service signs within seconds).
    pub async fn signed_key(&self) -> String {
        let position = self
            .verified
            .lock()
            .unwrap()
            .iter()
            .map(|v| v.position)
            .max()
            .unwrap_or(0);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let latest = self.get_as_operator("/v1/log/checkpoints/latest").await;
            if latest["position"].as_u64().is_some_and(|at| at >= position) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint covers position {position}: {latest}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let key = self.get_as_operator("/v1/log/public-key").await;
        key["public_key"].as_str().unwrap().to_owned()
    }

    /// Every event of the log of type `kind`, as the operator reads it.
    pub async fn events(&self, kind: &str) -> Vec<Value> {
        let mut found = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .get_as_operator(&format!("/v1/events?after={after}&limit=500"))
                .await;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                return found;
            }
            after = events.last().unwrap()["position"].as_u64().unwrap();
            found.extend(events.into_iter().filter(|e| e["type"] == kind));
        }
    }
}

fn read_key(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("the operator key file")
        .trim()
        .to_owned()
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn list_token(issuer: &Issuer, uri: &str, statuses: &[u8], iat: i64, ttl: u64) -> String {
    use proofline_domain::status_list::{TOKEN_TYPE, encode_lst};
    issuer.key.sign_jws(
        &json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": issuer.kid()}),
        &json!({"iss": issuer.did.as_str(), "sub": uri, "iat": iat, "ttl": ttl,
                "status_list": {"bits": 1, "lst": encode_lst(statuses, 1)}}),
    )
}

/// A presentation of a credential `issuer` issued (with the status entry,
/// when given), bound to a fresh nonce for `audience`.
pub fn presentation_of(
    issuer: &Issuer,
    status: Option<(&str, u64)>,
    audience: &str,
) -> (String, String) {
    let holder = ServiceKey::generate().unwrap();
    let (claims, concealed) = demo_claims();
    let (issued, disclosures) = issuer.issue(
        &holder.verifying_key(),
        claims,
        concealed,
        status,
        now() - 5,
    );
    let nonce = random_token();
    let presentation = present_to(&holder, &issued, &disclosures, &nonce, audience, now());
    (presentation, nonce)
}

/// What an answer to `POST /v1/verifications` decided: verified, the step
/// that failed, its reason.
pub fn outcome(answer: &Value) -> (bool, Option<&str>, Option<&str>) {
    (
        answer["verified"].as_bool().unwrap_or(false),
        answer["failed_step"].as_str(),
        answer["reason"].as_str(),
    )
}

/// The detail of `step` in an answer.
pub fn step_detail(answer: &Value, step: &str) -> String {
    answer["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == step)
        .and_then(|s| s["detail"].as_str())
        .unwrap_or_default()
        .to_owned()
}
