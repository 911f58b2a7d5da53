//! Starts a greeting workflow and prints its result.
//!
//! Usage: `greeting-starter [name]`. Connects with the same configuration as the worker
//! (`temporal.toml` in the working directory, or `TEMPORAL_*` variables).

use temporalio_client::{
    Client, ClientOptions, WorkflowGetResultOptions, WorkflowStartOptions,
    envconfig::LoadClientConfigProfileOptions,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Temporal".to_owned());
    let task_queue =
        std::env::var("TEMPORAL_TASK_QUEUE").unwrap_or_else(|_| greeting::TASK_QUEUE.to_owned());
    let (connection, client) = ClientOptions::load_from_config(
        LoadClientConfigProfileOptions::builder()
            .config_source(temporalio_client::envconfig::DataSource::Path(
                "temporal.toml".to_owned(),
            ))
            .build(),
    )
    .map_err(|e| e.to_string())?;
    let client = Client::connect(connection, client).await?;
    let workflow_id = format!("greeting-{}", std::process::id());
    let handle = client
        .start_workflow(
            greeting::GreetingWorkflow::run,
            name,
            WorkflowStartOptions::new(task_queue, workflow_id.clone()).build(),
        )
        .await?;
    eprintln!("started workflow {workflow_id}");
    let greeting = handle
        .get_result(WorkflowGetResultOptions::default())
        .await?;
    println!("{greeting}");
    Ok(())
}
