//! A TLS-terminating gRPC proxy in front of the (plaintext, loopback) Temporal dev server: Debian's
//! nginx, with a configuration written at run time. It can require an API key
//! (`authorization: Bearer <key>`) and a client certificate, and answers a request lacking either
//! with gRPC status 16 (UNAUTHENTICATED) and a message saying what is missing. It removes the
//! `authorization` header before forwarding, so the server never sees the key.

use std::{
    net::{TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// What the proxy asks of its clients.
pub struct ProxyOptions<'a> {
    /// The certificate and key it presents.
    pub server_cert: &'a Path,
    pub server_key: &'a Path,
    /// The key requests must carry, if any.
    pub api_key: Option<&'a str>,
    /// The CA client certificates must come from, if they are required.
    pub client_ca: Option<&'a Path>,
    /// The dev server's `host:port`.
    pub upstream: &'a str,
}

/// A running nginx; killed when dropped.
pub struct Proxy {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

/// nginx: `$NGINX`, else `nginx` on `PATH`, else `/usr/sbin/nginx`.
fn nginx() -> PathBuf {
    if let Some(path) = std::env::var_os("NGINX") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.is_file())
    });
    let found = on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    assert!(
        found.is_file(),
        "nginx is not installed (the security tests put it in front of the dev server): \
         apt-get install -y --no-install-recommends nginx, or set NGINX"
    );
    found
}

impl Proxy {
    pub fn start(options: &ProxyOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let config = dir.path().join("nginx.conf");
        std::fs::write(&config, configuration(dir.path(), port, options)).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let globals = format!(
            "daemon off; pid {}; error_log {} info;",
            dir.path().join("nginx.pid").display(),
            dir.path().join("error.log").display()
        );
        let mut command = Command::new(nginx());
        command
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config)
            .args(["-g", &globals])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // SAFETY: prctl is async-signal-safe; it only affects the child being spawned.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().expect("nginx starts");
        let mut proxy = Self { child, dir, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("nginx exited at start ({status}): {}", proxy.own_logs());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nginx did not listen within 20s: {}",
                proxy.own_logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    /// `127.0.0.1:<port>`, for `TEMPORAL_ADDRESS`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Everything nginx wrote: its stderr, error log and access log.
    pub fn own_logs(&self) -> String {
        ["stderr.log", "error.log", "access.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
                format!("--- nginx {name} ---\n{text}")
            })
            .collect()
    }

    /// The access log alone.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn configuration(dir: &Path, port: u16, options: &ProxyOptions) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    let client_certificates = match options.client_ca {
        Some(ca) => format!(
            "ssl_client_certificate {};\n        ssl_verify_client on;",
            ca.display()
        ),
        None => String::new(),
    };
    let key_check = match options.api_key {
        Some(key) => format!("if ($http_authorization != \"Bearer {key}\") {{ return 401; }}"),
        None => String::new(),
    };
    // One process (no master and workers), so killing it stops everything; every path it
    // writes is in the temporary directory, so it runs as any user.
    format!(
        r#"master_process off;
lock_file {lock};
events {{ worker_connections 128; }}
http {{
    access_log {access};
    client_body_temp_path {body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        {client_certificates}
        error_page 401 = @unauthenticated;
        error_page 495 496 = @no_client_certificate;
        location / {{
            {key_check}
            grpc_set_header Authorization "";
            grpc_read_timeout 600s;
            grpc_send_timeout 600s;
            grpc_pass grpc://{upstream};
        }}
        location @unauthenticated {{
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "missing or wrong API key" always;
            return 204;
        }}
        location @no_client_certificate {{
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "a client certificate from the trusted CA is required" always;
            return 204;
        }}
    }}
}}
"#,
        lock = path("nginx.lock"),
        access = path("access.log"),
        body = path("client_body"),
        proxy = path("proxy"),
        fastcgi = path("fastcgi"),
        uwsgi = path("uwsgi"),
        scgi = path("scgi"),
        cert = options.server_cert.display(),
        key = options.server_key.display(),
        upstream = options.upstream,
    )
}
