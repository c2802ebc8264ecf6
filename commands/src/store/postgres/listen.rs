//! Following other processes' commits (LISTEN), and noticing a lost
//! database first.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use super::{CHANNEL, head_row};
use crate::store::breaker::Breaker;
use crate::store::heads::{CategorySet, HeadSender};

/// Follows NOTIFYs from every process's writer. When the connection drops,
/// notifications may have been missed, so the head is read again; tails also
/// poll, so a dead listener only costs latency. A dropped connection is also
/// the first sign of a database going away: the breaker probes it, and the
/// listener reconnects once the database answers.
pub(super) async fn listen(pool: PgPool, breaker: Breaker, head: Arc<HeadSender>) {
    let mut reconnected = false;
    loop {
        breaker.until_up().await;
        let mut listener = match breaker.run(PgListener::connect_with(&pool)).await {
            Ok(l) => l,
            Err(e) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "cannot LISTEN for new events; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Told at once of a lost connection, not after the pool's wait.
        listener.eager_reconnect(false);
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot LISTEN for new events; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Reconnected: events committed meanwhile were not notified. (The
        // first connection needs no read: the store read the head at open.)
        if reconnected && let Ok(Some(h)) = breaker.run(head_row(&pool)).await {
            head.bump(h.position, CategorySet::ALL);
        }
        reconnected = true;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some((position, categories)) = CategorySet::parse_payload(n.payload()) {
                        head.bump(position, categories);
                    }
                }
                Ok(None) => {
                    if pool.is_closed() {
                        return;
                    }
                    breaker.suspect();
                    break;
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    breaker.suspect();
                    tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                    break;
                }
            }
        }
    }
}
