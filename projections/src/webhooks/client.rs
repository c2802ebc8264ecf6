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

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use ipnet::IpNet;
use proofline_commands::report::root_cause;
use proofline_commands::webhooks::forbidden;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
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
    allowed: Arc<Vec<IpNet>>,
}

/// Why an address may not be connected to, for the given scheme.
fn refusal(ip: IpAddr, https: bool, allowed: &[IpNet]) -> Option<String> {
    if allowed.iter().any(|net| net.contains(&ip)) {
        return None;
    }
    if let Some(why) = forbidden(ip) {
        return Some(format!("{ip} is a {why} address"));
    }
    (!https).then(|| format!("{ip} is not in an allowed network, and the URL is not https"))
}

struct GuardedResolver {
    https: bool,
    allowed: Arc<Vec<IpNet>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (https, allowed) = (self.https, self.allowed.clone());
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if found.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            for address in &found {
                // Said without the address: the lender reads this error, and
                // where our resolver points a name inside our network is
                // not the lender's to learn.
                if refusal(address.ip(), https, &allowed).is_some() {
                    let why = forbidden(address.ip()).unwrap_or("not allowed");
                    return Err(format!("refused {host}: it resolves to a {why} address").into());
                }
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// Makes ring the process's TLS crypto provider, unless one is set.
///
/// Every reqwest client of the process needs one (reqwest is built without
/// its aws-lc-rs default, so that no C crypto library is compiled); the
/// binary calls this first thing, and so do tests that build clients.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn tls() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl WebhookClient {
    pub fn new(options: &ClientOptions) -> Result<Self, reqwest::Error> {
        install_crypto_provider();
        let allowed = Arc::new(options.allowed_networks.clone());
        let build = |https: bool| {
            reqwest::Client::builder()
                // A proxy from the environment would connect for us, past
                // the resolver's judgement.
                .no_proxy()
                .connect_timeout(options.connect_timeout)
                .timeout(options.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("Proofline-Webhooks/", env!("CARGO_PKG_VERSION")))
                .dns_resolver(GuardedResolver {
                    https,
                    allowed: allowed.clone(),
                })
                .tls_backend_preconfigured(tls())
                .pool_max_idle_per_host(4)
                .build()
        };
        Ok(Self {
            https: build(true)?,
            http: build(false)?,
            allowed,
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
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && let Some(why) = refusal(ip, https, &self.allowed)
        {
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

    #[test]
    fn addresses_are_judged_by_scheme_and_network() {
        let allowed: Vec<IpNet> = vec!["127.0.0.0/8".parse().expect("a network")];
        let ip = |t: &str| t.parse::<IpAddr>().expect("an address");
        assert!(refusal(ip("127.0.0.1"), false, &allowed).is_none());
        assert!(refusal(ip("127.0.0.1"), true, &[]).is_some());
        assert!(refusal(ip("169.254.169.254"), true, &allowed).is_some());
        assert!(refusal(ip("93.184.216.34"), true, &[]).is_none());
        assert!(
            refusal(ip("93.184.216.34"), false, &[]).is_some(),
            "plain http only to allowed networks"
        );
    }
}
