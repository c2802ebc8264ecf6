//! The command line. With no subcommand, `proofline` serves.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "proofline",
    version,
    about = "Event-sourced verification of SD-JWT credentials for lenders",
    long_about = "Event-sourced verification of SD-JWT credentials for lenders.\n\n\
        Configuration comes from the environment (see .env.sample). Without \
        DATABASE_URL, Proofline runs embedded on SQLite under PROOFLINE_DATA_DIR."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum WalletAction {
    /// Fetch the request of LINK, check it, present what its DCQL query
    /// asks of the credentials, post the response; prints the answer as JSON
    Present {
        /// The `openid4vp://` link
        link: String,
        /// A credential: the issued SD-JWT with every Disclosure (`<jwt>~<d>~…~`)
        #[arg(long = "credential", required = true)]
        credentials: Vec<PathBuf>,
        /// The holder key of each credential, in order (PKCS#8 PEM, Ed25519 or P-256)
        #[arg(long = "holder-key", required = true)]
        holder_keys: Vec<PathBuf>,
        /// PEM trust anchors for an X.509 client_id
        #[arg(long)]
        trust_anchors: Option<PathBuf>,
        /// Answer access_denied instead
        #[arg(long)]
        decline: bool,
        /// Leave the Key Binding JWT out
        #[arg(long)]
        no_key_binding: bool,
        /// Bind to this nonce instead of the request's
        #[arg(long)]
        nonce: Option<String>,
        /// Bind to this audience instead of the client_id
        #[arg(long)]
        audience: Option<String>,
        /// Post this vp_token (JSON) instead of choosing one
        #[arg(long)]
        vp_token: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default)
    Serve(ServeArgs),
    /// Apply pending database migrations and exit
    Migrate,
    /// Write a new Ed25519 service signing key (PKCS#8 PEM, mode 0600)
    Keygen {
        /// Where to write the key; an existing file is never overwritten
        #[arg(long)]
        out: PathBuf,
    },
    /// Register a demo issuer and lender on a running server, issue a
    /// credential, present it, and print the curl that verifies it
    Demo {
        /// The server's base URL
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Also run an OpenID4VP flow: the lender's link, a QR code, the
        /// CLI's wallet answering it, the lender's result
        #[arg(long)]
        oid4vp: bool,
        /// Serve the demo issuer's did:web document and status list on a
        /// local https port, with a CA it keeps under
        /// `<data dir>/demo-issuer/`, and verify with the keys and list
        /// the service fetches from there
        #[arg(long)]
        serve_issuer: bool,
        /// Where the demo issuer's site listens (with --serve-issuer)
        #[arg(long, default_value = "127.0.0.1:8443", requires = "serve_issuer")]
        issuer_bind: std::net::SocketAddr,
        /// Exit once the outcome is printed instead of serving the issuer
        /// until Ctrl-C (with --serve-issuer)
        #[arg(long, requires = "serve_issuer")]
        once: bool,
    },
    /// A holder's wallet: answer an `openid4vp://` link
    Wallet {
        #[command(subcommand)]
        action: WalletAction,
    },
    /// Replay the log into fresh read-model tables and swap them in (all
    /// models, or the one named), printing a checksum of each
    Rebuild {
        /// verifications, daily_stats, lenders, issuers or
        /// webhook_deliveries; or `tree`: the log's Merkle tree hashed again
        /// from the events and compared with the stored one
        name: Option<String>,
    },
    /// Export the log as JSON Lines, or verify such a file offline
    Log {
        #[command(subcommand)]
        which: LogCommand,
    },
    /// Measure the service and print figures
    Bench {
        /// Print the figures as one JSON object instead of lines
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Write the log's envelopes, exactly as stored, one JSON object per
    /// line: from the store this configuration names, or from a server's
    /// API with an auditor key (`--url`; the key in PROOFLINE_API_KEY or
    /// `--key-file`, never on the command line)
    Export {
        /// Only events after this position
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// The file to write (default: standard output)
        #[arg(long)]
        out: Option<PathBuf>,
        /// A server's base URL, to export through GET /v1/events
        #[arg(long)]
        url: Option<String>,
        /// A file holding the API key for `--url`
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Load an exported file, checked first as `verify` does, into the
    /// (empty) store this configuration names: for audits and replays
    Import {
        /// The JSON Lines file
        file: PathBuf,
    },
    /// Check an exported file offline: every hash recomputed from the
    /// canonical bytes, positions gapless, every prev_hash linked. Exits 1
    /// naming the first bad position and what happened there; 3 when it
    /// is intact but its checkpoints were checked only with keys it records
    /// itself (no --public-key)
    Verify {
        /// The JSON Lines file
        file: PathBuf,
        /// A service Ed25519 public key (base64url, as /v1/log/public-key
        /// shows it, fetched apart from the file) to check checkpoints
        /// with; repeat it for earlier keys (`previous`): each checkpoint is
        /// checked with the key of its kid. Without any, the keys the file
        /// itself records are used and the result is integrity only: exit
        /// status 3 (base64url may begin with '-')
        #[arg(long, allow_hyphen_values = true)]
        public_key: Vec<String>,
    },
    /// Re-run the verifier on a recorded verification from the log alone:
    /// the log checked first as `verify` does, the issuer and status list
    /// rebuilt from the events before the verification and checked against
    /// what its record names, the presentation checked against the
    /// record's digests. Prints the recorded and the replayed outcome and
    /// the trust used; exits 0 when the replay makes the same record, 1
    /// otherwise. Several ids, each with its `--presentation` in the same
    /// order, are replayed from one reading of the log
    ReplayVerification(ReplayArgs),
    /// Check a verification's evidence (GET /v1/verifications/{id}/evidence)
    /// offline: the envelope hashes to its leaf, the inclusion proof reaches
    /// the root the checkpoint note signs, the note and the receipt verify
    /// with the log's key, and the receipt is this envelope's. Exits 1
    /// naming what failed
    VerifyEvidence {
        /// The evidence JSON document
        file: PathBuf,
        /// The log's Ed25519 public key: base64url (`public_key` of
        /// /v1/log/public-key) or its `note_vkey`, fetched apart from the
        /// evidence
        #[arg(long, allow_hyphen_values = true)]
        public_key: String,
    },
    /// Check that the log only grew since a checkpoint note kept earlier:
    /// fetches the latest checkpoint (/tlog/checkpoint) and a consistency
    /// proof, and says "grew from N to M, consistent", or exits 1 with what
    /// failed
    Consistency {
        /// The server's base URL
        #[arg(long)]
        url: String,
        /// A file holding an auditor's (or the operator's) API key; else
        /// PROOFLINE_API_KEY
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The checkpoint note kept from before (a file)
        #[arg(long)]
        since: PathBuf,
        /// The log's key (base64url or note_vkey); default: the one of the
        /// server's published keys that signed the kept note
        #[arg(long, allow_hyphen_values = true)]
        public_key: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The verification's id (`verification_id`)
    #[arg(required = true)]
    pub ids: Vec<uuid::Uuid>,
    /// A file holding the presentation as the lender sent it; one per id,
    /// in the same order
    #[arg(long, required = true)]
    pub presentation: Vec<PathBuf>,
    /// An exported log (JSON Lines, as `log export` writes it)
    #[arg(long, required_unless_present = "url", conflicts_with = "url")]
    pub log: Option<PathBuf>,
    /// A server's base URL, to read its log through GET /v1/events with an
    /// auditor's (or the operator's) key: PROOFLINE_API_KEY or `--key-file`
    #[arg(long)]
    pub url: Option<String>,
    /// A file holding the API key for `--url`
    #[arg(long, requires = "url")]
    pub key_file: Option<PathBuf>,
    /// The nonce the lender gave (default: the Key Binding JWT's; needed
    /// for a presentation without one); with one id only
    #[arg(long)]
    pub nonce: Option<String>,
    /// How old a Key Binding JWT may have been, in seconds (the service's
    /// PROOFLINE_PRESENTATION_MAX_AGE_SECONDS)
    #[arg(long, default_value_t = proofline_domain::verification::DEFAULT_MAX_AGE_SECONDS)]
    pub max_age: u64,
    /// Print one JSON object (a line per id) instead
    #[arg(long)]
    pub json: bool,
    /// A service Ed25519 public key (base64url, from /v1/log/public-key,
    /// fetched apart from the log) its checkpoints must be signed with;
    /// repeat it for earlier keys. Without one, or when no signed checkpoint
    /// covers the verification yet, a same outcome exits 3: the log then
    /// proves only its own integrity
    #[arg(long, allow_hyphen_values = true)]
    pub public_key: Vec<String>,
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Refuse to start when the schema is behind instead of migrating it
    #[arg(long)]
    pub no_migrate: bool,
    /// What this process does; roles scale out as separate processes
    /// against one Postgres (and one NATS)
    #[arg(long, value_enum, default_value_t = Role::All)]
    pub role: Role,
}

/// The parts of the service a process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Everything below, in one process
    #[default]
    All,
    /// The HTTP API (commands and queries)
    Api,
    /// Publishes the log to NATS JetStream (one at a time; others wait)
    Relay,
    /// Keeps the read models
    Projector,
    /// Delivers webhooks
    Webhooks,
}

impl Role {
    /// As logs and `--role` say it.
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Relay => "relay",
            Role::Projector => "projector",
            Role::Webhooks => "webhooks",
        }
    }

    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    pub fn projects(self) -> bool {
        matches!(self, Role::All | Role::Projector)
    }

    pub fn delivers_webhooks(self) -> bool {
        matches!(self, Role::All | Role::Webhooks)
    }

    pub fn relays(self) -> bool {
        matches!(self, Role::All | Role::Relay)
    }
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Concurrent appends through the store (one event per new stream), then
    /// the same rows imported in ordered batches into a second store (the
    /// ceiling of one ordered writer), and the ratio. Runs in scratch
    /// databases (Postgres) or files (embedded), dropped after.
    Append {
        /// Concurrent appending tasks
        #[arg(long, default_value_t = 32)]
        writers: usize,
        /// Events in all
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Rows per transaction of the ordered measurement
        #[arg(long, default_value_t = 500)]
        raw_batch: usize,
        /// Rounds of the store alone and with the tree follower, alternated
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Keep the scratch database or file
        #[arg(long)]
        keep: bool,
    },
    /// Steady-state cost of authentication with the key cache, next to the
    /// cost of a whole authenticated request (in process, no network), and
    /// how many argon2 verifications all of it took.
    Auth {
        /// Authentications to time (and a tenth as many whole requests)
        #[arg(long, default_value_t = 200_000)]
        requests: u64,
    },
    /// Fill a scratch store with verification events, rebuild every read
    /// model from it twice, print the rate and compare the checksums.
    Rebuild {
        /// Verification events to append first
        #[arg(long, default_value_t = 100_000)]
        events: u64,
    },
    /// Projection lag: verification events appended at a steady rate with
    /// the verifications projector running on the configured bus (NATS
    /// when NATS_URL is set, else the store); prints p50/p99 from append
    /// to read model.
    Lag {
        /// Events per second
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// How long to append
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Webhook latency: verification events of lenders with webhooks to a
    /// local receiver, appended at a steady rate, delivered by the webhook
    /// consumer on the configured bus; prints p50/p99 from append to
    /// receipt. Runs in a scratch database or file.
    Webhooks {
        /// Events per second
        #[arg(long, default_value_t = 500)]
        rate: u64,
        /// How long to append
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Lenders the events are spread over
        #[arg(long, default_value_t = 10)]
        lenders: usize,
    },
    /// Verification as a deployment runs it: `proofline serve` (every
    /// role) and, with NATS_URL, a nats-server of its own as processes; the
    /// load (each presentation used once) from a third: the peak rate, the
    /// same with fetched trust, and half the peak in an open loop, each with
    /// p50/p99/p99.9 and CPU per verification by process; the service's
    /// peak RSS; the pure verifier on one core, and the ratio. Runs in a
    /// scratch database or directory.
    Verify {
        /// Presentations of the peak load (and half as many for each of the
        /// two others), each with its own nonce
        #[arg(long, default_value_t = 20_000)]
        presentations: u64,
        /// Concurrent HTTP clients
        #[arg(long, default_value_t = 64)]
        clients: usize,
    },
    /// OpenID4VP flows end to end (create, fetch, post, read) from a second
    /// process, against direct verifications measured in the same run;
    /// flows/s and the p99 of the wallet's POST. Runs in a scratch database
    /// or file.
    Oid4vp {
        /// Flows (and as many direct verifications)
        #[arg(long, default_value_t = 2_000)]
        flows: u64,
        /// Concurrent clients of the load process
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
    /// The transparency log at scale: a log of EVENTS written and its
    /// Merkle tree hashed (both timed), then from a second process
    /// inclusion proofs (p50/p99 from one client, the rate from CLIENTS)
    /// and hash tiles against the API, beside /health/live measured in the
    /// same run. Runs in a scratch database or file.
    Tlog {
        /// Events in the log
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Seconds of each load
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent clients of the load process
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
    /// The load process of `bench tlog` (not for direct use)
    #[command(hide = true)]
    TlogLoad {
        #[arg(long)]
        base: String,
        #[arg(long, value_enum)]
        mode: crate::bench::TlogLoad,
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long)]
        size: u64,
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        clients: usize,
    },
    /// The load process of `bench verify` (not for direct use)
    #[command(hide = true)]
    VerifyLoad {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long)]
        requests: PathBuf,
        #[arg(long)]
        clients: usize,
        /// Requests per second (0: as fast as answers come)
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
    /// The load process of `bench oid4vp` (not for direct use)
    #[command(hide = true)]
    Oid4vpLoad {
        #[arg(long)]
        base: String,
        #[arg(long, value_enum)]
        mode: crate::bench::Load,
        #[arg(long)]
        lender_key_file: PathBuf,
        #[arg(long)]
        credential: PathBuf,
        #[arg(long)]
        holder_key: PathBuf,
        #[arg(long)]
        audience: String,
        #[arg(long)]
        flows: u64,
        #[arg(long)]
        clients: usize,
    },
}
