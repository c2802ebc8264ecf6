//! `/v1/trust-anchors`: the X.509 roots the operator trusts for `x5c`
//! issuers: added as PEM, listed, removed. A root in
//! `PROOFLINE_FETCH_CA_FILE` is trusted for TLS only, never here.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proofline_commands::trust_anchors;
use proofline_domain::trust_anchor::Anchor;
use proofline_domain::values::Name;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::Operator;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Body, PathParam};
use crate::idempotency::{Idem, answer};
use crate::json;
use crate::state::AppState;

/// Largest PEM accepted (one certificate).
const MAX_PEM_BYTES: usize = 24 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTrustAnchor {
    /// 1 to 200 characters (after trimming), no control characters.
    #[schema(example = "State PKI Root 2026", min_length = 1, max_length = 200)]
    pub name: String,
    /// One CA certificate, PEM (`-----BEGIN CERTIFICATE-----`).
    #[schema(max_length = 24576)]
    pub pem: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrustAnchorAdded {
    pub anchor_id: Uuid,
    pub name: String,
    /// The certificate's subject (RFC 4514).
    pub subject: String,
    /// The certificate's notAfter (RFC 3339).
    pub not_after: String,
    pub position: u64,
}

fn render(anchor: &Anchor) -> Value {
    json!({
        "anchor_id": anchor.anchor_id,
        "name": anchor.name.as_str(),
        "subject": anchor.subject,
        "not_after": chrono::DateTime::from_timestamp(anchor.not_after, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    })
}

/// Add an X.509 root for `x5c` issuers: a credential whose `x5c` chain
/// validates to it (at its `iat` and now), whose leaf may sign and names
/// the issuer, is trusted for an issuer registered with `x5c`.
#[utoipa::path(
    post, path = "/v1/trust-anchors", tag = "issuers",
    request_body = AddTrustAnchor,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = TrustAnchorAdded),
        (status = 409, description = "this certificate is an anchor already"),
    ),
    security(("api_key" = []))
)]
pub async fn add(
    State(state): State<AppState>,
    Operator(caller): Operator,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let idem = Idem::new(&state, &caller, &headers, "POST /v1/trust-anchors", &body)?;
    if let Some(replayed) = idem.replay(&state).await? {
        return Ok(replayed);
    }
    let input: AddTrustAnchor = json::parse(&headers, &body)?;
    if input.pem.len() > MAX_PEM_BYTES {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("pem is longer than {MAX_PEM_BYTES} bytes"),
        ));
    }
    let name = Name::parse("name", &input.name)?;
    let seal = idem.seal(StatusCode::CREATED, render);
    match trust_anchors::add(
        state.store.as_ref(),
        &caller.command_context(),
        name,
        &input.pem,
        &seal,
    )
    .await
    {
        Ok(done) => Ok(answer(
            StatusCode::CREATED,
            render(&done.value),
            done.position(),
        )),
        Err(error) => idem.replay_after_failure(&state, error.into()).await,
    }
}

/// The trust anchors in force, from the write side.
#[utoipa::path(
    get, path = "/v1/trust-anchors", tag = "issuers",
    responses((status = 200, body = inline(Object))),
    security(("api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(_caller): Operator,
) -> Result<Response, ApiError> {
    let anchors = trust_anchors::list(&state.registry).await?;
    let items: Vec<Value> = anchors
        .anchors
        .iter()
        .map(|(anchor, added_at)| {
            let mut item = render(anchor);
            item["added_at"] = added_at.to_rfc3339().into();
            item["pem"] = anchor.pem.clone().into();
            item
        })
        .collect();
    Ok(Json(json!({"items": items})).into_response())
}

/// Remove a trust anchor: chains to it verify nothing from now on.
#[utoipa::path(
    delete, path = "/v1/trust-anchors/{anchor_id}", tag = "issuers",
    params(("anchor_id" = Uuid, Path, description = "the anchor's id")),
    responses(
        (status = 200, body = inline(Object)),
        (status = 404, description = "no trust anchor has this id"),
    ),
    security(("api_key" = []))
)]
pub async fn remove(
    State(state): State<AppState>,
    Operator(caller): Operator,
    PathParam(anchor_id): PathParam<Uuid>,
) -> Result<Response, ApiError> {
    let done = trust_anchors::remove(
        state.store.as_ref(),
        &caller.command_context(),
        anchor_id,
        &proofline_commands::lenders::no_seal,
    )
    .await?;
    Ok(answer(
        StatusCode::OK,
        json!({"anchor_id": anchor_id, "removed": true}),
        done.position(),
    ))
}
