//! Sending one webhook: Standard Webhooks signing, and an HTTP client that
//! cannot be pointed at the service's own network.
//!
//! The SSRF guard runs where the connection is made, not only when the
//! lender configures the URL: the client's DNS resolver drops nothing and
//! refuses a name if any of its addresses is loopback, private,
//! link-local, CGNAT, multicast or reserved (unless in an allowed network),
//! so a name that is re-pointed after it was vetted (DNS rebinding) is
//! refused at delivery. Plain http goes through a second client whose
//! resolver accepts allowed networks only. Redirects are not followed.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use ipnet::IpNet;
use proofline_commands::outbound::Guard;
use proofline_commands::report::root_cause;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The `webhook-signature` value of a message: `v1,` and the base64
/// HMAC-SHA256 of `id.timestamp.body` under the secret's key (the base64
/// after `whsec_`). `None` when the secret is not of that form.
pub fn sign(secret: &SecretString, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let encoded = secret.expose_secret().strip_prefix("whsec_")?;
    let key = STANDARD.decode(encoded).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// The whole request, connection included.
    pub timeout: Duration,
    /// Networks that may receive webhooks although private or loopback
    /// (and that may use plain http).
    pub allowed_networks: Vec<IpNet>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            allowed_networks: Vec::new(),
        }
    }
}

/// How one POST ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The receiver answered 2xx.
    Accepted(u16),
    /// Any other answer, or none; `status` when there was an answer.
    Refused { error: String, status: Option<u16> },
}

#[derive(Clone)]
pub struct WebhookClient {
    https: reqwest::Client,
    http: reqwest::Client,
    guard: Arc<Guard>,
}

/// Every process's reqwest clients need the ring provider; kept here for
/// the callers that knew it from the webhooks.
pub use proofline_commands::outbound::install_crypto_provider;

impl WebhookClient {
    pub fn new(options: &ClientOptions) -> Result<Self, String> {
        let guard = Guard {
            allowed_networks: options.allowed_networks.clone(),
            extra_roots: Vec::new(),
            connect_timeout: options.connect_timeout,
            timeout: options.timeout,
        };
        let user_agent = concat!("Proofline-Webhooks/", env!("CARGO_PKG_VERSION"));
        let build = |https: bool| -> Result<reqwest::Client, String> {
            guard
                .client(https, user_agent)?
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        };
        Ok(Self {
            https: build(true)?,
            http: build(false)?,
            guard: Arc::new(guard),
        })
    }

    /// POSTs `body` to `url`, signed for `id` at `timestamp` (Unix seconds).
    pub async fn send(
        &self,
        url: &str,
        secret: &SecretString,
        id: &str,
        timestamp: i64,
        body: &str,
    ) -> Sent {
        let refused = |error: String| Sent::Refused {
            error,
            status: None,
        };
        let parsed = match url::Url::parse(url) {
            Ok(parsed) => parsed,
            Err(e) => return refused(format!("not a URL: {e}")),
        };
        let https = parsed.scheme() == "https";
        // The resolver does not see IP literals; they are judged here.
        if let Some(why) = self.guard.refuses_literal(&parsed) {
            return refused(format!("refused: {why}"));
        }
        let Some(signature) = sign(secret, id, timestamp, body) else {
            return refused("the webhook secret is not a whsec_ secret".into());
        };
        let client = if https { &self.https } else { &self.http };
        let sent = client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                Sent::Accepted(response.status().as_u16())
            }
            Ok(response) => Sent::Refused {
                error: format!("the receiver answered HTTP {}", response.status().as_u16()),
                status: Some(response.status().as_u16()),
            },
            Err(error) => refused(describe(&error)),
        }
    }
}

/// A short account of a failed request, without the URL's query (which
/// some receivers use for tokens).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    // reqwest's own message names the URL; its causes do not.
    match std::error::Error::source(error) {
        None => kind.to_owned(),
        Some(source) => format!("{kind}: {}", root_cause(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The Standard Webhooks specification's test vector.
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            sign(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            )
            .as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign(&SecretString::from("nope"), "a", 1, "b"), None);
    }
}
