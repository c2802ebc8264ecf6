//! The wallet's side of a flow: fetching the request object (§5.10) and
//! posting the response (§8.2, §8.3, §8.5).
//!
//! Nothing a wallet sends can make the service fail: every way a request
//! or response can be wrong is a [`WalletFacingError`] the HTTP layer
//! answers with 400, 404 or 410. A response that was processed (its state
//! named a live request) is recorded whatever it held; one that cannot be
//! tied to a request (an unknown state, a JWE that does not decrypt) is
//! refused without a record, since anyone can send it.

use std::collections::BTreeMap;

use proofline_domain::jwe;
use proofline_domain::presentation_request::{
    PresentationRequest, PresentationRequestCommand as Command, PresentationRequestDecider,
    PresentationRequestError, PresentationRequestEvent, PresentationRequestId, Refusal,
    RequestUriMethod, ResponseMode, ResponseRejection, Unmatched, UnmatchedResponseEvent,
    WalletError, unmatched_stream,
};
use proofline_domain::verification_record::sha256_hex;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::flow::{Flows, RESULT_SECRET, constant_time_eq, result_secret_id, token};
use crate::handler::{self, CommandContext, CommandError};
use crate::store::{AppendRequest, ExpectedVersion, NewEvent, StoreError, StreamAppend};

/// Most presentations one response may carry.
pub const MAX_PRESENTATIONS: usize = 16;
/// Longest `wallet_nonce` and `state` accepted.
const MAX_TOKEN_LEN: usize = 256;
/// Attempts before a contended answer gives up.
const ATTEMPTS: usize = 5;

/// What a wallet did wrong, or what stopped its request or response.
#[derive(Debug, thiserror::Error)]
pub enum WalletFacingError {
    #[error("no such request")]
    NotFound,
    /// A response no request could be found for (an unknown state, a JWE
    /// that does not decrypt): answered 400 like an invalid request, and
    /// recorded on `oid4vp-unmatched` within a budget
    /// ([`Flows::record_unmatched`]).
    #[error("{}", match reason { Unmatched::UnknownState => "unknown state", Unmatched::Undecryptable => "the response cannot be decrypted" })]
    Unmatched { reason: Unmatched },
    #[error("the request expired or was answered")]
    Gone,
    /// §8.5 / RFC 6749 §5.2: `error` is one of `invalid_request`,
    /// `invalid_request_object`, …
    #[error("{description}")]
    Invalid {
        error: &'static str,
        description: String,
    },
    /// Not the wallet's doing: the store is down, a secret is unreadable.
    #[error(transparent)]
    Internal(#[from] CommandError),
}

fn unmatched(reason: Unmatched) -> WalletFacingError {
    WalletFacingError::Unmatched { reason }
}

fn invalid(description: impl Into<String>) -> WalletFacingError {
    WalletFacingError::Invalid {
        error: "invalid_request",
        description: description.into(),
    }
}

/// How a wallet fetched the request object.
#[derive(Debug, Clone, Default)]
pub struct Fetch {
    pub post: bool,
    pub wallet_metadata: Option<String>,
    pub wallet_nonce: Option<String>,
}

/// A response as posted (form fields, §8.2 and §8.5).
#[derive(Debug, Clone, Default)]
pub struct ResponseForm {
    pub vp_token: Option<String>,
    pub state: Option<String>,
    pub response: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// What the wallet is answered when its response was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletAnswer {
    /// `<same_device_return_url>#response_code=…` for a same-device flow.
    pub redirect_uri: Option<String>,
}

/// A fresh P-256 key for one request's encrypted responses.
pub(crate) fn new_encryption_key() -> Result<p256::SecretKey, CommandError> {
    for _ in 0..8 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| CommandError::Store(StoreError::corrupt("random source", e)))?;
        if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
    Err(CommandError::Store(StoreError::corrupt(
        "random source",
        "no valid P-256 scalar in 8 draws",
    )))
}

pub(crate) fn encryption_key(hex_key: &str) -> Result<p256::SecretKey, CommandError> {
    hex::decode(hex_key)
        .ok()
        .and_then(|bytes| p256::SecretKey::from_slice(&bytes).ok())
        .ok_or_else(|| CommandError::Store(StoreError::corrupt("oid4vp request", "bad key")))
}

fn visible_ascii(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_TOKEN_LEN && text.bytes().all(|b| b.is_ascii_graphic())
}

impl Flows {
    async fn load(
        &self,
        id: PresentationRequestId,
    ) -> Result<(Option<PresentationRequest>, u64), CommandError> {
        let loaded =
            handler::load::<PresentationRequestDecider>(self.store.as_ref(), &id.stream_id())
                .await?;
        Ok((loaded.state, loaded.version))
    }

    /// Decides `command` on the request and appends what it decided (with
    /// `extra` when the command is taken as an answer), again on a
    /// conflict; answers the events.
    async fn apply(
        &self,
        context: &CommandContext,
        id: PresentationRequestId,
        command: &Command,
        extra: impl Fn() -> (Vec<StreamAppend>, Vec<crate::store::SecretWrite>),
    ) -> Result<Vec<PresentationRequestEvent>, CommandError> {
        let stream = id.stream_id();
        for _ in 0..ATTEMPTS {
            let (state, version) = self.load(id).await?;
            let events =
                handler::decide::<PresentationRequestDecider>(command, &state, context.now)?;
            if events.is_empty() {
                return Ok(events);
            }
            let answered = events.iter().any(PresentationRequestEvent::completes)
                && !events.iter().any(|e| {
                    matches!(
                        e,
                        PresentationRequestEvent::PresentationResponseRefused { .. }
                    )
                });
            let (also, secrets) = if answered {
                extra()
            } else {
                (Vec::new(), Vec::new())
            };
            let mut request = AppendRequest::new(
                stream.clone(),
                ExpectedVersion::Exact(version),
                events.iter().map(NewEvent::of).collect(),
            );
            request.also = also.clone();
            request.secrets = secrets;
            request.metadata = context.metadata.clone();
            match self.store.append(request).await {
                Ok(_) => {
                    for append in &also {
                        crate::verifications::count_recorded_events(&append.events);
                    }
                    return Ok(events);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(CommandError::Contention { stream_id: stream })
    }

    /// The request object for a wallet's fetch: a compact JWS.
    pub async fn request_object(
        &self,
        context: &CommandContext,
        id: PresentationRequestId,
        fetch: Fetch,
    ) -> Result<String, WalletFacingError> {
        if let Some(nonce) = &fetch.wallet_nonce
            && !visible_ascii(nonce)
        {
            return Err(invalid(
                "wallet_nonce must be 1 to 256 visible ASCII characters",
            ));
        }
        if let Some(metadata) = &fetch.wallet_metadata {
            self.check_wallet_metadata(metadata)?;
        }
        let (state, _) = self.load(id).await?;
        let Some(request) = state else {
            return Err(WalletFacingError::NotFound);
        };
        let method = if fetch.post {
            RequestUriMethod::Post
        } else {
            RequestUriMethod::Get
        };
        let retrieve = Command::Retrieve {
            method,
            wallet_nonce: fetch.wallet_nonce.is_some(),
        };
        if request.lapsed(context.now) {
            self.apply(context, id, &Command::Expire, || (Vec::new(), Vec::new()))
                .await?;
            return Err(WalletFacingError::Gone);
        }
        match self
            .apply(context, id, &retrieve, || (Vec::new(), Vec::new()))
            .await
        {
            Ok(_) => {}
            Err(error) => {
                return Err(match super::flow::refusal(&error) {
                    Some(
                        PresentationRequestError::Expired
                        | PresentationRequestError::AlreadyAnswered,
                    ) => WalletFacingError::Gone,
                    _ => WalletFacingError::Internal(error),
                });
            }
        }
        let secrets = self.request_secrets(id).await?;
        let claims = self.request_claims(
            &request,
            &secrets,
            fetch.wallet_nonce.as_deref(),
            context.now,
        )?;
        self.identity
            .sign_request_object(&claims)
            .ok_or_else(|| invalid("this verifier's requests travel by value, not by reference"))
    }

    /// §5.10: `wallet_metadata` is a JSON object; when it lists the request
    /// object algorithms it supports, ours must be among them.
    fn check_wallet_metadata(&self, metadata: &str) -> Result<(), WalletFacingError> {
        let Ok(Value::Object(metadata)) = serde_json::from_str::<Value>(metadata) else {
            return Err(invalid("wallet_metadata is not a JSON object"));
        };
        if let (Some(Value::Array(algs)), Some(ours)) = (
            metadata.get("request_object_signing_alg_values_supported"),
            self.identity.alg(),
        ) && !algs.iter().any(|a| a.as_str() == Some(ours))
        {
            return Err(WalletFacingError::Invalid {
                error: "invalid_request_object",
                description: format!(
                    "the wallet does not support {ours}, the only alg we sign with"
                ),
            });
        }
        Ok(())
    }

    /// Takes a wallet's response. `Ok` for a response taken (verified, or a
    /// wallet error); `Err(Invalid)` for one refused, recorded or not.
    pub async fn respond(
        &self,
        context: &CommandContext,
        form: ResponseForm,
    ) -> Result<WalletAnswer, WalletFacingError> {
        let (payload, encrypted_for) = match &form.response {
            Some(jwe_text) => {
                let (id, payload) = self.decrypt(jwe_text).await?;
                (payload, Some(id))
            }
            None => {
                let mut payload = Map::new();
                for (name, value) in [
                    ("vp_token", &form.vp_token),
                    ("state", &form.state),
                    ("error", &form.error),
                    ("error_description", &form.error_description),
                ] {
                    if let Some(value) = value {
                        payload.insert(name.into(), Value::String(value.clone()));
                    }
                }
                (payload, None)
            }
        };
        let Some(state) = payload.get("state").and_then(Value::as_str) else {
            return Err(invalid("state is missing"));
        };
        if !visible_ascii(state) {
            return Err(unmatched(Unmatched::UnknownState));
        }
        let id = PresentationRequestId::for_state(state);
        if encrypted_for.is_some_and(|kid| kid != id) {
            return Err(invalid(
                "the encrypted response's state is not its request's",
            ));
        }
        let (loaded, _) = self.load(id).await?;
        let Some(request) = loaded else {
            return Err(unmatched(Unmatched::UnknownState));
        };
        if !constant_time_eq(
            sha256_hex(state).as_bytes(),
            request.request.state_sha256.as_bytes(),
        ) {
            return Err(unmatched(Unmatched::UnknownState));
        }
        // §8.3.2: a wallet that cannot encrypt may still send an error.
        let plain_error = payload.contains_key("error") && !payload.contains_key("vp_token");
        if request.request.response_mode == ResponseMode::DirectPostJwt
            && encrypted_for.is_none()
            && !plain_error
        {
            return Err(invalid(
                "this request's response must be encrypted (direct_post.jwt)",
            ));
        }
        // A request that is over refuses at once: nothing is verified, and
        // its secrets may be forgotten already.
        if request.lapsed(context.now) || request.status.is_final() {
            return Err(self.refuse_late(context, id).await);
        }
        let secrets = self.request_secrets(id).await?;
        let response_code = match &secrets.return_url {
            Some(_) => Some(token()?),
            None => None,
        };
        let code_sha256 = response_code.as_deref().map(sha256_hex);
        let (command, also, result) = if let Some(error) = payload.get("error") {
            let error = error
                .as_str()
                .and_then(|e| {
                    WalletError::parse(e, payload.get("error_description").and_then(Value::as_str))
                })
                .ok_or_else(|| invalid("error is not an RFC 6749 error code"))?;
            let command = Command::ReceiveWalletError {
                error,
                response_code_sha256: code_sha256,
            };
            (command, Vec::new(), None)
        } else {
            self.judge(
                context,
                &request,
                &secrets,
                payload.get("vp_token"),
                code_sha256,
            )
            .await?
        };
        let result_write = match &result {
            Some(result) => Some(self.seal_json(&result_secret_id(id), RESULT_SECRET, result)?),
            None => None,
        };
        let events = self
            .apply(context, id, &command, || {
                (also.clone(), result_write.clone().into_iter().collect())
            })
            .await
            .map_err(|error| match super::flow::refusal(&error) {
                Some(PresentationRequestError::TooManyRefusals) => {
                    invalid("the request was answered before")
                }
                _ => WalletFacingError::Internal(error),
            })?;
        for event in &events {
            match event {
                PresentationRequestEvent::PresentationResponseRefused { reason, .. } => {
                    return Err(invalid(match reason {
                        Refusal::AlreadyAnswered => "the request was answered before",
                        Refusal::Expired => "the request expired",
                    }));
                }
                PresentationRequestEvent::PresentationResponseRejected { detail, .. } => {
                    return Err(invalid(detail.clone()));
                }
                _ => {}
            }
        }
        let redirect_uri = match (&secrets.return_url, response_code) {
            (Some(url), Some(code)) => Some(format!("{url}#response_code={code}")),
            _ => None,
        };
        Ok(WalletAnswer { redirect_uri })
    }

    /// Records that a response could be tied to no request: its reason and
    /// time, nothing of what it held. The caller bounds how often.
    pub async fn record_unmatched(
        &self,
        context: &CommandContext,
        reason: Unmatched,
    ) -> Result<(), CommandError> {
        let event = UnmatchedResponseEvent::UnmatchedResponseRefused {
            reason,
            received_at: context.now,
        };
        let mut request = AppendRequest::new(
            unmatched_stream(),
            ExpectedVersion::Any,
            vec![NewEvent::of(&event)],
        );
        request.metadata = context.metadata.clone();
        self.store.append(request).await?;
        Ok(())
    }

    /// Records a late answer's refusal (the decider refuses any answer to a
    /// request that is over) and says why.
    async fn refuse_late(
        &self,
        context: &CommandContext,
        id: PresentationRequestId,
    ) -> WalletFacingError {
        let probe = Command::Reject {
            presentations: BTreeMap::new(),
            reason: ResponseRejection::MalformedVpToken,
            detail: String::new(),
        };
        match self
            .apply(context, id, &probe, || (Vec::new(), Vec::new()))
            .await
        {
            Ok(events) => {
                let expired = events.iter().any(|e| {
                    matches!(
                        e,
                        PresentationRequestEvent::PresentationResponseRefused {
                            reason: Refusal::Expired,
                            ..
                        }
                    )
                });
                invalid(if expired {
                    "the request expired"
                } else {
                    "the request was answered before"
                })
            }
            Err(error) => match super::flow::refusal(&error) {
                Some(_) => invalid("the request was answered before"),
                None => WalletFacingError::Internal(error),
            },
        }
    }

    /// A `direct_post.jwt` response: the request found by the JWE's `kid`,
    /// decrypted with that request's key.
    async fn decrypt(
        &self,
        compact: &str,
    ) -> Result<(PresentationRequestId, Map<String, Value>), WalletFacingError> {
        let undecryptable = || unmatched(Unmatched::Undecryptable);
        let kid = jwe::peek_kid(compact)
            .map_err(|_| undecryptable())?
            .ok_or_else(|| invalid("the encrypted response has no kid"))?;
        let id = Uuid::parse_str(&kid)
            .map(PresentationRequestId::from_uuid)
            .map_err(|_| undecryptable())?;
        let (loaded, _) = self.load(id).await?;
        let request = loaded.ok_or_else(undecryptable)?;
        if request.request.encryption_kid.as_deref() != Some(kid.as_str()) {
            return Err(undecryptable());
        }
        // Its key may be forgotten once it is over: nothing to decrypt for.
        if request.status.is_final() {
            return Err(invalid("the request expired or was answered"));
        }
        let secrets = self.request_secrets(id).await?;
        let key = secrets
            .encryption_key
            .as_deref()
            .map(super::response::encryption_key)
            .transpose()?
            .ok_or_else(undecryptable)?;
        let (_, plain) = jwe::decrypt(compact, &key).map_err(|_| undecryptable())?;
        match serde_json::from_slice(&plain) {
            Ok(Value::Object(payload)) => Ok((id, payload)),
            _ => Err(invalid("the decrypted response is not a JSON object")),
        }
    }
}
