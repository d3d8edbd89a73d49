//! Agents: create, read, list a page, replace settings, delete.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{
    AgentFields, AgentRecord, AgentStatus, Backend, Framework, OperationStatus, Store, StoreResult, col, parse_enum,
};
use crate::time::now_rfc3339;

/// The columns of an agent, in the order [`to_record`] reads them.
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

fn to_record(row: &AnyRow) -> StoreResult<AgentRecord> {
    Ok(AgentRecord {
        id: col(row, 0)?,
        name: col(row, 1)?,
        description: col(row, 2)?,
        framework: parse_enum("agents.framework", col(row, 3)?, Framework::parse)?,
        entrypoint: col(row, 4)?,
        config: serde_json::from_str(&col::<String>(row, 5)?)?,
        tags: serde_json::from_str(&col::<String>(row, 6)?)?,
        status: parse_enum("agents.status", col(row, 7)?, AgentStatus::parse)?,
        created_at: col(row, 8)?,
        updated_at: col(row, 9)?,
    })
}

/// The agent `id`, unless it does not exist or was deleted; with
/// `lock`, its row stays locked until the transaction ends (PostgreSQL).
pub(super) async fn get(
    conn: &mut AnyConnection,
    backend: Backend,
    id: &str,
    lock: bool,
) -> StoreResult<Option<AgentRecord>> {
    let suffix = if lock { backend.for_update() } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM agents WHERE id = $1 AND deleted_at IS NULL{suffix}");
    sqlx::query(&sql).bind(id).fetch_optional(conn).await?.as_ref().map(to_record).transpose()
}

impl Store {
    /// Creates an agent in status `created`.
    pub async fn create_agent(&self, framework: Framework, fields: AgentFields) -> StoreResult<AgentRecord> {
        let now = now_rfc3339();
        let record = AgentRecord {
            id: crate::ids::new_id("agt_"),
            name: fields.name,
            description: fields.description,
            framework,
            entrypoint: fields.entrypoint,
            config: fields.config,
            tags: fields.tags,
            status: AgentStatus::Created,
            created_at: now.clone(),
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO agents (id, name, description, framework, entrypoint, config, tags, status,
                                 created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(&record.description)
        .bind(framework.as_str())
        .bind(&record.entrypoint)
        .bind(serde_json::to_string(&record.config)?)
        .bind(serde_json::to_string(&record.tags)?)
        .bind(record.status.as_str())
        .bind(&record.created_at)
        .bind(&record.updated_at)
        .execute(self.pool())
        .await?;
        Ok(record)
    }

    /// The agent `id`, unless it does not exist or was deleted.
    pub async fn get_agent(&self, id: &str) -> StoreResult<Option<AgentRecord>> {
        let mut conn = self.pool().acquire().await?;
        get(&mut conn, self.backend(), id, false).await
    }

    /// One page of the live agents, oldest first, optionally only those in
    /// `status`. `page` counts from 1.
    pub async fn list_agents(&self, page: u32, limit: u32, status: Option<AgentStatus>) -> StoreResult<AgentPage> {
        let status = status.map(AgentStatus::as_str);
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE deleted_at IS NULL AND ($1 IS NULL OR status = $1)")
                .bind(status)
                .fetch_one(self.pool())
                .await?;
        let offset = i64::from(page.max(1) - 1) * i64::from(limit);
        let sql = format!(
            "SELECT {COLUMNS} FROM agents WHERE deleted_at IS NULL AND ($1 IS NULL OR status = $1)
             ORDER BY seq LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql).bind(status).bind(i64::from(limit)).bind(offset).fetch_all(self.pool()).await?;
        let agents = rows.iter().map(to_record).collect::<StoreResult<Vec<_>>>()?;
        Ok(AgentPage { agents, total })
    }

    /// Replaces the mutable settings of agent `id`; `None` when it does not
    /// exist. The status and framework stay as they are.
    pub async fn update_agent(&self, id: &str, fields: AgentFields) -> StoreResult<Option<AgentRecord>> {
        let sql = format!(
            "UPDATE agents SET name = $2, description = $3, entrypoint = $4, config = $5, tags = $6,
                               updated_at = $7
             WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(&fields.name)
            .bind(&fields.description)
            .bind(&fields.entrypoint)
            .bind(serde_json::to_string(&fields.config)?)
            .bind(serde_json::to_string(&fields.tags)?)
            .bind(now_rfc3339())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(to_record).transpose()
    }

    /// Deletes agent `id` for good (its row stays as a tombstone so that its
    /// id is never reused and its operations stay readable), cancelling its
    /// open operations in the same transaction (and telling the instances
    /// running them, on PostgreSQL).
    pub async fn delete_agent(&self, id: &str) -> StoreResult<DeleteOutcome> {
        let mut tx = self.begin().await?;
        let now = now_rfc3339();
        let changed =
            sqlx::query("UPDATE agents SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL")
                .bind(id)
                .bind(&now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 0 {
            return Ok(DeleteOutcome::NotFound);
        }
        let cancelled_operations: Vec<String> = sqlx::query_scalar(
            "UPDATE operations SET status = $2, updated_at = $3, lease_until = NULL
             WHERE agent_id = $1 AND status IN ('pending', 'running') RETURNING id",
        )
        .bind(id)
        .bind(OperationStatus::Cancelled.as_str())
        .bind(&now)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE invocations SET status = 'cancelled', finished_at = $2
             WHERE agent_id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        for operation in &cancelled_operations {
            super::operations::notify_cancel(&mut tx, self.backend(), operation).await?;
        }
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted { cancelled_operations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{backends, reopen};
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

    #[tokio::test]
    async fn create_get_update_delete_round_trip() {
        for (name, store, _guard) in backends().await {
            let created = store.create_agent(Framework::Echo, fields("one")).await.unwrap();
            assert!(created.id.starts_with("agt_"));
            assert_eq!(created.status, AgentStatus::Created);
            let read = store.get_agent(&created.id).await.unwrap();
            assert_eq!(read.as_ref(), Some(&created), "{name}");

            let mut new = fields("renamed");
            new.description = None;
            new.entrypoint = Some("bin/run.sh".to_owned());
            new.config = json!({});
            new.tags = vec![];
            let updated = store.update_agent(&created.id, new).await.unwrap().unwrap();
            assert_eq!(updated.name, "renamed");
            assert_eq!(updated.description, None);
            assert_eq!(updated.entrypoint.as_deref(), Some("bin/run.sh"));
            assert_eq!(updated.framework, Framework::Echo);
            assert_eq!(updated.created_at, created.created_at);
            store.close().await;

            // It survives a restart.
            let store = reopen(&store).await;
            assert_eq!(store.get_agent(&created.id).await.unwrap(), Some(updated), "{name}");
            assert_eq!(
                store.delete_agent(&created.id).await.unwrap(),
                DeleteOutcome::Deleted { cancelled_operations: vec![] }
            );
            assert_eq!(store.get_agent(&created.id).await.unwrap(), None);
            assert_eq!(store.delete_agent(&created.id).await.unwrap(), DeleteOutcome::NotFound);
            assert_eq!(store.update_agent(&created.id, fields("x")).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn pages_are_oldest_first_and_filtered() {
        for (name, store, _guard) in backends().await {
            let mut ids = Vec::new();
            for i in 0..45 {
                ids.push(store.create_agent(Framework::Echo, fields(&format!("a{i}"))).await.unwrap().id);
            }
            let page = |p, s| {
                let store = store.clone();
                async move { store.list_agents(p, 20, s).await.unwrap() }
            };
            let first = page(1, None).await;
            assert_eq!(first.total, 45, "{name}");
            assert_eq!(first.agents.len(), 20);
            assert_eq!(first.agents[0].id, ids[0]);
            let third = page(3, None).await;
            assert_eq!(third.agents.iter().map(|a| &a.id).collect::<Vec<_>>(), ids[40..].iter().collect::<Vec<_>>());
            assert!(page(4, None).await.agents.is_empty());
            assert!(page(u32::MAX, None).await.agents.is_empty());
            let deployed = page(1, Some(AgentStatus::Deployed)).await;
            assert_eq!((deployed.total, deployed.agents.len()), (0, 0));
            let created = page(1, Some(AgentStatus::Created)).await;
            assert_eq!(created.total, 45);
            store.delete_agent(&ids[0]).await.unwrap();
            assert_eq!(page(1, None).await.total, 44);
            assert_eq!(page(1, None).await.agents[0].id, ids[1]);
        }
    }
}
