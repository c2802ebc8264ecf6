//! `/v1/issuers` and `/v1/status-lists`: the trust registry. The operator
//! writes it; every role may read it.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use proofline_commands::issuers::{self, NewIssuer};
use proofline_commands::lenders::no_seal;
use proofline_domain::did::Did;
use proofline_domain::issuer::{IssuerCommand, IssuerId, KeySource, Kid, RegisteredKey, Vct};
use proofline_domain::jose::Jwk;
use proofline_domain::status_list::ListUri;
use proofline_domain::values::{InvalidValue, Name};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::{Caller, Operator};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Body, PathParam, Query};
use crate::idempotency::{Idem, answer};
use crate::json;
use crate::routes::paging::read_model;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    /// The key id JWTs name in their `kid` header: 1 to 256 visible ASCII
    /// characters.
    #[schema(
        example = "key-1",
        min_length = 1,
        max_length = 256,
        pattern = "^[!-~]+$"
    )]
    pub kid: String,
    /// A public JWK: OKP Ed25519 or EC P-256. Private keys are refused.
    #[schema(value_type = Object)]
    pub jwk: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterIssuer {
    /// A did:key (Ed25519, carrying its own key), any other DID, or (for
    /// `metadata` and `x5c` issuers) the https URL its credentials carry as
    /// `iss`.
    #[schema(example = "did:web:issuer.example")]
    pub did: String,
    /// 1 to 200 characters (after trimming), no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Refused for did:key; otherwise required unless `key_sources` names
    /// a source that gives the issuer keys.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub keys: Vec<KeyInput>,
    /// The credential types (`vct`) the issuer is trusted for; absent: any.
    #[schema(max_items = 64)]
    pub credential_types: Option<Vec<String>>,
    /// Where its keys may come from: `registered` (the `keys` given here),
    /// `did` (the did:web document), `metadata` (SD-JWT VC issuer metadata
    /// of an https issuer), `x5c` (a chain to a registered trust anchor).
    /// Absent: `["registered", "did"]`.
    #[schema(max_items = 4, example = json!(["did"]))]
    pub key_sources: Option<Vec<String>>,
}

fn key_source(text: &str) -> Result<KeySource, InvalidValue> {
    [
        KeySource::Registered,
        KeySource::Did,
        KeySource::Metadata,
        KeySource::X5c,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .ok_or_else(|| InvalidValue {
        field: "key_sources",
        message: format!("{text:?} is not one of registered, did, metadata, x5c"),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerRegistered {
    pub issuer_id: Uuid,
    pub did: String,
    pub position: u64,
}

fn key_input(input: &KeyInput) -> Result<RegisteredKey, ApiError> {
    let kid = Kid::parse(&input.kid)?;
    let (jwk, _) = Jwk::from_json(&input.jwk)
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, format!("jwk: {e}")))?;
    Ok(RegisteredKey { kid, jwk })
}

fn did_param(text: &str) -> Result<Did, ApiError> {
    Did::parse(text).map_err(|_| ApiError::new(ErrorCode::NotFound, "no issuer with this DID"))
}

/// Register an issuer in the trust registry.
#[utoipa::path(
    post, path = "/v1/issuers", tag = "issuers",
    request_body = RegisterIssuer,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = IssuerRegistered),
        (status = 409, description = "the DID is registered already"),
    ),
    security(("api_key" = []))
)]
pub async fn register(
    State(state): State<AppState>,
    Operator(caller): Operator,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let idem = Idem::new(&state, &caller, &headers, "POST /v1/issuers", &body)?;
    if let Some(replayed) = idem.replay(&state).await? {
        return Ok(replayed);
    }
    let input: RegisterIssuer = json::parse(&headers, &body)?;
    let did = Did::parse(&input.did)?;
    let keys = input
        .keys
        .iter()
        .map(key_input)
        .collect::<Result<Vec<_>, _>>()?;
    let credential_types = input
        .credential_types
        .map(|types| {
            types
                .iter()
                .map(|t| Vct::parse(t))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let key_sources = input
        .key_sources
        .map(|sources| {
            sources
                .iter()
                .map(|s| key_source(s))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let issuer = NewIssuer {
        did: did.clone(),
        name: Name::parse("name", &input.name)?,
        keys,
        credential_types,
        key_sources,
    };
    let render = |id: &IssuerId| json!({"issuer_id": id.as_uuid(), "did": did.as_str()});
    let seal = idem.seal(StatusCode::CREATED, render);
    match issuers::register(
        state.store.as_ref(),
        &caller.command_context(),
        issuer,
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

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerKeyView {
    pub kid: String,
    #[schema(value_type = Object)]
    pub jwk: Jwk,
    pub added_at: String,
    pub retired_at: Option<String>,
    /// When it was revoked: it verifies nothing since.
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerView {
    pub issuer_id: Uuid,
    pub did: String,
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    pub keys: Vec<IssuerKeyView>,
    /// Absent: trusted for any credential type.
    pub credential_types: Option<Vec<String>>,
    pub registered_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerList {
    /// In registration order.
    #[schema(value_type = Vec<IssuerView>)]
    pub items: Vec<Value>,
}

/// Query of `GET /v1/issuers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IssuersQuery {
    /// Wait (up to 5 s) until the registry's read model has applied this
    /// log position (the `position` a command answered).
    #[serde(default, deserialize_with = "crate::routes::paging::position")]
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub min_position: Option<u64>,
}

/// The trust registry: every issuer, its keys and status, from the
/// `issuers` read model (pass a command's `position` as `min_position` to
/// read your own write).
#[utoipa::path(
    get, path = "/v1/issuers", tag = "issuers",
    params(IssuersQuery),
    responses(
        (status = 200, body = IssuerList),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<IssuersQuery>,
) -> Result<Json<IssuerList>, ApiError> {
    let read = read_model(&state, "issuers", query.min_position).await?;
    Ok(Json(IssuerList {
        items: proofline_projections::queries::issuers(read).await?,
    }))
}

async fn issuer_command(
    state: &AppState,
    caller: &Caller,
    idem: Idem,
    did: &Did,
    command: IssuerCommand,
    status: StatusCode,
    render: Value,
) -> Result<Response, ApiError> {
    if let Some(replayed) = idem.replay(state).await? {
        return Ok(replayed);
    }
    let seal = idem.seal(status, |_: &()| render.clone());
    match issuers::run(
        state.store.as_ref(),
        &caller.command_context(),
        did,
        command,
        &seal,
    )
    .await
    {
        Ok(done) => Ok(answer(status, render.clone(), done.position())),
        Err(error) => idem.replay_after_failure(state, error.into()).await,
    }
}

/// Add a key to an issuer (not to a did:key issuer, whose key is its DID).
#[utoipa::path(
    post, path = "/v1/issuers/{did}/keys", tag = "issuers",
    params(("did" = String, Path, description = "the issuer's DID")),
    request_body = KeyInput,
    responses(
        (status = 201, body = inline(Object)),
        (status = 409, description = "the kid is used"),
    ),
    security(("api_key" = []))
)]
pub async fn add_key(
    State(state): State<AppState>,
    Operator(caller): Operator,
    headers: HeaderMap,
    PathParam(did): PathParam<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let did = did_param(&did)?;
    let input: KeyInput = json::parse(&headers, &body)?;
    let key = key_input(&input)?;
    let render = json!({"did": did.as_str(), "kid": key.kid.as_str()});
    let idem = Idem::new(
        &state,
        &caller,
        &headers,
        &format!("POST /v1/issuers/{did}/keys"),
        &body,
    )?;
    issuer_command(
        &state,
        &caller,
        idem,
        &did,
        IssuerCommand::AddKey { key },
        StatusCode::CREATED,
        render,
    )
    .await
}

/// Retire an issuer's key: it no longer verifies anything signed from now on.
#[utoipa::path(
    delete, path = "/v1/issuers/{did}/keys/{kid}", tag = "issuers",
    params(("did" = String, Path, description = "the issuer's DID"), ("kid" = String, Path, description = "the key id, percent-encoded")),
    responses(
        (status = 200, body = inline(Object)),
        (status = 409, description = "retired already"),
    ),
    security(("api_key" = []))
)]
pub async fn retire_key(
    State(state): State<AppState>,
    Operator(caller): Operator,
    PathParam((did, kid)): PathParam<(String, String)>,
) -> Result<Response, ApiError> {
    let did = did_param(&did)?;
    let kid = Kid::parse(&kid).map_err(|_| ApiError::new(ErrorCode::NotFound, "no such key"))?;
    let render = json!({"did": did.as_str(), "kid": kid.as_str(), "retired": true});
    let command = IssuerCommand::RetireKey { kid };
    let done = issuers::run(
        state.store.as_ref(),
        &caller.command_context(),
        &did,
        command,
        &no_seal,
    )
    .await?;
    Ok(answer(StatusCode::OK, render, done.position()))
}

/// Revoke an issuer's key: from now on it verifies nothing, whatever a
/// credential's `iat` says (for a key that was stolen: a thief chooses the
/// `iat`, so retiring it would not be enough).
#[utoipa::path(
    post, path = "/v1/issuers/{did}/keys/{kid}/revoke", tag = "issuers",
    params(
        ("did" = String, Path, description = "the issuer's DID"),
        ("kid" = String, Path, description = "the key id, percent-encoded"),
        ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer"),
    ),
    responses(
        (status = 200, body = inline(Object)),
        (status = 409, description = "revoked already"),
    ),
    security(("api_key" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    Operator(caller): Operator,
    headers: HeaderMap,
    PathParam((did, kid)): PathParam<(String, String)>,
) -> Result<Response, ApiError> {
    let did = did_param(&did)?;
    let kid = Kid::parse(&kid).map_err(|_| ApiError::new(ErrorCode::NotFound, "no such key"))?;
    let render = json!({"did": did.as_str(), "kid": kid.as_str(), "revoked": true});
    let idem = Idem::new(
        &state,
        &caller,
        &headers,
        &format!("POST /v1/issuers/{did}/keys/{}/revoke", kid.as_str()),
        &Default::default(),
    )?;
    issuer_command(
        &state,
        &caller,
        idem,
        &did,
        IssuerCommand::RevokeKey { kid },
        StatusCode::OK,
        render,
    )
    .await
}

/// Suspend an issuer: nothing it signed verifies until it is reinstated.
#[utoipa::path(
    post, path = "/v1/issuers/{did}/suspend", tag = "issuers",
    params(("did" = String, Path, description = "the issuer's DID")),
    responses(
        (status = 200, body = inline(Object)),
        (status = 409),
    ),
    security(("api_key" = []))
)]
pub async fn suspend(
    State(state): State<AppState>,
    Operator(caller): Operator,
    headers: HeaderMap,
    PathParam(did): PathParam<String>,
) -> Result<Response, ApiError> {
    let did = did_param(&did)?;
    let render = json!({"did": did.as_str(), "status": "suspended"});
    let idem = Idem::new(
        &state,
        &caller,
        &headers,
        &format!("POST /v1/issuers/{did}/suspend"),
        &Default::default(),
    )?;
    issuer_command(
        &state,
        &caller,
        idem,
        &did,
        IssuerCommand::Suspend,
        StatusCode::OK,
        render,
    )
    .await
}

/// Reinstate a suspended issuer.
#[utoipa::path(
    post, path = "/v1/issuers/{did}/reinstate", tag = "issuers",
    params(("did" = String, Path, description = "the issuer's DID")),
    responses(
        (status = 200, body = inline(Object)),
        (status = 409),
    ),
    security(("api_key" = []))
)]
pub async fn reinstate(
    State(state): State<AppState>,
    Operator(caller): Operator,
    headers: HeaderMap,
    PathParam(did): PathParam<String>,
) -> Result<Response, ApiError> {
    let did = did_param(&did)?;
    let render = json!({"did": did.as_str(), "status": "active"});
    let idem = Idem::new(
        &state,
        &caller,
        &headers,
        &format!("POST /v1/issuers/{did}/reinstate"),
        &Default::default(),
    )?;
    issuer_command(
        &state,
        &caller,
        idem,
        &did,
        IssuerCommand::Reinstate,
        StatusCode::OK,
        render,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishStatusList {
    /// The list's URI; the token's `sub` must equal it.
    #[schema(
        example = "https://issuer.example/status/1",
        min_length = 1,
        max_length = 2048
    )]
    pub uri: String,
    /// A Token Status List JWT (`typ: statuslist+jwt`) signed by a key of a
    /// registered, unsuspended issuer.
    pub token: String,
    /// The issuer's DID, for a token that names it neither in `iss` nor in
    /// `kid`, publishing a list for the first time.
    pub issuer: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusListPublished {
    pub uri: String,
    pub position: u64,
}

/// Publish (or replace with a newer `iat`) a status list.
#[utoipa::path(
    post, path = "/v1/status-lists", tag = "issuers",
    request_body = PublishStatusList,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body get the first answer")),
    responses(
        (status = 201, body = StatusListPublished),
        (status = 409, description = "a list as new or newer is published"),
        (status = 422, description = "the token does not check out"),
    ),
    security(("api_key" = []))
)]
pub async fn publish(
    State(state): State<AppState>,
    Operator(caller): Operator,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let idem = Idem::new(&state, &caller, &headers, "POST /v1/status-lists", &body)?;
    if let Some(replayed) = idem.replay(&state).await? {
        return Ok(replayed);
    }
    let input: PublishStatusList = json::parse(&headers, &body)?;
    let uri = ListUri::parse(&input.uri)?;
    let issuer = input.issuer.as_deref().map(Did::parse).transpose()?;
    let render = json!({"uri": uri.as_str()});
    let seal = idem.seal(StatusCode::CREATED, |_: &()| render.clone());
    let context = caller.command_context();
    match issuers::publish_status_list(
        state.store.as_ref(),
        &state.registry,
        &context,
        &uri,
        &input.token,
        issuer,
        &seal,
    )
    .await
    {
        Ok(done) => Ok(answer(StatusCode::CREATED, render.clone(), done.position())),
        Err(error) => idem.replay_after_failure(&state, error.into()).await,
    }
}
