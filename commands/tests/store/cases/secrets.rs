//! Secrets written with their append, and webhook secrets resealed with the
//! sealing key.

use proofline_commands::store::{ExpectedVersion, SecretWrite, StoreError};
use secrecy::{ExposeSecret, SecretString};

use super::{all_events, append, stream};
use crate::harness::Harness;

pub async fn secrets_are_written_with_their_append(h: &impl Harness) {
    let store = h.open().await;
    let s = stream("secret");
    let secret = |id: &str, material: &str| SecretWrite {
        id: id.into(),
        kind: "api_key".into(),
        material: SecretString::from(material.to_owned()),
        replace: false,
    };
    let outcome = store
        .append(
            append(&s, ExpectedVersion::NoStream, 1).with_secret(secret("api_key:aaaa", "hash-a")),
        )
        .await
        .unwrap();
    let stored = store.secret("api_key:aaaa").await.unwrap().expect("stored");
    assert_eq!(stored.material.expose_secret(), "hash-a");
    assert_eq!(
        (stored.position, &stored.stream_id, stored.kind.as_str()),
        (outcome.first_position, &s, "api_key")
    );

    // A refused append writes no secret.
    let conflicting =
        append(&s, ExpectedVersion::NoStream, 2).with_secret(secret("api_key:bbbb", "hash-b"));
    assert!(matches!(
        store.append(conflicting).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(store.secret("api_key:bbbb").await.unwrap().is_none());

    // A taken secret id refuses the append: no event either.
    let reused = append(&stream("other"), ExpectedVersion::Any, 3)
        .with_secret(secret("api_key:aaaa", "hash-c"));
    assert!(matches!(
        store.append(reused).await,
        Err(StoreError::SecretIdTaken { .. })
    ));
    assert_eq!(
        store
            .secret("api_key:aaaa")
            .await
            .unwrap()
            .unwrap()
            .material
            .expose_secret(),
        "hash-a"
    );
    let events = all_events(store.as_ref()).await;
    assert_eq!(events.len(), 1);
    // Secrets never enter the log.
    assert!(!serde_json::to_string(&events).unwrap().contains("hash-a"));

    // A secret that may be replaced (a rotated webhook secret) is, with the
    // append that replaces it.
    let rotated = append(&stream("other"), ExpectedVersion::Any, 4).with_secret(SecretWrite {
        replace: true,
        ..secret("api_key:aaaa", "hash-d")
    });
    let outcome = store.append(rotated).await.unwrap();
    let stored = store.secret("api_key:aaaa").await.unwrap().unwrap();
    assert_eq!(stored.material.expose_secret(), "hash-d");
    assert_eq!(stored.position, outcome.first_position);
    store.close().await;
}

/// Webhook secrets sealed with the key derived from the service key (before
/// sealing keys had a file of their own) are sealed again with the sealing
/// key, in place; the webhooks role then needs that key alone.
pub async fn webhook_secrets_move_to_the_sealing_key(h: &impl Harness) {
    use proofline_commands::sealing::{self, SealingKey};
    use proofline_commands::webhooks::{self, WEBHOOK_SECRET};
    let store = h.open().await;
    let legacy_bytes = [7u8; 32];
    let legacy = SealingKey::legacy(legacy_bytes);
    let lender = proofline_domain::lender::LenderId::from_uuid(uuid::Uuid::now_v7());
    let id = format!("webhook:{lender}");
    let old = sealing::seal(&legacy_bytes, id.as_bytes(), b"whsec_old").unwrap();
    let write = SecretWrite {
        id: id.clone(),
        kind: WEBHOOK_SECRET.into(),
        material: SecretString::from(serde_json::to_string(&old).unwrap()),
        replace: false,
    };
    store
        .append(append(&lender.stream_id(), ExpectedVersion::Any, 1).with_secret(write))
        .await
        .unwrap();
    let (dir, key) = {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = SealingKey::load_or_create(&dir.path().join("sealing.key")).unwrap();
        (dir, key)
    };
    assert!(
        webhooks::secret_of(store.as_ref(), &key, lender)
            .await
            .is_err()
    );
    assert_eq!(
        webhooks::reseal(store.as_ref(), &legacy, &key)
            .await
            .unwrap(),
        1
    );
    let opened = webhooks::secret_of(store.as_ref(), &key, lender)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.expose_secret(), "whsec_old");
    assert!(
        webhooks::secret_of(store.as_ref(), &legacy, lender)
            .await
            .is_err()
    );
    assert_eq!(
        webhooks::reseal(store.as_ref(), &legacy, &key)
            .await
            .unwrap(),
        0,
        "nothing left to move"
    );
    drop(dir);
    store.close().await;
}
