//! A lender's webhook: where it goes, checked against SSRF, and its
//! signing secret, shown once and kept sealed outside the log.
//!
//! The guard resolves the URL's host and refuses it if any address it
//! resolves to is not publicly routable (loopback, private, link-local and
//! cloud metadata, CGNAT, multicast, reserved, and IPv6 forms that embed
//! such an IPv4 address), unless that address lies in a network the
//! operator allows (`PROOFLINE_WEBHOOK_ALLOWED_NETWORKS`). Plain `http` is
//! only for allowed networks. The delivery side checks again at each
//! delivery, against DNS rebinding.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipnet::IpNet;
use proofline_domain::lender::{LenderCommand, LenderDecider, LenderId};
use proofline_domain::values::WebhookUrl;
use proofline_domain::webhook_delivery::{
    AttemptOutcome, DeliveryId, WebhookDeliveryCommand, WebhookDeliveryDecider,
};
use secrecy::{ExposeSecret, SecretString};

use proofline_domain::decider::{Rejection, RejectionKind};

use crate::handler::{self, CommandContext, CommandError, Decision, Done};
use crate::outbound::forbidden;
use crate::sealing::{Sealed, SealingKey};
use crate::store::{EventStore, SecretWrite, StoreError};

/// The kind of the secrets row holding a sealed webhook secret.
pub const WEBHOOK_SECRET: &str = "webhook_secret";

/// What the key that sealed webhook secrets was derived for, from the
/// service key, before sealing keys had a file of their own: [`reseal`]
/// moves what it sealed to the sealing key.
pub const LEGACY_SEALING_PURPOSE: &str = "proofline webhook secrets v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The URL may not be used; the reason is safe to show the lender.
    #[error("the webhook URL is refused: {0}")]
    Refused(String),
}

impl Rejection for WebhookError {
    fn kind(&self) -> RejectionKind {
        match self {
            WebhookError::Refused(_) => RejectionKind::Invalid,
        }
    }
}

/// Resolves `url`'s host and applies the rules; the addresses it may be
/// reached at.
pub async fn vet(url: &WebhookUrl, allowed: &[IpNet]) -> Result<Vec<SocketAddr>, WebhookError> {
    let parsed = url::Url::parse(url.as_str())
        .map_err(|e| WebhookError::Refused(format!("not a URL: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| WebhookError::Refused("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| WebhookError::Refused(format!("{host} did not resolve in time")))?
        .map_err(|_| WebhookError::Refused(format!("{host} does not resolve")))?
        .collect(),
    };
    if addresses.is_empty() {
        return Err(WebhookError::Refused(format!("{host} has no address")));
    }
    let is_allowed = |ip: IpAddr| allowed.iter().any(|net| net.contains(&ip));
    for address in &addresses {
        let ip = address.ip();
        if is_allowed(ip) {
            continue;
        }
        // The address a name resolved to is not the lender's to learn.
        if let Some(why) = forbidden(ip) {
            let what = if host.parse::<IpAddr>().is_ok() {
                format!("{host} is a {why} address")
            } else {
                format!("{host} resolves to a {why} address")
            };
            return Err(WebhookError::Refused(what));
        }
        if !url.is_https() {
            return Err(WebhookError::Refused(
                "use https (http only to networks the operator allows)".into(),
            ));
        }
    }
    Ok(addresses)
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes
/// (Standard Webhooks).
pub fn generate_secret() -> Result<SecretString, CommandError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CommandError::Store(StoreError::corrupt("random source", e)))?;
    Ok(SecretString::from(format!(
        "whsec_{}",
        STANDARD.encode(bytes)
    )))
}

fn record_id(lender: LenderId) -> String {
    format!("webhook:{lender}")
}

/// Sets the lender's webhook after vetting it; the secret is sealed into
/// the secrets table in the same transaction as `WebhookConfigured`.
pub async fn configure(
    store: &dyn EventStore,
    context: &CommandContext,
    lender: LenderId,
    url: WebhookUrl,
    allowed: &[IpNet],
    sealing_key: &SealingKey,
    secret: &SecretString,
) -> Result<Done<()>, CommandError> {
    vet(&url, allowed).await.map_err(CommandError::rejected)?;
    let id = record_id(lender);
    let sealed = sealing_key
        .seal(id.as_bytes(), secret.expose_secret().as_bytes())
        .ok_or_else(|| CommandError::Store(StoreError::corrupt("sealing", "cannot seal")))?;
    let material = serde_json::to_string(&sealed)
        .map_err(|e| CommandError::Store(StoreError::corrupt("sealing", e)))?;
    let command = LenderCommand::ConfigureWebhook { url };
    handler::execute::<LenderDecider, ()>(store, &lender.stream_id(), context, |state| {
        let events = handler::decide::<LenderDecider>(&command, state, context.now)?;
        Ok(Decision {
            secrets: vec![SecretWrite {
                id: id.clone(),
                kind: WEBHOOK_SECRET.to_owned(),
                material: SecretString::from(material.clone()),
                // Configuring again rotates the secret in place.
                replace: true,
            }],
            ..Decision::events(events, ())
        })
    })
    .await
}

/// Removes the lender's webhook and forgets its secret.
pub async fn remove(
    store: &dyn EventStore,
    context: &CommandContext,
    lender: LenderId,
) -> Result<Done<()>, CommandError> {
    let done =
        handler::execute::<LenderDecider, ()>(store, &lender.stream_id(), context, |state| {
            let events = handler::decide::<LenderDecider>(
                &LenderCommand::RemoveWebhook,
                state,
                context.now,
            )?;
            Ok(Decision::events(events, ()))
        })
        .await?;
    store.delete_secret(&record_id(lender)).await?;
    Ok(done)
}

/// The lender's signing secret, for deliveries.
pub async fn secret_of(
    store: &dyn EventStore,
    sealing_key: &SealingKey,
    lender: LenderId,
) -> Result<Option<SecretString>, CommandError> {
    let id = record_id(lender);
    let Some(record) = store.secret(&id).await? else {
        return Ok(None);
    };
    // Errors name what failed, never the material (serde's messages may
    // quote their input).
    let sealed: Sealed = serde_json::from_str(record.material.expose_secret()).map_err(|_| {
        CommandError::Store(StoreError::corrupt("webhook secret", "not a sealed record"))
    })?;
    let plain = sealing_key
        .open(id.as_bytes(), &sealed)
        .ok_or_else(|| CommandError::Store(StoreError::corrupt("webhook secret", "cannot open")))?;
    String::from_utf8(plain)
        .map(|s| Some(SecretString::from(s)))
        .map_err(|_| CommandError::Store(StoreError::corrupt("webhook secret", "not UTF-8")))
}

/// Seals again, under `to`, every webhook secret that `from` sealed (the
/// key derived from the service key, before sealing keys had a file of
/// their own); how many. Run by the processes that hold both keys (the
/// API) at start, so that the webhooks role needs only the sealing key.
/// Running it again finds nothing left to move.
pub async fn reseal(
    store: &dyn EventStore,
    from: &SealingKey,
    to: &SealingKey,
) -> Result<usize, CommandError> {
    let corrupt =
        |what: &'static str| CommandError::Store(StoreError::corrupt("webhook secret", what));
    let mut moved = 0;
    for id in store.secret_ids_of_kind(WEBHOOK_SECRET).await? {
        let Some(record) = store.secret(&id).await? else {
            continue;
        };
        let sealed: Sealed = serde_json::from_str(record.material.expose_secret())
            .map_err(|_| corrupt("not a sealed record"))?;
        if sealed.key.as_deref() != from.kid() {
            continue;
        }
        let plain = from
            .open(id.as_bytes(), &sealed)
            .ok_or_else(|| corrupt("cannot open"))?;
        let again = to
            .seal(id.as_bytes(), &plain)
            .ok_or_else(|| corrupt("cannot seal"))?;
        let material = serde_json::to_string(&again).map_err(|_| corrupt("cannot encode"))?;
        if store
            .update_secret(&id, &SecretString::from(material))
            .await?
        {
            moved += 1;
        }
    }
    Ok(moved)
}

/// Records how attempt `attempt` of a delivery ended (the webhook
/// consumer's only write).
pub async fn record_attempt(
    store: &dyn EventStore,
    context: &CommandContext,
    delivery: DeliveryId,
    lender_id: LenderId,
    attempt: u32,
    outcome: AttemptOutcome,
) -> Result<Done<()>, CommandError> {
    let command = WebhookDeliveryCommand::RecordAttempt {
        lender_id,
        attempt,
        outcome,
    };
    handler::execute::<WebhookDeliveryDecider, ()>(store, &delivery.stream_id(), context, |state| {
        let events = handler::decide::<WebhookDeliveryDecider>(&command, state, context.now)?;
        Ok(Decision::events(events, ()))
    })
    .await
}

/// A lender's request to send a settled delivery again. The caller has
/// checked that the delivery exists and is the lender's (the deliveries
/// read model knows a delivery before its first attempt is recorded).
pub async fn request_redelivery(
    store: &dyn EventStore,
    context: &CommandContext,
    delivery: DeliveryId,
    lender_id: LenderId,
    seal: crate::lenders::Seal<'_, ()>,
) -> Result<Done<()>, CommandError> {
    let command = WebhookDeliveryCommand::RequestRedelivery { lender_id };
    handler::execute::<WebhookDeliveryDecider, ()>(store, &delivery.stream_id(), context, |state| {
        let events = handler::decide::<WebhookDeliveryDecider>(&command, state, context.now)?;
        Ok(Decision {
            secrets: seal(&())?,
            ..Decision::events(events, ())
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_receive_webhooks() {
        for refused in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            // IPv4-compatible, IPv4-translated, local-use NAT64, site-local.
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.1.2.3",
            "64:ff9b:1::a00:1",
            "64:ff9b:1:ffff::1",
            "fec0::1",
            "feff::1",
            // 6to4 of a private address; Teredo whose server or (inverted)
            // client address is refused.
            "2002:a00:1::1",
            "2001:0:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "100::1",
            "2001:10::1",
        ] {
            assert!(forbidden(ip(refused)).is_some(), "{refused} is refused");
        }
        for public in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
            "2002:101:101::1",
            // Teredo with a public server and a public (inverted) client.
            "2001:0:4136:e378:8000:63bf:fefe:fefe",
        ] {
            assert_eq!(forbidden(ip(public)), None, "{public} is public");
        }
    }

    #[tokio::test]
    async fn a_refusal_never_names_the_address_a_name_resolved_to() {
        let url = WebhookUrl::parse("https://localhost:9/hook").unwrap();
        let WebhookError::Refused(why) = vet(&url, &[]).await.unwrap_err();
        assert!(
            why.contains("localhost resolves to a loopback address"),
            "{why}"
        );
        assert!(!why.contains("127.0.0.1") && !why.contains("::1"), "{why}");
    }

    #[tokio::test]
    async fn names_are_resolved_before_judging_and_allowed_networks_win() {
        let url = |u: &str| WebhookUrl::parse(u).unwrap();
        for refused in [
            "http://169.254.169.254/",
            "http://10.0.0.1/",
            "http://[::1]/",
            "https://localhost:9/hook",
            "http://93.184.215.14/hook",
        ] {
            assert!(vet(&url(refused), &[]).await.is_err(), "{refused}");
        }
        let loopback: IpNet = "127.0.0.0/8".parse().unwrap();
        assert!(
            vet(&url("http://127.0.0.1:9/hook"), &[loopback])
                .await
                .is_ok()
        );
        assert!(vet(&url("http://[::1]:9/hook"), &[loopback]).await.is_err());
        assert!(vet(&url("https://93.184.215.14/hook"), &[]).await.is_ok());
    }

    #[test]
    fn secrets_are_standard_webhooks_secrets() {
        let secret = generate_secret().unwrap();
        let text = secret.expose_secret();
        let key = STANDARD
            .decode(text.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(text, generate_secret().unwrap().expose_secret());
    }
}
