//! Which service key signed what, as the log says.
//!
//! On start, the service appends `ServiceKeyActivated` to the stream
//! `service-keys` when its signing key is not the last one recorded there.
//! `GET /v1/log/public-key` reads that stream: the current key with the
//! time it took over, and every earlier key, so receipts and checkpoints
//! signed before a rotation still verify.

use ed25519_dalek::VerifyingKey;
use proofline_domain::decider::EventSchema;
use proofline_domain::did::Did;
use proofline_domain::ids::{Category, StreamId};
use proofline_domain::jose::b64url_encode;
use proofline_domain::log::Timestamp;
use serde::{Deserialize, Serialize};

use crate::handler::{CommandContext, CommandError};
use crate::signing::ServiceKey;
use crate::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StoreError};

pub fn stream() -> StreamId {
    StreamId::singleton(Category::Service, Some("keys"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum ServiceKeyEvent {
    ServiceKeyActivated {
        kid: String,
        /// The Ed25519 public key, base64url without padding.
        public_key: String,
        /// The same key as a did:key.
        did: Did,
        activated_at: Timestamp,
    },
}

impl EventSchema for ServiceKeyEvent {}

/// A service key as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedKey {
    pub kid: String,
    pub alg: &'static str,
    pub public_key: String,
    pub did: String,
    pub since: Timestamp,
    /// The position of its activation in the log.
    pub since_position: u64,
}

/// Every recorded key, oldest first.
pub async fn history(store: &dyn EventStore) -> Result<Vec<RecordedKey>, CommandError> {
    let mut keys = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_stream(&stream(), after, 1_000).await?;
        let done = page.len() < 1_000;
        for envelope in page {
            let ServiceKeyEvent::ServiceKeyActivated {
                kid,
                public_key,
                did,
                activated_at,
            } = envelope.decode::<ServiceKeyEvent>()?;
            keys.push(RecordedKey {
                kid,
                alg: "EdDSA",
                public_key,
                did: did.as_str().to_owned(),
                since: activated_at,
                since_position: envelope.position,
            });
            after = envelope.stream_version;
        }
        if done {
            return Ok(keys);
        }
    }
}

/// The base64url of a public key, as recorded.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    b64url_encode(key.as_bytes())
}

/// Records `key` as the signing key from now on, unless it is the last
/// one recorded already. Safe to run from several processes at once.
pub async fn activate(
    store: &dyn EventStore,
    key: &ServiceKey,
    context: &CommandContext,
) -> Result<bool, CommandError> {
    for _ in 0..5 {
        let recorded = history(store).await?;
        if recorded.last().is_some_and(|last| last.kid == key.kid()) {
            return Ok(false);
        }
        let event = ServiceKeyEvent::ServiceKeyActivated {
            kid: key.kid(),
            public_key: encode_public_key(&key.verifying_key()),
            did: Did::from_ed25519(&key.verifying_key()),
            activated_at: context.now,
        };
        let mut request = AppendRequest::new(
            stream(),
            ExpectedVersion::Exact(recorded.len() as u64),
            vec![NewEvent::of(&event)],
        );
        request.metadata = context.metadata.clone();
        match store.append(request).await {
            Ok(_) => return Ok(true),
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(CommandError::Contention {
        stream_id: stream(),
    })
}
