//! The service end to end below HTTP: real store, real processes.

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use super::*;
use crate::store::{DbLocation, OperationKind, OperationStatus};

struct Fixture {
    service: Arc<Service>,
    dir: tempfile::TempDir,
    location: DbLocation,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let location = DbLocation::File(dir.path().join("state.db"));
        Self::on(location, dir).await
    }

    /// A fixture on SQLite, and one on PostgreSQL when its binaries are
    /// installed (skipped loudly otherwise, or failing on CI).
    async fn all() -> Vec<Self> {
        let mut fixtures = vec![Self::new().await];
        if tokio::task::spawn_blocking(crate::store::test_support::pg::shared).await.unwrap().is_some() {
            let fresh = crate::store::test_support::fresh_postgres().await;
            fixtures.push(Self::on(fresh.location, tempfile::tempdir().unwrap()).await);
        }
        fixtures
    }

    /// A fixture on `location`, with its agents in `dir`.
    async fn on(location: DbLocation, dir: tempfile::TempDir) -> Self {
        Self::with(location, dir, ServiceOptions::default()).await
    }

    async fn with(location: DbLocation, dir: tempfile::TempDir, options: ServiceOptions) -> Self {
        std::fs::create_dir_all(dir.path().join("agents")).unwrap();
        let store = Store::open(&location).await.unwrap();
        let service = Service::new(store, Runner::new(dir.path().join("agents")), options);
        Fixture { service, dir, location }
    }

    fn agents_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("agents")
    }

    fn script(&self, name: &str, body: &str) {
        let path = self.agents_dir().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    async fn agent(&self, framework: Framework, entrypoint: Option<&str>) -> AgentRecord {
        self.service
            .create_agent(
                framework,
                AgentFields {
                    name: "agent".into(),
                    description: None,
                    entrypoint: entrypoint.map(str::to_owned),
                    config: json!({}),
                    tags: vec![],
                },
            )
            .await
            .unwrap()
    }

    async fn wait_final(&self, id: &str) -> OperationRecord {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let operation = self.service.get_operation(id).await.unwrap();
            if operation.status.is_final() {
                return operation;
            }
            assert!(Instant::now() < deadline, "{operation:?} never finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn deployed(&self, framework: Framework, entrypoint: Option<&str>) -> AgentRecord {
        let agent = self.agent(framework, entrypoint).await;
        let operation = self.service.deploy(&agent.id, None).await.unwrap();
        let done = self.wait_final(&operation.id).await;
        assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
        self.service.get_agent(&agent.id).await.unwrap()
    }

    async fn wait_for_file(&self, name: &str) -> String {
        let path = self.agents_dir().join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && text.ends_with('\n')
            {
                return text.trim().to_owned();
            }
            assert!(Instant::now() < deadline, "{name} never appeared");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

async fn wait_dead(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_dead(pid) {
        assert!(Instant::now() < deadline, "process {pid} survived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn deploy_then_invoke_an_echo_agent() {
    for f in Fixture::all().await {
        let agent = f.agent(Framework::Echo, None).await;
        let refused = f.service.invoke(&agent.id, None, InvokeInput::new("hi")).await.unwrap_err();
        assert_eq!((refused.status, refused.code), (409, "CONFLICT"));
        assert_eq!(refused.details.unwrap()["agent_status"], "created");

        let operation = f.service.deploy(&agent.id, Some("key_1".into())).await.unwrap();
        assert_eq!(operation.kind, OperationKind::Deploy);
        assert_eq!(operation.status, OperationStatus::Pending);
        let done = f.wait_final(&operation.id).await;
        assert_eq!(done.status, OperationStatus::Succeeded);
        let result = done.result.unwrap();
        assert_eq!(result["agent_id"], json!(agent.id));
        assert_eq!(result["status"], "deployed");
        let agent = f.service.get_agent(&agent.id).await.unwrap();
        assert_eq!(agent.status, AgentStatus::Deployed);
        assert!(f.service.agent_health(&agent.id).await.unwrap().healthy);

        let output =
            f.service.invoke(&agent.id, Some("key_1".into()), InvokeInput::new("Hello there world")).await.unwrap();
        assert_eq!(output.result, "Hello there world");
        assert_eq!(output.tokens_used, 3);

        let missing = f.service.invoke("agt_missing", None, InvokeInput::new("hi")).await.unwrap_err();
        assert_eq!((missing.status, missing.code), (404, "NOT_FOUND"));
    }
}

#[tokio::test]
async fn a_bad_entrypoint_fails_the_deployment_and_the_agent() {
    for f in Fixture::all().await {
        let agent = f.agent(Framework::Command, Some("missing.sh")).await;
        let operation = f.service.deploy(&agent.id, None).await.unwrap();
        let done = f.wait_final(&operation.id).await;
        assert_eq!(done.status, OperationStatus::Failed);
        let error = done.error.unwrap();
        assert_eq!(error["code"], "AGENT_ERROR");
        assert_eq!(error["details"], json!({"field": "entrypoint", "reason": "not_found"}));
        let agent = f.service.get_agent(&agent.id).await.unwrap();
        assert_eq!(agent.status, AgentStatus::Failed);
        let health = f.service.agent_health(&agent.id).await.unwrap();
        assert!(!health.healthy);

        // Fix the program and deploy again: a failed agent can be redeployed.
        f.script("missing.sh", "echo '\"ok\"'");
        let again = f.service.deploy(&agent.id, None).await.unwrap();
        assert_eq!(f.wait_final(&again.id).await.status, OperationStatus::Succeeded);
        let output = f.service.invoke(&agent.id, None, InvokeInput::new("q")).await.unwrap();
        assert_eq!(output.result, "ok");
    }
}

#[tokio::test]
async fn async_invoke_runs_in_the_background() {
    for f in Fixture::all().await {
        f.script("slow.sh", "sleep 0.3; echo '{\"result\": \"later\", \"tokens_used\": 5}'");
        let agent = f.deployed(Framework::Command, Some("slow.sh")).await;
        let mut input = InvokeInput::new("q");
        input.run_async = true;
        let operation = f.service.invoke_async(&agent.id, None, input).await.unwrap();
        assert_eq!(operation.kind, OperationKind::Invoke);
        assert_eq!(operation.status, OperationStatus::Pending);
        let done = f.wait_final(&operation.id).await;
        assert_eq!(done.status, OperationStatus::Succeeded);
        let result = done.result.unwrap();
        assert_eq!(result["result"], "later");
        assert_eq!(result["metadata"]["tokens_used"], 5);
    }
}

#[tokio::test]
async fn cancel_stops_a_running_operation_and_its_program() {
    for f in Fixture::all().await {
        f.script("hang.sh", "echo $$ > hang.pid; sleep 60");
        let agent = f.deployed(Framework::Command, Some("hang.sh")).await;
        let operation = f.service.invoke_async(&agent.id, None, InvokeInput::new("q")).await.unwrap();
        let pid = f.wait_for_file("hang.pid").await;
        let cancelled = f.service.cancel_operation(&operation.id).await.unwrap();
        assert_eq!(cancelled.status, OperationStatus::Cancelled);
        wait_dead(&pid).await;
        // The task's own ending does not overwrite the cancel.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let read = f.service.get_operation(&operation.id).await.unwrap();
        assert_eq!(read.status, OperationStatus::Cancelled);
        let again = f.service.cancel_operation(&operation.id).await.unwrap_err();
        assert_eq!((again.status, again.code), (409, "CONFLICT"));
        let missing = f.service.cancel_operation("op_missing").await.unwrap_err();
        assert_eq!(missing.status, 404);
    }
}

#[tokio::test]
async fn deleting_an_agent_stops_its_operations() {
    for f in Fixture::all().await {
        f.script("hang.sh", "echo $$ > hang.pid; sleep 60");
        let agent = f.deployed(Framework::Command, Some("hang.sh")).await;
        let operation = f.service.invoke_async(&agent.id, None, InvokeInput::new("q")).await.unwrap();
        let pid = f.wait_for_file("hang.pid").await;
        f.service.delete_agent(&agent.id).await.unwrap();
        wait_dead(&pid).await;
        let read = f.service.get_operation(&operation.id).await.unwrap();
        assert_eq!(read.status, OperationStatus::Cancelled);
        assert_eq!(f.service.get_agent(&agent.id).await.unwrap_err().status, 404);
    }
}

#[tokio::test]
async fn batch_answers_in_order_and_isolates_failures() {
    for f in Fixture::all().await {
        f.script(
            "picky.sh",
            r#"read -r request
case "$request" in
  *'"query":"fail"'*) echo 'no' >&2; exit 2 ;;
  *'"query":"slow"'*) sleep 0.3; echo '"slow done"' ;;
  *) echo '"fine"' ;;
esac"#,
        );
        let agent = f.deployed(Framework::Command, Some("picky.sh")).await;
        let mut items: Vec<InvokeInput> = ["slow", "a", "fail", "b"].into_iter().map(InvokeInput::new).collect();
        let mut async_item = InvokeInput::new("c");
        async_item.run_async = true;
        items.push(async_item);
        let outcomes = f.service.batch(&agent.id, None, items).await.unwrap();
        assert_eq!(outcomes.len(), 5);
        assert_eq!(outcomes[0].as_ref().unwrap().result, "slow done");
        assert_eq!(outcomes[1].as_ref().unwrap().result, "fine");
        let failed = outcomes[2].as_ref().unwrap_err();
        assert_eq!(failed.code, "AGENT_ERROR");
        assert_eq!(failed.details.as_ref().unwrap()["stderr"], "no");
        assert_eq!(outcomes[3].as_ref().unwrap().result, "fine");
        let refused = outcomes[4].as_ref().unwrap_err();
        assert_eq!(refused.code, "INVALID_INPUT");
        assert_eq!(refused.details.as_ref().unwrap()["field"], "batch[4].async");

        let undeployed = f.agent(Framework::Echo, None).await;
        let error = f.service.batch(&undeployed.id, None, vec![InvokeInput::new("x")]).await.unwrap_err();
        assert_eq!(error.status, 409);
    }
}

#[tokio::test]
async fn batch_timeouts_name_the_item() {
    for f in Fixture::all().await {
        f.script("hang.sh", "sleep 60");
        let agent = f.deployed(Framework::Command, Some("hang.sh")).await;
        let mut item = InvokeInput::new("q");
        item.parameters.insert("timeout_seconds".into(), json!(1));
        let outcomes = f.service.batch(&agent.id, None, vec![item]).await.unwrap();
        let error = outcomes[0].as_ref().unwrap_err();
        assert_eq!(error.code, "AGENT_TIMEOUT");
        assert_eq!(error.details.as_ref().unwrap()["field"], "batch[0].parameters.timeout_seconds");
    }
}

async fn collect(stream: EventStream) -> Vec<(String, StreamEvent)> {
    stream.collect().await
}

#[tokio::test]
async fn streams_are_numbered_and_resumable() {
    for f in Fixture::all().await {
        let agent = f.deployed(Framework::Echo, None).await;
        let events =
            collect(f.service.stream(&agent.id, "key_1", InvokeInput::new("Hello big world")).await.unwrap()).await;
        assert_eq!(events.len(), 5, "{events:?}");
        let StreamEvent::Start { stream_id, .. } = &events[0].1 else { panic!("{events:?}") };
        assert_eq!(events[0].0, format!("{stream_id}:0"));
        assert_eq!(events[2].1, StreamEvent::Chunk { index: 1, text: " big".into() });
        let StreamEvent::Done(output) = &events[4].1 else { panic!("{events:?}") };
        assert_eq!(output.result, "Hello big world");
        assert_eq!(output.tokens_used, 3);

        let resumed = collect(f.service.resume(&agent.id, "key_1", &events[1].0).await.unwrap()).await;
        assert_eq!(resumed, events[2..].to_vec());
        let refused = f.service.resume(&agent.id, "key_2", &events[1].0).await.err().unwrap();
        assert_eq!((refused.status, refused.code), (404, "NOT_FOUND"));
    }
}

#[tokio::test]
async fn a_failing_streamed_program_ends_with_an_error_event() {
    for f in Fixture::all().await {
        f.script("half.sh", "echo '{\"text\": \"partial\"}'; echo 'garbage'");
        let agent = f.deployed(Framework::Command, Some("half.sh")).await;
        let events = collect(f.service.stream(&agent.id, "key_1", InvokeInput::new("q")).await.unwrap()).await;
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[1].1, StreamEvent::Chunk { index: 0, text: "partial".into() });
        let StreamEvent::Error { code, .. } = &events[2].1 else { panic!("{events:?}") };
        assert_eq!(*code, "AGENT_ERROR");
    }
}

#[tokio::test]
async fn shutdown_fails_what_did_not_finish_in_time() {
    for f in Fixture::all().await {
        f.script("hang.sh", "echo $$ > hang.pid; sleep 60");
        let agent = f.deployed(Framework::Command, Some("hang.sh")).await;
        let operation = f.service.invoke_async(&agent.id, None, InvokeInput::new("q")).await.unwrap();
        let pid = f.wait_for_file("hang.pid").await;
        f.service.shutdown(Duration::from_millis(200)).await;
        wait_dead(&pid).await;
        let read = f.service.get_operation(&operation.id).await.unwrap();
        assert_eq!(read.status, OperationStatus::Failed);
        assert_eq!(read.error, Some(store::interrupted_error()));

        // The record survives a restart as it is.
        let store = Store::open(&f.location).await.unwrap();
        let reread = store.get_operation(&operation.id).await.unwrap().unwrap();
        assert_eq!(reread, read);
    }
}
