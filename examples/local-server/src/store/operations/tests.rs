use std::time::Duration;

use super::*;
use crate::store::test_support::{backends, reopen};
use crate::store::{AgentFields, DeleteOutcome, Framework};

const LEASE: i64 = 60_000;

async fn agent(store: &Store) -> AgentRecord {
    store
        .create_agent(
            Framework::Echo,
            AgentFields { name: "a".into(), description: None, entrypoint: None, config: json!({}), tags: vec![] },
        )
        .await
        .unwrap()
}

async fn deployed_agent(store: &Store) -> AgentRecord {
    let agent = agent(store).await;
    sqlx::query("UPDATE agents SET status = 'deployed' WHERE id = $1")
        .bind(&agent.id)
        .execute(store.pool())
        .await
        .unwrap();
    agent
}

async fn agent_status(store: &Store, id: &str) -> AgentStatus {
    store.get_agent(id).await.unwrap().unwrap().status
}

async fn start_deploy(store: &Store, agent_id: &str, owner: &str, lease: i64) -> OperationRecord {
    match store.start_deploy(agent_id, None, owner, lease).await.unwrap() {
        DeployStart::Started { operation, .. } => operation,
        other => panic!("not started: {other:?}"),
    }
}

#[tokio::test]
async fn deploy_moves_through_its_states() {
    for (name, store, _guard) in backends().await {
        let agent = agent(&store).await;
        let DeployStart::Started { operation, agent: deploying } =
            store.start_deploy(&agent.id, Some("key_1".into()), "inst_a", LEASE).await.unwrap()
        else {
            panic!("{name}: not started")
        };
        assert_eq!(deploying.status, AgentStatus::Deploying);
        assert_eq!(operation.status, OperationStatus::Pending);
        assert_eq!(agent_status(&store, &agent.id).await, AgentStatus::Deploying);
        assert_eq!(store.start_deploy(&agent.id, None, "inst_a", LEASE).await.unwrap(), DeployStart::InProgress);
        assert_eq!(store.start_deploy("agt_nope", None, "inst_a", LEASE).await.unwrap(), DeployStart::NotFound);
        // Only the lease holder moves it along.
        assert!(!store.mark_running(&operation.id, "inst_b").await.unwrap());
        assert!(store.mark_running(&operation.id, "inst_a").await.unwrap());
        assert!(!store.mark_running(&operation.id, "inst_a").await.unwrap());
        let result = json!({"agent_id": agent.id, "status": "deployed", "deployed_at": "x"});
        assert!(
            !store.finish_operation(&operation.id, "inst_b", Outcome::Succeeded(result.clone()), None).await.unwrap()
        );
        assert!(
            store.finish_operation(&operation.id, "inst_a", Outcome::Succeeded(result.clone()), None).await.unwrap()
        );
        assert_eq!(agent_status(&store, &agent.id).await, AgentStatus::Deployed, "{name}");
        let read = store.get_operation(&operation.id).await.unwrap().unwrap();
        assert_eq!(read.status, OperationStatus::Succeeded);
        assert_eq!(read.result, Some(result));
        // Finishing twice does nothing; cancelling a finished one is refused.
        assert!(!store.finish_operation(&operation.id, "inst_a", Outcome::Failed(json!({})), None).await.unwrap());
        assert!(matches!(store.cancel_operation(&operation.id).await.unwrap(), CancelOutcome::AlreadyFinished(_)));
        assert_eq!(store.cancel_operation("op_nope").await.unwrap(), CancelOutcome::NotFound);
        assert_eq!(store.renew_lease(&operation.id, "inst_a", LEASE).await.unwrap(), LeaseState::Lost);
    }
}

#[tokio::test]
async fn cancelled_deploy_fails_the_agent_and_wins_over_finish() {
    for (name, store, _guard) in backends().await {
        let agent = agent(&store).await;
        let operation = start_deploy(&store, &agent.id, "inst_a", LEASE).await;
        assert_eq!(store.renew_lease(&operation.id, "inst_a", LEASE).await.unwrap(), LeaseState::Held);
        let CancelOutcome::Cancelled(cancelled) = store.cancel_operation(&operation.id).await.unwrap() else {
            panic!("{name}")
        };
        assert_eq!(cancelled.status, OperationStatus::Cancelled);
        assert_eq!(agent_status(&store, &agent.id).await, AgentStatus::Failed);
        // The running instance learns it at its next renewal.
        assert_eq!(store.renew_lease(&operation.id, "inst_a", LEASE).await.unwrap(), LeaseState::Lost);
        assert!(!store.finish_operation(&operation.id, "inst_a", Outcome::Succeeded(json!({})), None).await.unwrap());
        assert_eq!(agent_status(&store, &agent.id).await, AgentStatus::Failed, "{name}");
    }
}

#[tokio::test]
async fn async_invoke_needs_a_deployed_agent_and_records_the_invocation() {
    for (name, store, _guard) in backends().await {
        let created = agent(&store).await;
        let request = json!({"query": "hi"});
        assert_eq!(
            store.start_invoke(&created.id, None, request.clone(), "inst_a", LEASE).await.unwrap(),
            InvokeStart::NotDeployed(AgentStatus::Created)
        );
        let agent = deployed_agent(&store).await;
        let InvokeStart::Started { operation, invocation_id, .. } =
            store.start_invoke(&agent.id, Some("key_1".into()), request, "inst_a", LEASE).await.unwrap()
        else {
            panic!("{name}")
        };
        assert_eq!(operation.kind, OperationKind::Invoke);
        let result = json!({"result": "hi", "metadata": {"execution_time": 0.5, "tokens_used": 1}});
        store
            .finish_operation(&operation.id, "inst_a", Outcome::Succeeded(result.clone()), Some((0.5, 1)))
            .await
            .unwrap();
        let invocation = store.get_invocation(&invocation_id).await.unwrap().unwrap();
        assert_eq!(invocation.status, "succeeded", "{name}");
        assert_eq!(invocation.result, Some(result));
        assert_eq!(invocation.tokens_used, Some(1));
        assert_eq!(invocation.operation_id.as_deref(), Some(operation.id.as_str()));
        assert_eq!(store.invocation_of_operation(&operation.id).await.unwrap().unwrap().id, invocation_id);
    }
}

#[tokio::test]
async fn expired_leases_are_taken_over_by_kind() {
    for (name, store, _guard) in backends().await {
        // A deployment, a running invocation and a pending invocation, all
        // leased to an instance that then dies (a 1 ms lease nobody renews).
        let to_deploy = agent(&store).await;
        let deploy = start_deploy(&store, &to_deploy.id, "inst_dead", 1).await;
        store.mark_running(&deploy.id, "inst_dead").await.unwrap();
        let agent = deployed_agent(&store).await;
        let start_invoke = |query: &'static str| {
            let store = store.clone();
            let agent_id = agent.id.clone();
            async move {
                let InvokeStart::Started { operation, invocation_id, .. } =
                    store.start_invoke(&agent_id, None, json!({"query": query}), "inst_dead", 1).await.unwrap()
                else {
                    panic!()
                };
                (operation, invocation_id)
            }
        };
        let (running, running_invocation) = start_invoke("ran").await;
        store.mark_running(&running.id, "inst_dead").await.unwrap();
        let (pending, _) = start_invoke("never ran").await;
        // A live job of another instance is left alone.
        let live = start_invoke("live").await.0;
        store.renew_lease(&live.id, "inst_dead", LEASE).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;

        let reaped = store.reap_expired("inst_new", LEASE, 10).await.unwrap();
        assert_eq!(reaped.failed, vec![running.id.clone()], "{name}");
        let retried: Vec<&str> = reaped.retried.iter().map(|j| j.operation.id.as_str()).collect();
        assert_eq!(retried, vec![deploy.id.as_str(), pending.id.as_str()], "{name}");
        assert_eq!(reaped.retried[0].agent.id, to_deploy.id);
        assert_eq!(reaped.retried[0].attempts, 2);
        assert_eq!(reaped.retried[1].request, Some(json!({"query": "never ran"})));
        assert_eq!(reaped.retried[1].operation.status, OperationStatus::Pending);

        let failed = store.get_operation(&running.id).await.unwrap().unwrap();
        assert_eq!(failed.status, OperationStatus::Failed);
        let error = failed.error.unwrap();
        assert_eq!(error["code"], "INTERNAL_ERROR");
        assert_eq!(error["details"]["reason"], "instance_lost");
        assert_eq!(error["details"]["instance_id"], "inst_dead");
        assert!(error["message"].as_str().unwrap().contains("inst_dead"), "{error}");
        assert_eq!(store.get_invocation(&running_invocation).await.unwrap().unwrap().status, "failed");

        // The old owner can no longer record anything; the new one can.
        assert!(!store.finish_operation(&deploy.id, "inst_dead", Outcome::Failed(json!({})), None).await.unwrap());
        assert_eq!(store.renew_lease(&deploy.id, "inst_dead", LEASE).await.unwrap(), LeaseState::Lost);
        assert!(store.mark_running(&deploy.id, "inst_new").await.unwrap());
        assert!(store.finish_operation(&deploy.id, "inst_new", Outcome::Succeeded(json!({})), None).await.unwrap());
        assert_eq!(agent_status(&store, &to_deploy.id).await, AgentStatus::Deployed);
        // Nothing else is expired now.
        assert_eq!(store.reap_expired("inst_new", LEASE, 10).await.unwrap(), Reaped::default());
    }
}

#[tokio::test]
async fn a_deployment_that_keeps_losing_its_instance_fails_for_good() {
    for (name, store, _guard) in backends().await {
        let agent = agent(&store).await;
        let deploy = start_deploy(&store, &agent.id, "inst_0", 1).await;
        for attempt in 1..MAX_DEPLOY_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let reaped = store.reap_expired(&format!("inst_{attempt}"), 1, 10).await.unwrap();
            assert_eq!(reaped.retried.len(), 1, "{name}: attempt {attempt}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let reaped = store.reap_expired("inst_last", LEASE, 10).await.unwrap();
        assert_eq!(reaped.failed, vec![deploy.id.clone()], "{name}");
        let read = store.get_operation(&deploy.id).await.unwrap().unwrap();
        let error = read.error.unwrap();
        assert_eq!(error["details"]["attempts"], MAX_DEPLOY_ATTEMPTS);
        assert_eq!(error["details"]["instance_id"], format!("inst_{}", MAX_DEPLOY_ATTEMPTS - 1));
        assert_eq!(agent_status(&store, &agent.id).await, AgentStatus::Failed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reapers_take_each_job_once() {
    for (name, store, _guard) in backends().await {
        let mut ids = Vec::new();
        for _ in 0..12 {
            let agent = agent(&store).await;
            ids.push(start_deploy(&store, &agent.id, "inst_dead", 1).await.id);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let other = reopen(&store).await;
        let reapers: Vec<_> = (0..4)
            .map(|i| {
                let store = if i % 2 == 0 { store.clone() } else { other.clone() };
                tokio::spawn(async move {
                    let mut taken = Vec::new();
                    for _ in 0..6 {
                        let reaped = store.reap_expired(&format!("inst_{i}"), LEASE, 2).await.unwrap();
                        taken.extend(reaped.retried.into_iter().map(|j| j.operation.id));
                    }
                    taken
                })
            })
            .collect();
        let mut taken = Vec::new();
        for reaper in reapers {
            taken.extend(reaper.await.unwrap());
        }
        taken.sort();
        ids.sort();
        assert_eq!(taken, ids, "{name}: every job taken over exactly once");
    }
}

#[tokio::test]
async fn shutdown_settles_own_jobs_only() {
    for (name, store, _guard) in backends().await {
        let agent_a = agent(&store).await;
        let deploy = start_deploy(&store, &agent_a.id, "inst_a", LEASE).await;
        let agent = deployed_agent(&store).await;
        let InvokeStart::Started { operation: invoke, .. } =
            store.start_invoke(&agent.id, None, json!({"query": "q"}), "inst_a", LEASE).await.unwrap()
        else {
            panic!()
        };
        let InvokeStart::Started { operation: other, .. } =
            store.start_invoke(&agent.id, None, json!({"query": "q"}), "inst_b", LEASE).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(store.settle_own_jobs("inst_a").await.unwrap(), (1, 1), "{name}");
        let invoke = store.get_operation(&invoke.id).await.unwrap().unwrap();
        assert_eq!((invoke.status, invoke.error), (OperationStatus::Failed, Some(interrupted_error())));
        // The released deployment is taken over at once, by anyone.
        let reaped = store.reap_expired("inst_b", LEASE, 10).await.unwrap();
        assert_eq!(reaped.retried.len(), 1);
        assert_eq!(reaped.retried[0].operation.id, deploy.id);
        assert_eq!(store.get_operation(&other.id).await.unwrap().unwrap().status, OperationStatus::Pending);
    }
}

#[tokio::test]
async fn deleting_an_agent_cancels_its_open_operations() {
    for (name, store, _guard) in backends().await {
        let agent = agent(&store).await;
        let operation = start_deploy(&store, &agent.id, "inst_a", LEASE).await;
        assert_eq!(
            store.delete_agent(&agent.id).await.unwrap(),
            DeleteOutcome::Deleted { cancelled_operations: vec![operation.id.clone()] },
            "{name}"
        );
        // The operation stays readable after its agent is gone.
        let read = store.get_operation(&operation.id).await.unwrap().unwrap();
        assert_eq!(read.status, OperationStatus::Cancelled);
        assert_eq!(store.renew_lease(&operation.id, "inst_a", LEASE).await.unwrap(), LeaseState::Lost);
    }
}
