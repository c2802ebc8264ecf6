//! Presentation requests: created by a lender, fetched by a wallet as a
//! signed request object, read back with their verifications.
//!
//! What a request must keep secret (its nonce and state, the private half
//! of its encryption key, the lender's return URL) is sealed into the
//! secrets table with the `PresentationRequestCreated` event; the log holds
//! digests. The values a response disclosed are sealed the same way, with
//! the event that records the response, and forgotten after the result TTL
//! ([`Flows::forget_lapsed`]; a read past the TTL finds nothing either).

use std::collections::BTreeMap;
use std::sync::Arc;

use proofline_domain::dcql::DcqlQuery;
use proofline_domain::jose::b64url_encode;
use proofline_domain::lender::LenderId;
use proofline_domain::log::Timestamp;
use proofline_domain::presentation_request::{
    NewRequest, PresentationRequest, PresentationRequestCommand, PresentationRequestDecider,
    PresentationRequestError, PresentationRequestId, RequestUriMethod, ResponseMode, Status,
};
use proofline_domain::verification_record::{VerificationEvent, VerificationRecord, sha256_hex};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use url::Url;

use super::identity::{ClientIdPrefix, VerifierIdentity};
use crate::handler::{self, CommandContext, CommandError, Decision, Done};
use crate::lenders::Seal;
use crate::sealing::{Sealed, SealingKey};
use crate::store::{EventStore, SecretWrite, StoreError};
use crate::verifications::Verifier;

/// The secrets table's kind for a request's own secrets.
pub const REQUEST_SECRET: &str = "oid4vp-request";
/// The secrets table's kind for the values a response disclosed.
pub const RESULT_SECRET: &str = "oid4vp-result";
/// `aud` of every request object (§5.8: the wallet is a self-issued OP).
pub const REQUEST_OBJECT_AUD: &str = "https://self-issued.me/v2";
/// `typ` of a request object (RFC 9101).
pub const REQUEST_OBJECT_TYP: &str = "oauth-authz-req+jwt";
/// Signature algorithms a presentation may use, as the request says.
pub const ALG_VALUES: [&str; 2] = ["EdDSA", "ES256"];

/// Where wallets reach the service, and how long results are kept.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// The public base URL (https, or http on a loopback address).
    pub public_url: Url,
    /// Seconds the disclosed values of a response are kept.
    pub result_ttl_seconds: i64,
}

/// What a lender asks for.
#[derive(Debug, Clone)]
pub struct NewPresentationRequest {
    pub dcql_query: DcqlQuery,
    pub response_mode: ResponseMode,
    pub request_uri_method: RequestUriMethod,
    pub expires_in: i64,
    pub same_device_return_url: Option<Url>,
    /// The request object in the link itself rather than at `request_uri`.
    pub by_value: bool,
}

/// What creating a request answers.
#[derive(Debug, Clone)]
pub struct CreatedRequest {
    pub request_id: PresentationRequestId,
    pub authorization_request: String,
    pub request_uri: Option<String>,
    pub client_id: String,
    pub expires_at: Timestamp,
}

/// A request's secrets, sealed outside the log.
#[derive(Serialize, Deserialize)]
pub(crate) struct RequestSecrets {
    pub nonce: String,
    pub state: String,
    /// The whole DCQL query (the log's copy has no `values`).
    pub dcql_query: Value,
    /// Hex of the P-256 scalar of the request's encryption key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

/// The values a response disclosed, per credential query, one entry per
/// presentation (`None` for one that did not verify).
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct ResultSecrets {
    pub claims: BTreeMap<String, Vec<Option<Map<String, Value>>>>,
}

/// One presentation of a response, as the lender reads it.
#[derive(Debug, Clone)]
pub struct PresentedView {
    pub record: VerificationRecord,
    /// The disclosed values, while kept and when released.
    pub disclosed_claims: Option<Map<String, Value>>,
}

/// A request as its lender reads it.
#[derive(Debug, Clone)]
pub struct PresentationView {
    pub request: PresentationRequest,
    pub status: Status,
    pub presentations: BTreeMap<String, Vec<PresentedView>>,
    pub position: u64,
}

/// The OpenID4VP flows of one deployment.
pub struct Flows {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) identity: Arc<VerifierIdentity>,
    pub(crate) sealing: Arc<SealingKey>,
    pub(crate) settings: FlowSettings,
}

/// 128 random bits, base64url.
pub(crate) fn token() -> Result<String, CommandError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| CommandError::Store(StoreError::corrupt("random source", e)))?;
    Ok(b64url_encode(bytes))
}

fn request_secret_id(id: PresentationRequestId) -> String {
    format!("{REQUEST_SECRET}-{id}")
}

pub(crate) fn result_secret_id(id: PresentationRequestId) -> String {
    format!("{RESULT_SECRET}-{id}")
}

impl Flows {
    pub fn new(
        store: Arc<dyn EventStore>,
        verifier: Arc<Verifier>,
        identity: Arc<VerifierIdentity>,
        sealing: Arc<SealingKey>,
        settings: FlowSettings,
    ) -> Self {
        Self {
            store,
            verifier,
            identity,
            sealing,
            settings,
        }
    }

    pub fn client_id(&self) -> &str {
        self.identity.client_id()
    }

    pub fn identity(&self) -> &VerifierIdentity {
        &self.identity
    }

    /// `<public url>/oid4vp/response`.
    pub fn response_uri(&self) -> String {
        self.endpoint("oid4vp/response")
    }

    /// `<public url>/oid4vp/requests/<id>`.
    pub fn request_uri(&self, id: PresentationRequestId) -> String {
        self.endpoint(&format!("oid4vp/requests/{id}"))
    }

    fn endpoint(&self, path: &str) -> String {
        let base = self.settings.public_url.as_str().trim_end_matches('/');
        format!("{base}/{path}")
    }

    pub(crate) fn seal_json(
        &self,
        id: &str,
        kind: &str,
        value: &impl Serialize,
    ) -> Result<SecretWrite, CommandError> {
        let plain = serde_json::to_vec(value)
            .map_err(|e| CommandError::Store(StoreError::corrupt("oid4vp secret", e)))?;
        let sealed = self
            .sealing
            .seal(id.as_bytes(), &plain)
            .ok_or_else(|| CommandError::Store(StoreError::corrupt("sealing", "cannot seal")))?;
        let material = serde_json::to_string(&sealed)
            .map_err(|e| CommandError::Store(StoreError::corrupt("sealing", e)))?;
        Ok(SecretWrite {
            id: id.to_owned(),
            kind: kind.to_owned(),
            material: SecretString::from(material),
            replace: false,
        })
    }

    /// A sealed secret and when it was written; `None` when absent.
    pub(crate) async fn open_json<T: for<'de> Deserialize<'de>>(
        &self,
        id: &str,
    ) -> Result<Option<(T, Timestamp)>, CommandError> {
        let Some(record) = self.store.secret(id).await? else {
            return Ok(None);
        };
        let corrupt = |why: &str| CommandError::Store(StoreError::corrupt("oid4vp secret", why));
        let sealed: Sealed = serde_json::from_str(record.material.expose_secret())
            .map_err(|_| corrupt("not a sealed record"))?;
        let plain = self
            .sealing
            .open(id.as_bytes(), &sealed)
            .ok_or_else(|| corrupt("cannot be opened with the sealing key"))?;
        let value = serde_json::from_slice(&plain).map_err(|_| corrupt("not what was sealed"))?;
        Ok(Some((value, record.created_at)))
    }

    pub(crate) async fn request_secrets(
        &self,
        id: PresentationRequestId,
    ) -> Result<RequestSecrets, CommandError> {
        self.open_json(&request_secret_id(id))
            .await?
            .map(|(secrets, _)| secrets)
            .ok_or_else(|| {
                CommandError::Store(StoreError::corrupt(
                    "oid4vp request",
                    "its secrets are gone",
                ))
            })
    }

    /// Creates a request for `lender`.
    pub async fn create(
        &self,
        context: &CommandContext,
        lender: LenderId,
        ask: NewPresentationRequest,
        seal: Seal<'_, CreatedRequest>,
    ) -> Result<Done<CreatedRequest>, CommandError> {
        let state = token()?;
        let nonce = token()?;
        let id = PresentationRequestId::for_state(&state);
        let encryption_key = match ask.response_mode {
            ResponseMode::DirectPost => None,
            ResponseMode::DirectPostJwt => Some(super::response::new_encryption_key()?),
        };
        let expires_at = Timestamp::from_datetime(
            context.now.as_datetime() + chrono::Duration::seconds(ask.expires_in),
        );
        let new = NewRequest {
            request_id: id,
            lender_id: lender,
            client_id: self.client_id().to_owned(),
            response_mode: ask.response_mode,
            request_uri_method: ask.request_uri_method,
            dcql_query: without_values(ask.dcql_query.to_value()),
            dcql_query_sha256: sha256_hex(&ask.dcql_query.to_value().to_string()),
            expires_at,
            same_device: ask.same_device_return_url.is_some(),
            nonce_sha256: sha256_hex(&nonce),
            state_sha256: sha256_hex(&state),
            encryption_kid: encryption_key.as_ref().map(|_| id.to_string()),
        };
        let secrets = RequestSecrets {
            nonce,
            state,
            dcql_query: ask.dcql_query.to_value(),
            encryption_key: encryption_key.map(|k| hex::encode(k.to_bytes())),
            return_url: ask.same_device_return_url.map(String::from),
        };
        // An unsigned request (redirect_uri:) can only travel by value.
        let by_value = ask.by_value || self.identity.prefix() == ClientIdPrefix::RedirectUri;
        let created = {
            let state = PresentationRequest::created(new.clone(), context.now);
            let authorization_request = if by_value {
                self.by_value_link(&state, &secrets, context.now)?
            } else {
                self.by_reference_link(id, ask.request_uri_method)
            };
            CreatedRequest {
                request_id: id,
                authorization_request,
                request_uri: (!by_value).then(|| self.request_uri(id)),
                client_id: self.client_id().to_owned(),
                expires_at,
            }
        };
        let secret = self.seal_json(&request_secret_id(id), REQUEST_SECRET, &secrets)?;
        let command = PresentationRequestCommand::Create(Box::new(new));
        handler::execute::<PresentationRequestDecider, _>(
            self.store.as_ref(),
            &id.stream_id(),
            context,
            |state| {
                let events =
                    handler::decide::<PresentationRequestDecider>(&command, state, context.now)?;
                let mut decision = Decision::events(events, created.clone());
                decision.secrets = vec![secret.clone()];
                decision.secrets.extend(seal(&created)?);
                Ok(decision)
            },
        )
        .await
    }

    /// `openid4vp://?client_id=…&request_uri=…[&request_uri_method=post]`.
    fn by_reference_link(&self, id: PresentationRequestId, method: RequestUriMethod) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("client_id", self.client_id());
        query.append_pair("request_uri", &self.request_uri(id));
        if method == RequestUriMethod::Post {
            query.append_pair("request_uri_method", "post");
        }
        format!("openid4vp://?{}", query.finish())
    }

    /// The request in the link: a signed request object (`request=`), or,
    /// for `redirect_uri:`, every parameter in the clear.
    fn by_value_link(
        &self,
        request: &PresentationRequest,
        secrets: &RequestSecrets,
        now: Timestamp,
    ) -> Result<String, CommandError> {
        let claims = self.request_claims(request, secrets, None, now)?;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("client_id", self.client_id());
        match self.identity.sign_request_object(&claims) {
            Some(jws) => {
                query.append_pair("request", &jws);
            }
            None => {
                for (name, value) in claims.as_object().into_iter().flatten() {
                    if matches!(name.as_str(), "client_id" | "aud" | "iat" | "exp") {
                        continue;
                    }
                    match value {
                        Value::String(text) => query.append_pair(name, text),
                        other => query.append_pair(name, &other.to_string()),
                    };
                }
            }
        }
        Ok(format!("openid4vp://?{}", query.finish()))
    }

    /// The claims of a request object (§5, §5.10 with `wallet_nonce`).
    pub(crate) fn request_claims(
        &self,
        request: &PresentationRequest,
        secrets: &RequestSecrets,
        wallet_nonce: Option<&str>,
        now: Timestamp,
    ) -> Result<Value, CommandError> {
        let new = &request.request;
        let mut client_metadata = json!({
            "vp_formats_supported": {"dc+sd-jwt": {
                "sd-jwt_alg_values": ALG_VALUES,
                "kb-jwt_alg_values": ALG_VALUES,
            }},
        });
        if let Some(hex_key) = &secrets.encryption_key {
            let key = super::response::encryption_key(hex_key)?;
            client_metadata["jwks"] = json!({"keys": [proofline_domain::jwe::encryption_jwk(
                &key.public_key(),
                &new.request_id.to_string(),
            )]});
            client_metadata["encrypted_response_enc_values_supported"] = json!(
                proofline_domain::jwe::ContentEncryption::ALL
                    .iter()
                    .map(|e| e.name())
                    .collect::<Vec<_>>()
            );
        }
        let mut claims = json!({
            "client_id": new.client_id,
            "response_type": "vp_token",
            "response_mode": new.response_mode.as_str(),
            "response_uri": self.response_uri(),
            "nonce": secrets.nonce,
            "state": secrets.state,
            "dcql_query": secrets.dcql_query,
            "client_metadata": client_metadata,
            "aud": REQUEST_OBJECT_AUD,
            "iat": now.as_datetime().timestamp(),
            "exp": new.expires_at.as_datetime().timestamp(),
        });
        if let Some(wallet_nonce) = wallet_nonce {
            claims["wallet_nonce"] = json!(wallet_nonce);
        }
        Ok(claims)
    }

    /// A request as its lender reads it, from the write side; `None` when
    /// it does not exist or belongs to another lender. The disclosed values
    /// are released while kept and, for a same-device flow, only with the
    /// response code.
    pub async fn get(
        &self,
        lender: LenderId,
        id: PresentationRequestId,
        response_code: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<PresentationView>, CommandError> {
        let stream = id.stream_id();
        let loaded =
            handler::load::<PresentationRequestDecider>(self.store.as_ref(), &stream).await?;
        let Some(request) = loaded.state else {
            return Ok(None);
        };
        if request.request.lender_id != lender {
            return Ok(None);
        }
        let position = self
            .store
            .last_of_stream(&stream)
            .await?
            .map_or(0, |e| e.position);
        let released = match (&request.response_code_sha256, request.request.same_device) {
            (_, false) => true,
            (Some(expected), true) => response_code.is_some_and(|code| {
                let given = sha256_hex(code);
                constant_time_eq(given.as_bytes(), expected.as_bytes())
            }),
            (None, true) => false,
        };
        let values = if released {
            match self
                .open_json::<ResultSecrets>(&result_secret_id(id))
                .await?
            {
                Some((values, written))
                    if (now.as_datetime() - written.as_datetime()).num_seconds()
                        < self.settings.result_ttl_seconds =>
                {
                    values.claims
                }
                _ => BTreeMap::new(),
            }
        } else {
            BTreeMap::new()
        };
        let mut presentations = BTreeMap::new();
        for (query_id, ids) in &request.presentations {
            let mut views = Vec::new();
            for (index, verification) in ids.iter().enumerate() {
                let page = self
                    .store
                    .read_stream(&verification.stream_id(), 0, 1)
                    .await?;
                let Some(envelope) = page.into_iter().next() else {
                    continue;
                };
                let record = envelope.decode::<VerificationEvent>()?.record().clone();
                let disclosed_claims = values
                    .get(query_id)
                    .and_then(|v| v.get(index).cloned())
                    .flatten();
                views.push(PresentedView {
                    record,
                    disclosed_claims,
                });
            }
            presentations.insert(query_id.clone(), views);
        }
        Ok(Some(PresentationView {
            status: request.status_at(now),
            request,
            presentations,
            position,
        }))
    }

    /// Deletes the disclosed values older than the result TTL, and the
    /// secrets of requests that ended long enough ago; answers how many.
    pub async fn forget_lapsed(&self, now: Timestamp) -> Result<usize, CommandError> {
        let ttl = self.settings.result_ttl_seconds;
        let longest = proofline_domain::presentation_request::LIFETIME_SECONDS.end();
        let mut forgotten = 0;
        for (kind, keep) in [(RESULT_SECRET, ttl), (REQUEST_SECRET, ttl + longest)] {
            for id in self.store.secret_ids_of_kind(kind).await? {
                let Some(record) = self.store.secret(&id).await? else {
                    continue;
                };
                if (now.as_datetime() - record.created_at.as_datetime()).num_seconds() >= keep {
                    self.store.delete_secret(&id).await?;
                    forgotten += 1;
                }
            }
        }
        Ok(forgotten)
    }
}

/// Whether `url` may be reached by a wallet or a holder's browser: https
/// with a host, or plain http to a loopback host (development only). The
/// public URL and a same-device return URL both follow it.
pub fn is_public_or_loopback(url: &Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    (url.scheme() == "https" && url.host().is_some()) || (url.scheme() == "http" && loopback)
}

/// A DCQL query without the `values` of its claims queries.
fn without_values(mut query: Value) -> Value {
    let credentials = query
        .get_mut("credentials")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten();
    for credential in credentials {
        let claims = credential
            .get_mut("claims")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten();
        for claim in claims {
            if let Some(claim) = claim.as_object_mut() {
                claim.remove("values");
            }
        }
    }
    query
}

/// Equality that takes as long whatever the inputs share.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A domain refusal of a flow, for the callers that map it.
pub fn refusal(error: &CommandError) -> Option<&PresentationRequestError> {
    error
        .rejection()?
        .downcast_ref::<PresentationRequestError>()
}
