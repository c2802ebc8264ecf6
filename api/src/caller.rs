//! The caller of a request: who they are (from their API key), from where,
//! and under which request id.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use chrono::Utc;
use ipnet::IpNet;
use proofline_commands::auth::{AuthError, Authenticated};
use proofline_commands::handler::CommandContext;
use proofline_domain::api_key::ApiKey;
use proofline_domain::auditor::AuditorId;
use proofline_domain::lender::LenderId;
use proofline_domain::log::{Metadata, Timestamp};
use proofline_domain::principal::{Principal, Role};

use crate::error::{ApiError, ErrorCode};
use crate::middleware::{Committing, RequestId};
use crate::state::AppState;

/// An authenticated caller. Extracting it authenticates the request (401
/// otherwise, 429 past the limits); it then checks roles.
#[derive(Debug, Clone)]
pub struct Caller {
    pub authenticated: Arc<Authenticated>,
    pub address: IpAddr,
    pub request_id: Option<String>,
    /// Marks the request as committing once a command starts.
    committing: Option<Committing>,
}

impl Caller {
    pub fn principal(&self) -> Principal {
        self.authenticated.principal
    }

    /// The time and metadata of a command made by this caller: the request
    /// id is both the correlation id and the request id of its events.
    /// Asking for it starts the command: from here the request is answered
    /// with its result, even past the time limit
    /// ([`crate::middleware::time_limit`]).
    pub fn command_context(&self) -> CommandContext {
        if let Some(committing) = &self.committing {
            committing.begin();
        }
        CommandContext::now(Metadata {
            correlation_id: self.request_id.clone(),
            request_id: self.request_id.clone(),
            actor: Some(self.principal().actor()),
            ..Metadata::default()
        })
    }
}

fn forbidden(role: Role) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        format!("the {role} role may not use this route"),
    )
}

/// A lender calling (403 for any other role): the route's handler takes
/// `Lender { id, caller }`.
pub struct Lender {
    pub id: LenderId,
    pub caller: Caller,
}

/// An auditor calling (403 otherwise).
pub struct Auditor {
    pub id: AuditorId,
    pub caller: Caller,
}

/// The operator calling (403 otherwise).
pub struct Operator(pub Caller);

/// Who may read the whole log: an auditor or the operator (403 for a
/// lender).
pub struct LogReader(pub Caller);

/// The extractor of a role: the caller, authenticated, if `$accept` takes
/// it (`Some`), else 403.
macro_rules! role {
    ($role:ident, $caller:ident => $accept:expr) => {
        impl FromRequestParts<AppState> for $role {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                let $caller = Caller::from_request_parts(parts, state).await?;
                let role = $caller.principal().role();
                $accept.ok_or_else(|| forbidden(role))
            }
        }
    };
}

role!(Lender, caller => match caller.principal() {
    Principal::Lender(id) => Some(Lender { id, caller }),
    _ => None,
});
role!(Auditor, caller => match caller.principal() {
    Principal::Auditor(id) => Some(Auditor { id, caller }),
    _ => None,
});
role!(Operator, caller => match caller.principal() {
    Principal::Operator => Some(Operator(caller)),
    _ => None,
});
role!(LogReader, caller => match caller.principal() {
    Principal::Auditor(_) | Principal::Operator => Some(LogReader(caller)),
    Principal::Lender(_) => None,
});

/// The client's address: the peer, unless the peer is a trusted proxy, in
/// which case the right-most `X-Forwarded-For` hop that is not itself a
/// trusted proxy.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

pub fn peer_address(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The key of `Authorization: Bearer <key>` (or `X-Api-Key: <key>`).
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, key) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| key.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let address = client_address(
            peer_address(parts),
            &parts.headers,
            &state.settings.trusted_proxies,
        );
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        let now = Timestamp::from_datetime(Utc::now());

        // No key, or not one of ours in shape: 401, free of any budget (no
        // store lookup, no argon2 is spent on it).
        let Some(key) = presented_key(&parts.headers) else {
            return Err(ApiError::new(
                ErrorCode::BadCredentials,
                "send your API key as Authorization: Bearer <key>",
            ));
        };
        let Ok(parsed) = ApiKey::parse(key) else {
            return Err(AuthError::Malformed.into());
        };
        let authenticated = match state.auth.cached(key, now) {
            Some(hit) => hit,
            None => {
                // A key that checked out before is not held back by the
                // failure budgets; any other attempt reserves its share of
                // them before argon2 runs.
                let reservation = if state.auth.known(key, now) {
                    None
                } else {
                    Some(state.limits.reserve(address, Some(parsed.prefix())).await?)
                };
                match state.auth.authenticate(key, now).await {
                    Ok(authenticated) => authenticated,
                    Err(error @ (AuthError::Unavailable(_) | AuthError::Busy)) => {
                        return Err(error.into());
                    }
                    Err(error) => {
                        if let Some(reservation) = reservation {
                            reservation.failed();
                        }
                        return Err(error.into());
                    }
                }
            }
        };
        state
            .limits
            .check_key(authenticated.key_prefix.as_str())
            .await?;
        Ok(Caller {
            authenticated,
            address,
            request_id,
            committing: parts.extensions.get::<Committing>().cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.4, 10.0.0.3"),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "198.51.100.77".parse().unwrap();
        // Through our proxies: the right-most hop that is not one of them.
        assert_eq!(
            client_address(proxy, &headers, &trusted),
            "198.51.100.4".parse::<IpAddr>().unwrap()
        );
        // From anyone else, the header is ignored.
        assert_eq!(client_address(stranger, &headers, &trusted), stranger);
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_address(proxy, &headers, &[]), proxy);
    }

    #[test]
    fn keys_are_read_from_bearer_or_x_api_key() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer pl_abc"),
        );
        assert_eq!(presented_key(&headers), Some("pl_abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcg=="),
        );
        assert_eq!(presented_key(&headers), None);
        let mut other = HeaderMap::new();
        other.insert("x-api-key", HeaderValue::from_static("pl_def"));
        assert_eq!(presented_key(&other), Some("pl_def"));
    }
}
