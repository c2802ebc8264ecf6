//! The one guard on every connection Proofline makes to the outside (webhook
//! deliveries, and everything [`crate::fetch`] reads): which addresses may
//! be reached, a DNS resolver that judges every address a name resolves to
//! at connection time (so a name re-pointed after it was vetted, DNS
//! rebinding, is refused), and the TLS roots.
//!
//! An address is refused if it is not publicly routable (loopback,
//! private, link-local and cloud metadata, CGNAT, multicast, reserved, and
//! IPv6 forms that embed such an IPv4 address), unless it lies in a network
//! the operator allows. Plain `http` is only for allowed networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rustls_pki_types::CertificateDer;

/// Why `ip` may not be connected to, if it may not (it is not publicly
/// routable).
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata lives here)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast()
        || a >= 240
        || ip.is_documentation()
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0)
    {
        Some("reserved")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let o = ip.octets();
    let v4_at = |at: usize| Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3]);
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    // Forms that carry an IPv4 address, judged by it: IPv4-mapped
    // (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated),
    // IPv4-translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96), 6to4
    // (2002::/16), and Teredo (2001::/32: the server's address, and the
    // client's with every bit inverted).
    let embedded: &[Ipv4Addr] = &match s {
        [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0, 0, ..] => [v4_at(12), v4_at(12)],
        [0, 0, 0, 0, 0xffff, 0, ..] => [v4_at(12), v4_at(12)],
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => [v4_at(12), v4_at(12)],
        [0x2002, ..] => [v4_at(2), v4_at(2)],
        [0x2001, 0, ..] => [v4_at(4), Ipv4Addr::from(!u32::from(v4_at(12)))],
        _ => [Ipv4Addr::UNSPECIFIED; 2],
    }[..];
    let carries_v4 = matches!(
        s,
        [0, 0, 0, 0, 0, 0xffff, ..]
            | [0, 0, 0, 0, 0, 0, ..]
            | [0, 0, 0, 0, 0xffff, 0, ..]
            | [0x64, 0xff9b, 0, 0, 0, 0, ..]
            | [0x2002, ..]
            | [0x2001, 0, ..]
    );
    if carries_v4 && let Some(why) = embedded.iter().find_map(|v4| forbidden_v4(*v4)) {
        return Some(why);
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        Some("unique local (private)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Some("site-local (private)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        Some("local-use NAT64 (private)")
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) {
        Some("reserved")
    } else if s[0] == 0x2001 && (0x10..0x30).contains(&s[1]) {
        Some("reserved (ORCHID)")
    } else {
        None
    }
}

/// Why an address may not be connected to, for the given scheme.
pub fn refusal(ip: IpAddr, https: bool, allowed: &[IpNet]) -> Option<String> {
    if allowed.iter().any(|net| net.contains(&ip)) {
        return None;
    }
    if let Some(why) = forbidden(ip) {
        return Some(format!("{ip} is a {why} address"));
    }
    (!https).then(|| format!("{ip} is not in an allowed network, and the URL is not https"))
}

/// The IP address a URL names literally (the resolver never sees those, so
/// they are judged before a request).
pub fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// A name the guard refused to connect to, and why (without the address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRefusal(pub String);

impl std::fmt::Display for GuardRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GuardRefusal {}

/// A DNS resolver that refuses a name if any of its addresses may not be
/// reached.
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
                // Said without the address: a lender reads this error, and
                // where our resolver points a name inside our network is
                // not a lender's to learn.
                if refusal(address.ip(), https, &allowed).is_some() {
                    let why = forbidden(address.ip()).unwrap_or("not allowed");
                    let refused: Box<dyn std::error::Error + Send + Sync> =
                        Box::new(GuardRefusal(format!("{host} resolves to a {why} address")));
                    return Err(refused);
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

/// TLS with the Mozilla roots, and `extra_roots` (an operator's private CA).
fn tls(extra_roots: &[CertificateDer<'static>]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for root in extra_roots {
        roots
            .add(root.clone())
            .map_err(|e| format!("an extra root is not a usable CA certificate: {e}"))?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// How a guarded client connects.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Networks that may be reached although private or loopback (and, for
    /// webhooks, over plain http).
    pub allowed_networks: Vec<IpNet>,
    /// Roots trusted for TLS besides the Mozilla ones.
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub connect_timeout: Duration,
    /// The whole request, connection included.
    pub timeout: Duration,
}

impl Guard {
    /// A reqwest client behind the guard: no proxy (a proxy from the
    /// environment would connect for us, past the resolver's judgement),
    /// the guarded resolver, the timeouts and roots. `https` says which
    /// scheme its resolver judges for. Redirects are the caller's to set.
    pub fn client(&self, https: bool, user_agent: &str) -> Result<reqwest::ClientBuilder, String> {
        install_crypto_provider();
        Ok(reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(user_agent)
            .dns_resolver(GuardedResolver {
                https,
                allowed: Arc::new(self.allowed_networks.clone()),
            })
            .tls_backend_preconfigured(tls(&self.extra_roots)?)
            .pool_max_idle_per_host(4))
    }

    /// Why `url`'s literal address may not be reached, if it names one and
    /// it may not.
    pub fn refuses_literal(&self, url: &url::Url) -> Option<String> {
        let ip = literal_ip(url)?;
        refusal(ip, url.scheme() == "https", &self.allowed_networks)
    }
}

/// Reads PEM certificates (an operator's extra TLS roots).
pub fn read_pem_roots(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let roots: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if roots.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

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
