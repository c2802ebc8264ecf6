//! The transparency log over HTTP (DESIGN.md, "Transparency log"): Merkle
//! proofs as JSON under `/v1/log/proofs`, and the tree read-only as C2SP
//! `tlog-tiles` under `/tlog`, so that existing tlog clients, witnesses and
//! monitors can follow it. Hashes are standard base64, as in the notes.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proofline_commands::tree::{self, ProofError};
use proofline_domain::merkle::Hash;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::caller::LogReader;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{PathParam, Query};
use crate::state::AppState;

impl From<ProofError> for ApiError {
    fn from(error: ProofError) -> Self {
        match error {
            ProofError::Invalid(detail) => ApiError::new(ErrorCode::ValidationFailed, detail),
            not_yet @ ProofError::NotYet { .. } => {
                ApiError::new(ErrorCode::Conflict, not_yet.to_string()).with_retry_after(1)
            }
            ProofError::Store(store) => store.into(),
        }
    }
}

pub(crate) fn b64(hash: &Hash) -> String {
    STANDARD.encode(hash)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The event's log position (1 to `tree_size`).
    #[param(minimum = 1, maximum = 9007199254740991.0)]
    pub position: u64,
    /// The size of the tree the proof leads to (1 to the head).
    #[param(minimum = 1, maximum = 9007199254740991.0)]
    pub tree_size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionView {
    pub position: u64,
    /// `position - 1`: the leaf's index in the tree.
    pub leaf_index: u64,
    pub tree_size: u64,
    /// SHA-256(0x00 ‖ the event's canonical envelope), base64.
    pub leaf_hash: String,
    /// The RFC 9162 inclusion path from the leaf up, base64.
    pub hashes: Vec<String>,
}

/// The RFC 9162 inclusion proof of one event in the tree of `tree_size`
/// events (auditor, operator).
#[utoipa::path(
    get, path = "/v1/log/proofs/inclusion", tag = "log",
    params(InclusionQuery),
    responses(
        (status = 200, body = InclusionView),
        (status = 409, description = "the tree does not cover that size yet: try again (Retry-After)"),
        (status = 422, description = "position 0, a position past tree_size, or a size past the head"),
    ),
    security(("api_key" = []))
)]
pub async fn inclusion(
    State(state): State<AppState>,
    _reader: LogReader,
    Query(query): Query<InclusionQuery>,
) -> Result<Json<InclusionView>, ApiError> {
    let proof = tree::inclusion(state.store.as_ref(), query.position, query.tree_size).await?;
    Ok(Json(InclusionView {
        position: query.position,
        leaf_index: proof.leaf_index,
        tree_size: proof.tree_size,
        leaf_hash: b64(&proof.leaf_hash),
        hashes: proof.hashes.iter().map(b64).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size (1 to `to`).
    #[param(minimum = 1, maximum = 9007199254740991.0)]
    pub from: u64,
    /// The newer tree size (up to the head).
    #[param(minimum = 1, maximum = 9007199254740991.0)]
    pub to: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyView {
    pub from: u64,
    pub to: u64,
    /// The RFC 9162 consistency proof, base64 (none when `from` = `to`).
    pub hashes: Vec<String>,
}

/// The RFC 9162 consistency proof between two tree sizes (auditor,
/// operator).
#[utoipa::path(
    get, path = "/v1/log/proofs/consistency", tag = "log",
    params(ConsistencyQuery),
    responses(
        (status = 200, body = ConsistencyView),
        (status = 409, description = "the tree does not cover that size yet: try again (Retry-After)"),
        (status = 422, description = "from 0, from > to, or a size past the head"),
    ),
    security(("api_key" = []))
)]
pub async fn consistency(
    State(state): State<AppState>,
    _reader: LogReader,
    Query(query): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyView>, ApiError> {
    let hashes = tree::consistency(state.store.as_ref(), query.from, query.to).await?;
    Ok(Json(ConsistencyView {
        from: query.from,
        to: query.to,
        hashes: hashes.iter().map(b64).collect(),
    }))
}

/// The latest checkpoint note (C2SP tlog-checkpoint), for anyone, with the
/// witnesses' cosignatures of it recorded so far.
#[utoipa::path(
    get, path = "/tlog/checkpoint", tag = "tlog",
    responses(
        (status = 200, description = "the signed note", content_type = "text/plain; charset=utf-8", body = String),
        (status = 404, description = "no checkpoint note is signed yet"),
    )
)]
pub async fn checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    let latest = proofline_commands::checkpoints::latest_note(state.store.as_ref()).await?;
    let Some((_, note)) = latest else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no checkpoint note is signed yet",
        ));
    };
    let note = proofline_commands::witnesses::cosigned_note(state.store.as_ref(), &note).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        note,
    )
        .into_response())
}

/// A tile's place: its index and its width (256 unless partial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    pub index: u64,
    pub width: u64,
}

/// Parses the C2SP tile path after the level: `N` written as groups of
/// three digits, all but the last prefixed with `x` (`x001/x234/067`),
/// then `.p/<W>` for a partial tile of W hashes (1 to 255).
pub fn parse_tile_path(path: &str) -> Option<TilePath> {
    let mut parts: Vec<&str> = path.split('/').collect();
    let mut width = 256;
    if parts.len() >= 2 && parts[parts.len() - 2].ends_with(".p") {
        let w = parts.pop()?;
        let digits = !w.is_empty() && w.len() <= 3 && w.bytes().all(|b| b.is_ascii_digit());
        if !digits || w.starts_with('0') {
            return None;
        }
        width = w.parse().ok().filter(|w| (1..256).contains(w))?;
        let last = parts.pop()?;
        parts.push(last.strip_suffix(".p")?);
    }
    let (last, groups) = parts.split_last()?;
    let mut index: u64 = 0;
    fn three(s: &str) -> Option<&str> {
        (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
    }
    for group in groups {
        let digits = three(group.strip_prefix('x')?)?;
        index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    index = index
        .checked_mul(1000)?
        .checked_add(three(last)?.parse().ok()?)?;
    Some(TilePath { index, width })
}

fn tile_response(bytes: Vec<u8>, full: bool) -> Response {
    let cache = if full {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        bytes,
    )
        .into_response()
}

fn no_tile() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such tile (yet)")
}

/// A hash tile (C2SP tlog-tiles): `/tlog/tile/<L>/<N>[.p/<W>]`, for anyone.
pub async fn hash_tile(
    State(state): State<AppState>,
    PathParam((level, path)): PathParam<(String, String)>,
) -> Result<Response, ApiError> {
    let level: u32 = level
        .parse()
        .ok()
        .filter(|l: &u32| *l < 64 && l.to_string() == level)
        .ok_or_else(no_tile)?;
    let tile = parse_tile_path(&path).ok_or_else(no_tile)?;
    let bytes = tree::tile(state.store.as_ref(), level, tile.index, tile.width)
        .await?
        .ok_or_else(no_tile)?;
    Ok(tile_response(bytes, tile.width == 256))
}

/// An entry bundle (C2SP tlog-tiles): `/tlog/tile/entries/<N>[.p/<W>]`, the
/// events' canonical envelopes; auditors and operators, or anyone with
/// `PROOFLINE_TLOG_PUBLIC_ENTRIES=true`.
pub async fn entry_bundle(
    State(state): State<AppState>,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    if !state.settings.tlog_public_entries {
        LogReader::from_request_parts(&mut parts, &state).await?;
    }
    let path = parts
        .uri
        .path()
        .strip_prefix("/tlog/tile/entries/")
        .ok_or_else(no_tile)?;
    let tile = parse_tile_path(path).ok_or_else(no_tile)?;
    let bytes = tree::entries(state.store.as_ref(), tile.index, tile.width)
        .await?
        .ok_or_else(no_tile)?;
    Ok(tile_response(bytes, tile.width == 256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_as_c2sp_writes_them() {
        let t = |index, width| Some(TilePath { index, width });
        assert_eq!(parse_tile_path("000"), t(0, 256));
        assert_eq!(parse_tile_path("067"), t(67, 256));
        assert_eq!(parse_tile_path("x001/x234/067"), t(1_234_067, 256));
        assert_eq!(parse_tile_path("x001/x234/067.p/8"), t(1_234_067, 8));
        assert_eq!(parse_tile_path("001.p/255"), t(1, 255));
        for bad in [
            "",
            "67",
            "0067",
            "x001",
            "001/002",
            "x1/002",
            "001.p/0",
            "001.p/256",
            "001.p/08",
            "001.p/",
            "001.p",
            "abc",
            "x001/x234/067/",
            "-01",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad:?}");
        }
    }
}
