//! The wallet-facing OpenID4VP endpoints: `request_uri` (§5.10) and
//! `response_uri` (§8.2). No key: a wallet is anyone. Each address has a
//! budget of requests per minute; bodies are form-encoded and bounded by
//! the service's body limit; answers are OAuth JSON errors
//! ([`crate::error::wallet_response`]), never a 5xx for what a wallet sent.

use std::net::IpAddr;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proofline_commands::handler::CommandContext;
use proofline_commands::oid4vp::{Fetch, ResponseForm, WalletFacingError};
use proofline_domain::log::Metadata;
use proofline_domain::presentation_request::PresentationRequestId;
use serde_json::json;
use uuid::Uuid;

use crate::caller::{client_address, peer_address};
use crate::error::wallet_response;
use crate::extract::Body;
use crate::middleware::{Committing, RequestId};
use crate::state::AppState;

/// `Content-Type` of a request object (RFC 9101 §10.2).
pub const REQUEST_OBJECT_CONTENT_TYPE: &str = "application/oauth-authz-req+jwt";

/// A wallet's address, after its request was counted against the
/// address's budget (429 when spent).
pub struct Wallet {
    request_id: Option<String>,
    /// Marks the request as committing once a command starts (see
    /// [`crate::middleware::time_limit`]).
    committing: Option<Committing>,
}

impl FromRequestParts<AppState> for Wallet {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let address: IpAddr = client_address(
            peer_address(parts),
            &parts.headers,
            &state.settings.trusted_proxies,
        );
        if let Err(wait) = state.limits.check_wallet(address) {
            let mut response = wallet_response(WalletFacingError::Invalid {
                error: "temporarily_unavailable",
                description: "too many requests from this address; retry later".into(),
            });
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return Err(response);
        }
        // The request id as the middleware checked it, never the raw header.
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        let committing = parts.extensions.get::<Committing>().cloned();
        Ok(Self {
            request_id,
            committing,
        })
    }
}

impl Wallet {
    /// The context of the command the request starts: from here it is
    /// answered with its result, even past the time limit.
    fn context(&self) -> CommandContext {
        if let Some(committing) = &self.committing {
            committing.begin();
        }
        CommandContext::now(Metadata {
            correlation_id: self.request_id.clone(),
            request_id: self.request_id.clone(),
            actor: Some("wallet".into()),
            ..Metadata::default()
        })
    }
}

/// The fields of a form body; a field given twice, a body that is not
/// `application/x-www-form-urlencoded` or not UTF-8 is refused.
fn form(
    headers: &HeaderMap,
    body: &[u8],
    fields: &[&str],
) -> Result<Vec<Option<String>>, WalletFacingError> {
    let invalid = |description: &str| WalletFacingError::Invalid {
        error: "invalid_request",
        description: description.to_owned(),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !body.is_empty() && !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(invalid(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(invalid("the body is not UTF-8"));
    }
    let mut values: Vec<Option<String>> = vec![None; fields.len()];
    for (name, value) in url::form_urlencoded::parse(body) {
        if let Some(index) = fields.iter().position(|f| *f == name) {
            if values[index].is_some() {
                return Err(invalid(&format!("{name} is given more than once")));
            }
            values[index] = Some(value.into_owned());
        }
    }
    Ok(values)
}

fn request_id(text: &str) -> Result<PresentationRequestId, WalletFacingError> {
    Uuid::parse_str(text)
        .map(PresentationRequestId::from_uuid)
        .map_err(|_| WalletFacingError::NotFound)
}

fn request_object(jws: String) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, REQUEST_OBJECT_CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        jws,
    )
        .into_response()
}

/// The signed request object (§5.10: GET always works).
#[utoipa::path(
    get, path = "/oid4vp/requests/{request_id}", tag = "wallets",
    params(("request_id" = Uuid, Path, description = "from the request_uri")),
    responses(
        (status = 200, content_type = "application/oauth-authz-req+jwt", body = String, description = "a compact JWS, typ oauth-authz-req+jwt"),
        (status = 404, description = "no such request"),
        (status = 410, description = "expired or answered"),
        (status = 429, description = "too many requests from this address"),
    ),
)]
pub async fn fetch_get(
    State(state): State<AppState>,
    wallet: Wallet,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let answer = match request_id(&id) {
        Ok(id) => {
            state
                .flows
                .request_object(&wallet.context(), id, Fetch::default())
                .await
        }
        Err(error) => Err(error),
    };
    answer.map_or_else(wallet_response, request_object)
}

/// The signed request object, for a wallet that sends its metadata and a
/// `wallet_nonce` (§5.10, form-encoded).
#[utoipa::path(
    post, path = "/oid4vp/requests/{request_id}", tag = "wallets",
    params(("request_id" = Uuid, Path, description = "from the request_uri")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "`wallet_metadata` (JSON) and `wallet_nonce`, both optional"),
    responses(
        (status = 200, content_type = "application/oauth-authz-req+jwt", body = String, description = "a compact JWS with `wallet_nonce`"),
        (status = 400, description = "invalid_request or invalid_request_object"),
        (status = 404, description = "no such request"),
        (status = 410, description = "expired or answered"),
        (status = 429, description = "too many requests from this address"),
    ),
)]
pub async fn fetch_post(
    State(state): State<AppState>,
    wallet: Wallet,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let answer = async {
        let id = request_id(&id)?;
        let mut fields = form(&headers, &body, &["wallet_metadata", "wallet_nonce"])?.into_iter();
        let fetch = Fetch {
            post: true,
            wallet_metadata: fields.next().flatten(),
            wallet_nonce: fields.next().flatten(),
        };
        state
            .flows
            .request_object(&wallet.context(), id, fetch)
            .await
    }
    .await;
    answer.map_or_else(wallet_response, request_object)
}

/// The wallet's response: `vp_token` and `state` (`direct_post`), or
/// `response`, a JWE (`direct_post.jwt`), or `error` (§8.5).
#[utoipa::path(
    post, path = "/oid4vp/response", tag = "wallets",
    request_body(content_type = "application/x-www-form-urlencoded", description = "`vp_token` and `state`; or `response`; or `error`, `error_description` and `state`"),
    responses(
        (status = 200, description = "taken: `{}` or `{\"redirect_uri\": …}`"),
        (status = 400, description = "`{\"error\": \"invalid_request\", \"error_description\": …}`"),
        (status = 429, description = "too many requests from this address"),
    ),
)]
pub async fn respond(
    State(state): State<AppState>,
    wallet: Wallet,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let answer = async {
        let fields = [
            "vp_token",
            "state",
            "response",
            "error",
            "error_description",
        ];
        let mut values = form(&headers, &body, &fields)?.into_iter();
        let mut next = || values.next().flatten();
        let form = ResponseForm {
            vp_token: next(),
            state: next(),
            response: next(),
            error: next(),
            error_description: next(),
        };
        let context = wallet.context();
        let answer = state.flows.respond(&context, form).await;
        if let Err(WalletFacingError::Unmatched { reason }) = &answer
            && state.limits.record_unmatched()
            && let Err(error) = state.flows.record_unmatched(&context, *reason).await
        {
            tracing::warn!(%error, "cannot record an unmatched wallet response");
        }
        answer
    }
    .await;
    match answer {
        Ok(taken) => {
            let body = match taken.redirect_uri {
                Some(uri) => json!({"redirect_uri": uri}),
                None => json!({}),
            };
            (
                StatusCode::OK,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(body),
            )
                .into_response()
        }
        Err(error) => wallet_response(error),
    }
}
