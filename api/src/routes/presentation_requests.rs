//! `/v1/presentation-requests`: a lender's OpenID4VP flows. The wallet's
//! side is [`crate::routes::oid4vp`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proofline_commands::oid4vp::flow::{PresentedView, is_public_or_loopback};
use proofline_commands::oid4vp::{CreatedRequest, NewPresentationRequest, PresentationView};
use proofline_domain::dcql::DcqlQuery;
use proofline_domain::log::Timestamp;
use proofline_domain::presentation_request::{
    LIFETIME_SECONDS, PresentationRequestId, RequestUriMethod, ResponseMode, Status,
};
use proofline_domain::verification::Reason;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::Lender;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Body, PathParam, Query};
use crate::idempotency::Idem;
use crate::json;
use crate::routes::paging::{cursor_position, page_limit, read_model};
use crate::routes::verifications::reason_schema;
use crate::state::AppState;

/// Longest `same_device_return_url`.
const MAX_URL_CHARS: usize = 2048;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePresentationRequest {
    /// A DCQL query (OpenID4VP 1.0 §6): `credentials` of format
    /// `dc+sd-jwt` with `meta.vct_values`, `claims`, `claim_sets`,
    /// `multiple`, `require_cryptographic_holder_binding`, and
    /// `credential_sets`. Anything else is 422.
    #[schema(value_type = Object)]
    pub dcql_query: Value,
    /// `direct_post` (default) or `direct_post.jwt` (encrypted to a key of
    /// this request).
    #[schema(value_type = Option<String>, pattern = "^direct_post(\\.jwt)?$")]
    pub response_mode: Option<ResponseMode>,
    /// `get` (default) or `post` (§5.10: the wallet may send its metadata
    /// and a `wallet_nonce`). GET always works.
    #[schema(value_type = Option<String>, pattern = "^(get|post)$")]
    pub request_uri_method: Option<RequestUriMethod>,
    /// Seconds until the request expires: 60 to 600, default 300.
    #[schema(minimum = 60, maximum = 600)]
    pub expires_in: Option<i64>,
    /// For a same-device flow: where the wallet sends the holder back, with
    /// `#response_code=…`; the result is then released only with that code.
    #[schema(max_length = 2048)]
    pub same_device_return_url: Option<String>,
    /// `reference` (default: the link carries `request_uri`) or `value`
    /// (the link carries the signed request object itself).
    #[schema(pattern = "^(reference|value)$")]
    pub request_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedView {
    pub request_id: Uuid,
    /// `openid4vp://?client_id=…&request_uri=…`, for a QR code or a link.
    pub authorization_request: String,
    /// Where the wallet fetches the signed request object; null when the
    /// request travels by value.
    pub request_uri: Option<String>,
    pub client_id: String,
    pub expires_at: String,
    /// Always `pending`.
    pub status: String,
    pub position: u64,
}

fn created_view(created: &CreatedRequest, position: u64) -> CreatedView {
    CreatedView {
        request_id: created.request_id.as_uuid(),
        authorization_request: created.authorization_request.clone(),
        request_uri: created.request_uri.clone(),
        client_id: created.client_id.clone(),
        expires_at: created.expires_at.to_rfc3339(),
        status: Status::Pending.as_str().to_owned(),
        position,
    }
}

fn validate(input: CreatePresentationRequest) -> Result<NewPresentationRequest, ApiError> {
    let invalid = |detail: String| ApiError::new(ErrorCode::ValidationFailed, detail);
    let dcql_query =
        DcqlQuery::parse(&input.dcql_query).map_err(|e| invalid(format!("dcql_query: {e}")))?;
    let expires_in = input.expires_in.unwrap_or(300);
    if !LIFETIME_SECONDS.contains(&expires_in) {
        return Err(invalid("expires_in: 60 to 600 seconds".into()));
    }
    let same_device_return_url = input
        .same_device_return_url
        .map(|text| {
            let url = (text.len() <= MAX_URL_CHARS)
                .then(|| url::Url::parse(&text).ok())
                .flatten()
                .filter(is_public_or_loopback)
                .filter(|u| u.fragment().is_none());
            url.ok_or_else(|| {
                invalid(
                    "same_device_return_url: an https URL (http on loopback) without a fragment, \
                     up to 2048 characters"
                        .into(),
                )
            })
        })
        .transpose()?;
    let by_value = match input.request_by.as_deref() {
        None | Some("reference") => false,
        Some("value") => true,
        Some(_) => return Err(invalid("request_by: reference or value".into())),
    };
    Ok(NewPresentationRequest {
        dcql_query,
        response_mode: input.response_mode.unwrap_or(ResponseMode::DirectPost),
        request_uri_method: input.request_uri_method.unwrap_or(RequestUriMethod::Get),
        expires_in,
        same_device_return_url,
        by_value,
    })
}

/// Create an OpenID4VP presentation request: show its
/// `authorization_request` to the holder as a QR code or a link.
#[utoipa::path(
    post, path = "/v1/presentation-requests", tag = "presentation requests",
    request_body = CreatePresentationRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = CreatedView, description = "created, pending"),
    ),
    security(("api_key" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Lender { id: lender, caller }: Lender,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let idem = Idem::new(
        &state,
        &caller,
        &headers,
        "POST /v1/presentation-requests",
        &body,
    )?;
    if let Some(replayed) = idem.replay(&state).await? {
        return Ok(replayed);
    }
    let input: CreatePresentationRequest = json::parse(&headers, &body)?;
    let ask = validate(input)?;
    let seal = idem.seal(StatusCode::CREATED, |c: &CreatedRequest| {
        serde_json::to_value(created_view(c, 0)).unwrap_or_else(|_| json!({}))
    });
    let context = caller.command_context();
    match state.flows.create(&context, lender, ask, &seal).await {
        Ok(done) => {
            let view = created_view(&done.value, done.position());
            Ok((StatusCode::CREATED, Json(view)).into_response())
        }
        Err(error) => idem.replay_after_failure(&state, error.into()).await,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresentedClaimsView {
    pub verification_id: Uuid,
    pub verified: bool,
    pub failed_step: Option<String>,
    #[schema(schema_with = reason_schema)]
    pub reason: Option<Reason>,
    pub issuer: Option<String>,
    pub vct: Option<String>,
    /// The disclosed values: while kept (the result TTL) and, for a
    /// same-device flow, only with the matching `response_code`; else null.
    #[schema(value_type = Option<Object>)]
    pub disclosed_claims: Option<Map<String, Value>>,
    /// Paths of the selectively disclosed claims.
    pub disclosed_claim_names: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletErrorView {
    pub error: String,
    pub error_description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresentationRequestView {
    pub request_id: Uuid,
    /// pending, retrieved, verified, rejected, wallet_error or expired.
    pub status: String,
    pub expires_at: String,
    pub client_id: String,
    pub response_mode: String,
    pub wallet_error: Option<WalletErrorView>,
    /// Whether the response satisfied the DCQL query; null until one was
    /// processed.
    pub dcql_satisfied: Option<bool>,
    /// Why a processed response was rejected (`malformed_vp_token`,
    /// `presentation_invalid`, `query_not_satisfied`), and how.
    pub rejection: Option<String>,
    pub rejection_detail: Option<String>,
    /// Per DCQL credential query id, its presentations' verifications.
    pub presentations: BTreeMap<String, Vec<PresentedClaimsView>>,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub position: u64,
}

fn presented(view: &PresentedView) -> PresentedClaimsView {
    let record = &view.record;
    PresentedClaimsView {
        verification_id: record.verification_id.as_uuid(),
        verified: record.verified,
        failed_step: record.failed_step.map(|s| s.name().to_owned()),
        reason: record.reason,
        issuer: record.issuer.clone(),
        vct: record.vct.clone(),
        disclosed_claims: view.disclosed_claims.clone(),
        disclosed_claim_names: record.disclosed_claims.clone(),
    }
}

fn request_view(view: &PresentationView) -> PresentationRequestView {
    let request = &view.request;
    PresentationRequestView {
        request_id: request.request.request_id.as_uuid(),
        status: view.status.as_str().to_owned(),
        expires_at: request.request.expires_at.to_rfc3339(),
        client_id: request.request.client_id.clone(),
        response_mode: request.request.response_mode.as_str().to_owned(),
        wallet_error: request.wallet_error.as_ref().map(|e| WalletErrorView {
            error: e.error.clone(),
            error_description: e.error_description.clone(),
        }),
        dcql_satisfied: request.dcql_satisfied(),
        rejection: request
            .rejection
            .as_ref()
            .map(|(r, _)| r.as_str().to_owned()),
        rejection_detail: request.rejection.as_ref().map(|(_, d)| d.clone()),
        presentations: view
            .presentations
            .iter()
            .map(|(id, list)| (id.clone(), list.iter().map(presented).collect()))
            .collect(),
        created_at: request.created_at.to_rfc3339(),
        completed_at: request.completed_at.map(|t| t.to_rfc3339()),
        position: view.position,
    }
}

/// Query of `GET /v1/presentation-requests/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// The `response_code` the wallet's redirect carried (same-device).
    #[param(max_length = 256)]
    pub response_code: Option<String>,
}

/// One of the lender's own presentation requests, read from the log.
#[utoipa::path(
    get, path = "/v1/presentation-requests/{id}", tag = "presentation requests",
    params(("id" = Uuid, Path, description = "the request id"), GetQuery),
    responses(
        (status = 200, body = PresentationRequestView),
        (status = 404, description = "no such request of this lender"),
    ),
    security(("api_key" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Lender { id: lender, .. }: Lender,
    PathParam(id): PathParam<Uuid>,
    Query(query): Query<GetQuery>,
) -> Result<Json<PresentationRequestView>, ApiError> {
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let view = state
        .flows
        .get(
            lender,
            PresentationRequestId::from_uuid(id),
            query.response_code.as_deref(),
            now,
        )
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such presentation request"))?;
    Ok(Json(request_view(&view)))
}

/// Query of `GET /v1/presentation-requests`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only requests in this status.
    #[param(pattern = "^(pending|retrieved|verified|rejected|wallet_error|expired)$")]
    pub status: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,15}$")]
    pub cursor: Option<String>,
    /// Wait (up to 5 s) until the read model has applied this log position.
    #[serde(default, deserialize_with = "crate::routes::paging::position")]
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub min_position: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresentationRequestPage {
    /// Newest first: `{request_id, status, dcql_satisfied, client_id,
    /// response_mode, expires_at, created_at, completed_at, position}`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
}

/// The lender's presentation requests, newest first, from the read model.
#[utoipa::path(
    get, path = "/v1/presentation-requests", tag = "presentation requests",
    params(ListQuery),
    responses(
        (status = 200, body = PresentationRequestPage),
        (status = 422),
        (status = 503, description = "min_position not reached within 5 s; `position` says where the read model is"),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Lender { id: lender, .. }: Lender,
    Query(query): Query<ListQuery>,
) -> Result<Json<PresentationRequestPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let before_position = cursor_position(query.cursor.as_deref())?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ValidationFailed,
                    "status: pending, retrieved, verified, rejected, wallet_error or expired",
                )
            })
        })
        .transpose()?;
    let read = read_model(&state, "presentation_requests", query.min_position).await?;
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let filter = proofline_projections::queries::PresentationRequestFilter {
        status,
        before_position,
        now,
    };
    let (items, next) = proofline_projections::queries::presentation_requests(
        read,
        &lender.to_string(),
        &filter,
        limit,
    )
    .await?;
    Ok(Json(PresentationRequestPage {
        items,
        next_cursor: next.map(|p| p.to_string()),
    }))
}
