//! `/v1/lenders`: registration (operator), the lender's own view and keys,
//! deactivation and reactivation (operator).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proofline_commands::lenders::{self, NewKey, Registered, Registration};
use proofline_commands::webhooks;
use proofline_domain::lender::{LenderCommand, LenderId};
use proofline_domain::principal::Role;
use proofline_domain::values::{Audience, Audiences, ContactEmail, Name, WebhookUrl};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{Body, PathParam};
use crate::idempotency::{Idem, answer};
use crate::json;
use crate::routes::api_keys::{self, KeyOwner, KeyRotated, RotateKey};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterLender {
    /// 1 to 200 characters (after trimming), no control characters.
    #[schema(example = "Acme Lending", min_length = 1, max_length = 200)]
    pub name: String,
    /// Unique across lenders (compared in lowercase).
    #[schema(example = "risk@acme.example", min_length = 3, max_length = 254)]
    pub contact_email: String,
    /// The default audience Key Binding JWTs must name as `aud` (the first
    /// of `audiences`); default `urn:proofline:lender:<lender_id>`. Visible
    /// ASCII.
    #[schema(min_length = 1, max_length = 512, pattern = "^[!-~]+$")]
    pub audience: Option<String>,
    /// Every audience this lender may verify presentations for (1 to 16,
    /// distinct); a verification naming any other is refused. When
    /// `audience` is given too, it must be the first.
    #[schema(min_items = 1, max_items = 16)]
    pub audiences: Option<Vec<String>>,
}

impl RegisterLender {
    fn audiences(&self) -> Result<Option<Audiences>, ApiError> {
        let listed = self
            .audiences
            .as_ref()
            .map(|all| {
                all.iter()
                    .map(|a| Audience::parse(a))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let first = self.audience.as_deref().map(Audience::parse).transpose()?;
        let audiences = match (first, listed) {
            (None, None) => return Ok(None),
            (Some(first), None) => vec![first],
            (None, Some(listed)) => listed,
            (Some(first), Some(listed)) => {
                if listed.first() != Some(&first) {
                    return Err(ApiError::new(
                        ErrorCode::ValidationFailed,
                        "audience must be the first of audiences",
                    ));
                }
                listed
            }
        };
        Ok(Some(Audiences::new(audiences)?))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LenderRegistered {
    pub lender_id: Uuid,
    /// Shown once; only its argon2id hash is kept.
    pub api_key: String,
    /// The default audience: the first of `audiences`.
    pub audience: String,
    pub audiences: Vec<String>,
    /// Position of the command's last event.
    pub position: u64,
}

/// Register a lender and issue its first API key.
#[utoipa::path(
    post, path = "/v1/lenders", tag = "lenders",
    request_body = RegisterLender,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = LenderRegistered),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the contact email is taken"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Operator])?;
    let idem = Idem::new(&state, &caller, &headers, "POST /v1/lenders", &body)?;
    if let Some(replayed) = idem.replay(&state).await? {
        return Ok(replayed);
    }
    let input: RegisterLender = json::parse(&headers, &body)?;
    let registration = Registration {
        name: Name::parse("name", &input.name)?,
        contact_email: ContactEmail::parse(&input.contact_email)?,
        audiences: input.audiences()?,
    };
    let key = NewKey::generate().await?;
    let render = |r: &Registered| {
        json!({
            "lender_id": r.lender_id.as_uuid(),
            "api_key": key.api_key.expose(),
            "audience": r.audiences.first().as_str(),
            "audiences": audience_texts(&r.audiences),
        })
    };
    let seal = idem.seal(StatusCode::CREATED, render);
    let context = caller.command_context();
    match lenders::register(state.store.as_ref(), &context, &registration, &key, &seal).await {
        Ok(done) => Ok(answer(
            StatusCode::CREATED,
            render(&done.value),
            done.position(),
        )),
        Err(error) => idem.replay_after_failure(&state, error.into()).await,
    }
}

fn audience_texts(audiences: &Audiences) -> Vec<&str> {
    audiences.as_slice().iter().map(Audience::as_str).collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// The public part of the key.
    pub prefix: String,
    pub created_at: String,
    /// End of the grace of a rotated key; null for the current key.
    pub valid_until: Option<String>,
    pub current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LenderView {
    pub lender_id: Uuid,
    pub name: String,
    pub contact_email: String,
    /// The default audience: the first of `audiences`.
    pub audience: String,
    /// Every audience this lender may verify presentations for.
    pub audiences: Vec<String>,
    /// `active` or `deactivated`.
    pub status: String,
    pub keys: Vec<KeyView>,
    pub webhook: Option<WebhookView>,
}

/// The calling lender, its keys and its webhook.
#[utoipa::path(
    get, path = "/v1/lenders/me", tag = "lenders",
    responses(
        (status = 200, body = LenderView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<LenderView>, ApiError> {
    let lender_id = caller.lender()?;
    let now = caller.command_context().now;
    let lender = lenders::get(state.store.as_ref(), lender_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such lender"))?;
    let mut keys = Vec::new();
    if let Some(current) = &lender.keys.current {
        keys.push(KeyView {
            prefix: current.prefix.to_string(),
            created_at: current.issued_at.to_rfc3339(),
            valid_until: None,
            current: true,
        });
    }
    if let Some(previous) = lender.keys.in_grace(now) {
        keys.push(KeyView {
            prefix: previous.prefix.to_string(),
            created_at: previous.issued_at.to_rfc3339(),
            valid_until: Some(previous.valid_until.to_rfc3339()),
            current: false,
        });
    }
    Ok(Json(LenderView {
        lender_id: lender.id.as_uuid(),
        name: lender.name.as_str().to_owned(),
        contact_email: lender.contact_email.as_str().to_owned(),
        audience: lender.audiences.first().as_str().to_owned(),
        audiences: audience_texts(&lender.audiences)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        status: if lender.active {
            "active"
        } else {
            "deactivated"
        }
        .to_owned(),
        keys,
        webhook: lender.webhook.as_ref().map(|url| WebhookView {
            url: url.as_str().to_owned(),
        }),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigureWebhook {
    /// https (http only to networks the operator allows); never a
    /// loopback, private, link-local or metadata address.
    #[schema(
        example = "https://hooks.acme.example/proofline",
        min_length = 1,
        max_length = 2048
    )]
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookConfigured {
    pub url: String,
    /// `whsec_…`: signs every delivery (Standard Webhooks). Shown once;
    /// configuring again issues a new one.
    pub secret: String,
    pub position: u64,
}

/// Set (or replace) the calling lender's webhook; answers its signing
/// secret, once.
#[utoipa::path(
    put, path = "/v1/lenders/me/webhook", tag = "lenders",
    request_body = ConfigureWebhook,
    responses(
        (status = 200, body = WebhookConfigured),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the lender is deactivated"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "not a URL, or refused by the SSRF guard"),
    ),
    security(("api_key" = []))
)]
pub async fn put_webhook(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<WebhookConfigured>, ApiError> {
    let lender_id = caller.lender()?;
    let input: ConfigureWebhook = json::parse(&headers, &body)?;
    let url = WebhookUrl::parse(&input.url)?;
    let secret = webhooks::generate_secret()?;
    let done = webhooks::configure(
        state.store.as_ref(),
        &caller.command_context(),
        lender_id,
        url.clone(),
        &state.settings.webhook_allowed_networks,
        &state.webhook_sealing_key,
        &secret,
    )
    .await?;
    Ok(Json(WebhookConfigured {
        url: url.as_str().to_owned(),
        secret: secret.expose_secret().to_owned(),
        position: done.position(),
    }))
}

/// Remove the calling lender's webhook (its secret is forgotten).
#[utoipa::path(
    delete, path = "/v1/lenders/me/webhook", tag = "lenders",
    responses(
        (status = 200, body = inline(Object)),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no webhook is configured"),
    ),
    security(("api_key" = []))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let lender_id = caller.lender()?;
    let done = webhooks::remove(state.store.as_ref(), &caller.command_context(), lender_id).await?;
    Ok(answer(
        StatusCode::OK,
        json!({"removed": true}),
        done.position(),
    ))
}

/// Rotate the calling lender's API key; the current key keeps working for
/// the grace period. Only the current key may rotate.
#[utoipa::path(
    post, path = "/v1/lenders/me/api-keys/rotate", tag = "lenders",
    request_body(content = RotateKey, description = "optional"),
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = KeyRotated),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a lender, or not its current key"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the lender is deactivated"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let lender_id = caller.lender()?;
    api_keys::rotate(
        &state,
        &caller,
        &headers,
        &body,
        KeyOwner::Lender(lender_id),
    )
    .await
}

/// Revoke the calling lender's previous key now, ending its grace. The
/// current key cannot be revoked; rotate it instead.
#[utoipa::path(
    delete, path = "/v1/lenders/me/api-keys/{prefix}", tag = "lenders",
    params(("prefix" = String, Path, description = "the key's public prefix")),
    responses(
        (status = 200, description = "revoked", body = inline(serde_json::Value)),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such key in its grace"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "it is the current key"),
    ),
    security(("api_key" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(prefix): PathParam<String>,
) -> Result<Response, ApiError> {
    let lender_id = caller.lender()?;
    api_keys::revoke(&state, &caller, &prefix, KeyOwner::Lender(lender_id)).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LenderStatus {
    pub lender_id: Uuid,
    /// `active` or `deactivated`.
    pub status: String,
    pub position: u64,
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: Uuid,
    route: &str,
    command: LenderCommand,
    status: &'static str,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Operator])?;
    let idem = Idem::new(state, caller, headers, route, &Bytes::new())?;
    if let Some(replayed) = idem.replay(state).await? {
        return Ok(replayed);
    }
    let lender_id = LenderId::from_uuid(id);
    let render = |_: &()| json!({"lender_id": id, "status": status});
    let seal = idem.seal(StatusCode::OK, render);
    let context = caller.command_context();
    let result = lenders::run(state.store.as_ref(), &context, lender_id, command, &seal).await;
    state.auth.invalidate_stream(&lender_id.stream_id());
    match result {
        Ok(done) => Ok(answer(StatusCode::OK, render(&()), done.position())),
        Err(error) => idem.replay_after_failure(state, error.into()).await,
    }
}

/// Deactivate a lender: its keys stop working at once.
#[utoipa::path(
    post, path = "/v1/lenders/{id}/deactivate", tag = "lenders",
    params(("id" = Uuid, Path, description = "the lender id")),
    responses(
        (status = 200, body = LenderStatus),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "already deactivated"),
    ),
    security(("api_key" = []))
)]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    PathParam(id): PathParam<Uuid>,
) -> Result<Response, ApiError> {
    let route = format!("POST /v1/lenders/{id}/deactivate");
    set_status(
        &state,
        &caller,
        &headers,
        id,
        &route,
        LenderCommand::Deactivate,
        "deactivated",
    )
    .await
}

/// Reactivate a deactivated lender: its keys work again.
#[utoipa::path(
    post, path = "/v1/lenders/{id}/reactivate", tag = "lenders",
    params(("id" = Uuid, Path, description = "the lender id")),
    responses(
        (status = 200, body = LenderStatus),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "already active"),
    ),
    security(("api_key" = []))
)]
pub async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    PathParam(id): PathParam<Uuid>,
) -> Result<Response, ApiError> {
    let route = format!("POST /v1/lenders/{id}/reactivate");
    set_status(
        &state,
        &caller,
        &headers,
        id,
        &route,
        LenderCommand::Reactivate,
        "active",
    )
    .await
}
