//! The OpenID4VP verifier's settings: where wallets reach it, who it says
//! it is (its `client_id` and key), how long results are kept.

use std::path::{Path, PathBuf};

use super::ConfigError;
use super::reader::{Reader, bad};

/// Which `client_id` prefix the deployment uses (§5.9.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdKind {
    /// `decentralized_identifier:did:key:…` with the verifier key file.
    DidKey,
    /// `x509_san_dns:<name>` (the leaf's first dNSName when no name is given).
    X509SanDns(Option<String>),
    /// `x509_hash:<sha-256 of the leaf>` (HAIP).
    X509Hash,
    /// `redirect_uri:<response_uri>`: unsigned, by value; development only.
    RedirectUri,
}

#[derive(Debug, Clone)]
pub struct Oid4vpConfig {
    /// The public base URL wallets use; absent: `http://127.0.0.1:<the
    /// port listened on>` (development).
    pub public_url: Option<url::Url>,
    pub client_id: ClientIdKind,
    pub verifier_key_file: PathBuf,
    pub x509_chain_file: Option<PathBuf>,
    pub x509_key_file: Option<PathBuf>,
    pub result_ttl_seconds: i64,
}

pub(super) fn read(r: &Reader<'_>, data_dir: &Path) -> Result<Oid4vpConfig, ConfigError> {
    let public_url = r
        .get(
            "PROOFLINE_PUBLIC_URL",
            "http://127.0.0.1:<port listened on>",
        )
        .map(|text| {
            url::Url::parse(text)
                .ok()
                .filter(proofline_commands::oid4vp::flow::is_public_or_loopback)
                .filter(|u| u.query().is_none() && u.fragment().is_none())
                .ok_or_else(|| {
                    bad(
                        "PROOFLINE_PUBLIC_URL",
                        format!(
                            "{text:?} is not an https URL (http is for loopback only) without query"
                        ),
                    )
                })
        })
        .transpose()?;
    let client_id = match r.get("PROOFLINE_OID4VP_CLIENT_ID", "decentralized_identifier") {
        None | Some("decentralized_identifier") => ClientIdKind::DidKey,
        Some("x509_hash") => ClientIdKind::X509Hash,
        Some("x509_san_dns") => ClientIdKind::X509SanDns(None),
        Some("redirect_uri") => ClientIdKind::RedirectUri,
        Some(other) => match other.strip_prefix("x509_san_dns:") {
            Some(name) if !name.is_empty() => ClientIdKind::X509SanDns(Some(name.to_owned())),
            _ => {
                return Err(bad(
                    "PROOFLINE_OID4VP_CLIENT_ID",
                    format!(
                        "{other:?}: decentralized_identifier, x509_hash, x509_san_dns[:<name>] \
                         or redirect_uri"
                    ),
                ));
            }
        },
    };
    let x509_chain_file = r
        .get("PROOFLINE_OID4VP_X509_CHAIN_FILE", "none")
        .map(PathBuf::from);
    let x509_key_file = r
        .get("PROOFLINE_OID4VP_X509_KEY_FILE", "none")
        .map(PathBuf::from);
    if matches!(
        client_id,
        ClientIdKind::X509Hash | ClientIdKind::X509SanDns(_)
    ) && (x509_chain_file.is_none() || x509_key_file.is_none())
    {
        return Err(bad(
            "PROOFLINE_OID4VP_CLIENT_ID",
            "an x509 client_id needs PROOFLINE_OID4VP_X509_CHAIN_FILE and \
             PROOFLINE_OID4VP_X509_KEY_FILE",
        ));
    }
    let result_ttl_seconds =
        r.number("PROOFLINE_OID4VP_RESULT_TTL_SECONDS", 600, 1..=86_400)? as i64;
    Ok(Oid4vpConfig {
        public_url,
        client_id,
        verifier_key_file: r.file("PROOFLINE_VERIFIER_KEY_FILE", data_dir, "verifier.key"),
        x509_chain_file,
        x509_key_file,
        result_ttl_seconds,
    })
}
