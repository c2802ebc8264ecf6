//! `/v1/lenders`: registration and the list (operator), the lender's own
//! view, keys and webhook; its standing (operator) is in `standing.rs`.

pub mod standing;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proofline_commands::lenders::{self, NewKey, Registered, Registration};
use proofline_commands::webhooks;
use proofline_domain::values::{Audience, Audiences, ContactEmail, Name, WebhookUrl};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::{Lender, Operator};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Body, PathParam, Query};
use crate::idempotency::{Idem, answer};
use crate::json;
use crate::routes::api_keys::{self, KeyOwner, KeyRotated, RotateKey};
use crate::routes::paging::{page_limit, read_model};
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
        (status = 409, description = "the contact email is taken"),
    ),
    security(("api_key" = []))
)]
pub async fn register(
    State(state): State<AppState>,
    Operator(caller): Operator,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
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
    /// `active`, `suspended` or `deactivated`.
    pub status: String,
    pub keys: Vec<KeyView>,
    pub webhook: Option<WebhookView>,
}

/// The calling lender, its keys and its webhook.
#[utoipa::path(
    get, path = "/v1/lenders/me", tag = "lenders",
    responses(
        (status = 200, body = LenderView),
    ),
    security(("api_key" = []))
)]
pub async fn me(
    State(state): State<AppState>,
    Lender {
        id: lender_id,
        caller,
    }: Lender,
) -> Result<Json<LenderView>, ApiError> {
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
        status: match (lender.active, lender.suspended) {
            (false, _) => "deactivated",
            (true, true) => "suspended",
            (true, false) => "active",
        }
        .to_owned(),
        keys,
        webhook: lender.webhook.as_ref().map(|url| WebhookView {
            url: url.as_str().to_owned(),
        }),
    }))
}

/// Query of `GET /v1/lenders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LendersQuery {
    /// Only lenders of this standing.
    #[param(pattern = "^(active|suspended|deactivated)$")]
    pub status: Option<String>,
    /// Only the lender with this contact email (compared in lowercase; any
    /// other text matches none).
    #[param(min_length = 3, max_length = 254)]
    pub contact_email: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(format = Uuid)]
    pub cursor: Option<Uuid>,
    /// Wait (up to 5 s) until the read model has applied this log position.
    #[serde(default, deserialize_with = "crate::routes::paging::position")]
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub min_position: Option<u64>,
}

/// A lender as the operator lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LenderSummary {
    pub lender_id: Uuid,
    pub name: String,
    pub contact_email: String,
    pub audiences: Vec<String>,
    /// `active`, `suspended` or `deactivated`.
    pub status: String,
    /// The current key's public prefix.
    pub key_prefix: Option<String>,
    pub webhook_url: Option<String>,
    pub registered_at: String,
    /// The position of the lender's last change.
    pub position: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LenderPage {
    /// In registration order.
    #[schema(value_type = Vec<LenderSummary>)]
    pub items: Vec<serde_json::Value>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Every lender, from the `lenders` read model: for the operator.
#[utoipa::path(
    get, path = "/v1/lenders", tag = "lenders",
    params(LendersQuery),
    responses(
        (status = 200, body = LenderPage),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    Query(query): Query<LendersQuery>,
) -> Result<Json<LenderPage>, ApiError> {
    use proofline_projections::queries::{self, LenderFilter, LenderStatus};
    let limit = page_limit(query.limit)?;
    let status = match query.status.as_deref() {
        None => None,
        Some("active") => Some(LenderStatus::Active),
        Some("suspended") => Some(LenderStatus::Suspended),
        Some("deactivated") => Some(LenderStatus::Deactivated),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                "status: active, suspended or deactivated",
            ));
        }
    };
    // Any text of an email's length: one that is no address matches no
    // lender.
    if let Some(email) = &query.contact_email
        && !(3..=254).contains(&email.chars().count())
    {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "contact_email: 3 to 254 characters",
        ));
    }
    let filter = LenderFilter {
        status,
        contact_email: query.contact_email,
        after_lender: query.cursor.map(|id| id.to_string()),
    };
    let read = read_model(&state, "lenders", query.min_position).await?;
    let (items, next_cursor) = queries::lenders(read, &filter, limit).await?;
    Ok(Json(LenderPage { items, next_cursor }))
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
        (status = 409, description = "the lender is deactivated"),
        (status = 422, description = "not a URL, or refused by the SSRF guard"),
    ),
    security(("api_key" = []))
)]
pub async fn put_webhook(
    State(state): State<AppState>,
    Lender {
        id: lender_id,
        caller,
    }: Lender,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<WebhookConfigured>, ApiError> {
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
        (status = 404, description = "no webhook is configured"),
    ),
    security(("api_key" = []))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Lender {
        id: lender_id,
        caller,
    }: Lender,
) -> Result<Response, ApiError> {
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
        (status = 403, description = "not a lender, or not its current key"),
        (status = 409, description = "the lender is deactivated"),
    ),
    security(("api_key" = []))
)]
pub async fn rotate(
    State(state): State<AppState>,
    Lender {
        id: lender_id,
        caller,
    }: Lender,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
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
        (status = 404, description = "no such key in its grace"),
        (status = 409, description = "it is the current key"),
    ),
    security(("api_key" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    Lender {
        id: lender_id,
        caller,
    }: Lender,
    PathParam(prefix): PathParam<String>,
) -> Result<Response, ApiError> {
    api_keys::revoke(&state, &caller, &prefix, KeyOwner::Lender(lender_id)).await
}
