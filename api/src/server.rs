//! The router and the server loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::{health, metrics, middleware, routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Proofline",
        description = "Event-sourced verification of SD-JWT credentials for lenders. \
                       Errors are RFC 9457 problem+json with a stable `code`.",
    ),
    // Handlers name their problem answers by status only; `openapi.rs`
    // gives them this body, so it is registered here.
    components(schemas(crate::error::Problem)),
    modifiers(&BearerKey),
    tags(
        (name = "lenders", description = "lenders and their API keys"),
        (name = "auditors", description = "auditors of the log"),
        (name = "issuers", description = "the trust registry: issuers, their keys, status lists"),
        (name = "verifications", description = "verifying holders' presentations"),
        (name = "presentation requests", description = "OpenID4VP flows: a wallet presents to Proofline"),
        (name = "wallets", description = "OpenID4VP request_uri and response_uri, for wallets (no key)"),
        (name = "log", description = "what auditors need to check the service's signatures"),
        (name = "webhooks", description = "deliveries of the lender's webhook"),
        (name = "health", description = "liveness, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pl_<prefix>_<secret>")
                    .build(),
            ),
        );
    }
}

/// The documented routes, and the OpenAPI document collected from them.
fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(routes::lenders::register, routes::lenders::list))
        .routes(routes!(routes::lenders::me))
        .routes(routes!(
            routes::lenders::put_webhook,
            routes::lenders::delete_webhook
        ))
        .routes(routes!(routes::lenders::rotate))
        .routes(routes!(routes::lenders::revoke))
        .routes(routes!(routes::lenders::standing::deactivate))
        .routes(routes!(routes::lenders::standing::reactivate))
        .routes(routes!(routes::lenders::standing::suspend))
        .routes(routes!(routes::lenders::standing::unsuspend))
        .routes(routes!(routes::auditors::register))
        .routes(routes!(routes::auditors::rotate))
        .routes(routes!(routes::auditors::revoke))
        .routes(routes!(routes::issuers::register, routes::issuers::list))
        .routes(routes!(routes::issuers::add_key))
        .routes(routes!(routes::issuers::retire_key))
        .routes(routes!(routes::issuers::revoke_key))
        .routes(routes!(routes::issuers::suspend))
        .routes(routes!(routes::issuers::reinstate))
        .routes(routes!(routes::issuers::publish))
        .routes(routes!(
            routes::trust_anchors::add,
            routes::trust_anchors::list
        ))
        .routes(routes!(routes::trust_anchors::remove))
        .routes(routes!(
            routes::verifications::verify,
            routes::verifications::list
        ))
        .routes(routes!(routes::verifications::daily_stats))
        .routes(routes!(routes::verifications::get))
        .routes(routes!(
            routes::presentation_requests::create,
            routes::presentation_requests::list
        ))
        .routes(routes!(routes::presentation_requests::get))
        .routes(routes!(
            routes::oid4vp::fetch_get,
            routes::oid4vp::fetch_post
        ))
        .routes(routes!(routes::oid4vp::respond))
        .routes(routes!(routes::log::public_key))
        .routes(routes!(routes::log::schemas))
        .routes(routes!(routes::log::latest_checkpoint))
        .routes(routes!(routes::log::checkpoints))
        .routes(routes!(routes::tlog::inclusion))
        .routes(routes!(routes::tlog::consistency))
        .routes(routes!(routes::tlog::checkpoint))
        .routes(routes!(routes::verifications::evidence))
        .routes(routes!(routes::events::page))
        .routes(routes!(routes::events::stream))
        .routes(routes!(routes::webhooks::deliveries))
        .routes(routes!(routes::webhooks::health))
        .routes(routes!(routes::status_lists::list))
        .routes(routes!(routes::webhooks::retry))
        .split_for_parts()
}

/// The OpenAPI document of the service, as served at `/openapi.json`:
/// collected from the handlers, then completed with what the layers around
/// them answer ([`crate::openapi::complete`]).
pub fn openapi() -> serde_json::Value {
    let mut document = serde_json::to_value(collected()).unwrap_or_default();
    crate::openapi::complete(&mut document);
    document
}

fn collected() -> utoipa::openapi::OpenApi {
    let (_, mut api) = documented();
    // The two routes served outside the collected router.
    let extra = serde_json::json!({
        "/openapi.json": {"get": {"tags": ["health"], "summary": "This document", "responses": {"200": {"description": "the OpenAPI document"}}}},
        "/metrics": {"get": {"tags": ["health"], "summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}},
        "/tlog/tile/{level}/{path}": {"get": {"tags": ["tlog"], "summary": "A C2SP tlog-tiles hash tile, for anyone",
            "description": "`path` is the tile index N written as C2SP says (x001/x234/067), then `.p/W` for a partial tile of W hashes.",
            "parameters": [
                {"name": "level", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": 63}},
                {"name": "path", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the tile's hashes, 32 bytes each", "content": {"application/octet-stream": {}}}, "404": {"description": "no such tile (yet)"}}}},
        "/tlog/tile/entries/{path}": {"get": {"tags": ["tlog"], "summary": "A C2SP tlog-tiles entry bundle: the events' canonical envelopes (auditor, operator; anyone with PROOFLINE_TLOG_PUBLIC_ENTRIES=true)",
            "parameters": [{"name": "path", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "each entry's length in two bytes (big-endian), then the entry", "content": {"application/octet-stream": {}}}, "404": {"description": "no such bundle (yet)"}}}},
    });
    if let Ok(paths) = serde_json::from_value::<
        std::collections::BTreeMap<String, utoipa::openapi::PathItem>,
    >(extra)
    {
        api.paths.paths.extend(paths);
    }
    api
}

pub fn router(state: AppState) -> Router {
    // Installed now, not at the first scrape: counts recorded before a
    // recorder exists are lost.
    metrics::handle();
    let (routes, _) = documented();
    let document = Arc::new(openapi());
    let settings = state.settings.clone();
    let mut router = routes
        .route("/metrics", get(metrics::render))
        .route("/console", get(crate::console::root))
        .route("/console/", get(crate::console::index))
        .route("/console/{name}", get(crate::console::asset))
        .route(
            "/tlog/tile/entries/{*path}",
            get(routes::tlog::entry_bundle),
        )
        .route("/tlog/tile/{level}/{*path}", get(routes::tlog::hash_tile))
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { axum::Json((*document).clone()) }
            }),
        )
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no route for this path") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this method is not allowed on this path",
            )
        })
        .layer(from_fn(middleware::metrics))
        .layer(from_fn_with_state(
            settings.request_timeout,
            middleware::time_limit,
        ))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes));
    if !settings.cors_allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = settings
            .cors_allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    "idempotency-key".parse().expect("valid"),
                ])
                .expose_headers(["x-request-id".parse().expect("valid")]),
        );
    }
    router
        .layer(from_fn(middleware::security_headers))
        .layer(from_fn(middleware::request_id))
        .with_state(state)
}

/// What a process that serves no API (a relay or projector role) answers:
/// health and metrics, for orchestrators and Prometheus.
pub fn ops_router(state: AppState) -> Router {
    metrics::handle();
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::render))
        .fallback(|| async {
            ApiError::new(
                ErrorCode::NotFound,
                "this role serves only health and metrics",
            )
        })
        .layer(from_fn(middleware::security_headers))
        .layer(from_fn(middleware::request_id))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting connections and
/// lets requests in flight finish. Handlers see the peer address (for rate
/// limits and trusted proxies).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Background work the HTTP layer needs while it serves: following the log
/// to drop cached keys changed by other processes, forgetting idle rate
/// limit entries, signing checkpoints, forgetting lapsed OpenID4VP secrets,
/// and fetching status lists in use again before they fall due. Ends when the returned handle is aborted.
pub fn spawn_background(state: &AppState) -> tokio::task::JoinHandle<()> {
    let (auth, store, limits, flows, lists) = (
        state.auth.clone(),
        state.store.clone(),
        state.limits.clone(),
        state.flows.clone(),
        state.lists.clone(),
    );
    let origin = state.settings.log_origin.clone();
    let witnessing = (!state.settings.witnesses.is_empty()).then(|| {
        proofline_commands::witnesses::Witnessing::new(
            state.settings.witnesses.clone(),
            &state.settings.fetch,
        )
        .expect("the fetch guard's settings were checked when read")
    });
    let (key, every_events, every_seconds) = (
        state.service_key.clone(),
        state.settings.checkpoint_every_events,
        state.settings.checkpoint_every_seconds,
    );
    tokio::spawn(async move {
        let mut forget = tokio::time::interval(std::time::Duration::from_secs(60));
        let watch = async {
            loop {
                if let Err(error) =
                    proofline_commands::auth::watch_invalidations(auth.clone(), store.clone()).await
                {
                    tracing::warn!(error = %error, "following the log for key changes failed; restarting");
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        };
        let idle = async {
            loop {
                forget.tick().await;
                limits.forget_idle();
            }
        };
        // Disclosed values are kept for the result TTL and no longer.
        let lapsed = async {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
            loop {
                tick.tick().await;
                let now = proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now());
                match flows.forget_lapsed(now).await {
                    Ok(0) => {}
                    Ok(forgotten) => tracing::debug!(forgotten, "forgot lapsed OpenID4VP secrets"),
                    Err(error) => tracing::warn!(%error, "cannot forget lapsed OpenID4VP secrets"),
                }
            }
        };
        // Lists in use are fetched again before they fall due.
        let refresh = async {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                let now = proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now());
                lists.refresh_due(now).await;
            }
        };
        // The newest checkpoint note this process signed, for the witnesses.
        let (signed_tx, signed_rx) = tokio::sync::watch::channel(None::<String>);
        let checkpoints = async {
            let mut checkpointer = proofline_commands::checkpoints::Checkpointer::new(
                every_events,
                every_seconds,
                origin,
            );
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
            for round in 0u64.. {
                tick.tick().await;
                if !round.is_multiple_of(5) {
                    if let Err(error) = checkpointer.follow(store.as_ref()).await {
                        tracing::warn!(%error, "cannot bring the Merkle tree up to the head");
                    }
                    continue;
                }
                let now = proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now());
                match checkpointer.tick(store.as_ref(), &key, now).await {
                    Ok(Some(position)) => {
                        tracing::debug!(position, "signed a log checkpoint");
                        if let Ok(Some((_, note))) =
                            proofline_commands::checkpoints::latest_note(store.as_ref()).await
                        {
                            signed_tx.send_replace(Some(note));
                        }
                    }
                    Ok(None) => {}
                    Err(error) => tracing::warn!(%error, "cannot sign a log checkpoint"),
                }
            }
        };
        let witnessing = witness(witnessing, store.as_ref(), signed_rx);
        tokio::join!(watch, idle, checkpoints, lapsed, refresh, witnessing);
    })
}

/// Submits each checkpoint note signed here to the witnesses, the newest
/// only when they are slower than the signer; never ends (nor blocks the
/// signer) when there are none.
async fn witness(
    witnessing: Option<proofline_commands::witnesses::Witnessing>,
    store: &dyn proofline_commands::store::EventStore,
    mut signed: tokio::sync::watch::Receiver<Option<String>>,
) {
    let Some(mut witnessing) = witnessing else {
        return std::future::pending().await;
    };
    while signed.changed().await.is_ok() {
        let Some(note) = signed.borrow_and_update().clone() else {
            continue;
        };
        for (witness, outcome) in witnessing.submit(store, &note).await {
            match outcome {
                Ok(()) => tracing::debug!(%witness, "a witness cosigned the checkpoint"),
                Err(error) => {
                    tracing::warn!(%witness, %error, "a witness did not cosign the checkpoint")
                }
            }
        }
    }
}
