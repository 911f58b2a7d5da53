//! `lambda-local`: the local Lambda environment's command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use lambda_local::{Config, LocalLambda, temporal::default_tools_dir};

mod demo;

use demo::DemoOptions;

#[derive(Parser)]
#[command(
    version,
    about = "A local AWS Lambda environment in which Temporal invokes real Lambda bootstraps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the greeting sample, let the Temporal dev server invoke it, print the result.
    Demo {
        /// The name to greet.
        #[arg(long, default_value = "Temporal")]
        name: String,
        /// Build the worker in debug mode (faster to build, slower and bigger to run).
        #[arg(long)]
        debug: bool,
    },
    /// Serve the functions of a configuration file until Ctrl-C.
    Serve {
        /// The configuration (see lambda-local.example.toml).
        #[arg(long, default_value = "lambda-local.toml")]
        config: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("lambda-local: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(cli.command) => outcome,
            _ = tokio::signal::ctrl_c() => Err("interrupted; everything started was stopped".to_owned()),
        }
    });
    // Dropping the runtime drops every task, which kills the processes they own.
    drop(runtime);
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lambda-local: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Demo { name, debug } => {
            let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
            demo::run(DemoOptions {
                workspace: workspace.canonicalize().unwrap_or(workspace),
                release: !debug,
                tools_dir: default_tools_dir(),
                name,
            })
            .await
        }
        Command::Serve { config } => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .init();
            let text = tokio::fs::read_to_string(&config)
                .await
                .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
            let config =
                Config::from_toml(&text).map_err(|e| format!("{}: {e}", config.display()))?;
            let lambda = LocalLambda::start(config)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "# lambda-local listens on {} (loopback only, as do the functions' Runtime APIs). \
                 For the Temporal server:",
                lambda.endpoint()
            );
            for (key, value) in lambda.aws_client_environment() {
                println!("export {key}={value}");
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    }
}
