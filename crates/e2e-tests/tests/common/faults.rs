//! Shared by the fault tests and the soak: `test-worker` functions on a dev server of their own
//! that can be killed and restarted with its state, the steps workload, and what they check.

use std::{path::PathBuf, time::Duration};

use e2e_tests::StepsWorkflow;
use lambda_local::{
    InvocationRecord,
    temporal::{DevServer, DevServerOptions},
};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};

use super::{History, Shared};

impl Shared {
    /// Adds `test-worker` as function `name` talking to `temporal_address`, with `env` on top.
    /// Returns its version ARN.
    pub fn add_test_worker(
        &self,
        name: &str,
        temporal_address: &str,
        timeout: Duration,
        concurrency: u32,
        env: &[(&str, &str)],
    ) -> String {
        let mut function =
            super::test_worker(name, temporal_address, timeout.as_secs(), concurrency);
        for (key, value) in env {
            function.env.insert((*key).to_owned(), (*value).to_owned());
        }
        let _guard = self.runtime.enter();
        self.lambda.add_function(function).unwrap();
        self.lambda.version_arn(name).unwrap()
    }

    /// A dev server of its own with its state in a SQLite file, so it can be killed and come
    /// back with every workflow and task ([`DevServer::restart`]), and function `name` deployed
    /// on it as the shared one's are. The file goes when the returned guard drops.
    pub fn deploy_restartable(
        &'static self,
        name: &str,
        timeout: Duration,
        concurrency: u32,
        env: &[(&str, &str)],
    ) -> (DevServer, RemoveOnDrop) {
        let db_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&db_file);
        let state = RemoveOnDrop(db_file.clone());
        let (cli, aws) = (self.cli.clone(), self.lambda.aws_client_environment());
        let options = DevServerOptions {
            db_file: Some(db_file),
        };
        let server =
            self.run(async move { DevServer::start_with(&cli, &aws, options).await.unwrap() });
        let arn = self.add_test_worker(name, &server.address, timeout, concurrency, env);
        let (name, role) = (name.to_owned(), self.role.clone());
        let server = self.run(async move {
            super::attach_current(&server, &arn, &name, &role).await;
            server
        });
        (server, state)
    }
}

/// What the worker said about how its invocation went.
pub fn summary(record: &InvocationRecord) -> String {
    ["connection", "stopped_by", "shutdown"]
        .map(|field| format!("{field}={}", super::response(record, field)))
        .join(" ")
}

/// Starts a [`StepsWorkflow`] of `steps` steps of `step_ms` for each id, `spacing` apart.
pub async fn start_steps(
    address: String,
    task_queue: String,
    ids: Vec<String>,
    (steps, step_ms): (u32, u64),
    spacing: Duration,
) {
    let client = super::client(&address).await;
    for id in ids {
        client
            .start_workflow(
                StepsWorkflow::run,
                (steps, step_ms),
                WorkflowStartOptions::new(task_queue.clone(), id).build(),
            )
            .await
            .unwrap();
        tokio::time::sleep(spacing).await;
    }
}

/// Waits for each [`StepsWorkflow`]'s result (at most `patience` each), then fetches its
/// history.
pub async fn steps_outcomes(
    address: String,
    ids: Vec<String>,
    patience: Duration,
) -> Vec<(u32, History)> {
    let client = super::client(&address).await;
    let mut outcomes = Vec::new();
    for id in ids {
        let handle = client.get_workflow_handle::<StepsWorkflow>(id.clone());
        let Ok(result) = tokio::time::timeout(
            patience,
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        else {
            let history = History::fetch(&client, &id).await;
            let events: Vec<String> = history
                .events
                .iter()
                .map(|e| {
                    format!(
                        "{} {:?}",
                        e.event_time.map_or(0, |t| t.seconds),
                        e.event_type()
                    )
                })
                .collect();
            panic!("{id} completed within {patience:?}; its history: {events:#?}");
        };
        let result = result.unwrap();
        outcomes.push((result, History::fetch(&client, &id).await));
    }
    outcomes
}

/// Panics unless each workflow returned 1 + 2 + 3 and its history shows it completed once,
/// each of its three steps scheduled and completed exactly once.
pub fn assert_three_steps_each(outcomes: &[(u32, History)]) {
    for (result, history) in outcomes {
        assert_eq!(*result, 1 + 2 + 3, "{}", history.workflow_id);
        history.assert_completed_once(3);
    }
}

/// Removes a file when dropped, also when the test fails.
pub struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
