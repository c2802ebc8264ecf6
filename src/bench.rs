//! `proofline bench`: benchmarks that print figures.
//!
//! `bench append` measures the store as commands use it: N tasks append M
//! events in all, one event of about 300 bytes per new stream (as a
//! verification does), through the group-commit writer. Then it inserts the
//! very rows that were stored into a scratch table of the same shape, in
//! batches on one connection, with the writer's own INSERT: the ceiling of
//! one ordered writer. The ratio of the two says what grouping and ordering
//! cost. Everything happens in a scratch database (Postgres) or file
//! (embedded) that is dropped afterwards, never in the service's own log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use proofline_commands::migrate;
use proofline_commands::store::postgres::{self, PgEventStore, PgStoreOptions};
use proofline_commands::store::sqlite::{self, SqliteEventStore};
use proofline_commands::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StoreError};
use proofline_domain::ids::StreamId;
use proofline_domain::log::{ChainVerifier, Envelope, Metadata};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use crate::app;
use crate::config::{Config, StoreLocation};

/// The store under test, by concrete type: the raw measurement needs the
/// adapter's own connection.
enum Bench {
    Postgres(Arc<PgEventStore>),
    Sqlite(Arc<SqliteEventStore>),
}

impl Bench {
    fn store(&self) -> Arc<dyn EventStore> {
        match self {
            Bench::Postgres(s) => s.clone(),
            Bench::Sqlite(s) => s.clone(),
        }
    }

    async fn raw(&self, rows: &[Envelope], batch: usize) -> Result<Duration, StoreError> {
        match self {
            Bench::Postgres(s) => s.raw_insert_benchmark(rows, batch).await,
            Bench::Sqlite(s) => s.raw_insert_benchmark(rows, batch).await,
        }
    }

    fn transactions(&self) -> u64 {
        match self {
            Bench::Postgres(s) => s.writer_stats().transactions.load(Ordering::Relaxed),
            Bench::Sqlite(s) => s.writer_stats().transactions.load(Ordering::Relaxed),
        }
    }
}

/// Where the benchmark writes, removed afterwards unless kept.
enum Scratch {
    Postgres {
        admin: SecretString,
        name: String,
        url: SecretString,
    },
    Sqlite {
        dir: tempfile::TempDir,
    },
}

impl Scratch {
    async fn create(config: &Config) -> anyhow::Result<Self> {
        match &config.store {
            StoreLocation::Embedded { .. } => {
                app::ensure_data_dir(config)?;
                let dir = tempfile::Builder::new()
                    .prefix("bench-")
                    .tempdir_in(&config.data_dir)
                    .context("cannot create a scratch directory in the data directory")?;
                Ok(Scratch::Sqlite { dir })
            }
            StoreLocation::Postgres { url, .. } => {
                let name = format!("proofline_bench_{}", Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(url.expose_secret())
                    .await
                    .context("cannot reach the database of DATABASE_URL")?;
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .await
                    .context("bench needs a database user that may CREATE DATABASE")?;
                let _ = conn.close().await;
                let mut scratch = url::Url::parse(url.expose_secret())?;
                scratch.set_path(&name);
                Ok(Scratch::Postgres {
                    admin: url.clone(),
                    name,
                    url: SecretString::from(scratch.to_string()),
                })
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Scratch::Postgres { name, .. } => format!("postgres, scratch database {name}"),
            Scratch::Sqlite { dir } => format!("sqlite, scratch file in {}", dir.path().display()),
        }
    }

    async fn open(&self) -> anyhow::Result<Bench> {
        Ok(match self {
            Scratch::Postgres { url, .. } => {
                let options = PgStoreOptions {
                    max_connections: 8,
                    ..PgStoreOptions::default()
                };
                let pool = postgres::connect_pool(url, &options).await?;
                migrate::apply_postgres(&pool).await?;
                Bench::Postgres(Arc::new(PgEventStore::open(pool).await?))
            }
            Scratch::Sqlite { dir } => {
                let path = dir.path().join("events.sqlite");
                let pool = sqlite::connect_pool(&path).await?;
                migrate::apply_sqlite(&pool).await?;
                Bench::Sqlite(Arc::new(SqliteEventStore::open(pool, &path).await?))
            }
        })
    }

    async fn finish(self, keep: bool) -> anyhow::Result<()> {
        match self {
            Scratch::Sqlite { dir } => {
                if keep {
                    println!("kept {}", dir.keep().display());
                }
            }
            Scratch::Postgres { admin, name, .. } => {
                if keep {
                    println!("kept database {name}");
                } else {
                    let mut conn = sqlx::PgConnection::connect(admin.expose_secret()).await?;
                    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// The data of a verification-like event, about 300 bytes of JSON.
fn verification_data(n: u64) -> serde_json::Value {
    json!({
        "verification_id": Uuid::now_v7(),
        "lender_id": Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001),
        "verified": !n.is_multiple_of(10),
        "failed_step": if n.is_multiple_of(10) { json!("REVOCATION") } else { json!(null) },
        "issuer": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "vct": "https://credentials.example/income",
        "disclosed_claims": ["given_name", "family_name", "address.country"],
        "presentation_sha256": format!("{:064x}", u128::from(n) * 0x9e37_79b9_7f4a_7c15),
    })
}

pub async fn append(
    config: &Config,
    writers: usize,
    events: u64,
    raw_batch: usize,
    keep: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(writers >= 1, "--writers must be at least 1");
    anyhow::ensure!(events >= 1, "--events must be at least 1");
    anyhow::ensure!(raw_batch >= 1, "--raw-batch must be at least 1");
    let scratch = Scratch::create(config).await?;
    let outcome = run_append(&scratch, writers, events, raw_batch).await;
    scratch.finish(keep).await?;
    outcome
}

async fn run_append(
    scratch: &Scratch,
    writers: usize,
    events: u64,
    raw_batch: usize,
) -> anyhow::Result<()> {
    let bench = scratch.open().await?;
    let store = bench.store();
    println!(
        "bench append: {writers} writers, {events} events ({})",
        scratch.describe()
    );

    let progress = ProgressBar::new(events).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let tickets = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (store, tickets, progress) = (store.clone(), tickets.clone(), progress.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = tickets.fetch_add(1, Ordering::Relaxed);
                    if n >= events {
                        return Ok::<_, StoreError>(latencies);
                    }
                    let stream = StreamId::new("verification", Uuid::now_v7())
                        .expect("a UUID makes a valid stream id");
                    let event = NewEvent::new("PresentationVerified", 1, verification_data(n));
                    let request =
                        AppendRequest::new(stream, ExpectedVersion::NoStream, vec![event])
                            .with_metadata(Metadata {
                                actor: Some("bench".into()),
                                correlation_id: Some(Uuid::now_v7().to_string()),
                                ..Metadata::default()
                            });
                    let sent = Instant::now();
                    store.append(request).await?;
                    latencies.push(sent.elapsed());
                    progress.inc(1);
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(events as usize);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let transactions = bench.transactions().max(1);
    let rate = events as f64 / elapsed.as_secs_f64();
    println!(
        "store appends: {events} events in {:.2} s = {rate:.0} events/s \
         (per append p50 {:.2} ms, p99 {:.2} ms; {transactions} transactions, {:.1} events each)",
        elapsed.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
        events as f64 / transactions as f64,
    );

    // Read everything back: it is both the check that the run was sound and
    // the rows for the raw measurement.
    let mut rows = Vec::with_capacity(events as usize);
    let mut chain = ChainVerifier::new();
    loop {
        let after = rows.last().map_or(0, |e: &Envelope| e.position);
        let page = store.read_all(after, 5_000).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            chain
                .check(e)
                .context("the benchmark's log does not verify")?;
        }
        rows.extend(page);
    }
    anyhow::ensure!(
        rows.len() as u64 == events,
        "stored {} events, expected {events}",
        rows.len()
    );
    let bytes: usize = rows
        .iter()
        .map(|e| serde_json::to_vec(&e.data).map_or(0, |v| v.len()))
        .sum();
    println!(
        "chain verified: positions 1..{events} gapless, every hash recomputed; event data {} bytes on average",
        bytes / rows.len()
    );

    let raw = bench.raw(&rows, raw_batch).await?;
    let raw_rate = events as f64 / raw.as_secs_f64();
    println!(
        "raw {raw_batch}-row INSERT batches on one connection: {events} events in {:.2} s = {raw_rate:.0} events/s",
        raw.as_secs_f64()
    );
    println!("ratio store/raw: {:.2}", rate / raw_rate);
    store.close().await;
    Ok(())
}

/// `bench auth`: what authentication costs once a key is cached.
pub async fn auth(config: &Config, requests: u64) -> anyhow::Result<()> {
    anyhow::ensure!(requests >= 10, "--requests must be at least 10");
    let scratch = Scratch::create(config).await?;
    let outcome = run_auth(&scratch, requests).await;
    scratch.finish(false).await?;
    outcome
}

async fn run_auth(scratch: &Scratch, requests: u64) -> anyhow::Result<()> {
    use axum::body::Body;
    use axum::extract::FromRequestParts;
    use axum::http::Request;
    use proofline_api::caller::Caller;
    use proofline_api::{ApiSettings, AppState, router};
    use proofline_commands::keys::ensure_operator_key;
    use proofline_commands::signing::ServiceKey;
    use tower::ServiceExt;

    let bench = scratch.open().await?;
    let store = bench.store();
    let keys = tempfile::tempdir()?;
    ensure_operator_key(&store, &keys.path().join("operator.key")).await?;
    let operator = std::fs::read_to_string(keys.path().join("operator.key"))?
        .trim()
        .to_owned();
    let settings = ApiSettings {
        requests_per_key_per_second: 0,
        ..ApiSettings::default()
    };
    let state = AppState::new(
        store.clone(),
        Arc::new(ServiceKey::generate()?),
        Arc::new(proofline_commands::sealing::SealingKey::generate()?),
        settings,
    );
    let app = router(state.clone());
    let before = state.auth.argon2_verifications();

    let registered = app
        .clone()
        .oneshot(
            Request::post("/v1/lenders")
                .header("authorization", format!("Bearer {operator}"))
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"name":"Bench Lending","contact_email":"bench@lender.example"}"#,
                ))?,
        )
        .await?;
    anyhow::ensure!(
        registered.status() == 201,
        "registering the bench lender answered {}",
        registered.status()
    );
    let body = axum::body::to_bytes(registered.into_body(), 1 << 16).await?;
    let key = serde_json::from_slice::<serde_json::Value>(&body)?["api_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let after_registration = state.auth.argon2_verifications();
    println!(
        "bench auth: {requests} authentications with one key ({})",
        scratch.describe()
    );

    let me = || {
        Request::get("/v1/lenders/me")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
    };
    // The first request with the key pays the one argon2 verification.
    let first = Instant::now();
    let answer = app.clone().oneshot(me()?).await?;
    anyhow::ensure!(
        answer.status() == 200,
        "GET /v1/lenders/me answered {}",
        answer.status()
    );
    let first = first.elapsed();

    // The cache itself.
    let now = proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now());
    let started = Instant::now();
    for _ in 0..requests {
        let hit = state.auth.cached(&key, now);
        anyhow::ensure!(hit.is_some(), "the key fell out of the cache");
    }
    let cache = started.elapsed().as_secs_f64() / requests as f64;

    // Everything a request does to know its caller: read the header, hash
    // the key, look it up, check expiry, spend from the key's rate budget.
    let (mut parts, ()) = me()?.map(|_| ()).into_parts();
    let started = Instant::now();
    for _ in 0..requests {
        let caller = Caller::from_request_parts(&mut parts, &state).await;
        anyhow::ensure!(caller.is_ok(), "authentication failed in the loop");
    }
    let extraction = started.elapsed().as_secs_f64() / requests as f64;

    // Whole requests, in process: routing, middleware, auth, the handler
    // (which reads the lender's stream), the JSON answer.
    let whole = (requests / 10).max(10);
    let mut latencies = Vec::with_capacity(whole as usize);
    for _ in 0..whole {
        let sent = Instant::now();
        let answer = app.clone().oneshot(me()?).await?;
        let _ = axum::body::to_bytes(answer.into_body(), 1 << 16).await?;
        latencies.push(sent.elapsed());
    }
    latencies.sort_unstable();
    let p =
        |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    let verifications = state.auth.argon2_verifications() - after_registration;
    println!(
        "first request with the key (one argon2 verification): {:.1} ms",
        first.as_secs_f64() * 1e3
    );
    println!(
        "auth cache hit (SHA-256 of the key, lookup, expiry): {:.2} µs",
        cache * 1e6
    );
    println!(
        "auth as a request sees it (header, cache, rate budget): {:.2} µs",
        extraction * 1e6
    );
    println!(
        "GET /v1/lenders/me in process: p50 {:.1} µs, p99 {:.1} µs over {whole} requests; auth is {:.1}% of the median",
        p(0.5),
        p(0.99),
        100.0 * extraction * 1e6 / p(0.5)
    );
    println!(
        "argon2 verifications: {verifications} for {} requests with one key ({} in all, registration included)",
        requests * 2 + whole + 1,
        state.auth.argon2_verifications() - before
    );
    store.close().await;
    Ok(())
}

/// `bench verify`: the pure verifier on one core, then `POST
/// /v1/verifications` end to end over HTTP with `clients` concurrent
/// clients, and the ratio of the two. Runs against a scratch store, with
/// the per-key rate limit off.
pub async fn verify(config: &Config, presentations: u64, clients: usize) -> anyhow::Result<()> {
    anyhow::ensure!(presentations >= 100, "--presentations must be at least 100");
    anyhow::ensure!(clients >= 1, "--clients must be at least 1");
    let scratch = Scratch::create(config).await?;
    let outcome = run_verify(&scratch, presentations, clients).await;
    scratch.finish(false).await?;
    outcome
}

async fn run_verify(scratch: &Scratch, count: u64, clients: usize) -> anyhow::Result<()> {
    use proofline_api::{ApiSettings, AppState, router, serve};
    use proofline_commands::keys::ensure_operator_key;
    use proofline_commands::signing::ServiceKey;
    use proofline_domain::did::Did;
    use proofline_domain::status_list::ListUri;
    use proofline_domain::verification::{self, ClaimPath, Profile, Request, Resolved};

    use crate::wallet::{self, DEMO_VCT, Issuer};

    let bench = scratch.open().await?;
    let store = bench.store();
    let keys = tempfile::tempdir()?;
    ensure_operator_key(&store, &keys.path().join("operator.key")).await?;
    let operator = std::fs::read_to_string(keys.path().join("operator.key"))?
        .trim()
        .to_owned();
    let settings = ApiSettings {
        requests_per_key_per_second: 0,
        ..ApiSettings::default()
    };
    let state = AppState::new(
        store.clone(),
        Arc::new(ServiceKey::generate()?),
        Arc::new(proofline_commands::sealing::SealingKey::generate()?),
        settings,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(state.clone()), async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let post = |path: &str, key: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };

    // The world: an issuer with a status list, a lender, a holder.
    let issuer = Issuer::new(ServiceKey::generate()?);
    let holder = ServiceKey::generate()?;
    let answer = post(
        "/v1/issuers",
        &operator,
        json!({"did": issuer.did.as_str(), "name": "Bench Issuer", "credential_types": [DEMO_VCT]}),
    )
    .await?;
    anyhow::ensure!(
        answer.status() == 201,
        "registering the issuer: {}",
        answer.status()
    );
    let uri = "https://status.bench.example/1";
    let now = chrono::Utc::now().timestamp();
    let answer = post(
        "/v1/status-lists",
        &operator,
        json!({"uri": uri, "token": issuer.status_list(uri, &[0; 1024], now - 10)}),
    )
    .await?;
    anyhow::ensure!(
        answer.status() == 201,
        "publishing the list: {}",
        answer.status()
    );
    let answer = post(
        "/v1/lenders",
        &operator,
        json!({"name": "Bench Lending", "contact_email": "bench@lender.example"}),
    )
    .await?;
    anyhow::ensure!(
        answer.status() == 201,
        "registering the lender: {}",
        answer.status()
    );
    let lender: serde_json::Value = answer.json().await?;
    let lender_key = lender["api_key"].as_str().unwrap_or_default().to_owned();
    let audience = lender["audience"].as_str().unwrap_or_default().to_owned();

    // One credential, presented `count` times with distinct nonces, as a
    // wallet does for each lender's request.
    let (claims, concealed) = wallet::demo_claims();
    let (issued, disclosures) = issuer.issue(
        &holder.verifying_key(),
        claims,
        concealed,
        Some((uri, 7)),
        now - 60,
    );
    let generating = ProgressBar::new(count).with_message("presenting");
    let presentations: Arc<Vec<(String, String)>> = Arc::new(
        (0..count)
            .map(|_| {
                generating.inc(1);
                let nonce = wallet::random_token();
                let presentation =
                    wallet::present_to(&holder, &issued, &disclosures, &nonce, &audience, now);
                (presentation, nonce)
            })
            .collect(),
    );
    generating.finish_and_clear();
    let size = presentations[0].0.len();
    println!(
        "bench verify: {count} presentations of {size} bytes ({} disclosures), {}",
        disclosures.len(),
        scratch.describe()
    );

    // 1. The pure verifier, one thread, trust resolved beforehand.
    let did = Did::parse(issuer.did.as_str())?;
    let registered = state.registry.issuer(&did).await?;
    anyhow::ensure!(registered.is_some(), "the issuer is not in the registry");
    let list = state.registry.status_list(&ListUri::parse(uri)?).await?;
    anyhow::ensure!(list.is_some(), "the list is not in the registry");
    let required = vec![ClaimPath::parse("address.country").map_err(anyhow::Error::msg)?];
    let timed = presentations.clone();
    let at = proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now());
    let (verified, elapsed) = tokio::task::spawn_blocking(move || {
        let trust = Resolved {
            issuer: registered.as_ref().as_ref(),
            list: list.as_ref().as_ref(),
        };
        let started = Instant::now();
        let mut verified = 0u64;
        for (presentation, nonce) in timed.iter() {
            let request = Request {
                nonce,
                audience: &audience,
                required_claims: &required,
                require_holder_binding: true,
                max_age_seconds: 300,
                now: at,
                profile: Profile::SdJwtVc,
            };
            verified += u64::from(verification::verify(presentation, &request, &trust).verified());
        }
        (verified, started.elapsed())
    })
    .await?;
    anyhow::ensure!(
        verified == count,
        "only {verified} of {count} verified in process"
    );
    let per_core = count as f64 / elapsed.as_secs_f64();
    println!(
        "verifier, one core: {per_core:.0} presentations/s ({:.1} µs each)",
        elapsed.as_secs_f64() * 1e6 / count as f64
    );

    // 2. End to end: POST /v1/verifications, `clients` at a time.
    let next = Arc::new(AtomicU64::new(0));
    let progress = ProgressBar::new(count).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} POST /v1/verifications {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, base, key, presentations, next, progress) = (
            client.clone(),
            base.clone(),
            lender_key.clone(),
            presentations.clone(),
            next.clone(),
            progress.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((presentation, nonce)) = presentations.get(i as usize) else {
                    return (latencies, failures);
                };
                let sent = Instant::now();
                let answer = client
                    .post(format!("{base}/v1/verifications"))
                    .bearer_auth(&key)
                    .json(&json!({"presentation": presentation, "nonce": nonce, "required_claims": ["address.country"]}))
                    .send()
                    .await;
                let ok = match answer {
                    Ok(answer) if answer.status() == 201 => answer
                        .json::<serde_json::Value>()
                        .await
                        .is_ok_and(|body| body["verified"] == true),
                    _ => false,
                };
                latencies.push(sent.elapsed());
                failures += u64::from(!ok);
                progress.inc(1);
            }
        }));
    }
    let mut latencies = Vec::with_capacity(count as usize);
    let mut failures = 0;
    for task in tasks {
        let (mine, failed) = task.await?;
        latencies.extend(mine);
        failures += failed;
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    anyhow::ensure!(
        failures == 0,
        "{failures} of {count} requests did not verify"
    );
    latencies.sort_unstable();
    let p =
        |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    let end_to_end = count as f64 / elapsed.as_secs_f64();
    println!(
        "POST /v1/verifications, {clients} clients: {end_to_end:.0} verifications/s (p50 {:.1} ms, p99 {:.1} ms), every one recorded",
        p(0.5),
        p(0.99)
    );
    println!(
        "ratio end to end / verifier on one core: {:.2}",
        end_to_end / per_core
    );
    let _ = stop.send(());
    let _ = server.await;
    store.close().await;
    Ok(())
}

/// `bench rebuild`: `events` verification events in a scratch store, then
/// every read model rebuilt from them twice, with the rate and whether the
/// checksums agree.
pub async fn rebuild(config: &Config, events: u64) -> anyhow::Result<()> {
    anyhow::ensure!(events >= 1, "--events must be at least 1");
    let scratch = Scratch::create(config).await?;
    let outcome = run_rebuild(&scratch, events).await;
    scratch.finish(false).await?;
    outcome
}

async fn run_rebuild(scratch: &Scratch, events: u64) -> anyhow::Result<()> {
    use proofline_domain::decider::EventSchema;
    use proofline_domain::lender::LenderId;
    use proofline_domain::verification::{Outcome, Step};
    use proofline_domain::verification_record::{Asked, VerificationId, VerificationRecord};
    use proofline_projections::db::ReadDb;
    use proofline_projections::models;
    use proofline_projections::rebuild::Scratch as RebuildScratch;

    let bench = scratch.open().await?;
    let store = bench.store();
    let (live, rebuild_scratch) = match scratch {
        Scratch::Sqlite { dir } => (
            ReadDb::sqlite(&dir.path().join("read.sqlite")).await?,
            RebuildScratch::Sqlite {
                path: dir.path().join("rebuild.sqlite"),
            },
        ),
        Scratch::Postgres { url, .. } => (
            ReadDb::postgres(url.expose_secret(), 4).await?,
            RebuildScratch::Postgres {
                url: url.expose_secret().to_owned(),
            },
        ),
    };
    let filling = ProgressBar::new(events).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} appending verifications {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..64 {
        let (store, next, filling) = (store.clone(), next.clone(), filling.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events {
                    return Ok::<(), StoreError>(());
                }
                let lender = LenderId::from_uuid(Uuid::from_u128(u128::from(i % 50) + 1));
                let nonce = Uuid::now_v7().to_string();
                let verified = !i.is_multiple_of(4);
                let outcome = Outcome {
                    failed_step: (!verified).then_some(Step::Revocation),
                    reason: (!verified).then(|| "status_revoked".to_owned()),
                    steps: Vec::new(),
                    issuer: Some("did:example:issuer".into()),
                    kid: Some("key-1".into()),
                    vct: Some("https://credentials.example/identity".into()),
                    status: None,
                    claims: None,
                    disclosed_paths: vec!["given_name".into(), "address.country".into()],
                };
                let asked = Asked {
                    lender_id: lender,
                    presentation: &nonce,
                    nonce: &nonce,
                    audience: "urn:proofline:bench",
                    required_claims: vec!["address.country".into()],
                    require_holder_binding: true,
                    at: proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now()),
                };
                let id = VerificationId::for_nonce(lender, &nonce);
                let event = VerificationRecord::new(id, &asked, &outcome)
                    .into_event()
                    .encode();
                store
                    .append(AppendRequest::new(
                        id.stream_id(),
                        ExpectedVersion::NoStream,
                        vec![NewEvent::new(
                            event.event_type,
                            event.schema_version,
                            event.data,
                        )],
                    ))
                    .await?;
                filling.inc(1);
            }
        }));
    }
    for writer in writers {
        writer.await??;
    }
    filling.finish_and_clear();
    println!(
        "bench rebuild: {events} verification events ({})",
        scratch.describe()
    );
    let projections = models::all();
    let first =
        crate::rebuild::rebuild_all(store.clone(), &live, &rebuild_scratch, &projections).await?;
    let second =
        crate::rebuild::rebuild_all(store.clone(), &live, &rebuild_scratch, &projections).await?;
    let mut same = true;
    for (a, b) in first.iter().zip(&second) {
        same &= a.checksum == b.checksum && a.rows == b.rows;
    }
    let (all_events, seconds): (u64, f64) =
        first.iter().chain(&second).fold((0, 0.0), |(n, s), r| {
            (n + r.events, s + r.elapsed.as_secs_f64())
        });
    println!(
        "every model rebuilt twice: {:.0} events/s per model on average; checksums {}",
        all_events as f64 / seconds.max(1e-9),
        if same { "identical" } else { "DIFFER" }
    );
    anyhow::ensure!(same, "two rebuilds of the same log differ");
    live.close().await;
    store.close().await;
    Ok(())
}

/// `bench lag`: verification events appended at `rate` per second for
/// `seconds`, with the projectors running on the bus this configuration
/// selects; prints how long each event took from its append returning to
/// the verifications read model having applied it.
///
/// Lag is measured from the call to append (so it includes the append).
pub async fn lag(config: &Config, rate: u64, seconds: u64) -> anyhow::Result<()> {
    anyhow::ensure!((1..=100_000).contains(&rate), "--rate must be 1 to 100000");
    anyhow::ensure!(
        (1..=3_600).contains(&seconds),
        "--seconds must be 1 to 3600"
    );
    let scratch = Scratch::create(config).await?;
    let outcome = run_lag(config, &scratch, rate, seconds).await;
    scratch.finish(false).await?;
    outcome
}

async fn run_lag(
    config: &Config,
    scratch: &Scratch,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<()> {
    use std::collections::HashMap;

    use proofline_projections::db::ReadDb;
    use proofline_projections::models::{self, Projection};
    use proofline_projections::read_side::ReadSide;

    let bench = scratch.open().await?;
    let store = bench.store();
    let read = match scratch {
        Scratch::Sqlite { dir } => ReadDb::sqlite(&dir.path().join("read.sqlite")).await?,
        Scratch::Postgres { url, .. } => ReadDb::postgres(url.expose_secret(), 4).await?,
    };
    let bus = crate::bus::start_for_bench(config, store.clone()).await?;
    let projections: Vec<Arc<dyn Projection>> = vec![Arc::new(models::Verifications)];
    let side = ReadSide::start_these(
        read.clone(),
        store.clone(),
        bus.subscriptions(store.clone()),
        projections,
    )
    .await?;
    let mut applied = side.positions[0].1.clone();
    println!(
        "bench lag: {rate} verification events/s for {seconds} s, projector on {} ({})",
        bus.describe(),
        scratch.describe()
    );

    let appended: Arc<std::sync::Mutex<HashMap<u64, Instant>>> = Arc::default();
    let total = rate * seconds;
    let writer = {
        let appended = appended.clone();
        steady_verifications(
            store.clone(),
            rate,
            total,
            |n| Uuid::from_u128(u128::from(n % 10) + 1),
            move |_, position, started| {
                appended
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(position, started);
            },
        )
    };
    // When each position was applied; compared with when its append was
    // called once both are known.
    let mut applied_at: HashMap<u64, Instant> = HashMap::with_capacity(total as usize);
    let mut seen = 0u64;
    let deadline = Instant::now() + Duration::from_secs(seconds + 60);
    let mut writer = Some(writer);
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(200), applied.changed()).await;
        let now = Instant::now();
        let reached = *applied.borrow();
        for position in seen + 1..=reached {
            applied_at.insert(position, now);
        }
        seen = seen.max(reached);
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            writer.take().expect("checked").await??;
        }
        let head = store.head().await?.map_or(0, |h| h.position);
        if writer.is_none() && seen >= head {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the projector reached {seen} of {head} in time"
        );
    }
    side.stop().await;
    bus.stop().await;
    let appended = appended.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut lags: Vec<Duration> = appended
        .iter()
        .filter_map(|(position, returned)| {
            applied_at
                .get(position)
                .map(|applied| applied.saturating_duration_since(*returned))
        })
        .collect();
    anyhow::ensure!(
        lags.len() as u64 == total,
        "only {} of {total} events were projected",
        lags.len()
    );
    lags.sort_unstable();
    let p = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "projection lag (append called → read model applied): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {total} events",
        p(0.5),
        p(0.9),
        p(0.99),
        p(1.0)
    );
    read.close().await;
    store.close().await;
    Ok(())
}

/// Appends `total` verification events (one new stream each) at `rate`
/// per second, not waiting for an append before the next tick; `lender`
/// picks the n-th event's lender, and `record` hears of each stored event
/// with its id, position and when its append was called.
fn steady_verifications(
    store: Arc<dyn EventStore>,
    rate: u64,
    total: u64,
    lender: impl Fn(u64) -> Uuid + Send + 'static,
    record: impl Fn(Uuid, u64, Instant) + Clone + Send + 'static,
) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut pending = futures::stream::FuturesUnordered::new();
        for n in 0..total {
            tick.tick().await;
            let (store, record) = (store.clone(), record.clone());
            let lender = lender(n);
            pending.push(async move {
                let id = Uuid::now_v7();
                let event = NewEvent::new("PresentationVerified", 1, lag_event(id, lender));
                let event_id = event.event_id;
                let started = Instant::now();
                let outcome = store
                    .append(AppendRequest::new(
                        StreamId::new("verification", id).expect("a valid id"),
                        ExpectedVersion::NoStream,
                        vec![event],
                    ))
                    .await?;
                record(event_id, outcome.last_position, started);
                Ok::<(), StoreError>(())
            });
            while let std::task::Poll::Ready(Some(done)) = futures::poll!(pending.next()) {
                done?;
            }
        }
        while let Some(done) = pending.next().await {
            done?;
        }
        Ok(())
    })
}

/// A verification event's data, as the verifications read model reads it.
fn lag_event(id: Uuid, lender: Uuid) -> serde_json::Value {
    json!({
        "verification_id": id,
        "lender_id": lender,
        "verified": true,
        "failed_step": null,
        "reason": null,
        "steps": [],
        "issuer": "did:example:issuer",
        "kid": "key-1",
        "vct": "https://credentials.example/identity",
        "disclosed_claims": ["given_name"],
        "presentation_sha256": "0".repeat(64),
        "nonce_sha256": "1".repeat(64),
        "audience": "urn:proofline:bench",
        "required_claims": [],
        "require_holder_binding": true,
        "status": null,
        "verified_at": proofline_domain::log::Timestamp::from_datetime(chrono::Utc::now()),
    })
}

/// `bench webhooks`: verification events of `lenders` lenders, each with a
/// webhook to a local receiver, appended at `rate` per second for `seconds`,
/// with the deliveries projector and the webhook consumer running on the
/// bus this configuration selects. Prints the latency from the append call
/// to the receiver holding the signed request.
pub async fn webhooks(
    config: &Config,
    rate: u64,
    seconds: u64,
    lenders: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=20_000).contains(&rate), "--rate must be 1 to 20000");
    anyhow::ensure!(
        (1..=3_600).contains(&seconds),
        "--seconds must be 1 to 3600"
    );
    anyhow::ensure!(
        (1..=1_000).contains(&lenders),
        "--lenders must be 1 to 1000"
    );
    let scratch = Scratch::create(config).await?;
    let outcome = run_webhooks(config, &scratch, rate, seconds, lenders).await;
    scratch.finish(false).await?;
    outcome
}

async fn run_webhooks(
    config: &Config,
    scratch: &Scratch,
    rate: u64,
    seconds: u64,
    lenders: usize,
) -> anyhow::Result<()> {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use proofline_commands::handler::CommandContext;
    use proofline_commands::lenders::{NewKey, Registration};
    use proofline_domain::values::{ContactEmail, Name, WebhookUrl};
    use proofline_projections::db::ReadDb;
    use proofline_projections::read_side::ReadSide;
    use proofline_projections::webhooks::client::ClientOptions;
    use proofline_projections::webhooks::{ConsumerOptions, WebhookConsumer, WebhookDeliveries};

    let bench = scratch.open().await?;
    let store = bench.store();
    let read = match scratch {
        Scratch::Sqlite { dir } => ReadDb::sqlite(&dir.path().join("read.sqlite")).await?,
        Scratch::Postgres { url, .. } => ReadDb::postgres(url.expose_secret(), 8).await?,
    };

    // The receiver: when each webhook-id arrived.
    let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let received = received.clone();
                async move {
                    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                        received
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(id.to_owned())
                            .or_insert_with(Instant::now);
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let (stop_receiver, receiver_stopped) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = receiver_stopped.await;
            })
            .await
    });

    // Lenders with webhooks.
    let allowed: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse()?];
    let sealing_key = Arc::new(proofline_commands::sealing::SealingKey::generate()?);
    let context = CommandContext::now(Metadata::default());
    let mut lender_ids = Vec::with_capacity(lenders);
    for n in 0..lenders {
        let registration = Registration {
            name: Name::parse("name", &format!("Bench Lender {n}"))?,
            contact_email: ContactEmail::parse(&format!("bench-{n}@lenders.example"))?,
            audiences: None,
        };
        let key = NewKey::generate().await?;
        let done = proofline_commands::lenders::register(
            store.as_ref(),
            &context,
            &registration,
            &key,
            &|_| Ok(Vec::new()),
        )
        .await?;
        let lender = done.value.lender_id;
        let secret = proofline_commands::webhooks::generate_secret()?;
        proofline_commands::webhooks::configure(
            store.as_ref(),
            &context,
            lender,
            WebhookUrl::parse(&url)?,
            &allowed,
            &sealing_key,
            &secret,
        )
        .await?;
        lender_ids.push(lender.as_uuid());
    }

    let bus = crate::bus::start_for_bench(config, store.clone()).await?;
    let side = ReadSide::start_these(
        read.clone(),
        store.clone(),
        bus.subscriptions(store.clone()),
        vec![Arc::new(WebhookDeliveries)],
    )
    .await?;
    let consumer = WebhookConsumer::new(
        store.clone(),
        read.clone(),
        sealing_key,
        ConsumerOptions {
            client: ClientOptions {
                allowed_networks: allowed,
                ..ClientOptions::default()
            },
            ..ConsumerOptions::default()
        },
    )?;
    let (stop_consumer, mut consumer_stopped) = tokio::sync::watch::channel(false);
    let wake = side.positions[0].1.clone();
    let consumer = tokio::spawn(async move {
        consumer
            .run(Some(wake), async move {
                let _ = consumer_stopped.wait_for(|s| *s).await;
            })
            .await
    });
    println!(
        "bench webhooks: {rate} verification events/s for {seconds} s over {lenders} lenders, \
         consumer on {} ({})",
        bus.describe(),
        scratch.describe()
    );

    let total = rate * seconds;
    let appended: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} delivered {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let writer = {
        let appended = appended.clone();
        let lender_ids = lender_ids.clone();
        steady_verifications(
            store.clone(),
            rate,
            total,
            move |n| lender_ids[(n as usize) % lender_ids.len()],
            move |event_id, _, started| {
                appended
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(event_id.to_string(), started);
            },
        )
    };
    let deadline = Instant::now() + Duration::from_secs(seconds + 120);
    let mut writer = Some(writer);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = received.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        progress.set_position(got);
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            writer.take().expect("checked").await??;
        }
        if writer.is_none() && got >= total {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {got} of {total} webhooks arrived in time"
        );
    }
    progress.finish_and_clear();
    let _ = stop_consumer.send(true);
    let _ = consumer.await;
    side.stop().await;
    bus.stop().await;
    let _ = stop_receiver.send(());
    let _ = receiver.await;

    let appended = appended.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let received = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut latencies: Vec<Duration> = appended
        .iter()
        .filter_map(|(id, at)| received.get(id).map(|r| r.saturating_duration_since(*at)))
        .collect();
    anyhow::ensure!(
        latencies.len() as u64 == total,
        "only {} of {total} webhooks arrived",
        latencies.len()
    );
    latencies.sort_unstable();
    let p =
        |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "webhook latency (append called → receiver has it): p50 {:.1} ms, p90 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms over {total} deliveries",
        p(0.5),
        p(0.9),
        p(0.99),
        p(1.0)
    );
    read.close().await;
    store.close().await;
    Ok(())
}
