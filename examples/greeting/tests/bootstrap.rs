//! The worker binary's behaviour outside Lambda and with a broken config file: one clear line
//! on stderr, a non-zero exit, no panic.

use std::process::Command;

fn worker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_greeting-worker"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("AWS_") || name.starts_with("TEMPORAL_") || name == "LAMBDA_TASK_ROOT" {
            command.env_remove(name);
        }
    }
    command
}

fn fatal_line(output: &std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(1), "exit status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let fatal: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("temporal-lambda-worker: "))
        .collect();
    assert_eq!(fatal.len(), 1, "one fatal line: {stderr}");
    fatal[0].to_owned()
}

#[test]
fn outside_lambda_it_says_so_and_how_to_run_it_locally() {
    let dir = tempfile::tempdir().unwrap();
    let output = worker().current_dir(dir.path()).output().unwrap();
    let line = fatal_line(&output);
    assert!(line.contains("AWS_LAMBDA_RUNTIME_API is not set"), "{line}");
    // How to run it locally: under an emulator, named.
    assert!(line.contains("lambda-local"), "{line}");
    assert!(line.contains("Runtime Interface Emulator"), "{line}");
}

#[test]
fn a_malformed_config_file_is_named_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("temporal.toml");
    std::fs::write(&file, "[profile.default]\naddress = \"localhost:7233\n").unwrap();
    let output = worker()
        .current_dir(dir.path())
        .env("TEMPORAL_CONFIG_FILE", &file)
        .output()
        .unwrap();
    let line = fatal_line(&output);
    assert!(line.contains(&file.display().to_string()), "{line}");
    assert!(line.contains("invalid TOML at line 2"), "{line}");
}

#[test]
fn a_config_file_in_the_task_root_is_used() {
    // An address without a port is rejected, which shows the file was read.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("temporal.toml"),
        "[profile.default]\naddress = \"temporal.internal\"\n",
    )
    .unwrap();
    let output = worker()
        .env("LAMBDA_TASK_ROOT", dir.path())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let line = fatal_line(&output);
    assert!(line.contains("'temporal.internal' has no port"), "{line}");
}
