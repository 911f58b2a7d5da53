//! Shared by the end-to-end tests: lambda-local and a Temporal dev server whose Worker
//! Controller invokes it.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
};

use lambda_local::{
    Config, LocalLambda, RoleConfig,
    temporal::{DevServer, default_tools_dir, find_or_install_cli, verbose},
};

/// The role every test's Worker Controller assumes, with the given external id.
pub fn role(external_id: &str) -> RoleConfig {
    RoleConfig {
        arn: "arn:aws:iam::123456789012:role/temporal-invoker".to_owned(),
        external_id: external_id.to_owned(),
    }
}

/// A running local loop.
pub struct Local {
    pub cli: PathBuf,
    pub lambda: LocalLambda,
    pub server: DevServer,
}

/// Starts lambda-local and the dev server on `runtime`, which must outlive them: processes are
/// started from its threads, and their parent-death signal fires when the starting thread exits.
pub fn start(runtime: &tokio::runtime::Runtime, role: &RoleConfig) -> Local {
    let config = Config {
        forward_logs: verbose(),
        ..Config::new(role.clone())
    };
    runtime.block_on(async {
        tokio::spawn(async move {
            let cli = find_or_install_cli(&default_tools_dir()).await.unwrap();
            let lambda = LocalLambda::start(config).await.unwrap();
            let server = DevServer::start(&cli, &lambda.aws_client_environment())
                .await
                .unwrap();
            Local {
                cli,
                lambda,
                server,
            }
        })
        .await
        .unwrap()
    })
}

/// A minimal HTTP/1.1 exchange.
pub fn http(address: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
