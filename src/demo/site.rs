//! The demo issuer's own HTTPS site, for `proofline demo --serve-issuer`:
//! the did:web DID document that names its key, and its status list,
//! served on a local port with a certificate for `localhost` from a CA
//! kept under `<data dir>/demo-issuer/` (so that a service told once to
//! trust the CA trusts it on every run).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::http::header;
use axum::response::IntoResponse;
use ed25519_dalek::VerifyingKey;
use proofline_commands::signing::ServiceKey;
use proofline_domain::did::Did;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::https::LocalCa;
use crate::wallet::{Issuer, okp_jwk};

/// The name of the demo issuer's CA (its subject's common name).
const CA_NAME: &str = "Proofline Demo Issuer CA";
/// The path of the demo issuer's status list.
const LIST_PATH: &str = "/status/1";
/// The status list's entries: all valid.
const LIST_ENTRIES: [u8; 16] = [0; 16];
/// How long a fetched list is good for.
const LIST_TTL: u64 = 300;

/// `<data dir>/demo-issuer`: the CA's certificate and key.
pub fn ca_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("demo-issuer")
}

/// The demo issuer's CA, made on the first run and kept; the certificate's
/// absolute path, which the service is told to trust.
pub fn ca(data_dir: &Path) -> anyhow::Result<(LocalCa, PathBuf)> {
    let (ca, files) = LocalCa::load_or_create(&ca_dir(data_dir), CA_NAME)?;
    let certificate = std::path::absolute(&files.certificate)
        .with_context(|| format!("cannot resolve {}", files.certificate.display()))?;
    if files.created {
        println!(
            "made the demo issuer's CA: its certificate is {} (its key {}, mode 0600)",
            certificate.display(),
            files.key.display()
        );
    } else {
        println!("the demo issuer's CA is {}", certificate.display());
    }
    Ok((ca, certificate))
}

/// `did:web:localhost%3A<port>`.
pub fn did_for(port: u16) -> anyhow::Result<Did> {
    Did::parse(&format!("did:web:localhost%3A{port}")).context("the demo issuer's did:web")
}

/// The DID document of `did` with one Ed25519 key, `<did>#key-1`, for
/// assertions (issuing credentials).
pub fn did_document(did: &str, key: &VerifyingKey) -> Value {
    let method = format!("{did}#key-1");
    json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "verificationMethod": [{
            "id": method,
            "type": "JsonWebKey2020",
            "controller": did,
            "publicKeyJwk": okp_jwk(key),
        }],
        "assertionMethod": [method],
    })
}

/// The demo issuer, served.
pub struct Site {
    pub issuer: Arc<Issuer>,
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    /// Binds `bind` and serves the issuer whose key is `key` there; its
    /// DID names the port bound.
    pub async fn start(ca: &LocalCa, key: ServiceKey, bind: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind} (--issuer-bind)"))?;
        let address = listener.local_addr()?;
        let did = did_for(address.port())?;
        let kid = format!("{}#key-1", did.as_str());
        let issuer = Arc::new(Issuer::with_did(key, did, kid));
        let list_uri = format!("https://localhost:{}{LIST_PATH}", address.port());
        let document = serde_json::to_vec(&did_document(
            issuer.did.as_str(),
            &issuer.key.verifying_key(),
        ))?;
        let signer = issuer.clone();
        let router = axum::Router::new()
            .route(
                "/.well-known/did.json",
                axum::routing::get(move || {
                    let document = document.clone();
                    async move {
                        println!("  (the demo issuer served its DID document)");
                        ([(header::CONTENT_TYPE, "application/did+json")], document)
                    }
                }),
            )
            .route(
                LIST_PATH,
                axum::routing::get(move || {
                    let (signer, list_uri) = (signer.clone(), list_uri.clone());
                    async move {
                        println!("  (the demo issuer served its status list)");
                        let now = chrono::Utc::now().timestamp();
                        let token = signer.status_list_for(&list_uri, &LIST_ENTRIES, now, LIST_TTL);
                        (
                            [(header::CONTENT_TYPE, "application/statuslist+jwt")],
                            token,
                        )
                            .into_response()
                    }
                }),
            );
        let tls = ca.server_config(&["localhost", "127.0.0.1", "::1"])?;
        let task = crate::https::serve(listener, tls, router);
        Ok(Self {
            issuer,
            address,
            task,
        })
    }

    /// `https://localhost:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.address.port())
    }

    /// The URI of the status list its credentials point at.
    pub fn list_uri(&self) -> String {
        self.url(LIST_PATH)
    }

    /// Says which URL serves what, after `heading` (`serving`).
    pub fn describe(&self, heading: &str) {
        println!(
            "{heading} the demo issuer {} on https://localhost:{}:\n  {}  its DID document\n  {}  its status list (every entry valid, ttl {LIST_TTL} s)",
            self.issuer.did.as_str(),
            self.address.port(),
            self.url("/.well-known/did.json"),
            self.list_uri(),
        );
    }

    /// Stops serving: no new connection, and the open ones close.
    pub fn stop(self) {
        self.task.abort();
    }
}
