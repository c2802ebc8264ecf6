//! `/v1/log`: what an auditor needs to check what the service signed.

use axum::Json;
use axum::extract::State;
use proofline_commands::service_keys::{self, RecordedKey};
use serde::Serialize;
use utoipa::ToSchema;

use crate::caller::LogReader;
use crate::error::ApiError;
use crate::extract::Query;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyView {
    /// The key id receipts and checkpoints name in their `kid` header.
    pub kid: String,
    /// Always `EdDSA` (Ed25519).
    pub alg: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub public_key: String,
    /// The same key as an OKP JWK.
    #[schema(value_type = Object)]
    pub jwk: serde_json::Value,
    /// The same key as a did:key.
    pub did: String,
    /// The same key as a C2SP signed-note verifier key
    /// (`<origin>+<key id>+<base64 key>`), for the checkpoint notes.
    pub note_vkey: String,
    /// When the key took over (RFC 3339), or null if not recorded yet.
    pub since: Option<String>,
    /// The log position of its activation.
    pub since_position: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeys {
    #[serde(flatten)]
    pub current: PublicKeyView,
    /// Keys used before this one, newest first.
    pub previous: Vec<PublicKeyView>,
}

fn note_vkey(origin: &str, public_key: &str) -> String {
    proofline_domain::checkpoint::public_key(public_key)
        .and_then(|key| {
            proofline_domain::note::vkey(origin, proofline_domain::note::KeyType::Ed25519, &key)
                .ok()
        })
        .unwrap_or_default()
}

fn view(key: &RecordedKey, origin: &str) -> PublicKeyView {
    PublicKeyView {
        note_vkey: note_vkey(origin, &key.public_key),
        kid: key.kid.clone(),
        alg: key.alg.to_owned(),
        public_key: key.public_key.clone(),
        jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": key.public_key, "kid": key.kid}),
        did: key.did.clone(),
        since: Some(key.since.to_rfc3339()),
        since_position: Some(key.since_position),
    }
}

/// The service's signing key, and the keys it used before.
#[utoipa::path(
    get, path = "/v1/log/public-key", tag = "log",
    responses(
        (status = 200, body = PublicKeys),
    )
)]
pub async fn public_key(State(state): State<AppState>) -> Result<Json<PublicKeys>, ApiError> {
    let history = service_keys::history(state.store.as_ref()).await?;
    let kid = state.service_key.kid();
    let origin = state.settings.log_origin.as_str();
    let current = match history.iter().rposition(|k| k.kid == kid) {
        Some(at) => view(&history[at], origin),
        None => {
            let public_key = service_keys::encode_public_key(&state.service_key.verifying_key());
            PublicKeyView {
                note_vkey: note_vkey(origin, &public_key),
                jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": public_key, "kid": kid}),
                did: proofline_domain::did::Did::from_ed25519(&state.service_key.verifying_key())
                    .as_str()
                    .to_owned(),
                kid,
                alg: "EdDSA".into(),
                public_key,
                since: None,
                since_position: None,
            }
        }
    };
    let previous = history
        .iter()
        .rev()
        .filter(|k| k.kid != current.kid)
        .map(|k| view(k, origin))
        .collect();
    Ok(Json(PublicKeys { current, previous }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    /// The log position signed.
    pub position: u64,
    /// The hash of the event at `position`.
    pub hash: String,
    pub signed_at: String,
    /// The service key that signed (see `/v1/log/public-key`).
    pub kid: String,
    /// Compact JWS (EdDSA, typ `proofline-checkpoint+jwt`) over
    /// `{position, hash, signed_at}`.
    pub jws: String,
    /// The same JWS (the name DESIGN.md gives it).
    pub signature: String,
    /// The Merkle tree's size signed by `note`: equal to `position`.
    pub tree_size: Option<u64>,
    /// The tree's root at `tree_size`, base64.
    pub root_hash: Option<String>,
    /// The C2SP tlog-checkpoint signed note; absent from checkpoints signed
    /// before the tree existed.
    pub note: Option<String>,
    /// Where the log records this checkpoint.
    pub recorded_at_position: u64,
}

fn checkpoint_view(recorded: &proofline_commands::checkpoints::Recorded) -> CheckpointView {
    let proofline_domain::checkpoint::CheckpointEvent::LogCheckpointSigned {
        position,
        hash,
        signed_at,
        kid,
        jws,
        note,
    } = &recorded.event;
    let parsed = note
        .as_deref()
        .and_then(|n| n.split_once("\n\n"))
        .and_then(|(body, _)| proofline_domain::note::Checkpoint::parse(&format!("{body}\n")).ok());
    CheckpointView {
        signature: jws.clone(),
        tree_size: parsed.as_ref().map(|c| c.size),
        root_hash: parsed.as_ref().map(|c| crate::routes::tlog::b64(&c.root)),
        note: note.clone(),
        position: *position,
        hash: hash.to_hex(),
        signed_at: signed_at.to_rfc3339(),
        kid: kid.clone(),
        jws: jws.clone(),
        recorded_at_position: recorded.recorded_at_position,
    }
}

/// The newest signed checkpoint of the log (auditor, operator).
#[utoipa::path(
    get, path = "/v1/log/checkpoints/latest", tag = "log",
    responses(
        (status = 200, body = CheckpointView),
        (status = 404, description = "none signed yet"),
    ),
    security(("api_key" = []))
)]
pub async fn latest_checkpoint(
    State(state): State<AppState>,
    _reader: LogReader,
) -> Result<Json<CheckpointView>, ApiError> {
    let latest = proofline_commands::checkpoints::latest(state.store.as_ref()).await?;
    latest
        .as_ref()
        .map(|c| Json(checkpoint_view(c)))
        .ok_or_else(|| {
            ApiError::new(
                crate::error::ErrorCode::NotFound,
                "no checkpoint is signed yet",
            )
        })
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckpointsQuery {
    /// Checkpoints covering positions after this one (default 0).
    #[serde(default, deserialize_with = "crate::routes::paging::position")]
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub after: Option<u64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointPage {
    pub checkpoints: Vec<CheckpointView>,
}

/// Signed checkpoints, oldest first (auditor, operator).
#[utoipa::path(
    get, path = "/v1/log/checkpoints", tag = "log",
    params(CheckpointsQuery),
    responses(
        (status = 200, body = CheckpointPage),
        (status = 422),
    ),
    security(("api_key" = []))
)]
pub async fn checkpoints(
    State(state): State<AppState>,
    _reader: LogReader,
    Query(query): Query<CheckpointsQuery>,
) -> Result<Json<CheckpointPage>, ApiError> {
    use crate::error::ErrorCode;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "limit: 1 to 1000",
        ));
    }
    let found = proofline_commands::checkpoints::covering_after(
        state.store.as_ref(),
        query.after.unwrap_or(0),
        limit,
    )
    .await?;
    Ok(Json(CheckpointPage {
        checkpoints: found.iter().map(checkpoint_view).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventSchemas {
    /// The NATS subjects' prefix: an event is published on
    /// `<prefix>.<stream category>.<type>`.
    pub subject_prefix: String,
    /// One entry per event type: `{subject, category, type, schema_version,
    /// schema}`, `schema` being the JSON Schema (2020-12) of its `data`.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
}

/// The JSON Schema of every event's `data`, with its NATS subject,
/// generated from the service's own types.
#[utoipa::path(
    get, path = "/v1/schemas", tag = "log",
    responses((status = 200, body = EventSchemas))
)]
pub async fn schemas() -> Json<EventSchemas> {
    let prefix = proofline_projections::relay::SUBJECT_PREFIX;
    let events = proofline_commands::schemas::events()
        .into_iter()
        .map(|event| {
            serde_json::json!({
                "subject": format!("{prefix}.{}.{}", event.category, event.name),
                "category": event.category.as_str(),
                "type": event.name,
                "schema_version": event.schema_version,
                "schema": event.data,
            })
        })
        .collect();
    Json(EventSchemas {
        subject_prefix: prefix.to_owned(),
        events,
    })
}
