//! Agents: create, read, list a page, replace settings, delete.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{AgentFields, AgentRecord, AgentStatus, Framework, OperationStatus, Store, StoreResult, parse_enum};
use crate::time::now_rfc3339;

/// The columns of an agent, in the order [`row_to_agent`] reads them.
const COLUMNS: &str = "id, name, description, framework, entrypoint, config, tags, status, created_at, updated_at";

/// A page of agents and the size of the whole list.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentPage {
    /// The agents on the page, oldest first.
    pub agents: Vec<AgentRecord>,
    /// The number of agents over all pages.
    pub total: i64,
}

/// What deleting an agent did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The agent was deleted; these of its operations were still open and
    /// are now cancelled (their work must be stopped).
    Deleted {
        /// The operations cancelled with the agent.
        cancelled_operations: Vec<String>,
    },
    /// No such agent.
    NotFound,
}

type RawAgent = (String, String, Option<String>, String, Option<String>, String, String, String, String, String);

fn row_to_agent(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawAgent> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn to_record(raw: RawAgent) -> StoreResult<AgentRecord> {
    let (id, name, description, framework, entrypoint, config, tags, status, created, updated) = raw;
    Ok(AgentRecord {
        id,
        name,
        description,
        framework: parse_enum("agents.framework", framework, Framework::parse)?,
        entrypoint,
        config: serde_json::from_str(&config)?,
        tags: serde_json::from_str(&tags)?,
        status: parse_enum("agents.status", status, AgentStatus::parse)?,
        created_at: created,
        updated_at: updated,
    })
}

/// Creates an agent in status `created`.
pub fn create(conn: &mut Connection, framework: Framework, fields: &AgentFields) -> StoreResult<AgentRecord> {
    let now = now_rfc3339();
    let record = AgentRecord {
        id: crate::ids::new_id("agt_"),
        name: fields.name.clone(),
        description: fields.description.clone(),
        framework,
        entrypoint: fields.entrypoint.clone(),
        config: fields.config.clone(),
        tags: fields.tags.clone(),
        status: AgentStatus::Created,
        created_at: now.clone(),
        updated_at: now,
    };
    conn.execute(
        "INSERT INTO agents (id, name, description, framework, entrypoint, config, tags, status,
                             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            record.id,
            record.name,
            record.description,
            framework.as_str(),
            record.entrypoint,
            serde_json::to_string(&record.config)?,
            serde_json::to_string(&record.tags)?,
            record.status.as_str(),
            record.created_at,
            record.updated_at,
        ],
    )?;
    Ok(record)
}

/// The agent `id`, unless it does not exist or was deleted.
pub fn get(conn: &Connection, id: &str) -> StoreResult<Option<AgentRecord>> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM agents WHERE id = ?1 AND deleted_at IS NULL"), [id], row_to_agent)
        .optional()?
        .map(to_record)
        .transpose()
}

/// One page of the live agents, oldest first, optionally only those in
/// `status`. `page` counts from 1.
pub fn list(conn: &Connection, page: u32, limit: u32, status: Option<AgentStatus>) -> StoreResult<AgentPage> {
    let status = status.map(AgentStatus::as_str);
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM agents WHERE deleted_at IS NULL AND (?1 IS NULL OR status = ?1)",
        [status],
        |r| r.get(0),
    )?;
    let offset = i64::from(page.max(1) - 1) * i64::from(limit);
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM agents WHERE deleted_at IS NULL AND (?1 IS NULL OR status = ?1)
         ORDER BY seq LIMIT ?2 OFFSET ?3"
    ))?;
    let agents = stmt
        .query_map(params![status, i64::from(limit), offset], row_to_agent)?
        .map(|raw| to_record(raw?))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(AgentPage { agents, total })
}

/// Replaces the mutable settings of agent `id`; `None` when it does not
/// exist. The status and framework stay as they are.
pub fn update(conn: &mut Connection, id: &str, fields: &AgentFields) -> StoreResult<Option<AgentRecord>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let changed = tx.execute(
        "UPDATE agents SET name = ?2, description = ?3, entrypoint = ?4, config = ?5, tags = ?6,
                           updated_at = ?7
         WHERE id = ?1 AND deleted_at IS NULL",
        params![
            id,
            fields.name,
            fields.description,
            fields.entrypoint,
            serde_json::to_string(&fields.config)?,
            serde_json::to_string(&fields.tags)?,
            now_rfc3339(),
        ],
    )?;
    let record = if changed == 0 { None } else { get(&tx, id)? };
    tx.commit()?;
    Ok(record)
}

/// Deletes agent `id` for good (its row stays as a tombstone so that its
/// id is never reused and its operations stay readable), cancelling its
/// open operations in the same transaction.
pub fn delete(conn: &mut Connection, id: &str) -> StoreResult<DeleteOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_rfc3339();
    let changed = tx.execute(
        "UPDATE agents SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
        params![id, now],
    )?;
    if changed == 0 {
        return Ok(DeleteOutcome::NotFound);
    }
    let cancelled_operations = {
        let mut stmt = tx.prepare(
            "UPDATE operations SET status = ?2, updated_at = ?3
             WHERE agent_id = ?1 AND status IN ('pending', 'running') RETURNING id",
        )?;
        stmt.query_map(params![id, OperationStatus::Cancelled.as_str(), now], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?
    };
    tx.execute(
        "UPDATE invocations SET status = 'cancelled', finished_at = ?2
         WHERE agent_id = ?1 AND status = 'running'",
        params![id, now],
    )?;
    tx.commit()?;
    Ok(DeleteOutcome::Deleted { cancelled_operations })
}

impl Store {
    /// Creates an agent.
    pub async fn create_agent(&self, framework: Framework, fields: AgentFields) -> StoreResult<AgentRecord> {
        self.call(move |c| create(c, framework, &fields)).await
    }

    /// Reads an agent.
    pub async fn get_agent(&self, id: &str) -> StoreResult<Option<AgentRecord>> {
        let id = id.to_owned();
        self.call(move |c| get(c, &id)).await
    }

    /// Reads a page of agents.
    pub async fn list_agents(&self, page: u32, limit: u32, status: Option<AgentStatus>) -> StoreResult<AgentPage> {
        self.call(move |c| list(c, page, limit, status)).await
    }

    /// Replaces an agent's settings.
    pub async fn update_agent(&self, id: &str, fields: AgentFields) -> StoreResult<Option<AgentRecord>> {
        let id = id.to_owned();
        self.call(move |c| update(c, &id, &fields)).await
    }

    /// Deletes an agent.
    pub async fn delete_agent(&self, id: &str) -> StoreResult<DeleteOutcome> {
        let id = id.to_owned();
        self.call(move |c| delete(c, &id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;
    use serde_json::json;

    pub(crate) fn fields(name: &str) -> AgentFields {
        AgentFields {
            name: name.to_owned(),
            description: Some("does things".to_owned()),
            entrypoint: None,
            config: json!({"model": "small"}),
            tags: vec!["a".to_owned(), "b".to_owned()],
        }
    }

    #[test]
    fn create_get_update_delete_round_trip() {
        let (store, _dir, location) = temp_store();
        let created = store.call_blocking(|c| create(c, Framework::Echo, &fields("one"))).unwrap();
        assert!(created.id.starts_with("agt_"));
        assert_eq!(created.status, AgentStatus::Created);
        let read = store.call_blocking(|c| get(c, &created.id)).unwrap();
        assert_eq!(read.as_ref(), Some(&created));

        let mut new = fields("renamed");
        new.description = None;
        new.entrypoint = Some("bin/run.sh".to_owned());
        new.config = json!({});
        new.tags = vec![];
        let updated = store.call_blocking(|c| update(c, &created.id, &new)).unwrap().unwrap();
        assert_eq!(updated.name, "renamed");
        assert_eq!(updated.description, None);
        assert_eq!(updated.entrypoint.as_deref(), Some("bin/run.sh"));
        assert_eq!(updated.framework, Framework::Echo);
        assert_eq!(updated.created_at, created.created_at);
        drop(store);

        // It survives a restart.
        let store = crate::store::Store::open(&location).unwrap();
        let read = store.call_blocking(|c| get(c, &created.id)).unwrap();
        assert_eq!(read, Some(updated));
        assert_eq!(
            store.call_blocking(|c| delete(c, &created.id)).unwrap(),
            DeleteOutcome::Deleted { cancelled_operations: vec![] }
        );
        assert_eq!(store.call_blocking(|c| get(c, &created.id)).unwrap(), None);
        assert_eq!(store.call_blocking(|c| delete(c, &created.id)).unwrap(), DeleteOutcome::NotFound);
        assert_eq!(store.call_blocking(|c| update(c, &created.id, &fields("x"))).unwrap(), None);
    }

    #[test]
    fn pages_are_oldest_first_and_filtered() {
        let (store, _dir, _) = temp_store();
        let ids: Vec<String> = (0..45)
            .map(|i| store.call_blocking(|c| create(c, Framework::Echo, &fields(&format!("a{i}")))).unwrap().id)
            .collect();
        let page = |p, s| store.call_blocking(|c| list(c, p, 20, s)).unwrap();
        let first = page(1, None);
        assert_eq!(first.total, 45);
        assert_eq!(first.agents.len(), 20);
        assert_eq!(first.agents[0].id, ids[0]);
        let third = page(3, None);
        assert_eq!(third.agents.iter().map(|a| &a.id).collect::<Vec<_>>(), ids[40..].iter().collect::<Vec<_>>());
        assert!(page(4, None).agents.is_empty());
        assert!(page(u32::MAX, None).agents.is_empty());
        let deployed = page(1, Some(AgentStatus::Deployed));
        assert_eq!((deployed.total, deployed.agents.len()), (0, 0));
        store.call_blocking(|c| delete(c, &ids[0])).unwrap();
        assert_eq!(page(1, None).total, 44);
        assert_eq!(page(1, None).agents[0].id, ids[1]);
    }
}
