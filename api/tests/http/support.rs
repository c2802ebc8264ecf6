//! A Proofline per test, served on 127.0.0.1:0 over real HTTP, on a fresh
//! SQLite file or a fresh Postgres database.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use proofline_api::{ApiSettings, AppState, router, serve, spawn_background};
use proofline_commands::handler::CommandContext;
use proofline_commands::keys::ensure_operator_key;
use proofline_commands::migrate;
use proofline_commands::oid4vp::FlowSettings;
use proofline_commands::oid4vp::identity::VerifierIdentity;
use proofline_commands::service_keys;
use proofline_commands::signing::ServiceKey;
use proofline_commands::store::EventStore;
use proofline_commands::store::sqlite::{self as sqlite_store, SqliteEventStore};
use proofline_domain::log::{Envelope, Metadata};
use proofline_projections::db::ReadDb;
use proofline_projections::read_side::{ReadSide, store_subscriptions};
use reqwest::{Client, Method, Response};
use serde_json::Value;
use tokio::sync::oneshot;

/// Every log line of this test process, for the tests that prove no secret
/// is ever logged. Everything is captured, at TRACE for Proofline's crates.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buffer.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace,hyper=info,h2=info,reqwest=info,tokio=info,runtime=info")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        buffer
    });
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get().expect("logs are captured").lock().unwrap()).into_owned()
}

enum Database {
    Sqlite {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    #[cfg(feature = "service-tests")]
    Postgres(proofline_testkit::TestDatabase),
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub operator_key: String,
    pub store: Arc<dyn EventStore>,
    pub state: AppState,
    database: Database,
    _read_side: Option<ReadSide>,
    stop: Option<oneshot::Sender<()>>,
    /// Secrets and claim values answers showed (see `remember_secrets`).
    secrets_shown: Arc<std::sync::Mutex<Vec<String>>>,
    _key_dir: tempfile::TempDir,
}

pub async fn sqlite_app(settings: ApiSettings) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let pool = sqlite_store::connect_pool(&path).await.unwrap();
    migrate::apply_sqlite(&pool).await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(pool, &path).await.unwrap());
    start(store, Database::Sqlite { _dir: dir, path }, settings, true).await
}

#[cfg(feature = "service-tests")]
pub async fn postgres_app(settings: ApiSettings) -> TestApp {
    use proofline_commands::store::postgres::{self as pg_store, PgEventStore, PgStoreOptions};
    let database = proofline_testkit::TestDatabase::create().await;
    let url = secrecy::SecretString::from(database.url().to_owned());
    let pool = pg_store::connect_pool(&url, &PgStoreOptions::default())
        .await
        .unwrap();
    migrate::apply_postgres(&pool).await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::open(pool).await.unwrap());
    start(store, Database::Postgres(database), settings, true).await
}

/// Starts the API; with `projectors`, also the read models' projectors
/// (tailing the store), which only one instance may run.
async fn start(
    store: Arc<dyn EventStore>,
    database: Database,
    settings: ApiSettings,
    projectors: bool,
) -> TestApp {
    capture_logs();
    let key_dir = tempfile::tempdir().unwrap();
    let operator_file = key_dir.path().join("operator.key");
    ensure_operator_key(&store, &operator_file).await.unwrap();
    // A second instance finds the key registered already and writes no file.
    let operator_key = std::fs::read_to_string(&operator_file)
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    let service_key = Arc::new(ServiceKey::generate().unwrap());
    let context = CommandContext::now(Metadata::default());
    service_keys::activate(store.as_ref(), &service_key, &context)
        .await
        .unwrap();
    let sealing_key = Arc::new(proofline_commands::sealing::SealingKey::generate().unwrap());
    let mut state = AppState::new(store.clone(), service_key, sealing_key, settings);
    let read_side = if projectors {
        let db = match &database {
            Database::Sqlite { path, .. } => ReadDb::sqlite(&path.with_file_name("read.sqlite"))
                .await
                .unwrap(),
            #[cfg(feature = "service-tests")]
            Database::Postgres(database) => ReadDb::postgres(database.url(), 4).await.unwrap(),
        };
        let side = ReadSide::start(
            db.clone(),
            store.clone(),
            store_subscriptions(store.clone()),
        )
        .await
        .unwrap();
        state = state.with_read_models(db);
        Some(side)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Wallets reach this instance at its own address.
    let state = state.with_oid4vp(
        VerifierIdentity::did_key(ServiceKey::generate().unwrap()),
        FlowSettings {
            public_url: base.parse().unwrap(),
            result_ttl_seconds: 600,
        },
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(state.clone());
    let background = spawn_background(&state);
    tokio::spawn(async move {
        serve(listener, app, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        background.abort();
    });
    proofline_projections::webhooks::client::install_crypto_provider();
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestApp {
        base,
        client,
        operator_key,
        store,
        state,
        database,
        _read_side: read_side,
        stop: Some(stop),
        secrets_shown: Arc::default(),
        _key_dir: key_dir,
    }
}

impl TestApp {
    /// Another instance of the service on the same database, as a second
    /// process would be: its own store, cache and server.
    pub async fn second_instance(&self, settings: ApiSettings) -> TestApp {
        match &self.database {
            Database::Sqlite { path, .. } => {
                let pool = sqlite_store::connect_pool(path).await.unwrap();
                let store: Arc<dyn EventStore> =
                    Arc::new(SqliteEventStore::open(pool, path).await.unwrap());
                let dir = tempfile::tempdir().unwrap();
                let mut app = start(
                    store,
                    Database::Sqlite {
                        path: path.clone(),
                        _dir: dir,
                    },
                    settings,
                    false,
                )
                .await;
                app.operator_key = self.operator_key.clone();
                app
            }
            #[cfg(feature = "service-tests")]
            Database::Postgres(database) => {
                use proofline_commands::store::postgres::{
                    self as pg_store, PgEventStore, PgStoreOptions,
                };
                let url = secrecy::SecretString::from(database.url().to_owned());
                let pool = pg_store::connect_pool(&url, &PgStoreOptions::default())
                    .await
                    .unwrap();
                let store: Arc<dyn EventStore> = Arc::new(PgEventStore::open(pool).await.unwrap());
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("unused");
                let mut app =
                    start(store, Database::Sqlite { _dir: dir, path }, settings, false).await;
                app.operator_key = self.operator_key.clone();
                app
            }
        }
    }
}

/// A webhook consumer running beside a test app, stopped when dropped.
pub struct Consumer {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Consumer {
    /// Stops it after the requests in flight, as a shutdown does.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl TestApp {
    /// Starts the webhook consumer on this app's store and read models.
    pub fn start_webhooks(
        &self,
        options: proofline_projections::webhooks::ConsumerOptions,
    ) -> Consumer {
        let read = self
            .state
            .read
            .clone()
            .expect("the app runs its projectors");
        let consumer = proofline_projections::webhooks::WebhookConsumer::new(
            self.store.clone(),
            read,
            self.state.webhook_sealing_key.clone(),
            options,
        )
        .unwrap();
        let wake = self._read_side.as_ref().and_then(|side| {
            side.positions
                .iter()
                .find(|(name, _)| *name == "webhook_deliveries")
                .map(|(_, position)| position.clone())
        });
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            consumer
                .run(wake, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
        Consumer {
            stop: Some(stop),
            task: Some(task),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_no_secret_in_the_log();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    async fn read(response: Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn is_problem(&self) -> bool {
        self.headers
            .get("content-type")
            .is_some_and(|v| v == "application/problem+json")
    }
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = Answer::read(request.send().await.unwrap()).await;
        self.remember_secrets(&answer.body);
        answer
    }

    /// Notes what an answer shows once or to its caller only: API keys,
    /// webhook secrets, disclosed claim values. None may reach the log.
    fn remember_secrets(&self, body: &Value) {
        fn leaves(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::String(s) if s.chars().count() >= 4 => out.push(s.clone()),
                Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
                Value::Object(members) => members.values().for_each(|v| leaves(v, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        // An API key's public prefix is in the log by design; its secret
        // part (after `pl_<prefix>_`) must not be, nor a webhook secret's.
        if let Some(key) = body["api_key"].as_str() {
            found.push(key.splitn(3, '_').nth(2).unwrap_or(key).to_owned());
        }
        if let Some(secret) = body["secret"].as_str() {
            found.push(secret.trim_start_matches("whsec_").to_owned());
        }
        leaves(&body["disclosed_claims"], &mut found);
        // A presentation request's answer holds them per presentation.
        for presented in body["presentations"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.values())
            .filter_map(Value::as_array)
            .flatten()
        {
            leaves(&presented["disclosed_claims"], &mut found);
        }
        self.secrets_shown.lock().unwrap().extend(found);
    }

    /// Fails the test if anything an answer showed as a secret or a claim
    /// value is in the log. Runs when the app is dropped, so every case of
    /// the suite is checked.
    fn assert_no_secret_in_the_log(&self) {
        let shown = self.secrets_shown.lock().unwrap().clone();
        let events = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(self.all_events())
        });
        // Every event has the schema /v1/schemas publishes: its members are
        // the schema's properties, the required ones all present.
        let schemas = proofline_commands::schemas::events();
        for event in &events {
            let category = event.stream_id.category();
            if category == "audit" {
                // The events case appends test events of its own.
                continue;
            }
            let schema = &schemas
                .iter()
                .find(|e| e.category.as_str() == category && e.name == event.event_type)
                .unwrap_or_else(|| panic!("no schema for {category} {}", event.event_type))
                .data;
            let members = event.data.as_object().expect("data is an object");
            if let Some(properties) = schema["properties"].as_object() {
                for name in members.keys() {
                    assert!(
                        properties.contains_key(name),
                        "{} has {name}, which its schema does not",
                        event.event_type
                    );
                }
            }
            for name in schema["required"].as_array().into_iter().flatten() {
                assert!(
                    members.contains_key(name.as_str().unwrap()),
                    "{} lacks {name}",
                    event.event_type
                );
            }
        }
        let log = serde_json::to_string(&events).unwrap();
        for secret in shown {
            assert!(
                !log.contains(&secret),
                "the log holds {secret:?}, which an answer showed as a secret or claim value"
            );
        }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Answer {
        self.call(Method::GET, path, key, None, &[]).await
    }

    /// A list of a read model as of the log's head now (`min_position`):
    /// what a client that passes its last command's position reads.
    pub async fn get_current(&self, path: &str, key: Option<&str>) -> Answer {
        let head = self.store.head().await.unwrap().map_or(0, |h| h.position);
        let join = if path.contains('?') { '&' } else { '?' };
        self.get(&format!("{path}{join}min_position={head}"), key)
            .await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Answer {
        self.call(Method::POST, path, key, Some(body), &[]).await
    }

    /// Registers a lender as the operator; its id and key.
    pub async fn register_lender(&self, email: &str) -> (String, String) {
        let answer = self
            .post(
                "/v1/lenders",
                Some(&self.operator_key),
                &serde_json::json!({"name": "Acme Lending", "contact_email": email}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        (
            answer.body["lender_id"].as_str().unwrap().to_owned(),
            answer.body["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// Registers an auditor as the operator; its key.
    pub async fn register_auditor(&self, name: &str) -> String {
        let answer = self
            .post(
                "/v1/auditors",
                Some(&self.operator_key),
                &serde_json::json!({"name": name}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.body["api_key"].as_str().unwrap().to_owned()
    }

    pub async fn all_events(&self) -> Vec<Envelope> {
        let mut events = Vec::new();
        loop {
            let after = events.last().map_or(0, |e: &Envelope| e.position);
            let page = self.store.read_all(after, 1_000).await.unwrap();
            if page.is_empty() {
                return events;
            }
            events.extend(page);
        }
    }

    /// Takes the log's writer lock behind the store's back (a session
    /// advisory lock on Postgres, `BEGIN IMMEDIATE` on SQLite) and holds it
    /// for `hold`: every append waits meanwhile. Returns once it is held;
    /// the handle ends when it is released.
    pub async fn hold_writer_lock(&self, hold: Duration) -> tokio::task::JoinHandle<()> {
        let (held_tx, held_rx) = oneshot::channel::<()>();
        let task = match &self.database {
            Database::Sqlite { path, .. } => {
                let path = path.clone();
                tokio::spawn(async move {
                    use sqlx::Connection;
                    let mut conn =
                        sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                            .await
                            .unwrap();
                    sqlx::query("BEGIN IMMEDIATE")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    let _ = held_tx.send(());
                    tokio::time::sleep(hold).await;
                    sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
                })
            }
            #[cfg(feature = "service-tests")]
            Database::Postgres(database) => {
                let url = database.url().to_owned();
                tokio::spawn(async move {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                    sqlx::query("SELECT pg_advisory_lock(5787775673024923982)")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    let _ = held_tx.send(());
                    tokio::time::sleep(hold).await;
                    sqlx::query("SELECT pg_advisory_unlock(5787775673024923982)")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                })
            }
        };
        held_rx.await.expect("the lock is taken");
        task
    }

    /// Every row of the secrets table, read behind the store's back.
    pub async fn raw_secrets(&self) -> Vec<String> {
        let sql = "SELECT id || ' ' || kind || ' ' || stream_id || ' ' || material FROM secrets";
        match &self.database {
            Database::Sqlite { path, .. } => {
                let pool = sqlite_store::connect_pool(path).await.unwrap();
                let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
            #[cfg(feature = "service-tests")]
            Database::Postgres(database) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(database.url()).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
            }
        }
    }
}
