//! `/v1/verifications`: verify a holder's presentation, read it back.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proofline_commands::verifications::{Verified, VerifyRequest};
use proofline_domain::values::Audience;
use proofline_domain::verification::{ClaimPath, Reason};
use proofline_domain::verification_record::{VerificationId, VerificationRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use uuid::Uuid;

use crate::caller::Lender;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Body, PathParam, Query};
use crate::idempotency::Idem;
use crate::json;
use crate::routes::paging::{cursor_position, page_limit, read_model};
use crate::state::AppState;

/// Longest nonce accepted.
pub const MAX_NONCE_CHARS: usize = 512;
/// Most required claims in one request.
pub const MAX_REQUIRED_CLAIMS: usize = 64;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyPresentation {
    /// `<issuer-jwt>~<disclosure>~…~<kb-jwt>`; up to 256 KiB. A malformed
    /// one is a recorded rejection at DECODE.
    pub presentation: String,
    /// The nonce the lender gave the wallet; single use per lender. 1 to
    /// 512 characters.
    #[schema(min_length = 1, max_length = 512)]
    pub nonce: String,
    /// What the Key Binding JWT must name as `aud`: one of the lender's
    /// registered audiences (any other is 422); default its first.
    #[schema(min_length = 1, max_length = 512, pattern = "^[!-~]+$")]
    pub audience: Option<String>,
    /// Claims that must be disclosed, as dotted paths (`address.country`):
    /// at most 64, each 1 to 256 characters with no empty segment.
    #[schema(max_items = 64)]
    pub required_claims: Option<Vec<String>>,
    /// Default true; false accepts a presentation without a Key Binding JWT.
    pub require_holder_binding: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// DECODE, FRESHNESS, ISSUER_AUTH, SIGNATURE, REVOCATION, HOLDER_BINDING, CLAIMS
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationView {
    pub verification_id: Uuid,
    pub lender_id: Uuid,
    pub verified: bool,
    /// The first step that failed, or null.
    pub failed_step: Option<String>,
    /// A stable reason code such as `nonce_replayed` or `status_revoked`;
    /// null when verified.
    #[schema(schema_with = reason_schema)]
    pub reason: Option<Reason>,
    pub steps: Vec<StepView>,
    pub issuer: Option<String>,
    pub kid: Option<String>,
    pub vct: Option<String>,
    /// Values of the disclosed claims: in the answer of a verified
    /// presentation only, never stored.
    #[schema(value_type = Option<Object>)]
    pub disclosed_claims: Option<Map<String, Value>>,
    /// Paths of the selectively disclosed claims.
    pub disclosed_claim_names: Vec<String>,
    /// Hex SHA-256 of the presentation.
    pub presentation_sha256: String,
    /// The status list entry consulted.
    #[schema(value_type = Option<Object>)]
    pub status: Option<Value>,
    /// When the verification was recorded (RFC 3339).
    pub verified_at: String,
    /// Compact JWS (EdDSA) by the service key over `{verification_id,
    /// lender_id, verified, failed_step, presentation_sha256, position,
    /// iat}`; its key is at `/v1/log/public-key`.
    pub receipt: String,
    pub position: u64,
}

/// The schema of `reason`: one of the closed set of codes, or null.
pub fn reason_schema() -> Object {
    let mut codes: Vec<Value> = Reason::ALL.iter().map(|r| r.as_str().into()).collect();
    codes.push(Value::Null);
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
        .enum_values(Some(codes))
        .build()
}

fn view(
    record: &VerificationRecord,
    disclosed: Option<Map<String, Value>>,
    receipt: String,
    position: u64,
) -> VerificationView {
    VerificationView {
        verification_id: record.verification_id.as_uuid(),
        lender_id: record.lender_id.as_uuid(),
        verified: record.verified,
        failed_step: record.failed_step.map(|s| s.name().to_owned()),
        reason: record.reason,
        steps: record
            .steps
            .iter()
            .map(|s| StepView {
                name: s.name.name().to_owned(),
                passed: s.passed,
                detail: s.detail.clone(),
            })
            .collect(),
        issuer: record.issuer.clone(),
        kid: record.kid.clone(),
        vct: record.vct.clone(),
        disclosed_claims: disclosed,
        disclosed_claim_names: record.disclosed_claims.clone(),
        presentation_sha256: record.presentation_sha256.clone(),
        status: record
            .status
            .as_ref()
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null)),
        verified_at: record.verified_at.to_rfc3339(),
        receipt,
        position,
    }
}

fn validate(input: VerifyPresentation) -> Result<VerifyRequest, ApiError> {
    if input.nonce.is_empty() || input.nonce.chars().count() > MAX_NONCE_CHARS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("nonce: 1 to {MAX_NONCE_CHARS} characters"),
        ));
    }
    let audience = input.audience.as_deref().map(Audience::parse).transpose()?;
    let required = input.required_claims.unwrap_or_default();
    if required.len() > MAX_REQUIRED_CLAIMS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("required_claims: at most {MAX_REQUIRED_CLAIMS}"),
        ));
    }
    let required_claims = required
        .iter()
        .map(|path| {
            ClaimPath::parse(path).map_err(|reason| {
                ApiError::new(
                    ErrorCode::ValidationFailed,
                    format!("required_claims: {reason}"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(VerifyRequest {
        presentation: input.presentation,
        nonce: input.nonce,
        audience,
        required_claims,
        require_holder_binding: input.require_holder_binding.unwrap_or(true),
    })
}

/// Verify a holder's presentation: the seven steps, recorded as one event,
/// answered with a signed receipt.
#[utoipa::path(
    post, path = "/v1/verifications", tag = "verifications",
    request_body = VerifyPresentation,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = VerificationView, description = "recorded, verified or not"),
    ),
    security(("api_key" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    Lender { id: lender, caller }: Lender,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let idem = Idem::new(&state, &caller, &headers, "POST /v1/verifications", &body)?;
    if let Some(replayed) = replay(&state, &idem, lender).await? {
        return Ok(replayed);
    }
    let input: VerifyPresentation = json::parse(&headers, &body)?;
    let request = validate(input)?;
    let render = |v: &Verified| {
        let mut value = serde_json::to_value(view(
            &v.record,
            v.disclosed_claims.clone(),
            String::new(),
            0,
        ))
        .unwrap_or_else(|_| json!({}));
        if let Some(object) = value.as_object_mut() {
            object.remove("receipt");
            object.remove("position");
        }
        value
    };
    let seal = idem.seal(StatusCode::CREATED, render);
    let context = caller.command_context();
    match state
        .verifier
        .verify(&context, lender, request, &seal)
        .await
    {
        Ok(done) => {
            let position = done.position();
            let receipt = state.verifier.receipt(&done.value.record, position);
            let view = view(
                &done.value.record,
                done.value.disclosed_claims,
                receipt,
                position,
            );
            Ok((StatusCode::CREATED, Json(view)).into_response())
        }
        // A concurrent identical request may have won.
        Err(error) => match replay(&state, &idem, lender).await {
            Ok(Some(replayed)) => Ok(replayed),
            _ => Err(error.into()),
        },
    }
}

/// The answer of an earlier identical request, with its receipt: the
/// receipt covers the position, which the sealed answer cannot know, so it
/// is signed again (Ed25519 signatures are deterministic).
async fn replay(
    state: &AppState,
    idem: &Idem,
    lender: proofline_domain::lender::LenderId,
) -> Result<Option<Response>, ApiError> {
    let Some((status, mut answer, position)) = idem.replay_parts(state).await? else {
        return Ok(None);
    };
    let id = answer
        .get("verification_id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
        .map(VerificationId::from_uuid);
    if let Some(id) = id
        && let Some((record, _)) = state.verifier.get(lender, id).await?
        && let Some(object) = answer.as_object_mut()
    {
        object.insert(
            "receipt".into(),
            state.verifier.receipt(&record, position).into(),
        );
    }
    Ok(Some(Idem::replayed(status, answer, position)))
}

/// One of the lender's own verifications (without claim values, which are
/// never stored).
#[utoipa::path(
    get, path = "/v1/verifications/{id}", tag = "verifications",
    params(("id" = Uuid, Path, description = "the verification id")),
    responses(
        (status = 200, body = VerificationView),
        (status = 404, description = "no such verification of this lender"),
    ),
    security(("api_key" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Lender { id: lender, .. }: Lender,
    PathParam(id): PathParam<Uuid>,
) -> Result<Json<VerificationView>, ApiError> {
    let (record, position) = state
        .verifier
        .get(lender, VerificationId::from_uuid(id))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such verification"))?;
    let receipt = state.verifier.receipt(&record, position);
    Ok(Json(view(&record, None, receipt, position)))
}

/// Query of `GET /v1/verifications`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only verified (true) or only rejected (false) ones.
    pub verified: Option<bool>,
    /// From this time on (RFC 3339, inclusive).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Before this time (RFC 3339, exclusive).
    #[param(format = DateTime)]
    pub to: Option<String>,
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
pub struct VerificationPage {
    /// Newest first; each is the recorded event's data plus its `position`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    value
        .map(|text| {
            proofline_domain::log::Timestamp::parse(text)
                .map(|t| t.to_rfc3339())
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::ValidationFailed,
                        format!("{name}: an RFC 3339 time such as 2026-01-31T00:00:00Z"),
                    )
                })
        })
        .transpose()
}

/// The lender's verifications, newest first, from the read model.
#[utoipa::path(
    get, path = "/v1/verifications", tag = "verifications",
    params(ListQuery),
    responses(
        (status = 200, body = VerificationPage),
        (status = 422),
        (status = 503, description = "min_position not reached within 5 s; `position` says where the read model is"),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Lender { id: lender, .. }: Lender,
    Query(query): Query<ListQuery>,
) -> Result<Json<VerificationPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let before_position = cursor_position(query.cursor.as_deref())?;
    let filter = proofline_projections::queries::VerificationFilter {
        verified: query.verified,
        from: time_param("from", query.from.as_deref())?,
        to: time_param("to", query.to.as_deref())?,
        before_position,
    };
    let read = read_model(&state, "verifications", query.min_position).await?;
    let (items, next) =
        proofline_projections::queries::verifications(read, &lender.to_string(), &filter, limit)
            .await?;
    Ok(Json(VerificationPage {
        items,
        next_cursor: next.map(|p| p.to_string()),
    }))
}

/// Query of `GET /v1/stats/daily`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// First day (YYYY-MM-DD, UTC), inclusive.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD, UTC), inclusive.
    #[param(format = Date)]
    pub to: Option<String>,
    /// Wait (up to 5 s) until the stats have applied this log position.
    #[serde(default, deserialize_with = "crate::routes::paging::position")]
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub min_position: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DailyStats {
    /// `{day, verified, failed_step, count}` rows.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

fn day_param(name: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    value
        .map(|text| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.format("%Y-%m-%d").to_string())
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::ValidationFailed,
                        format!("{name}: a day such as 2026-01-31"),
                    )
                })
        })
        .transpose()
}

/// Verifications counted per UTC day, outcome and failed step: a lender's
/// own, or every lender's summed for the operator (the console's chart).
#[utoipa::path(
    get, path = "/v1/stats/daily", tag = "verifications",
    params(StatsQuery),
    responses(
        (status = 200, body = DailyStats),
        (status = 422),
    ),
    security(("api_key" = []))
)]
pub async fn daily_stats(
    State(state): State<AppState>,
    caller: crate::caller::Caller,
    Query(query): Query<StatsQuery>,
) -> Result<Json<DailyStats>, ApiError> {
    use proofline_domain::principal::Principal;
    let lender = match caller.principal() {
        Principal::Lender(id) => Some(id.to_string()),
        Principal::Operator => None,
        Principal::Auditor(_) => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "the auditor role may not use this route",
            ));
        }
    };
    let from = day_param("from", query.from.as_deref())?;
    let to = day_param("to", query.to.as_deref())?;
    let read = read_model(&state, "daily_stats", query.min_position).await?;
    let items = proofline_projections::queries::daily_stats(
        read,
        lender.as_deref(),
        from.as_deref(),
        to.as_deref(),
    )
    .await?;
    Ok(Json(DailyStats { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceCheckpoint {
    /// The C2SP tlog-checkpoint signed note the inclusion proof leads to.
    pub note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceInclusion {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The RFC 9162 inclusion path, base64.
    pub hashes: Vec<String>,
}

/// One verification proven without the rest of the log: its envelope, its
/// receipt, a signed checkpoint note and the inclusion proof of the
/// envelope in that checkpoint's tree. `proofline log verify-evidence`
/// checks it offline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Evidence {
    /// The verification's event, as `/v1/events` returns it.
    #[schema(value_type = Object)]
    pub envelope: Value,
    /// The receipt (JWS by the service key) of this verification.
    pub receipt: String,
    pub checkpoint: EvidenceCheckpoint,
    pub inclusion: EvidenceInclusion,
}

/// A verification's evidence (its lender; auditor, operator): 409 with
/// `Retry-After` until a signed checkpoint covers it.
#[utoipa::path(
    get, path = "/v1/verifications/{id}/evidence", tag = "verifications",
    params(("id" = Uuid, Path, description = "the verification_id")),
    responses(
        (status = 200, body = Evidence),
        (status = 404, description = "no such verification (or another lender's)"),
        (status = 409, description = "no signed checkpoint covers it yet (Retry-After)"),
    ),
    security(("api_key" = []))
)]
pub async fn evidence(
    State(state): State<AppState>,
    caller: crate::caller::Caller,
    PathParam(id): PathParam<Uuid>,
) -> Result<Json<Evidence>, ApiError> {
    use proofline_domain::principal::Principal;
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such verification");
    let (envelope, record) = state
        .verifier
        .envelope(VerificationId::from_uuid(id))
        .await?
        .ok_or_else(not_found)?;
    if let Principal::Lender(lender) = caller.principal()
        && record.lender_id != lender
    {
        return Err(not_found());
    }
    let latest = proofline_commands::checkpoints::latest_note(state.store.as_ref()).await?;
    let Some((checkpoint, note)) = latest.filter(|(c, _)| c.covered().0 >= envelope.position)
    else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "no signed checkpoint covers this verification yet; try again in a few seconds",
        )
        .with_retry_after(state.settings.checkpoint_every_seconds.max(1)));
    };
    let tree_size = checkpoint.covered().0;
    let proof =
        proofline_commands::tree::inclusion(state.store.as_ref(), envelope.position, tree_size)
            .await?;
    let receipt = state.verifier.receipt(&record, envelope.position);
    let note = proofline_commands::witnesses::cosigned_note(state.store.as_ref(), &note).await?;
    Ok(Json(Evidence {
        envelope: serde_json::to_value(&envelope).map_err(|e| ApiError::internal(&e))?,
        receipt,
        checkpoint: EvidenceCheckpoint { note },
        inclusion: EvidenceInclusion {
            leaf_index: proof.leaf_index,
            tree_size,
            hashes: proof.hashes.iter().map(crate::routes::tlog::b64).collect(),
        },
    }))
}
