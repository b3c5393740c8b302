//! The audit log in the database: each change appends its event, as a Merkle leaf, inside the
//! transaction of the change; readers get entries, nodes for proofs, checkpoints and filtered events.
//!
//! *Invariant*: this module is the only writer of `audit_events`, `audit_nodes` and `audit_tree`, and
//! every public write method of the store calls [`append`] before committing; so no change exists without
//! its event and no event without its change. Appends lock the single `audit_tree` row, so sequence
//! numbers are gap-free and totally ordered even with several replicas on one PostgreSQL database.

use super::rows::{self, BindValue, SqlBuilder};
use super::{Attribution, Backend, Store};
use crate::StoreError;
use modelgate_audit::merkle::{self, Frontier, Hash, NodeId, NodeSource};
use modelgate_audit::{AuditEvent, Outcome};
use modelgate_core::{Actor, Timestamp};
use sqlx::{Any, Transaction};
use std::collections::BTreeMap;

/// What a change did, for its audit event.
pub(crate) struct AuditRecord {
    /// `model.create`, `version.tag.set`, `token.revoke` …
    pub action: &'static str,
    /// The resource changed, as a path: `model/credit-default`, `model/credit-default/version/3`, `user/alice`.
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub created_at: Timestamp,
}

/// Filters for reading events back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The target and everything under it (`model/x` matches `model/x/version/2`); `model/NAME` also
    /// matches the events of the model's promotion requests.
    pub target: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Any of these actions (none: any action).
    pub actions: Vec<String>,
    pub since: Option<Timestamp>,
    /// Events recorded before this time.
    pub until: Option<Timestamp>,
    /// `ok` or `denied`.
    pub outcome: Option<String>,
    pub after_seq: Option<u64>,
    /// Events before this position (paging newest first).
    pub before_seq: Option<u64>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
    pub limit: u32,
}

fn actor_fields(actor: &Actor) -> (String, Option<String>) {
    match actor {
        Actor::User {
            username, token_id, ..
        } => (username.to_string(), token_id.clone()),
        Actor::System { reason } => (format!("system:{reason}"), None),
        Actor::Anonymous => ("anonymous".to_owned(), None),
    }
}

pub(crate) fn hash_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

pub(crate) fn parse_hash(column: &str, text: &str) -> Result<Hash, StoreError> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| StoreError::corrupt(format!("{column}: not a hex SHA-256")))
}

pub(crate) fn to_u64(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(format!("{column} is negative")))
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Appends the event of a change made in `transaction`.
pub(crate) async fn append(
    transaction: &mut Transaction<'static, Any>,
    backend: Backend,
    attribution: &Attribution,
    record: AuditRecord,
) -> Result<u64, StoreError> {
    append_change(transaction, backend, attribution, record, None).await
}

/// Appends the event of a decision (a request opened, reviewed, approved, rejected; a version promoted),
/// naming the policy revision in force.
pub(crate) async fn append_decision(
    transaction: &mut Transaction<'static, Any>,
    backend: Backend,
    attribution: &Attribution,
    record: AuditRecord,
    policy_digest: &str,
) -> Result<u64, StoreError> {
    append_change(
        transaction,
        backend,
        attribution,
        record,
        Some(policy_digest.to_owned()),
    )
    .await
}

async fn append_change(
    transaction: &mut Transaction<'static, Any>,
    backend: Backend,
    attribution: &Attribution,
    record: AuditRecord,
    policy_digest: Option<String>,
) -> Result<u64, StoreError> {
    append_event(
        transaction,
        backend,
        attribution,
        record.action,
        record.target,
        Outcome::Ok,
        None,
        record.before,
        record.after,
        policy_digest,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn append_event(
    transaction: &mut Transaction<'static, Any>,
    backend: Backend,
    attribution: &Attribution,
    action: &str,
    target: String,
    outcome: Outcome,
    reason: Option<String>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    policy_digest: Option<String>,
) -> Result<u64, StoreError> {
    let lock = match backend {
        Backend::Postgres => "SELECT size, frontier FROM audit_tree WHERE id = 1 FOR UPDATE",
        Backend::Sqlite => "SELECT size, frontier FROM audit_tree WHERE id = 1",
    };
    let state = sqlx::query(lock).fetch_one(&mut **transaction).await?;
    let size = to_u64(rows::get(&state, "size")?, "audit_tree.size")?;
    let mut frontier = parse_frontier(size, &rows::get::<String>(&state, "frontier")?)?;
    let (actor, token_id) = actor_fields(&attribution.actor);
    let event = AuditEvent {
        seq: size,
        time: attribution.at.to_rfc3339(),
        actor,
        token_id,
        action: action.to_owned(),
        target,
        outcome,
        reason,
        before,
        after,
        request_id: attribution.request_id.clone(),
        client_addr: attribution.client_addr.clone(),
        policy_digest,
    };
    let leaf = event
        .to_leaf()
        .map_err(|error| StoreError::corrupt(error.to_string()))?;
    let leaf_text =
        String::from_utf8(leaf).map_err(|_| StoreError::corrupt("canonical JSON is not UTF-8"))?;
    let hash = merkle::leaf_hash(leaf_text.as_bytes());
    let created = frontier.append(hash);
    // The three writes go to the database in one round trip: per statement, the driver's hand-off costs
    // more than SQLite's work. Values travel as hex literals, so no text can break out of the statement
    // whatever it holds (and independently of PostgreSQL's string settings).
    let text = |value: &str| text_literal(backend, value);
    let mut sql = format!(
        "INSERT INTO audit_events (seq, recorded_at, actor, action, target, outcome, leaf, leaf_hash) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, '{}');",
        size,
        attribution.at.unix_millis(),
        text(&event.actor),
        text(&event.action),
        text(&event.target),
        text(outcome.as_str()),
        text(&leaf_text),
        hash_hex(&hash),
    );
    if !created.is_empty() {
        let values: Vec<String> = created
            .iter()
            .map(|(id, node)| format!("({}, {}, '{}')", id.level, id.index, hash_hex(node)))
            .collect();
        sql.push_str(&format!(
            "INSERT INTO audit_nodes (level, idx, hash) VALUES {};",
            values.join(", ")
        ));
    }
    let frontier_text: String = frontier.hashes().iter().map(hash_hex).collect();
    sql.push_str(&format!(
        "UPDATE audit_tree SET size = {}, frontier = '{frontier_text}' WHERE id = 1;",
        frontier.size()
    ));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut **transaction)
        .await?;
    Ok(size)
}

/// The filter's conditions other than the target, as ` AND …` clauses.
fn push_audit_conditions(sql: &mut SqlBuilder, filter: &AuditFilter) {
    for (column, value) in [
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("outcome", &filter.outcome),
    ] {
        if let Some(value) = value {
            sql.push(&format!(" AND {column} = "))
                .push_bind(BindValue::Text(value.clone()));
        }
    }
    if !filter.actions.is_empty() {
        sql.push(" AND action IN (");
        for (index, action) in filter.actions.iter().enumerate() {
            if index > 0 {
                sql.push(", ");
            }
            sql.push_bind(BindValue::Text(action.clone()));
        }
        sql.push(")");
    }
    if let Some(since) = filter.since {
        sql.push(" AND recorded_at >= ")
            .push_bind(BindValue::Integer(since.unix_millis()));
    }
    if let Some(until) = filter.until {
        sql.push(" AND recorded_at < ")
            .push_bind(BindValue::Integer(until.unix_millis()));
    }
    if let Some(after) = filter.after_seq {
        sql.push(" AND seq > ")
            .push_bind(BindValue::Integer(to_i64(after)));
    }
    if let Some(before) = filter.before_seq {
        sql.push(" AND seq < ")
            .push_bind(BindValue::Integer(to_i64(before)));
    }
}

/// A text value as an SQL expression built only from hex digits.
fn text_literal(backend: Backend, value: &str) -> String {
    let hex = hex::encode(value.as_bytes());
    match backend {
        Backend::Sqlite => format!("CAST(X'{hex}' AS TEXT)"),
        Backend::Postgres => format!("convert_from(decode('{hex}', 'hex'), 'UTF8')"),
    }
}

fn parse_frontier(size: u64, text: &str) -> Result<Frontier, StoreError> {
    if !text.len().is_multiple_of(64) {
        return Err(StoreError::corrupt(
            "audit_tree.frontier has a partial hash",
        ));
    }
    let hashes = (0..text.len() / 64)
        .map(|i| parse_hash("audit_tree.frontier", &text[i * 64..(i + 1) * 64]))
        .collect::<Result<Vec<_>, _>>()?;
    Frontier::from_parts(size, hashes).map_err(|error| StoreError::corrupt(error.to_string()))
}

fn checkpoint_from_row(row: &sqlx::any::AnyRow) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        size: to_u64(rows::get(row, "tree_size")?, "tree_size")?,
        root: parse_hash("root_hash", &rows::get::<String>(row, "root_hash")?)?,
        note: rows::get(row, "note")?,
        created_at: rows::timestamp(row, "created_at")?,
    })
}

/// Nodes fetched for one proof.
struct FetchedNodes(BTreeMap<NodeId, Hash>);

impl NodeSource for FetchedNodes {
    fn node(&self, id: NodeId) -> Result<Hash, merkle::MerkleError> {
        self.0.node(id)
    }
}

impl Store {
    /// Records a refused attempt (authentication failure, permission or policy denial) in its own
    /// transaction.
    pub async fn record_refusal(
        &self,
        attribution: &Attribution,
        action: &str,
        target: &str,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let seq = append_event(
            &mut transaction,
            self.backend,
            attribution,
            action,
            target.to_owned(),
            Outcome::Denied,
            Some(reason.to_owned()),
            None,
            None,
            None,
        )
        .await?;
        self.commit(transaction).await?;
        Ok(seq)
    }

    /// Records `count` refused attempts that share an action, source and reason as one event (the server
    /// aggregates refused authentication so that refusals cannot grow the log without bound); `after`
    /// holds `{"count", "first_at", "last_at"}` and `target` names the first attempt of the batch.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_refusals(
        &self,
        attribution: &Attribution,
        action: &str,
        target: &str,
        reason: &str,
        count: u64,
        first_at: Timestamp,
        last_at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let seq = append_event(
            &mut transaction,
            self.backend,
            attribution,
            action,
            target.to_owned(),
            Outcome::Denied,
            Some(reason.to_owned()),
            None,
            Some(serde_json::json!({
                "count": count,
                "first_at": first_at.to_rfc3339(),
                "last_at": last_at.to_rfc3339(),
            })),
            None,
        )
        .await?;
        self.commit(transaction).await?;
        Ok(seq)
    }

    /// The log's current size and root.
    pub async fn audit_tree_head(&self) -> Result<(u64, Hash), StoreError> {
        let state = sqlx::query("SELECT size, frontier FROM audit_tree WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        let size = to_u64(rows::get(&state, "size")?, "audit_tree.size")?;
        let frontier = parse_frontier(size, &rows::get::<String>(&state, "frontier")?)?;
        Ok((size, frontier.root()))
    }

    /// Leaf bytes of entries `start..end`, in order.
    pub async fn audit_entries(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        sqlx::query("SELECT seq, leaf FROM audit_events WHERE seq >= $1 AND seq < $2 ORDER BY seq")
            .bind(to_i64(start))
            .bind(to_i64(end))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    to_u64(rows::get(row, "seq")?, "seq")?,
                    rows::get(row, "leaf")?,
                ))
            })
            .collect()
    }

    /// Entries with their stored leaf hashes and filter columns, `start..end`, for direct verification.
    pub async fn audit_rows(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<StoredAuditRow>, StoreError> {
        sqlx::query(
            "SELECT seq, actor, action, target, outcome, leaf, leaf_hash FROM audit_events
             WHERE seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .bind(to_i64(start))
        .bind(to_i64(end))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(StoredAuditRow {
                seq: to_u64(rows::get(row, "seq")?, "seq")?,
                actor: rows::get(row, "actor")?,
                action: rows::get(row, "action")?,
                target: rows::get(row, "target")?,
                outcome: rows::get(row, "outcome")?,
                leaf: rows::get(row, "leaf")?,
                leaf_hash: rows::get(row, "leaf_hash")?,
            })
        })
        .collect()
    }

    async fn fetch_nodes(&self, ids: &[NodeId]) -> Result<FetchedNodes, StoreError> {
        let mut nodes = BTreeMap::new();
        let leaves: Vec<i64> = ids
            .iter()
            .filter(|id| id.level == 0)
            .map(|id| to_i64(id.index))
            .collect();
        let interior: Vec<&NodeId> = ids.iter().filter(|id| id.level > 0).collect();
        let mut connection = self.reader.acquire().await?;
        if !leaves.is_empty() {
            let mut sql = SqlBuilder::new("SELECT seq, leaf_hash FROM audit_events WHERE seq IN (");
            for (position, seq) in leaves.iter().enumerate() {
                if position > 0 {
                    sql.push(", ");
                }
                sql.push_bind(BindValue::Integer(*seq));
            }
            sql.push(")");
            for row in sql.build().fetch_all(&mut *connection).await? {
                let index = to_u64(rows::get(&row, "seq")?, "seq")?;
                let hash = parse_hash("leaf_hash", &rows::get::<String>(&row, "leaf_hash")?)?;
                nodes.insert(NodeId { level: 0, index }, hash);
            }
        }
        if !interior.is_empty() {
            let mut sql = SqlBuilder::new("SELECT level, idx, hash FROM audit_nodes WHERE ");
            for (position, id) in interior.iter().enumerate() {
                if position > 0 {
                    sql.push(" OR ");
                }
                sql.push("(level = ")
                    .push_bind(BindValue::Integer(i64::from(id.level)))
                    .push(" AND idx = ")
                    .push_bind(BindValue::Integer(to_i64(id.index)))
                    .push(")");
            }
            for row in sql.build().fetch_all(&mut *connection).await? {
                let level = u32::try_from(rows::get::<i64>(&row, "level")?)
                    .map_err(|_| StoreError::corrupt("audit_nodes.level"))?;
                let index = to_u64(rows::get(&row, "idx")?, "idx")?;
                let hash = parse_hash("audit_nodes.hash", &rows::get::<String>(&row, "hash")?)?;
                nodes.insert(NodeId { level, index }, hash);
            }
        }
        Ok(FetchedNodes(nodes))
    }

    async fn current_size(&self) -> Result<u64, StoreError> {
        Ok(self.audit_tree_head().await?.0)
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries, with that tree's root.
    pub async fn audit_inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(Vec<Hash>, Hash), StoreError> {
        let current = self.current_size().await?;
        if size > current || index >= size {
            return Err(StoreError::FailedPrecondition(format!(
                "an inclusion proof needs index < tree_size <= {current} (the log's size); got index {index}, tree_size {size}"
            )));
        }
        let mut ids = merkle::inclusion_proof_nodes(index, size)
            .map_err(|error| StoreError::FailedPrecondition(error.to_string()))?;
        ids.extend(merkle::root_nodes(size));
        let nodes = self.fetch_nodes(&ids).await?;
        let proof = merkle::inclusion_proof(&nodes, index, size)
            .map_err(|error| StoreError::corrupt(error.to_string()))?;
        let root = merkle::root_at(&nodes, size)
            .map_err(|error| StoreError::corrupt(error.to_string()))?;
        Ok((proof, root))
    }

    /// The consistency proof between the trees of `first` and `second` entries, with both roots.
    pub async fn audit_consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<(Vec<Hash>, Hash, Hash), StoreError> {
        let current = self.current_size().await?;
        if second > current || first == 0 || first > second {
            return Err(StoreError::FailedPrecondition(format!(
                "a consistency proof needs 0 < first <= second <= {current} (the log's size); got {first} and {second}"
            )));
        }
        let ids = merkle::consistency_proof_nodes(first, second)
            .map_err(|error| StoreError::FailedPrecondition(error.to_string()))?;
        let nodes = self.fetch_nodes(&ids).await?;
        let corrupt = |error: merkle::MerkleError| StoreError::corrupt(error.to_string());
        let proof = merkle::consistency_proof(&nodes, first, second).map_err(corrupt)?;
        let first_root = merkle::root_at(&nodes, first).map_err(corrupt)?;
        let second_root = merkle::root_at(&nodes, second).map_err(corrupt)?;
        Ok((proof, first_root, second_root))
    }

    /// Stores a signed checkpoint; a second one for the same size (another replica's) is ignored.
    pub async fn save_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, note, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(to_i64(checkpoint.size))
        .bind(hash_hex(&checkpoint.root))
        .bind(checkpoint.note.as_str())
        .bind(checkpoint.created_at.unix_millis())
        .execute(&mut *transaction)
        .await?;
        self.commit(transaction).await?;
        Ok(())
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        sqlx::query(
            "SELECT tree_size, root_hash, note, created_at FROM audit_checkpoints
             ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(checkpoint_from_row)
        .transpose()
    }

    pub async fn list_checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        sqlx::query("SELECT tree_size, root_hash, note, created_at FROM audit_checkpoints ORDER BY tree_size")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(checkpoint_from_row)
            .collect()
    }

    /// Events matching the filter, oldest first, as `(seq, leaf bytes)`.
    pub async fn list_audit_events(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let order = if filter.newest_first {
            " ORDER BY seq DESC LIMIT "
        } else {
            " ORDER BY seq LIMIT "
        };
        let limit = i64::from(filter.limit.max(1));
        let mut sql = SqlBuilder::new("");
        let Some(target) = &filter.target else {
            sql.push("SELECT seq, leaf FROM audit_events WHERE 1 = 1");
            push_audit_conditions(&mut sql, filter);
            sql.push(order).push_bind(BindValue::Integer(limit));
            return self.fetch_audit_rows(sql).await;
        };
        // The target, what lies under it (`model/x` and `model/x/version/1`), and for a model the events
        // of its promotion requests (`request/N`): disjoint sets, each read through the index on
        // `target` as its own branch with its own limit, then merged. (One `OR` of the three let the
        // planner walk the whole log newest first, filtering, when the target's events are old.)
        // "Under it" is the range [`target/`, `target0`) (`0` follows `/`) in byte order; PostgreSQL
        // compares in the "C" collation whatever the database's, which `audit_events_by_target_bytes`
        // (0009) indexes.
        let column = match self.backend {
            Backend::Sqlite => "target",
            Backend::Postgres => "(target COLLATE \"C\")",
        };
        let model = target
            .strip_prefix("model/")
            .filter(|name| !name.contains('/'));
        sql.push("SELECT seq, leaf FROM (");
        let branches = if model.is_some() { 3 } else { 2 };
        for branch in 0..branches {
            if branch > 0 {
                sql.push(" UNION ALL ");
            }
            sql.push("SELECT * FROM (SELECT seq, leaf FROM audit_events WHERE ");
            match branch {
                0 => {
                    sql.push("target = ")
                        .push_bind(BindValue::Text(target.clone()));
                }
                1 => {
                    sql.push(&format!("{column} >= "))
                        .push_bind(BindValue::Text(format!("{target}/")))
                        .push(&format!(" AND {column} < "))
                        .push_bind(BindValue::Text(format!("{target}0")));
                }
                _ => {
                    sql.push(
                        "target IN (SELECT 'request/' || CAST(r.id AS TEXT) FROM promotion_requests r \
                         JOIN models m ON m.id = r.model_id WHERE m.name = ",
                    )
                    .push_bind(BindValue::Text(model.unwrap_or_default().to_owned()))
                    .push(")");
                }
            }
            push_audit_conditions(&mut sql, filter);
            sql.push(order)
                .push_bind(BindValue::Integer(limit))
                .push(&format!(") AS branch_{branch}"));
        }
        sql.push(") AS matched");
        sql.push(order).push_bind(BindValue::Integer(limit));
        self.fetch_audit_rows(sql).await
    }

    async fn fetch_audit_rows(&self, sql: SqlBuilder) -> Result<Vec<(u64, String)>, StoreError> {
        sql.build()
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    to_u64(rows::get(row, "seq")?, "seq")?,
                    rows::get(row, "leaf")?,
                ))
            })
            .collect()
    }

    /// The actions recorded for a target, oldest first.
    pub async fn audit_actions_for(&self, target: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query("SELECT action FROM audit_events WHERE target = $1 ORDER BY seq")
            .bind(target)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| rows::get(row, "action"))
            .collect()
    }
}

/// One stored audit row as it is in the database, for verification that trusts none of it.
#[derive(Debug, Clone)]
pub struct StoredAuditRow {
    pub seq: u64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub leaf: String,
    pub leaf_hash: String,
}

/// What a direct verification of the stored log established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogReport {
    pub size: u64,
    pub root: Hash,
    pub checkpoints_verified: usize,
}

/// Rows read per query while verifying.
const VERIFY_BATCH: u64 = 10_000;

impl Store {
    /// Verifies the log as stored, trusting nothing in the database: every checkpoint's signature with
    /// `verifier`, every leaf hash recomputed from the entry bytes, the filter columns against the entry,
    /// numbering without gaps, every checkpoint's root at its size, and the stored tree head. Returns the
    /// first problem, naming the index where one can be named.
    pub async fn verify_stored_log(
        &self,
        verifier: &modelgate_audit::NoteVerifier,
        mut progress: impl FnMut(u64),
    ) -> Result<Result<StoredLogReport, modelgate_audit::LogProblem>, StoreError> {
        use modelgate_audit::{ExpectedRoot, LogProblem, LogVerifier};
        let checkpoints = self.list_checkpoints().await?;
        let mut log = LogVerifier::new();
        for stored in &checkpoints {
            let signed = match verifier.verify(&stored.note) {
                Ok(signed) => signed,
                Err(error) => {
                    return Ok(Err(LogProblem::general(format!(
                        "checkpoint at size {}: {error}",
                        stored.size
                    ))));
                }
            };
            if signed.size != stored.size || signed.root != stored.root {
                return Ok(Err(LogProblem::general(format!(
                    "checkpoint at size {}: its columns differ from the signed note (size {}, root {})",
                    stored.size,
                    signed.size,
                    hash_hex(&signed.root)
                ))));
            }
            log.expect_root(
                signed.size,
                ExpectedRoot {
                    root: signed.root,
                    label: format!("the signed checkpoint at size {}", signed.size),
                },
            );
        }
        let (head_size, head_root) = self.audit_tree_head().await?;
        let mut start = 0u64;
        loop {
            let batch = self
                .audit_rows(start, start.saturating_add(VERIFY_BATCH))
                .await?;
            let Some(last) = batch.last().map(|row| row.seq) else {
                // A gap of a whole batch (or the end): look for any later row.
                let later =
                    sqlx::query("SELECT MIN(seq) AS next FROM audit_events WHERE seq >= $1")
                        .bind(to_i64(start))
                        .fetch_one(&self.reader)
                        .await?;
                match rows::get::<Option<i64>>(&later, "next")? {
                    Some(next) => {
                        return Ok(Err(LogProblem::at(
                            start,
                            format!("entries {start}..{next} are missing"),
                        )));
                    }
                    None => break,
                }
            };
            for (position, row) in batch.iter().enumerate() {
                if let Err(problem) =
                    check_row(row).and_then(|()| log.push(row.seq, row.leaf.as_bytes()).map(|_| ()))
                {
                    return Ok(Err(problem));
                }
                // Hashing a batch takes tens of milliseconds: let the server's other tasks (the pages
                // of the web UI, which verifies in the background) run in between.
                if position % 256 == 255 {
                    tokio::task::yield_now().await;
                }
            }
            progress(last + 1);
            start = last + 1;
        }
        let (size, root) = match log.finish() {
            Ok(done) => done,
            Err(problem) => return Ok(Err(problem)),
        };
        if size != head_size || root != head_root {
            return Ok(Err(LogProblem::general(format!(
                "the stored tree head (size {head_size}, root {}) differs from the entries (size {size}, root {})",
                hash_hex(&head_root),
                hash_hex(&root)
            ))));
        }
        Ok(Ok(StoredLogReport {
            size,
            root,
            checkpoints_verified: checkpoints.len(),
        }))
    }
}

/// Checks one stored row against its own bytes: the stored hash and the filter columns.
fn check_row(row: &StoredAuditRow) -> Result<(), modelgate_audit::LogProblem> {
    use modelgate_audit::LogProblem;
    let recomputed = hash_hex(&merkle::leaf_hash(row.leaf.as_bytes()));
    if recomputed != row.leaf_hash {
        return Err(LogProblem::at(
            row.seq,
            "the entry's bytes no longer hash to the stored leaf hash (the entry was edited)",
        ));
    }
    let event = AuditEvent::from_leaf(row.leaf.as_bytes())
        .map_err(|error| LogProblem::at(row.seq, error.to_string()))?;
    for (column, stored, recorded) in [
        ("actor", &row.actor, &event.actor),
        ("action", &row.action, &event.action),
        ("target", &row.target, &event.target),
        ("outcome", &row.outcome, &event.outcome.as_str().to_owned()),
    ] {
        if stored != recorded {
            return Err(LogProblem::at(
                row.seq,
                format!(
                    "column {column} says {stored:?} but the entry records {recorded:?} (the row was edited)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(feature = "bench-support")]
impl Store {
    /// Benchmarks only: an empty write transaction, to subtract its cost from measured changes.
    #[doc(hidden)]
    pub async fn empty_write_transaction(&self) -> Result<(), StoreError> {
        self.begin_write().await?.commit().await?;
        Ok(())
    }

    /// Benchmarks only: writes prepared audit rows, nodes and the tree head in one transaction, to build
    /// a log of millions of events quickly. It bypasses [`append`], so it is compiled only with the
    /// `bench-support` feature and never into the server.
    #[doc(hidden)]
    pub async fn bulk_load_audit_for_benchmarks(
        &self,
        events: &[(u64, String, Hash)],
        nodes: &[(NodeId, Hash)],
        frontier: &Frontier,
    ) -> Result<(), StoreError> {
        // Multi-row inserts: one statement per few hundred rows, so that a log of millions loads in
        // seconds on PostgreSQL too. `recorded_at` is the event's own time, as `append` writes it.
        const ROWS: usize = 500;
        let mut transaction = self.begin_write().await?;
        for chunk in events.chunks(ROWS) {
            let mut sql = String::from(
                "INSERT INTO audit_events (seq, recorded_at, actor, action, target, outcome, leaf, leaf_hash) VALUES ",
            );
            let mut parsed = Vec::with_capacity(chunk.len());
            for (index, (_, leaf, _)) in chunk.iter().enumerate() {
                let event = AuditEvent::from_leaf(leaf.as_bytes())
                    .map_err(|error| StoreError::corrupt(error.to_string()))?;
                let at = Timestamp::parse_rfc3339(&event.time)
                    .map(|time| time.unix_millis())
                    .unwrap_or(0);
                let base = index * 8;
                sql.push_str(&format!(
                    "{}(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    if index == 0 { "" } else { ", " },
                    base + 1,
                    base + 2,
                    base + 3,
                    base + 4,
                    base + 5,
                    base + 6,
                    base + 7,
                    base + 8
                ));
                parsed.push((event, at));
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((seq, leaf, hash), (event, at)) in chunk.iter().zip(parsed) {
                query = query
                    .bind(to_i64(*seq))
                    .bind(at)
                    .bind(event.actor)
                    .bind(event.action)
                    .bind(event.target)
                    .bind(event.outcome.as_str())
                    .bind(leaf.clone())
                    .bind(hash_hex(hash));
            }
            query.execute(&mut *transaction).await?;
        }
        for chunk in nodes.chunks(ROWS * 2) {
            let mut sql = String::from("INSERT INTO audit_nodes (level, idx, hash) VALUES ");
            for index in 0..chunk.len() {
                let base = index * 3;
                sql.push_str(&format!(
                    "{}(${}, ${}, ${})",
                    if index == 0 { "" } else { ", " },
                    base + 1,
                    base + 2,
                    base + 3
                ));
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, hash) in chunk {
                query = query
                    .bind(i64::from(id.level))
                    .bind(to_i64(id.index))
                    .bind(hash_hex(hash));
            }
            query.execute(&mut *transaction).await?;
        }
        let frontier_text: String = frontier.hashes().iter().map(hash_hex).collect();
        sqlx::query("UPDATE audit_tree SET size = $1, frontier = $2 WHERE id = 1")
            .bind(to_i64(frontier.size()))
            .bind(frontier_text)
            .execute(&mut *transaction)
            .await?;
        self.commit(transaction).await?;
        Ok(())
    }
}
