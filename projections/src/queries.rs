//! What the API asks the read models.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::db::{Kind, Param, ReadDb, ReadError};

/// Filters of `GET /v1/verifications`.
#[derive(Debug, Clone, Default)]
pub struct VerificationFilter {
    pub verified: Option<bool>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    /// Only positions below this (the previous page's last).
    pub before_position: Option<u64>,
}

/// A page of a lender's verifications, newest first, and the cursor of the
/// next page (the last item's position) when there may be more.
pub async fn verifications(
    db: &ReadDb,
    lender_id: &str,
    filter: &VerificationFilter,
    limit: usize,
) -> Result<(Vec<Value>, Option<u64>), ReadError> {
    let mut sql = String::from("SELECT record, position FROM verifications WHERE lender_id = $1");
    let mut params = vec![Param::text(lender_id)];
    if let Some(verified) = filter.verified {
        params.push(Param::Bool(Some(verified)));
        sql.push_str(&format!(" AND verified = ${}", params.len()));
    }
    if let Some(from) = &filter.from {
        params.push(Param::text(from.clone()));
        sql.push_str(&format!(" AND verified_at >= ${}", params.len()));
    }
    if let Some(to) = &filter.to {
        params.push(Param::text(to.clone()));
        sql.push_str(&format!(" AND verified_at < ${}", params.len()));
    }
    if let Some(before) = filter.before_position {
        params.push(Param::int(before as i64));
        sql.push_str(&format!(" AND position < ${}", params.len()));
    }
    params.push(Param::int(limit as i64 + 1));
    sql.push_str(&format!(" ORDER BY position DESC LIMIT ${}", params.len()));
    let rows = db.fetch(&sql, &params, &[Kind::Text, Kind::Int]).await?;
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(limit.min(rows.len()));
    let mut last = None;
    for row in rows.into_iter().take(limit) {
        let mut record: Map<String, Value> = serde_json::from_str(row[0].as_text().unwrap_or("{}"))
            .map_err(|e| ReadError::Data(e.to_string()))?;
        let position = row[1].as_int().unwrap_or_default() as u64;
        record.insert("position".into(), position.into());
        last = Some(position);
        items.push(Value::Object(record));
    }
    Ok((items, if more { last } else { None }))
}

/// Counts per day, outcome and failed step, for one lender.
pub async fn daily_stats(
    db: &ReadDb,
    lender_id: Option<&str>,
    from_day: Option<&str>,
    to_day: Option<&str>,
) -> Result<Vec<Value>, ReadError> {
    // One lender's rows, or every lender's summed (CAST: SUM of an integer
    // is numeric on Postgres).
    let mut sql = String::from(
        "SELECT day, verified, failed_step, CAST(SUM(count) AS BIGINT) FROM daily_stats WHERE TRUE",
    );
    let mut params = Vec::new();
    for (value, condition) in [
        (lender_id, "lender_id ="),
        (from_day, "day >="),
        (to_day, "day <="),
    ] {
        if let Some(value) = value {
            params.push(Param::text(value));
            sql.push_str(&format!(" AND {condition} ${}", params.len()));
        }
    }
    sql.push_str(" GROUP BY day, verified, failed_step ORDER BY day, verified DESC, failed_step");
    let rows = db
        .fetch(
            &sql,
            &params,
            &[Kind::Text, Kind::Bool, Kind::Text, Kind::Int],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let step = row[2].as_text().unwrap_or_default();
            json!({
                "day": row[0].as_text(),
                "verified": row[1].as_bool(),
                "failed_step": if step.is_empty() { Value::Null } else { step.into() },
                "count": row[3].as_int(),
            })
        })
        .collect())
}

/// Waits until projector `name` has applied `position`, for at most
/// `timeout`; the position reached otherwise. Polls the checkpoint, so it
/// works whichever process runs the projector.
pub async fn wait_for(
    db: &ReadDb,
    name: &str,
    position: u64,
    timeout: Duration,
) -> Result<Result<(), u64>, ReadError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let reached = db.checkpoint(name).await?;
        if reached >= position {
            return Ok(Ok(()));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Err(reached));
        }
        tokio::time::sleep(pause.min(deadline - tokio::time::Instant::now())).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Every projector's checkpoint, by name.
pub async fn checkpoints(db: &ReadDb) -> Result<Vec<(String, u64)>, ReadError> {
    let rows = db
        .fetch(
            "SELECT name, position FROM checkpoints ORDER BY name",
            &[],
            &[Kind::Text, Kind::Int],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r[0].as_text().unwrap_or_default().to_owned(),
                r[1].as_int().unwrap_or_default() as u64,
            )
        })
        .collect())
}

/// Filters of `GET /v1/webhooks/deliveries`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Only events before this position (the previous page's last).
    pub before_position: Option<u64>,
}

const DELIVERY_COLUMNS: &str = "delivery_id, event_type, event_position, status, attempts, \
     next_attempt_ms, last_error, last_status, created_at, settled_at";

fn delivery_json(row: &[Param]) -> Value {
    let next = row[5].as_int().and_then(|ms| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    });
    json!({
        "delivery_id": row[0].as_text(),
        "webhook_id": row[0].as_text(),
        "event_type": row[1].as_text(),
        "event_position": row[2].as_int(),
        "status": row[3].as_text(),
        "attempts": row[4].as_int(),
        "next_attempt_at": next,
        "last_error": row[6].as_text(),
        "last_status": row[7].as_int(),
        "created_at": row[8].as_text(),
        "settled_at": row[9].as_text(),
    })
}

const DELIVERY_KINDS: &[Kind] = &[
    Kind::Text,
    Kind::Text,
    Kind::Int,
    Kind::Text,
    Kind::Int,
    Kind::Int,
    Kind::Text,
    Kind::Int,
    Kind::Text,
    Kind::Text,
];

/// A page of a lender's webhook deliveries, newest event first, and the
/// cursor of the next page when there may be more.
pub async fn webhook_deliveries(
    db: &ReadDb,
    lender_id: &str,
    filter: &DeliveryFilter,
    limit: usize,
) -> Result<(Vec<Value>, Option<u64>), ReadError> {
    let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE lender_id = $1");
    let mut params = vec![Param::text(lender_id)];
    if let Some(status) = &filter.status {
        params.push(Param::text(status.clone()));
        sql.push_str(&format!(" AND status = ${}", params.len()));
    }
    if let Some(before) = filter.before_position {
        params.push(Param::int(before as i64));
        sql.push_str(&format!(" AND event_position < ${}", params.len()));
    }
    params.push(Param::int(limit as i64 + 1));
    sql.push_str(&format!(
        " ORDER BY event_position DESC LIMIT ${}",
        params.len()
    ));
    let rows = db.fetch(&sql, &params, DELIVERY_KINDS).await?;
    let more = rows.len() > limit;
    let items: Vec<Value> = rows.iter().take(limit).map(|r| delivery_json(r)).collect();
    let last = items
        .last()
        .and_then(|i| i["event_position"].as_u64())
        .filter(|_| more);
    Ok((items, last))
}

/// Every status list as the log last holds it, by URI.
pub async fn status_lists(db: &ReadDb) -> Result<Vec<Value>, ReadError> {
    let rows = db
        .fetch(
            "SELECT uri, issuer, kid, iat, exp, ttl, bits, source, fetched_at, recorded_at, position \
             FROM status_lists ORDER BY uri",
            &[],
            &[
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Int,
                Kind::Int,
                Kind::Int,
                Kind::Int,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Int,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            json!({
                "uri": row[0].as_text(),
                "issuer": row[1].as_text(),
                "kid": row[2].as_text(),
                "iat": row[3].as_int(),
                "exp": row[4].as_int(),
                "ttl": row[5].as_int(),
                "bits": row[6].as_int(),
                "source": row[7].as_text(),
                "fetched_at": row[8].as_text(),
                "recorded_at": row[9].as_text(),
                "position": row[10].as_int(),
            })
        })
        .collect())
}

/// Per lender, its deliveries by status and its last failure: what the
/// operator's console shows.
pub async fn webhook_health(db: &ReadDb) -> Result<Vec<Value>, ReadError> {
    let sql = "SELECT lender_id, \
         CAST(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT), \
         MAX(CASE WHEN status = 'failed' THEN settled_at END) \
         FROM webhook_deliveries GROUP BY lender_id ORDER BY lender_id";
    let rows = db
        .fetch(
            sql,
            &[],
            &[Kind::Text, Kind::Int, Kind::Int, Kind::Int, Kind::Text],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            json!({
                "lender_id": row[0].as_text(),
                "pending": row[1].as_int(),
                "delivered": row[2].as_int(),
                "failed": row[3].as_int(),
                "last_failed_at": row[4].as_text(),
            })
        })
        .collect())
}

/// One of a lender's deliveries (another lender's is `None`).
pub async fn webhook_delivery(
    db: &ReadDb,
    lender_id: &str,
    delivery_id: &str,
) -> Result<Option<Value>, ReadError> {
    let rows = db
        .fetch(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                 WHERE lender_id = $1 AND delivery_id = $2"
            ),
            &[Param::text(lender_id), Param::text(delivery_id)],
            DELIVERY_KINDS,
        )
        .await?;
    Ok(rows.first().map(|r| delivery_json(r)))
}

/// What a lender's standing is, in the lenders read model's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenderStatus {
    Active,
    Suspended,
    Deactivated,
}

impl LenderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LenderStatus::Active => "active",
            LenderStatus::Suspended => "suspended",
            LenderStatus::Deactivated => "deactivated",
        }
    }

    /// The SQL condition on `active` and `suspended` for this status.
    fn condition(self) -> &'static str {
        match self {
            LenderStatus::Active => "active = TRUE AND suspended = FALSE",
            LenderStatus::Suspended => "active = TRUE AND suspended = TRUE",
            LenderStatus::Deactivated => "active = FALSE",
        }
    }
}

/// Filters of `GET /v1/lenders`.
#[derive(Debug, Clone, Default)]
pub struct LenderFilter {
    pub status: Option<LenderStatus>,
    /// Only lenders whose contact email is this one (compared in
    /// lowercase, as registration normalizes it).
    pub contact_email: Option<String>,
    /// Only lenders registered after this one (the previous page's last).
    pub after_lender: Option<String>,
}

/// A page of lenders in registration order (their ids are UUIDv7), and
/// the cursor of the next page when there may be more.
pub async fn lenders(
    db: &ReadDb,
    filter: &LenderFilter,
    limit: usize,
) -> Result<(Vec<Value>, Option<String>), ReadError> {
    let mut sql = String::from(
        "SELECT lender_id, name, contact_email, audiences, active, suspended, key_prefix, \
         webhook_url, registered_at, position FROM lenders WHERE 1 = 1",
    );
    let mut params = Vec::new();
    if let Some(status) = filter.status {
        sql.push_str(&format!(" AND {}", status.condition()));
    }
    if let Some(email) = &filter.contact_email {
        params.push(Param::text(email.to_lowercase()));
        sql.push_str(&format!(" AND contact_email = ${}", params.len()));
    }
    if let Some(after) = &filter.after_lender {
        params.push(Param::text(after.clone()));
        sql.push_str(&format!(" AND lender_id > ${}", params.len()));
    }
    params.push(Param::int(limit as i64 + 1));
    sql.push_str(&format!(" ORDER BY lender_id LIMIT ${}", params.len()));
    let kinds = [
        Kind::Text,
        Kind::Text,
        Kind::Text,
        Kind::Text,
        Kind::Bool,
        Kind::Bool,
        Kind::Text,
        Kind::Text,
        Kind::Text,
        Kind::Int,
    ];
    let rows = db.fetch(&sql, &params, &kinds).await?;
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(limit.min(rows.len()));
    for row in rows.iter().take(limit) {
        let audiences: Value = serde_json::from_str(row[3].as_text().unwrap_or("[]"))
            .map_err(|e| ReadError::Data(e.to_string()))?;
        let status = match (row[4].as_bool(), row[5].as_bool()) {
            (Some(false), _) => LenderStatus::Deactivated,
            (_, Some(true)) => LenderStatus::Suspended,
            _ => LenderStatus::Active,
        };
        items.push(json!({
            "lender_id": row[0].as_text(),
            "name": row[1].as_text(),
            "contact_email": row[2].as_text(),
            "audiences": audiences,
            "status": status.as_str(),
            "key_prefix": row[6].as_text(),
            "webhook_url": row[7].as_text(),
            "registered_at": row[8].as_text(),
            "position": row[9].as_int(),
        }));
    }
    let next = items
        .last()
        .filter(|_| more)
        .and_then(|item| item["lender_id"].as_str())
        .map(str::to_owned);
    Ok((items, next))
}

/// Every issuer of the trust registry, in registration order, as the API
/// shows it.
pub async fn issuers(db: &ReadDb) -> Result<Vec<Value>, ReadError> {
    let rows = db
        .fetch(
            "SELECT issuer_id, did, name, suspended, credential_types, keys, registered_at, key_sources \
             FROM issuers ORDER BY registered_at, issuer_id",
            &[],
            &[
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Bool,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Text,
            ],
        )
        .await?;
    let json_of = |text: Option<&str>| -> Result<Value, ReadError> {
        text.map_or(Ok(Value::Null), |t| {
            serde_json::from_str(t).map_err(|e| ReadError::Data(e.to_string()))
        })
    };
    rows.iter()
        .map(|row| {
            let mut keys = json_of(row[5].as_text())?;
            for key in keys.as_array_mut().into_iter().flatten() {
                for field in ["retired_at", "revoked_at"] {
                    if key.get(field).is_none() {
                        key[field] = Value::Null;
                    }
                }
                if key.get("source").is_none() {
                    key["source"] = "registered".into();
                }
            }
            Ok(json!({
                "issuer_id": row[0].as_text(),
                "did": row[1].as_text(),
                "name": row[2].as_text(),
                "status": if row[3].as_bool() == Some(true) { "suspended" } else { "active" },
                "credential_types": json_of(row[4].as_text())?,
                "keys": keys,
                "key_sources": json_of(row[7].as_text())?,
                "registered_at": row[6].as_text(),
            }))
        })
        .collect()
}

/// Which presentation requests a lender lists.
#[derive(Debug, Clone)]
pub struct PresentationRequestFilter {
    pub status: Option<proofline_domain::presentation_request::Status>,
    /// Only those created before this position (the cursor).
    pub before_position: Option<u64>,
    /// A pending or retrieved request past its expiry reads `expired`.
    pub now: proofline_domain::log::Timestamp,
}

/// A page of a lender's presentation requests, newest first, and the
/// cursor of the next page when there may be more.
pub async fn presentation_requests(
    db: &ReadDb,
    lender_id: &str,
    filter: &PresentationRequestFilter,
    limit: usize,
) -> Result<(Vec<Value>, Option<u64>), ReadError> {
    use proofline_domain::presentation_request::Status;
    let mut sql = String::from(
        "SELECT request_id, status, dcql_satisfied, client_id, response_mode, expires_at, \
         created_at, completed_at, created_position, position FROM presentation_requests \
         WHERE lender_id = $1",
    );
    let now = filter.now.to_rfc3339();
    let mut params = vec![Param::text(lender_id)];
    if let Some(status) = filter.status {
        params.push(Param::text(now.clone()));
        let now_at = params.len();
        let live = "status IN ('pending', 'retrieved')";
        match status {
            Status::Pending | Status::Retrieved => {
                params.push(Param::text(status.as_str()));
                sql.push_str(&format!(
                    " AND status = ${} AND expires_at > ${now_at}",
                    params.len()
                ));
            }
            Status::Expired => sql.push_str(&format!(
                " AND (status = 'expired' OR ({live} AND expires_at <= ${now_at}))"
            )),
            Status::Verified | Status::Rejected | Status::WalletError => {
                params.pop();
                params.push(Param::text(status.as_str()));
                sql.push_str(&format!(" AND status = ${}", params.len()));
            }
        }
    }
    if let Some(before) = filter.before_position {
        params.push(Param::int(before as i64));
        sql.push_str(&format!(" AND created_position < ${}", params.len()));
    }
    params.push(Param::int(limit as i64 + 1));
    sql.push_str(&format!(
        " ORDER BY created_position DESC LIMIT ${}",
        params.len()
    ));
    let kinds = [
        Kind::Text,
        Kind::Text,
        Kind::Bool,
        Kind::Text,
        Kind::Text,
        Kind::Text,
        Kind::Text,
        Kind::Text,
        Kind::Int,
        Kind::Int,
    ];
    let rows = db.fetch(&sql, &params, &kinds).await?;
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(limit.min(rows.len()));
    let mut last = None;
    for row in rows.iter().take(limit) {
        let expires_at = row[5].as_text().unwrap_or_default();
        let mut status = row[1].as_text().unwrap_or_default();
        if matches!(status, "pending" | "retrieved") && expires_at <= now.as_str() {
            status = "expired";
        }
        last = row[8].as_int().map(|p| p as u64);
        items.push(json!({
            "request_id": row[0].as_text(),
            "status": status,
            "dcql_satisfied": row[2].as_bool(),
            "client_id": row[3].as_text(),
            "response_mode": row[4].as_text(),
            "expires_at": expires_at,
            "created_at": row[6].as_text(),
            "completed_at": row[7].as_text(),
            "position": row[9].as_int(),
        }));
    }
    Ok((items, if more { last } else { None }))
}
