//! `proofline demo`: a verifiable presentation against a running server.
//!
//! With the operator key, it registers a demo issuer (a did:key whose key
//! it keeps under `<data dir>/demo/`) and a demo lender (whose API key it
//! keeps there too, mode 0600), publishes the issuer's status list, issues
//! a credential with selectively disclosable claims and a status entry,
//! presents it with a fresh nonce to the lender's audience, writes the
//! request body next to the keys and prints the curl that verifies it. A
//! second run reuses the issuer and the lender.
//!
//! With `--serve-issuer` (`demo/fetched.rs`), the same issuer key becomes a
//! did:web issuer served here over HTTPS (`demo/site.rs`), whose key and status
//! list the service fetches.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use proofline_commands::signing;
use proofline_domain::sd_jwt::Disclosure;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::config::Config;
use crate::wallet::{self, DEMO_VCT, Issuer};

mod fetched;
mod site;

pub use fetched::{ServeIssuer, run as serve_issuer};

struct Server {
    client: reqwest::Client,
    base: String,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    async fn post(&self, path: &str, key: &str, body: &Value) -> anyhow::Result<Answer> {
        self.call(reqwest::Method::POST, path, key, Some(body))
            .await
    }
}

fn refused(what: &str, answer: &Answer) -> anyhow::Error {
    anyhow::anyhow!(
        "{what}: the server answered {} {}",
        answer.status,
        answer.body["detail"].as_str().unwrap_or_default()
    )
}

/// Writes `content` to `path` with mode 0600, replacing it atomically.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Quotes a word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What the demo prints last: the command that verifies its presentation.
pub struct Printed {
    pub curl: String,
    /// With `--oid4vp`: the lender's result of the wallet's flow.
    pub oid4vp: Option<Value>,
}

/// The operator key the service wrote at its first start.
fn operator_key(config: &Config) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(&config.operator_key_file)
        .with_context(|| {
            format!(
                "cannot read the operator key at {} (start the server once first)",
                config.operator_key_file.display()
            )
        })?
        .trim()
        .to_owned())
}

/// `<data dir>/demo`, owner-only: the demo's keys and request.
fn demo_dir(config: &Config) -> anyhow::Result<PathBuf> {
    let dir = config.data_dir.join("demo");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn connect(url: &str) -> anyhow::Result<Server> {
    Ok(Server {
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?,
        base: url.trim_end_matches('/').to_owned(),
    })
}

/// The demo lender: its API key (kept in `file`) and audience.
struct Lender {
    key: String,
    file: PathBuf,
    audience: String,
}

/// The demo lender of an earlier run, or a new one registered now.
async fn lender(server: &Server, operator_key: &str, dir: &Path) -> anyhow::Result<Lender> {
    let lender_file = dir.join("lender.key");
    let mut lender_key = std::fs::read_to_string(&lender_file)
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    let mut me = server
        .call(reqwest::Method::GET, "/v1/lenders/me", &lender_key, None)
        .await?;
    if me.status != StatusCode::OK {
        let email = format!(
            "demo-{}@lender.proofline.example",
            uuid::Uuid::now_v7().simple()
        );
        let lender = server
            .post(
                "/v1/lenders",
                operator_key,
                &json!({"name": "Demo Lender", "contact_email": email}),
            )
            .await?;
        if lender.status != StatusCode::CREATED {
            return Err(refused("registering the demo lender", &lender));
        }
        lender_key = lender.body["api_key"]
            .as_str()
            .context("the registration answer has no api_key")?
            .to_owned();
        write_private(&lender_file, &format!("{lender_key}\n"))?;
        me = server
            .call(reqwest::Method::GET, "/v1/lenders/me", &lender_key, None)
            .await?;
        if me.status != StatusCode::OK {
            return Err(refused("reading the demo lender", &me));
        }
        println!(
            "registered the demo lender {}; its API key is in {} (mode 0600)",
            me.body["lender_id"].as_str().unwrap_or_default(),
            lender_file.display()
        );
    } else {
        println!(
            "the demo lender {} is registered; its API key is in {}",
            me.body["lender_id"].as_str().unwrap_or_default(),
            lender_file.display()
        );
    }
    let audience = me.body["audience"]
        .as_str()
        .context("the lender has no audience")?
        .to_owned();
    Ok(Lender {
        key: lender_key,
        file: lender_file,
        audience,
    })
}

/// The Disclosures the holder shows: all but the birthdate.
fn shown(disclosures: Vec<String>) -> Vec<String> {
    disclosures
        .into_iter()
        .filter(|d| Disclosure::parse(d).map_or(true, |d| d.name.as_deref() != Some("birthdate")))
        .collect()
}

/// The claims the demo's verifications require.
const REQUIRED_CLAIMS: [&str; 2] = ["address.country", "age_over_18"];

/// Presents `issued` (without the birthdate) with a fresh nonce, writes
/// the request body to `<dir>/request.json` and prints the curl that
/// verifies it; returns that curl.
fn write_request(
    server: &Server,
    lender: &Lender,
    dir: &Path,
    holder: &signing::ServiceKey,
    (issued, disclosures): (&str, Vec<String>),
) -> anyhow::Result<String> {
    let nonce = wallet::random_token();
    let now = chrono::Utc::now().timestamp();
    let presentation = wallet::present_to(
        holder,
        issued,
        &shown(disclosures),
        &nonce,
        &lender.audience,
        now,
    );
    let request = dir.join("request.json");
    write_private(
        &request,
        &serde_json::to_string_pretty(&json!({
            "presentation": presentation,
            "nonce": nonce,
            "required_claims": REQUIRED_CLAIMS,
        }))?,
    )?;
    if !request.exists() {
        bail!("{} was not written", request.display());
    }
    println!(
        "issued a credential (given_name, family_name, birthdate, age_over_18 and \
         address.locality selectively disclosable) and presented it without the \
         birthdate, with a fresh nonce; the request is in {} and is good for 5 minutes.",
        request.display()
    );
    println!("Verify it:\n");
    let curl = format!(
        "curl -sS -X POST {} -H \"Authorization: Bearer $(cat {})\" -H 'Content-Type: application/json' --data @{}",
        shell_quote(&format!("{}/v1/verifications", server.base)),
        shell_quote(&lender.file.display().to_string()),
        shell_quote(&request.display().to_string()),
    );
    println!("{curl}");
    Ok(curl)
}

pub async fn run(config: &Config, url: &str, oid4vp: bool) -> anyhow::Result<Printed> {
    let operator_key = operator_key(config)?;
    let dir = demo_dir(config)?;
    let server = connect(url)?;

    let (issuer_key, _) = signing::load_or_create(&dir.join("issuer.key"))?;
    let (holder, _) = signing::load_or_create(&dir.join("holder.key"))?;
    let issuer = Issuer::new(issuer_key);
    let registered = server
        .post(
            "/v1/issuers",
            &operator_key,
            &json!({"did": issuer.did.as_str(), "name": "Proofline Demo Issuer", "credential_types": [DEMO_VCT]}),
        )
        .await?;
    match registered.status {
        StatusCode::CREATED => println!("registered the demo issuer {}", issuer.did.as_str()),
        StatusCode::CONFLICT => println!("the demo issuer {} is registered", issuer.did.as_str()),
        _ => return Err(refused("registering the demo issuer", &registered)),
    }
    let lender = lender(&server, &operator_key, &dir).await?;

    let now = chrono::Utc::now().timestamp();
    let multibase = issuer.did.did_key_multibase().unwrap_or_default();
    let uri = format!(
        "https://status.proofline.example/demo/{}",
        &multibase[multibase.len().saturating_sub(16)..]
    );
    let statuses = [0, 1, 0, 0, 0, 0, 0, 0];
    let published = server
        .post(
            "/v1/status-lists",
            &operator_key,
            &json!({"uri": uri, "token": issuer.status_list(&uri, &statuses, now)}),
        )
        .await?;
    match published.status {
        // A list of the same second is in place already.
        StatusCode::CREATED | StatusCode::CONFLICT => {
            println!("published the status list {uri} (entry 0 valid, entry 1 revoked)")
        }
        _ => return Err(refused("publishing the status list", &published)),
    }

    let (claims, concealed) = wallet::demo_claims();
    let (issued, disclosures) = issuer.issue(
        &holder.verifying_key(),
        claims,
        concealed,
        Some((&uri, 0)),
        now - 5,
    );
    let curl = write_request(&server, &lender, &dir, &holder, (&issued, disclosures))?;
    let oid4vp = if oid4vp {
        Some(wallet_flow(&server, &lender.key, issued, holder).await?)
    } else {
        None
    };
    Ok(Printed { curl, oid4vp })
}

/// `--oid4vp`: the lender asks for three claims by OpenID4VP, the CLI's
/// wallet answers the link, the lender reads the result.
async fn wallet_flow(
    server: &Server,
    lender_key: &str,
    issued: String,
    holder: signing::ServiceKey,
) -> anyhow::Result<Value> {
    let query = json!({"credentials": [{
        "id": "identity",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [DEMO_VCT]},
        "claims": [
            {"path": ["given_name"]},
            {"path": ["family_name"]},
            {"path": ["address", "country"]},
        ],
    }]});
    let created = server
        .post(
            "/v1/presentation-requests",
            lender_key,
            &json!({"dcql_query": query}),
        )
        .await?;
    if created.status != StatusCode::CREATED {
        return Err(refused("creating the presentation request", &created));
    }
    let link = created.body["authorization_request"]
        .as_str()
        .context("the answer has no authorization_request")?
        .to_owned();
    let id = created.body["request_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("\nOpenID4VP: the lender asks for given_name, family_name and address.country.");
    println!("Show this to the holder's wallet:\n\n{link}\n");
    println!("{}", crate::qr::render(&link)?);
    let credential = crate::oid4vp_wallet::Credential {
        issued,
        key: crate::oid4vp_wallet::HolderKey::Ed25519(holder),
    };
    let posted = crate::oid4vp_wallet::answer(
        &server.client,
        &link,
        &[credential],
        &crate::oid4vp_wallet::Behaviour::default(),
    )
    .await?;
    println!(
        "the CLI's wallet checked the request object of {} and posted: {} {}",
        posted.request["client_id"].as_str().unwrap_or_default(),
        posted.status,
        posted.body
    );
    let result = server
        .call(
            reqwest::Method::GET,
            &format!("/v1/presentation-requests/{id}"),
            lender_key,
            None,
        )
        .await?;
    if result.status != StatusCode::OK {
        return Err(refused("reading the presentation request", &result));
    }
    println!(
        "the lender reads:\n{}",
        serde_json::to_string_pretty(&result.body)?
    );
    Ok(result.body)
}
