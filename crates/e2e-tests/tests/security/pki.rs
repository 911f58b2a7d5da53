//! Certificates for the security tests, made with the `openssl` command line in a temporary
//! directory: a CA and its server certificate for 127.0.0.1 and localhost, a client CA and its
//! client certificate for mTLS, and a second CA nobody trusts, with a server certificate of its own.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Extensions for each kind of certificate (X.509 v3, as rustls requires).
const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A certificate and its private key, as PEM files.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pair {
    /// The private key's PEM text.
    pub fn key_pem(&self) -> String {
        std::fs::read_to_string(&self.key).unwrap()
    }
}

/// Every certificate the tests need; the files live as long as this.
pub struct Pki {
    _dir: tempfile::TempDir,
    /// The CA the workers trust, and its server certificate.
    pub ca: Pair,
    pub server: Pair,
    /// The CA the proxy trusts for client certificates, and its client certificate.
    pub client_ca: Pair,
    pub client: Pair,
    /// A server certificate from a CA nobody trusts.
    pub rogue_server: Pair,
}

impl Pki {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("openssl.cnf");
        std::fs::write(&config, OPENSSL_CONFIG).unwrap();
        let issue = Issuer {
            dir: dir.path(),
            config: &config,
        };
        let ca = issue.ca("ca", "temporal-lambda-worker test CA");
        let server = issue.leaf("server", "127.0.0.1", &ca, "server");
        let client_ca = issue.ca("client-ca", "temporal-lambda-worker test client CA");
        let client = issue.leaf("client", "lambda worker", &client_ca, "client");
        let rogue_ca = issue.ca("rogue-ca", "an untrusted CA");
        let rogue_server = issue.leaf("rogue-server", "127.0.0.1", &rogue_ca, "server");
        Self {
            _dir: dir,
            ca,
            server,
            client_ca,
            client,
            rogue_server,
        }
    }
}

struct Issuer<'a> {
    dir: &'a Path,
    config: &'a Path,
}

impl Issuer<'_> {
    fn key(&self, name: &str) -> PathBuf {
        let key = self.dir.join(format!("{name}.key"));
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            path(&key),
        ]);
        key
    }

    fn ca(&self, name: &str, common_name: &str) -> Pair {
        let key = self.key(name);
        let cert = self.dir.join(format!("{name}.pem"));
        openssl(&[
            "req",
            "-config",
            path(self.config),
            "-new",
            "-x509",
            "-key",
            path(&key),
            "-subj",
            &format!("/CN={common_name}"),
            "-days",
            "2",
            "-extensions",
            "ca",
            "-out",
            path(&cert),
        ]);
        Pair { cert, key }
    }

    fn leaf(&self, name: &str, common_name: &str, issuer: &Pair, extensions: &str) -> Pair {
        let key = self.key(name);
        let request = self.dir.join(format!("{name}.csr"));
        let cert = self.dir.join(format!("{name}.pem"));
        openssl(&[
            "req",
            "-config",
            path(self.config),
            "-new",
            "-key",
            path(&key),
            "-subj",
            &format!("/CN={common_name}"),
            "-out",
            path(&request),
        ]);
        let serial = format!("0x{}", uuid::Uuid::new_v4().simple());
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&request),
            "-CA",
            path(&issuer.cert),
            "-CAkey",
            path(&issuer.key),
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-extfile",
            path(self.config),
            "-extensions",
            extensions,
            "-out",
            path(&cert),
        ]);
        Pair { cert, key }
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (needed for test certificates): {e}"));
    assert!(
        output.status.success(),
        "openssl {} failed: {}",
        args[0],
        String::from_utf8_lossy(&output.stderr).trim()
    );
}
