//! One execution environment: the function's process, its Runtime API, and Lambda's lifecycle
//! around it: cold start, freeze between invocations (SIGSTOP), thaw (SIGCONT), kill at timeout,
//! and the shutdown phase (SIGTERM, then SIGKILL past the limit).

use std::{
    collections::VecDeque,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
    sync::{oneshot, watch},
    time::timeout_at,
};

use crate::{
    config::FunctionConfig,
    limits::{self, Cgroup, Controllers, Limits},
    logs::{LogSink, LogSource, truncate},
    runtime_api::{Answer, Delivery, Event, RuntimeApi, Signal},
};

/// Lambda's limit on the init phase of an on-demand environment.
pub(crate) const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The last lines of stderr quoted in the error of a failed init or a crash...
const TAIL_LINES: usize = 5;
/// ...each cut to this many bytes, so the message stays bounded.
const TAIL_LINE_BYTES: usize = 400;
/// How long a dead function's stderr is read for its last lines (a process it started may hold
/// the pipe open).
const STDERR_DRAIN: Duration = Duration::from_secs(1);

/// How an invocation in this environment ended, as far as the environment can tell.
#[derive(Debug)]
pub(crate) enum Ending {
    Answered(Answer),
    TimedOut,
    Crashed(String),
    /// The kernel killed a process of the environment for going over its memory limit.
    OutOfMemory(String),
}

/// Why an environment could not start.
#[derive(Debug)]
pub(crate) struct InitFailure {
    pub(crate) error_type: String,
    pub(crate) message: String,
    pub(crate) init_duration: Duration,
}

pub(crate) struct Sandbox {
    pub(crate) id: u32,
    child: Child,
    pid: i32,
    api: RuntimeApi,
    stderr: StderrTail,
    /// The environment's CPU share and memory limit; `None` when it runs unlimited.
    cgroup: Option<Cgroup>,
}

impl Sandbox {
    /// Starts the function's process (limited, when `controllers` are given) and waits for it to
    /// ask for its first event. Returns the environment and its init duration.
    pub(crate) async fn start(
        id: u32,
        function: &FunctionConfig,
        function_env: &[(String, String)],
        logs: &LogSink,
        controllers: Option<&Controllers>,
    ) -> Result<(Self, Duration), InitFailure> {
        let started = Instant::now();
        let failure = |error_type: &str, message: String| InitFailure {
            error_type: error_type.to_owned(),
            message,
            init_duration: started.elapsed(),
        };
        let api = RuntimeApi::start().await.map_err(|e| {
            failure(
                "Runtime.ApiError",
                format!("cannot start the Runtime API: {e}"),
            )
        })?;
        let mut cgroup = controllers.and_then(|controllers| {
            controllers
                .create(&function.name, function.memory_mb)
                .inspect_err(|e| {
                    eprintln!(
                        "lambda-local: environment {id} of {} runs WITHOUT its CPU share and \
                         memory limit: cannot create its cgroup: {e}",
                        function.name
                    )
                })
                .ok()
        });
        let join_fds = cgroup.as_ref().map(Cgroup::join_fds).unwrap_or_default();
        let mut command = Command::new(&function.command[0]);
        command
            .args(&function.command[1..])
            .current_dir(&function.task_root)
            .env_clear()
            .envs(function_env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", api.address.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so freeze, thaw and kill reach every process it starts.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl and write are async-signal-safe; they only affect the child being
        // spawned, which joins its cgroups before it runs anything of the function.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                limits::join(&join_fds)
            });
        }
        let mut child = command.spawn().map_err(|e| {
            failure(
                "Runtime.InvalidEntrypoint",
                format!("cannot start {}: {e}", function.command[0]),
            )
        })?;
        if let Some(cgroup) = &mut cgroup {
            cgroup.joined();
        }
        let pid = child.id().unwrap_or_default() as i32;
        let stderr = StderrTail::default();
        capture(child.stdout.take(), logs, id, LogSource::Stdout, None);
        capture(
            child.stderr.take(),
            logs,
            id,
            LogSource::Stderr,
            Some(&stderr),
        );
        let mut sandbox = Self {
            id,
            child,
            pid,
            api,
            stderr,
            cgroup,
        };
        let deadline = tokio::time::Instant::now() + INIT_TIMEOUT;
        tokio::select! {
            // A runtime that reports its init error exits right after: the report (sent
            // before the runtime's request is answered) wins over the exit.
            biased;
            signal = timeout_at(deadline, sandbox.api.signals.recv()) => match signal {
                Ok(Some(Signal::WaitingForEvent)) => Ok((sandbox, started.elapsed())),
                Ok(Some(Signal::InitError { error_type, body })) => {
                    sandbox.kill().await;
                    Err(failure(&error_type, reported_message(&body)))
                }
                Ok(None) | Err(_) => {
                    sandbox.kill().await;
                    let message = format!(
                        "the function did not call /next within {}s",
                        INIT_TIMEOUT.as_secs()
                    );
                    Err(failure("Runtime.InitTimeout", sandbox.stderr.quoted_after(message).await))
                }
            },
            status = sandbox.child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                let message = format!("the function exited during init: {status}");
                let error_type = if sandbox.oom_killed() {
                    "Runtime.OutOfMemory"
                } else {
                    "Runtime.ExitError"
                };
                Err(failure(error_type, sandbox.stderr.quoted_after(message).await))
            }
        }
    }

    /// Delivers an event and waits for its answer, the timeout or the process's death.
    /// Returns the ending and the time from pick-up to ending.
    pub(crate) async fn invoke(&mut self, event: Event, timeout: Duration) -> (Ending, Duration) {
        let limit = tokio::time::Instant::now() + timeout;
        let (picked_up, picked_rx) = oneshot::channel();
        let (answer, answer_rx) = oneshot::channel();
        let request_id = event.request_id.clone();
        let delivery = Delivery {
            event,
            picked_up,
            answer,
        };
        if self.api.deliveries.send(delivery).await.is_err() {
            return (
                Ending::Crashed("the Runtime API stopped".into()),
                Duration::ZERO,
            );
        }
        // The function is already waiting in /next, so pick-up is immediate unless it is hung.
        let _ = timeout_at(limit, picked_rx).await;
        let started = Instant::now();
        let ending = tokio::select! {
            answer = timeout_at(limit, answer_rx) => match answer {
                Ok(Ok(answer)) => Ending::Answered(answer),
                Ok(Err(_)) => Ending::Crashed("the Runtime API dropped the invocation".into()),
                Err(_) => Ending::TimedOut,
            },
            status = self.child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                if self.oom_killed() {
                    let message = format!(
                        "Runtime exited with error: {status}: the environment went over its \
                         memory limit during {request_id}"
                    );
                    Ending::OutOfMemory(message)
                } else {
                    let message = format!(
                        "Runtime exited without providing a reason ({status}) during {request_id}"
                    );
                    Ending::Crashed(self.stderr.quoted_after(message).await)
                }
            }
        };
        (ending, started.elapsed())
    }

    /// Waits until the function asks for its next event (its invocation work is over), at
    /// most until `limit`. False if it did not.
    pub(crate) async fn wait_for_next(&mut self, limit: tokio::time::Instant) -> bool {
        loop {
            tokio::select! {
                signal = timeout_at(limit, self.api.signals.recv()) => match signal {
                    Ok(Some(Signal::WaitingForEvent)) => return true,
                    Ok(Some(Signal::InitError { .. })) => continue,
                    _ => return false,
                },
                _ = self.child.wait() => return false,
            }
        }
    }

    /// Which limits the environment runs under.
    pub(crate) fn limits(&self) -> Limits {
        if self.cgroup.is_some() {
            Limits::Cgroup
        } else {
            Limits::None
        }
    }

    fn oom_killed(&self) -> bool {
        self.cgroup.as_ref().is_some_and(Cgroup::oom_killed)
    }

    /// The function's process id, which is also its process group's.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Peak resident memory of the environment's processes, in MB.
    pub(crate) async fn max_memory_used_mb(&self) -> u64 {
        let group = self.pid;
        // Reading every process's /proc entries blocks.
        tokio::task::spawn_blocking(move || process_group_peak_rss_kb(group))
            .await
            .unwrap_or_default()
            .div_ceil(1024)
    }

    /// Stops every process of the environment (SIGSTOP), as Lambda does between invocations.
    pub(crate) fn freeze(&self) {
        self.signal_group(libc::SIGSTOP);
    }

    /// Resumes a frozen environment.
    pub(crate) fn thaw(&self) {
        self.signal_group(libc::SIGCONT);
    }

    /// Waits for the function's process to exit and reaps it.
    pub(crate) async fn reap(&mut self) {
        let _ = self.child.wait().await;
    }

    /// Kills every process of the environment and reaps the function's process.
    pub(crate) async fn kill(&mut self) {
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait().await;
    }

    fn signal_group(&self, signal: libc::c_int) {
        signal_group(self.pid, signal);
    }
}

fn signal_group(pid: i32, signal: libc::c_int) {
    if pid > 0 {
        // SAFETY: kill(2) on the process group of one of our children.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

/// Lambda's shutdown phase for the environment whose function process is `pid`, busy or frozen:
/// SIGTERM, then SIGKILL if the process has not exited within `limit`; with no limit (a function
/// without extensions), SIGKILL at once. Returns how long it took to exit, or `None` when it had
/// to be killed.
pub(crate) async fn terminate(pid: i32, limit: Option<Duration>) -> Option<Duration> {
    let Some(limit) = limit else {
        signal_group(pid, libc::SIGKILL);
        return None;
    };
    let started = Instant::now();
    signal_group(pid, libc::SIGCONT);
    signal_group(pid, libc::SIGTERM);
    while started.elapsed() < limit {
        if has_exited(pid).await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    signal_group(pid, libc::SIGKILL);
    None
}

/// Whether the process is gone or a zombie waiting to be reaped.
async fn has_exited(pid: i32) -> bool {
    match tokio::fs::read_to_string(format!("/proc/{pid}/stat")).await {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

/// The last lines a function wrote to stderr, and whether the stream has ended.
#[derive(Clone)]
struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    closed: watch::Receiver<bool>,
    closer: Arc<watch::Sender<bool>>,
}

impl Default for StderrTail {
    fn default() -> Self {
        let (closer, closed) = watch::channel(false);
        Self {
            lines: Arc::default(),
            closed,
            closer: Arc::new(closer),
        }
    }
}

impl StderrTail {
    fn push(&self, line: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(truncate(line.trim(), TAIL_LINE_BYTES));
    }

    fn close(&self) {
        let _ = self.closer.send(true);
    }

    /// `message`, followed by the last lines of stderr once the stream has ended (waiting at
    /// most [`STDERR_DRAIN`] for that), so an error says why the function died.
    async fn quoted_after(&self, message: String) -> String {
        let mut closed = self.closed.clone();
        let _ = tokio::time::timeout(STDERR_DRAIN, closed.wait_for(|closed| *closed)).await;
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| !l.is_empty())
            .collect();
        match lines.len() {
            0 => format!("{message}; it wrote nothing to stderr"),
            1 => format!("{message}; its last stderr line: {}", lines[0]),
            n => format!(
                "{message}; its last {n} stderr lines: {}",
                lines.join(" | ")
            ),
        }
    }
}

/// Reads a function's output line by line into its log (and the stderr tail), until it ends.
/// Bytes that are not UTF-8 are replaced, never a reason to stop reading (which would leave the
/// function blocked on a full pipe).
fn capture<R>(
    stream: Option<R>,
    logs: &LogSink,
    environment: u32,
    source: LogSource,
    tail: Option<&StderrTail>,
) where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let Some(stream) = stream else { return };
    let (logs, tail) = (logs.clone(), tail.cloned());
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            // A line longer than this is taken in pieces, so memory stays bounded.
            let mut piece = (&mut reader).take(64 * 1024);
            match piece.read_until(b'\n', &mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buffer);
            let line = text.trim_end_matches(['\n', '\r']);
            logs.function_line(environment, source, line);
            if let Some(tail) = &tail {
                tail.push(line);
            }
        }
        if let Some(tail) = &tail {
            tail.close();
        }
    });
}

/// Sum of the peak resident set sizes (VmHWM) of the processes in a process group, in kB.
fn process_group_peak_rss_kb(group: i32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| process_group_of(*pid) == Some(group))
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

fn process_group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state, ppid, pgrp, ...
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split_whitespace().nth(2)?.parse().ok()
}

/// The `errorMessage` of an error a runtime reported, or its whole body when it is not the
/// usual JSON object.
fn reported_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|body| body.get("errorMessage")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn terminate_waits_for_a_polite_exit_and_kills_a_process_that_ignores_sigterm() {
        let spawn = |script: &str| {
            let mut command = Command::new("sh");
            command.args(["-c", script]).process_group(0);
            command.spawn().unwrap()
        };
        let mut polite = spawn("sleep 30");
        let pid = polite.id().unwrap() as i32;
        let took = terminate(pid, Some(Duration::from_millis(500))).await;
        assert!(
            took.is_some_and(|t| t < Duration::from_millis(500)),
            "{took:?}"
        );
        assert!(!polite.wait().await.unwrap().success());

        let mut stubborn = spawn("trap '' TERM; sleep 30 & wait; sleep 30");
        let pid = stubborn.id().unwrap() as i32;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(terminate(pid, Some(Duration::from_millis(300))).await, None);
        let status = stubborn.wait().await.unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn our_own_process_group_has_memory() {
        // SAFETY: getpgrp has no preconditions.
        let group = unsafe { libc::getpgrp() };
        assert!(process_group_peak_rss_kb(group) > 0);
        assert_eq!(process_group_of(std::process::id() as i32), Some(group));
    }
}
