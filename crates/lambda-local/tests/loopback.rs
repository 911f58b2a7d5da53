//! The environment has no authentication and starts processes on request, so it only ever
//! listens on loopback: `lambda-local serve` says so, and refuses any other address.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

fn config(listen: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lambda-local.toml"),
        format!(
            "listen = \"{listen}\"\n[role]\narn = \"arn:aws:iam::123456789012:role/r\"\n\
             external_id = \"x\"\n"
        ),
    )
    .unwrap();
    dir
}

fn serve(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lambda-local"));
    command
        .args(["serve", "--config"])
        .arg(dir.path().join("lambda-local.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn serve_says_it_listens_on_loopback_only() {
    let dir = config("127.0.0.1:0");
    let mut child = serve(&dir).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let first = first.expect("serve printed its address");
    assert!(
        first.starts_with("# lambda-local listens on http://127.0.0.1:")
            && first.contains("(loopback only, as do the functions' Runtime APIs)"),
        "{first}"
    );
}

#[test]
fn serve_refuses_any_address_but_loopback() {
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let dir = config(listen);
        let output = serve(&dir).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{listen}: {stderr}");
        assert!(
            stderr.contains("only listens on loopback") && stderr.lines().count() == 1,
            "{listen}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{listen}");
    }
}
