//! The setup of the runagent-local rows: an echo agent, created and
//! deployed through the API like a user would, for `POST .../invoke` to
//! address.

use crate::API_KEY;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Creates and deploys an echo agent at `url` (ending in `/v1`), waits
/// until it is deployed and prints `{"agent_id": "agt_..."}`.
pub fn setup(url: &str) -> Result<(), String> {
    crate::runtime(1)?.block_on(async {
        let http = reqwest::Client::new();
        let call = async |request: reqwest::RequestBuilder| -> Result<Value, String> {
            let response = request.bearer_auth(API_KEY).send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body: Value = response.json().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("{status}: {body}"));
            }
            Ok(body)
        };
        let created =
            call(http.post(format!("{url}/agents")).json(&json!({"name": "bench-echo", "framework": "echo"}))).await?;
        let agent = created["data"]["id"].as_str().ok_or("no agent id")?.to_owned();
        let accepted = call(http.post(format!("{url}/agents/{agent}/deployments"))).await?;
        let operation = accepted["operation_id"].as_str().ok_or("no operation id")?.to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let read = call(http.get(format!("{url}/operations/{operation}"))).await?;
            match read["data"]["status"].as_str() {
                Some("succeeded") => break,
                Some("failed" | "cancelled") => return Err(format!("the deployment ended: {read}")),
                _ if Instant::now() > deadline => return Err("the deployment did not end within 30 s".into()),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        println!("{}", json!({"agent_id": agent}));
        Ok(())
    })
}
