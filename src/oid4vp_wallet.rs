//! The wallet built into the CLI (`proofline wallet present`, and
//! `proofline demo --oid4vp`): what a holder's wallet does with an
//! `openid4vp://` link.
//!
//! It fetches the request object (GET, or POST with its metadata and a
//! `wallet_nonce` when the link says `request_uri_method=post`), checks
//! its signature against its `client_id` (did:key, or an X.509 chain to a
//! trust anchor it is given), its `aud`, `exp` and `wallet_nonce`; chooses
//! what the DCQL query asks of the credentials it holds (and nothing
//! more); binds each presentation to the request's nonce with the whole
//! `client_id` as audience; and posts the `vp_token`, encrypted to the
//! request's key for `direct_post.jwt`.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use proofline_commands::oid4vp::identity::check_request_object;
use proofline_commands::signing::ServiceKey;
use proofline_domain::dcql::{self, DcqlQuery, Held, PathElement};
use proofline_domain::jose;
use proofline_domain::jwe::{self, ContentEncryption};
use proofline_domain::sd_jwt::{self, Disclosure, KeyBinding, present};
use serde_json::{Map, Value, json};

use crate::wallet::random_token;

/// The media type of a request object (RFC 9101 §10.2).
const REQUEST_OBJECT: &str = "application/oauth-authz-req+jwt";

/// The holder's key: Ed25519 (EdDSA) or P-256 (ES256).
pub enum HolderKey {
    Ed25519(ServiceKey),
    P256(p256::ecdsa::SigningKey),
}

impl HolderKey {
    pub fn alg(&self) -> &'static str {
        match self {
            HolderKey::Ed25519(_) => "EdDSA",
            HolderKey::P256(_) => "ES256",
        }
    }

    /// The public JWK an issuer puts in `cnf`.
    pub fn jwk(&self) -> Value {
        let public = match self {
            HolderKey::Ed25519(key) => jose::PublicKey::Ed25519(key.verifying_key()),
            HolderKey::P256(key) => jose::PublicKey::P256(*key.verifying_key()),
        };
        serde_json::to_value(public.to_jwk()).unwrap_or(Value::Null)
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            HolderKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            HolderKey::P256(key) => {
                use p256::ecdsa::signature::Signer;
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        }
    }

    /// A PKCS#8 PEM file of either kind.
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        if let Ok(key) = ServiceKey::from_pem(pem) {
            return Ok(HolderKey::Ed25519(key));
        }
        use p256::pkcs8::DecodePrivateKey;
        p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map(HolderKey::P256)
            .map_err(|_| anyhow::anyhow!("not a PKCS#8 PEM Ed25519 or P-256 private key"))
    }
}

/// One credential the wallet holds: the issued SD-JWT with every
/// Disclosure (`<jwt>~<d1>~…~`) and the key it is bound to.
pub struct Credential {
    pub issued: String,
    pub key: HolderKey,
}

/// How the wallet behaves (some of it only to test the verifier).
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer `access_denied` instead of presenting.
    pub decline: bool,
    /// DER trust anchors for an X.509 `client_id`.
    pub trust_anchors: Vec<Vec<u8>>,
    /// Leave the Key Binding JWT out.
    pub no_key_binding: bool,
    /// Bind to this nonce instead of the request's.
    pub nonce: Option<String>,
    /// Bind to this audience instead of the `client_id`.
    pub audience: Option<String>,
    /// Present exactly these (`<query id>=<presentation>`), not the chosen.
    pub vp_token: Option<Value>,
    /// Encrypt with this `enc` (when the verifier offers it), not the
    /// first the verifier lists.
    pub enc: Option<ContentEncryption>,
}

/// What the verifier answered the wallet's post.
#[derive(Debug, Clone)]
pub struct Posted {
    pub status: u16,
    pub body: Value,
    /// The request object's claims, as checked.
    pub request: Map<String, Value>,
    /// What the wallet presented: `{query id: [presentation]}`.
    pub vp_token: Value,
    /// How long the POST to the response endpoint took.
    pub post_took: std::time::Duration,
}

/// The parameters of an `openid4vp://?…` link.
fn link_parameters(link: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let url = url::Url::parse(link).context("the link is not a URL")?;
    let mut parameters = BTreeMap::new();
    for (name, value) in url.query_pairs() {
        if parameters
            .insert(name.to_string(), value.to_string())
            .is_some()
        {
            bail!("the link repeats {name}");
        }
    }
    Ok(parameters)
}

/// Fetches and checks the request object of `link`; answers its claims.
pub async fn fetch_request(
    client: &reqwest::Client,
    link: &str,
    behaviour: &Behaviour,
) -> anyhow::Result<Map<String, Value>> {
    let parameters = link_parameters(link)?;
    let client_id = parameters
        .get("client_id")
        .context("the link has no client_id")?;
    let now = chrono::Utc::now().timestamp();
    if let Some(rest) = client_id.strip_prefix("redirect_uri:") {
        // Unsigned, every parameter in the link (development verifiers).
        let mut claims = Map::new();
        for (name, value) in &parameters {
            let value = match name.as_str() {
                "dcql_query" | "client_metadata" => serde_json::from_str(value)
                    .with_context(|| format!("{name} in the link is not JSON"))?,
                _ => Value::String(value.clone()),
            };
            claims.insert(name.clone(), value);
        }
        if claims.get("response_uri").and_then(Value::as_str) != Some(rest) {
            bail!("a redirect_uri: client_id must be the response_uri");
        }
        return Ok(claims);
    }
    let (jws, wallet_nonce) = match (parameters.get("request"), parameters.get("request_uri")) {
        (Some(jws), _) => (jws.clone(), None),
        (None, Some(uri)) => {
            let post = parameters.get("request_uri_method").map(String::as_str) == Some("post");
            let (response, nonce) = if post {
                let nonce = random_token();
                let metadata = json!({
                    "request_object_signing_alg_values_supported": ["EdDSA", "ES256"],
                    "vp_formats_supported": {"dc+sd-jwt": {
                        "sd-jwt_alg_values": ["EdDSA", "ES256"],
                        "kb-jwt_alg_values": ["EdDSA", "ES256"]}},
                });
                let form = [
                    ("wallet_metadata", metadata.to_string()),
                    ("wallet_nonce", nonce.clone()),
                ];
                let post = client
                    .post(uri)
                    .header(reqwest::header::ACCEPT, REQUEST_OBJECT);
                (post.form(&form).send().await, Some(nonce))
            } else {
                let get = client
                    .get(uri)
                    .header(reqwest::header::ACCEPT, REQUEST_OBJECT);
                (get.send().await, None)
            };
            let response = response.with_context(|| format!("cannot fetch {uri}"))?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = response.text().await.unwrap_or_default();
            if !status.is_success() {
                bail!("fetching the request object answered {status}: {body}");
            }
            if content_type != REQUEST_OBJECT {
                bail!("the request object came as {content_type:?}");
            }
            (body, nonce)
        }
        (None, None) => bail!("the link has neither request nor request_uri"),
    };
    let claims = check_request_object(&jws, client_id, &behaviour.trust_anchors, now)
        .map_err(|e| anyhow::anyhow!("the request object does not check out: {e}"))?;
    if claims.get("aud").and_then(Value::as_str) != Some("https://self-issued.me/v2") {
        bail!("the request object's aud is not https://self-issued.me/v2");
    }
    if claims.contains_key("iss") || claims.contains_key("redirect_uri") {
        bail!("the request object has iss or redirect_uri");
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > now => {}
        _ => bail!("the request object has expired or has no exp"),
    }
    if let Some(nonce) = wallet_nonce
        && claims.get("wallet_nonce").and_then(Value::as_str) != Some(nonce.as_str())
    {
        bail!("the request object does not carry our wallet_nonce");
    }
    if claims.get("response_type").and_then(Value::as_str) != Some("vp_token") {
        bail!("response_type is not vp_token");
    }
    Ok(claims)
}

/// The Disclosures of `issued` that reveal `paths` (and the objects on the
/// way to them).
fn disclosures_for(issued: &str, paths: &[Vec<PathElement>]) -> anyhow::Result<Vec<String>> {
    let presentation = sd_jwt::Presentation::parse(issued)
        .map_err(|e| anyhow::anyhow!("the credential is not an SD-JWT: {}", e.detail))?;
    let payload = presentation.issuer_jwt.payload.clone();
    let processed = sd_jwt::process(&payload, &presentation.disclosures)
        .map_err(|e| anyhow::anyhow!("the credential does not process: {}", e.detail))?;
    let wanted: Vec<String> = paths
        .iter()
        .map(|path| {
            path.iter()
                .map(|e| match e {
                    PathElement::Key(k) => k.clone(),
                    PathElement::Index(i) => i.to_string(),
                    PathElement::All => "*".into(),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect();
    let needed = |disclosed: &str| {
        wanted
            .iter()
            .any(|w| w == disclosed || w.starts_with(&format!("{disclosed}.")))
    };
    let chosen: Vec<&str> = processed
        .disclosed_paths
        .iter()
        .zip(&processed.disclosed_digests)
        .filter(|(path, _)| needed(path))
        .map(|(_, digest)| digest.as_str())
        .collect();
    Ok(presentation
        .disclosures
        .iter()
        .filter(|d: &&Disclosure| chosen.contains(&d.digest.as_str()))
        .map(|d| d.text.clone())
        .collect())
}

/// A presentation of `credential` disclosing `paths` (each a list of
/// claim names), bound to `nonce` and `audience`: what a wallet that
/// chose otherwise would send.
pub fn present_paths(
    credential: &Credential,
    paths: &[Vec<String>],
    nonce: &str,
    audience: &str,
) -> anyhow::Result<String> {
    let paths: Vec<Vec<PathElement>> = paths
        .iter()
        .map(|p| p.iter().cloned().map(PathElement::Key).collect())
        .collect();
    bind(credential, &paths, nonce, audience, true)
}

/// The presentation of `credential` disclosing `paths`, with a Key
/// Binding JWT to `nonce` and `audience` unless `key_binding` is false.
fn bind(
    credential: &Credential,
    paths: &[Vec<PathElement>],
    nonce: &str,
    audience: &str,
    key_binding: bool,
) -> anyhow::Result<String> {
    let disclosures = disclosures_for(&credential.issued, paths)?;
    let chosen: Vec<&str> = disclosures.iter().map(String::as_str).collect();
    let issuer_jwt = credential.issued.split('~').next().unwrap_or_default();
    if !key_binding {
        return Ok(present(issuer_jwt, &chosen, None));
    }
    let header = json!({"alg": credential.key.alg(), "typ": "kb+jwt"});
    let mut sign = |input: &[u8]| credential.key.sign(input);
    Ok(present(
        issuer_jwt,
        &chosen,
        Some(KeyBinding {
            header: &header,
            sign: &mut sign,
            nonce,
            audience,
            iat: chrono::Utc::now().timestamp(),
        }),
    ))
}

/// The credentials' claims as DCQL sees them: processed with every
/// Disclosure.
fn holdings(credentials: &[Credential]) -> anyhow::Result<Vec<(String, Map<String, Value>)>> {
    credentials
        .iter()
        .map(|c| {
            let presentation = sd_jwt::Presentation::parse(&c.issued)
                .map_err(|e| anyhow::anyhow!("a credential is not an SD-JWT: {}", e.detail))?;
            let processed =
                sd_jwt::process(&presentation.issuer_jwt.payload, &presentation.disclosures)
                    .map_err(|e| anyhow::anyhow!("a credential does not process: {}", e.detail))?;
            let vct = processed
                .claims
                .get("vct")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Ok((vct, processed.claims))
        })
        .collect()
}

/// Answers the request of `link` with `credentials`.
pub async fn answer(
    client: &reqwest::Client,
    link: &str,
    credentials: &[Credential],
    behaviour: &Behaviour,
) -> anyhow::Result<Posted> {
    let request = fetch_request(client, link, behaviour).await?;
    let text = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("the request has no {name}"))
    };
    let (client_id, nonce, state, response_uri) = (
        text("client_id")?,
        text("nonce")?,
        text("state")?,
        text("response_uri")?,
    );
    let mode = text("response_mode")?;
    let mut payload = Map::new();
    payload.insert("state".into(), json!(state));
    let vp_token = if behaviour.decline {
        payload.insert("error".into(), json!("access_denied"));
        payload.insert("error_description".into(), json!("the holder declined"));
        Value::Null
    } else if let Some(given) = &behaviour.vp_token {
        given.clone()
    } else {
        let query = DcqlQuery::parse(request.get("dcql_query").unwrap_or(&Value::Null))
            .map_err(|e| anyhow::anyhow!("the DCQL query is not one this wallet reads: {e}"))?;
        let held_claims = holdings(credentials)?;
        let held: Vec<Held<'_>> = held_claims
            .iter()
            .map(|(vct, claims)| Held {
                vct,
                claims,
                holder_bound: true,
            })
            .collect();
        let chosen = dcql::choose(&query, &held)
            .context("no credential this wallet holds satisfies the query")?;
        let mut token = Map::new();
        for (query_id, answers) in chosen {
            let mut list = Vec::new();
            for (index, paths) in answers {
                let presented = bind(
                    &credentials[index],
                    &paths,
                    behaviour.nonce.as_deref().unwrap_or(&nonce),
                    behaviour.audience.as_deref().unwrap_or(&client_id),
                    !behaviour.no_key_binding,
                )?;
                list.push(json!(presented));
            }
            token.insert(query_id, Value::Array(list));
        }
        Value::Object(token)
    };
    if !vp_token.is_null() {
        payload.insert("vp_token".into(), vp_token.clone());
    }
    let form: Vec<(String, String)> = if mode == "direct_post.jwt" {
        vec![(
            "response".into(),
            encrypt(&request, &payload, behaviour.enc)?,
        )]
    } else {
        payload
            .iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (name.clone(), text)
            })
            .collect()
    };
    let sent = std::time::Instant::now();
    let response = client
        .post(&response_uri)
        .form(&form)
        .send()
        .await
        .with_context(|| format!("cannot post to {response_uri}"))?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    let post_took = sent.elapsed();
    Ok(Posted {
        status,
        body,
        request,
        vp_token,
        post_took,
    })
}

/// The response as a JWE to the request's encryption key (§8.3).
fn encrypt(
    request: &Map<String, Value>,
    payload: &Map<String, Value>,
    prefer: Option<ContentEncryption>,
) -> anyhow::Result<String> {
    let metadata = request
        .get("client_metadata")
        .context("direct_post.jwt without client_metadata")?;
    let jwk = metadata
        .pointer("/jwks/keys/0")
        .context("direct_post.jwt without a key in client_metadata.jwks")?;
    let key = jwe::public_key_from_jwk(jwk)
        .map_err(|e| anyhow::anyhow!("the request's encryption key is not usable: {e}"))?;
    let offered: Vec<ContentEncryption> = metadata
        .get("encrypted_response_enc_values_supported")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(ContentEncryption::parse)
        .collect();
    let enc = prefer
        .filter(|p| offered.contains(p))
        .or_else(|| offered.first().copied())
        .unwrap_or(ContentEncryption::A128Gcm);
    let mut seed = [0u8; 32];
    let ephemeral = loop {
        getrandom::fill(&mut seed).context("the OS random source failed")?;
        if let Ok(key) = p256::SecretKey::from_slice(&seed) {
            break key;
        }
    };
    let mut iv = [0u8; 12];
    getrandom::fill(&mut iv).context("the OS random source failed")?;
    let mut header = Map::new();
    if let Some(kid) = jwk.get("kid") {
        header.insert("kid".into(), kid.clone());
    }
    let plaintext = serde_json::to_vec(payload)?;
    Ok(jwe::encrypt(&plaintext, &key, enc, &ephemeral, iv, &header))
}

/// Reads a PEM file of certificates into DER.
pub fn pem_certificates(pem: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut inside = None::<String>;
    for line in pem.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let body = inside.take().context("an END without a BEGIN")?;
            use base64::Engine;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .context("a certificate is not base64")?,
            );
        } else if let Some(body) = &mut inside {
            body.push_str(line);
        }
    }
    if out.is_empty() {
        bail!("no certificate in the PEM file");
    }
    Ok(out)
}

/// `proofline wallet present`: answers a link, prints what the verifier
/// said as JSON (`{"status", "body"}`); fails when the wallet itself
/// refuses the request.
pub async fn run(action: crate::cli::WalletAction) -> anyhow::Result<()> {
    let crate::cli::WalletAction::Present {
        link,
        credentials,
        holder_keys,
        trust_anchors,
        decline,
        no_key_binding,
        nonce,
        audience,
        vp_token,
    } = action;
    if credentials.len() != holder_keys.len() {
        bail!("give one --holder-key per --credential, in the same order");
    }
    let mut held = Vec::new();
    for (credential, key) in credentials.iter().zip(&holder_keys) {
        let issued = std::fs::read_to_string(credential)
            .with_context(|| format!("cannot read {}", credential.display()))?;
        let pem = std::fs::read_to_string(key)
            .with_context(|| format!("cannot read {}", key.display()))?;
        held.push(Credential {
            issued: issued.trim().to_owned(),
            key: HolderKey::from_pem(&pem)?,
        });
    }
    let trust_anchors = match trust_anchors {
        Some(path) => pem_certificates(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        )?,
        None => Vec::new(),
    };
    let vp_token = vp_token
        .map(|text| serde_json::from_str(&text).context("--vp-token is not JSON"))
        .transpose()?;
    let behaviour = Behaviour {
        decline,
        trust_anchors,
        no_key_binding,
        nonce,
        audience,
        vp_token,
        enc: None,
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let posted = answer(&client, &link, &held, &behaviour).await?;
    println!(
        "{}",
        json!({"status": posted.status, "body": posted.body, "vp_token": posted.vp_token})
    );
    Ok(())
}
