//! Errors: [`Error`] for setup problems that stop the process before it serves anything,
//! [`InvocationError`] for one invocation that could not do its work.
//!
//! Every message names the problem and what to do about it, fits on one line, and never contains
//! a secret (API keys and TLS material are never formatted into errors). An error that has a
//! cause says only its own part and gives the cause as its [`std::error::Error::source`]; the
//! one line printed at a failed cold start and the `errorMessage` Lambda records are the whole
//! chain.

use std::{path::PathBuf, time::Duration};

/// A boxed error, as returned by `configure` and shutdown hooks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A fatal setup error: the worker cannot start serving invocations.
///
/// [`crate::run_worker`] prints it to stderr as one line and exits the process with status 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The binary is not running inside a Lambda execution environment.
    #[error(
        "{missing} is not set, so this is not a Lambda execution environment: deploy this \
         binary as the `bootstrap` of a provided.al2023 function, or run it locally under a \
         Lambda Runtime API emulator that sets the AWS_LAMBDA_* variables (such as \
         temporal-lambda-worker's lambda-local, or AWS's Runtime Interface Emulator)"
    )]
    NotInLambda {
        /// The first required variable found missing.
        missing: &'static str,
    },
    /// `TEMPORAL_CONFIG_FILE` names a file that does not exist.
    #[error(
        "TEMPORAL_CONFIG_FILE points to {}, which does not exist: fix the path or unset the variable",
        path.display()
    )]
    ConfigFileMissing {
        /// The path, resolved against the working directory.
        path: PathBuf,
    },
    /// The config file exists but cannot be read or used.
    #[error("config file {}: {problem}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The client configuration (file or environment) is invalid.
    #[error("Temporal client configuration: {0}")]
    ClientConfig(String),
    /// No task queue was configured.
    #[error(
        "no task queue: set TEMPORAL_TASK_QUEUE in the function's environment, or \
         options.worker.task_queue in configure"
    )]
    MissingTaskQueue,
    /// The worker deployment version is missing or incomplete.
    #[error("worker version: {0}")]
    InvalidVersion(String),
    /// The workflows' versioning behaviours are missing or cannot be expressed.
    #[error("versioning: {0}")]
    Versioning(String),
    /// An option set in `configure` is out of range.
    #[error("options: {0}")]
    InvalidOptions(String),
    /// A `<NAME>_SECRET` variable names a secret that cannot be read.
    #[error("{variable} = {reference}: {problem}")]
    Secret {
        /// The variable, e.g. `TEMPORAL_API_KEY_SECRET`.
        variable: String,
        /// Where it says the value is kept.
        reference: String,
        /// What went wrong, and the fix (never the value).
        problem: String,
    },
    /// The user's `configure` function returned an error.
    #[error("configure failed")]
    Configure(#[source] BoxError),
    /// The Temporal runtime could not be created.
    #[error("cannot create the Temporal runtime")]
    Runtime(#[source] BoxError),
    /// The handler for Lambda's SIGTERM could not be installed.
    #[error("cannot listen for Lambda's SIGTERM")]
    Sigterm(#[source] std::io::Error),
    /// The Lambda runtime stopped with an error.
    #[error("the Lambda runtime stopped")]
    LambdaRuntime(#[source] BoxError),
}

impl Error {
    /// A stable, machine-readable name, reported to Lambda as the `errorType` of a failed cold
    /// start (`/runtime/init/error`).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::NotInLambda { .. } => "TemporalLambdaWorker.NotInLambda",
            Self::ConfigFileMissing { .. } | Self::ConfigFile { .. } | Self::ClientConfig(_) => {
                "TemporalLambdaWorker.Config"
            }
            Self::MissingTaskQueue => "TemporalLambdaWorker.MissingTaskQueue",
            Self::Secret { .. } => "TemporalLambdaWorker.Secret",
            Self::InvalidVersion(_) => "TemporalLambdaWorker.Version",
            Self::Versioning(_) => "TemporalLambdaWorker.Versioning",
            Self::InvalidOptions(_) => "TemporalLambdaWorker.Options",
            Self::Configure(_) => "TemporalLambdaWorker.Configure",
            Self::Runtime(_) => "TemporalLambdaWorker.Runtime",
            Self::Sigterm(_) => "TemporalLambdaWorker.Sigterm",
            Self::LambdaRuntime(_) => "TemporalLambdaWorker.LambdaRuntime",
        }
    }
}

/// Why one invocation failed. Returned to Lambda, which records it as a function error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvocationError {
    /// Too little time is left before the deadline to do useful work.
    #[error(
        "only {}ms of work time left (deadline in {}ms minus the {}ms shutdown deadline buffer); \
         more than {:?} is needed: raise the function timeout or lower shutdown_deadline_buffer",
        work_time.as_millis(), until_deadline.as_millis(), buffer.as_millis(), crate::MIN_WORK_TIME
    )]
    DeadlineTooClose {
        /// Time between now and the deadline.
        until_deadline: Duration,
        /// The configured shutdown deadline buffer.
        buffer: Duration,
        /// What remained for polling.
        work_time: Duration,
    },
    /// The Temporal server could not be reached in time.
    #[error("cannot connect to Temporal at {address}: {reason}")]
    Connect {
        /// The server address.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// The worker could not be created or refused to start (for example an unknown namespace).
    #[error("the worker could not start")]
    WorkerStart(#[source] BoxError),
    /// The worker stopped with an error while polling.
    #[error("the worker failed")]
    WorkerFailed(#[source] BoxError),
}

impl InvocationError {
    /// A stable, machine-readable name, reported to Lambda as the `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::DeadlineTooClose { .. } => "TemporalLambdaWorker.DeadlineTooClose",
            Self::Connect { .. } => "TemporalLambdaWorker.Connect",
            Self::WorkerStart(_) => "TemporalLambdaWorker.WorkerStart",
            Self::WorkerFailed(_) => "TemporalLambdaWorker.WorkerFailed",
        }
    }
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(error: InvocationError) -> Self {
        Self {
            error_type: error.error_type().to_owned(),
            error_message: describe(&error),
        }
    }
}

/// An error and its sources on one line, outermost first, skipping repeats (many errors already
/// include their source's message in their own).
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_kept_as_the_source_and_printed_once_in_the_whole_line() {
        let error = Error::Configure("no such workflow: Greeting".into());
        assert_eq!(error.to_string(), "configure failed");
        assert_eq!(
            std::error::Error::source(&error).map(ToString::to_string),
            Some("no such workflow: Greeting".to_owned())
        );
        assert_eq!(
            describe(&error),
            "configure failed: no such workflow: Greeting"
        );

        let diagnostic =
            lambda_runtime::Diagnostic::from(InvocationError::WorkerStart("namespace x".into()));
        assert_eq!(diagnostic.error_type, "TemporalLambdaWorker.WorkerStart");
        assert_eq!(
            diagnostic.error_message,
            "the worker could not start: namespace x"
        );
    }
}
