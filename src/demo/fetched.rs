//! `proofline demo --serve-issuer`: fetched trust in one run. The demo
//! issuer becomes a did:web issuer with a site of its own (see `site`),
//! registered with no keys (the service resolves them from its DID
//! document) and publishing its status list there (the service fetches
//! it). The credential is verified here, and the curl of a second
//! presentation printed; then the site stays up until Ctrl-C.
//!
//! A service that cannot reach the site (it does not trust the demo CA, or
//! may not reach loopback addresses) is told how to restart, with the
//! exact line. The CA is made before the service is called, so that a
//! first run leaves behind the file to point it at.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use proofline_commands::signing;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::site::{self, Site};
use super::{
    Printed, REQUIRED_CLAIMS, connect, demo_dir, lender, operator_key, refused, shell_quote, shown,
    wallet_flow, write_request,
};
use crate::config::Config;
use crate::wallet::{self, DEMO_VCT};

/// What `--serve-issuer` was given.
pub struct ServeIssuer {
    /// Where the issuer's site listens (port 0: any free port).
    pub bind: SocketAddr,
    /// Exit once the outcome is printed, rather than serving until Ctrl-C.
    pub once: bool,
}

/// The networks the service must be allowed to reach for a site on this
/// machine.
const LOOPBACK: &str = "127.0.0.0/8,::1/128";

/// Reasons that say the service could not get the issuer's documents (its
/// key or its status list), as opposed to a credential it refused.
fn not_fetched(answer: &Value) -> bool {
    let reason = answer["reason"].as_str().unwrap_or_default();
    match answer["failed_step"].as_str() {
        Some("REVOCATION") => reason == "status_list_unavailable",
        // Any failure to authenticate the issuer but those that are
        // decisions about a key it has: its keys come from its document.
        Some("ISSUER_AUTH") => !matches!(
            reason,
            "issuer_suspended" | "vct_not_allowed" | "key_revoked" | "key_retired"
        ),
        _ => false,
    }
}

/// The instruction to restart the service trusting the demo's CA.
fn instruction(config: &Config, ca_file: &Path) -> String {
    let data_dir =
        std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    format!(
        "\nThe service could not fetch the demo issuer's documents. It must trust the demo \
         issuer's CA ({ca}) and be allowed to reach loopback addresses. Restart it with \
         (keeping its other settings):\n\n  PROOFLINE_DATA_DIR={data} PROOFLINE_FETCH_CA_FILE={ca_q} \
         PROOFLINE_FETCH_ALLOWED_NETWORKS={LOOPBACK} proofline serve\n\nthen run `proofline demo \
         --serve-issuer` again.",
        ca = ca_file.display(),
        data = shell_quote(&data_dir.display().to_string()),
        ca_q = shell_quote(&ca_file.display().to_string()),
    )
}

fn cannot_fetch(config: &Config, ca_file: &Path) -> anyhow::Error {
    println!("{}", instruction(config, ca_file));
    anyhow::anyhow!(
        "the service cannot fetch from the demo issuer: run it with PROOFLINE_FETCH_CA_FILE={} and PROOFLINE_FETCH_ALLOWED_NETWORKS={LOOPBACK}",
        ca_file.display()
    )
}

/// One line for a verification answer.
fn outcome(answer: &Value) -> String {
    if answer["verified"] == true {
        format!(
            "verified: the service resolved the issuer's key from its DID document and \
             fetched its status list; disclosed {}",
            answer["disclosed_claims"]
        )
    } else {
        let detail = answer["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["passed"] == false)
            .and_then(|s| s["detail"].as_str())
            .unwrap_or_default();
        format!(
            "not verified: {} {} ({detail})",
            answer["failed_step"].as_str().unwrap_or("?"),
            answer["reason"].as_str().unwrap_or("?"),
        )
    }
}

pub async fn run(
    config: &Config,
    url: &str,
    oid4vp: bool,
    options: &ServeIssuer,
) -> anyhow::Result<Printed> {
    let dir = demo_dir(config)?;
    let (ca, ca_file) = site::ca(&config.data_dir)?;
    let (issuer_key, _) = signing::load_or_create(&dir.join("issuer.key"))?;
    let (holder, _) = signing::load_or_create(&dir.join("holder.key"))?;
    let site = Site::start(&ca, issuer_key, options.bind).await?;
    site.describe("serving");
    let did = site.issuer.did.as_str().to_owned();

    let operator_key = operator_key(config)?;
    let server = connect(url)?;
    let registered = server
        .post(
            "/v1/issuers",
            &operator_key,
            &json!({"did": did, "name": "Proofline Demo Issuer (did:web)",
                    "credential_types": [DEMO_VCT], "key_sources": ["did"]}),
        )
        .await?;
    match registered.status {
        StatusCode::CREATED => {
            println!("registered the demo issuer {did}, its key from its DID document")
        }
        StatusCode::CONFLICT => println!("the demo issuer {did} is registered"),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(refused("registering the demo issuer", &registered));
        }
        _ => {
            println!(
                "the service refused to register {did}: {} {}",
                registered.status,
                registered.body["detail"].as_str().unwrap_or_default()
            );
            return Err(cannot_fetch(config, &ca_file));
        }
    }
    let lender = lender(&server, &operator_key, &dir).await?;

    let now = chrono::Utc::now().timestamp();
    let list_uri = site.list_uri();
    let (claims, concealed) = wallet::demo_claims();
    let (issued, disclosures) = site.issuer.issue(
        &holder.verifying_key(),
        claims,
        concealed,
        Some((&list_uri, 0)),
        now - 5,
    );
    let nonce = wallet::random_token();
    let presentation = wallet::present_to(
        &holder,
        &issued,
        &shown(disclosures.clone()),
        &nonce,
        &lender.audience,
        now,
    );
    println!("issued a credential pointing at {list_uri} and presented it; verifying");
    let answer = server
        .post(
            "/v1/verifications",
            &lender.key,
            &json!({"presentation": presentation, "nonce": nonce, "required_claims": REQUIRED_CLAIMS}),
        )
        .await?;
    if answer.status != StatusCode::CREATED {
        return Err(refused("verifying the presentation", &answer));
    }
    println!("{}", outcome(&answer.body));
    if answer.body["verified"] != true {
        if not_fetched(&answer.body) {
            return Err(cannot_fetch(config, &ca_file));
        }
        anyhow::bail!("the demo presentation was not verified");
    }

    println!("\nAnother presentation of the same credential, for you to verify:");
    let curl = write_request(&server, &lender, &dir, &holder, (&issued, disclosures))?;
    let oid4vp = if oid4vp {
        Some(wallet_flow(&server, &lender.key, issued, holder).await?)
    } else {
        None
    };
    if !options.once {
        println!();
        site.describe("until Ctrl-C (or SIGTERM), serving");
        until_stopped().await?;
    }
    site.stop();
    Ok(Printed { curl, oid4vp })
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
async fn until_stopped() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    println!("stopped serving the demo issuer");
    Ok(())
}
