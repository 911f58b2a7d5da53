//! Looking for secrets in captured output, and redacting them from anything a test prints.
//!
//! A secret is found whole, and also by its pieces: every window of a few characters taken at
//! short steps, so a partly printed key (a PEM line, a prefix, a truncated value) is found too.

/// The secrets of a test run.
#[derive(Default)]
pub struct Secrets {
    /// (what it is, a needle that must not appear)
    needles: Vec<(String, String)>,
}

/// Windows of this many characters...
const WINDOW: usize = 20;
/// ...taken every this many characters: any printed run of WINDOW + STEP - 1 characters of a
/// secret contains a whole window.
const STEP: usize = 4;

impl Secrets {
    /// A secret string, such as an API key.
    pub fn add(&mut self, name: &str, value: &str) {
        assert!(value.len() >= WINDOW, "{name} is too short to look for");
        self.needles.push((name.to_owned(), value.to_owned()));
        self.add_windows(name, value);
    }

    /// A PEM private key: its base64 body, line by line and in windows across the lines.
    pub fn add_pem_key(&mut self, name: &str, pem: &str) {
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        assert!(body.len() > 100, "{name}: not a PEM key");
        for line in pem.lines().filter(|line| !line.starts_with("-----")) {
            if line.len() >= WINDOW {
                self.needles.push((name.to_owned(), line.to_owned()));
            }
        }
        self.add_windows(name, &body);
    }

    fn add_windows(&mut self, name: &str, value: &str) {
        let chars: Vec<char> = value.chars().collect();
        let mut start = 0;
        while start + WINDOW <= chars.len() {
            let window: String = chars[start..start + WINDOW].iter().collect();
            self.needles.push((format!("{name} (part)"), window));
            start += STEP;
        }
    }

    /// Where `text` (from `source`) contains a secret: one redacted line per finding.
    pub fn findings(&self, source: &str, text: &str) -> Vec<String> {
        let mut findings = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let found: Vec<&str> = self
                .needles
                .iter()
                .filter(|(_, needle)| line.contains(needle.as_str()))
                .map(|(name, _)| name.as_str())
                .collect();
            if let Some(first) = found.first() {
                findings.push(format!(
                    "{source}, line {}: {first}: {}",
                    number + 1,
                    self.redact(line)
                ));
            }
        }
        findings
    }

    /// `text` with every secret and every piece of one replaced by `[REDACTED]`.
    pub fn redact(&self, text: &str) -> String {
        // Mark every byte covered by a needle, then replace each covered run once.
        let mut covered = vec![false; text.len()];
        for (_, needle) in &self.needles {
            for (at, _) in text.match_indices(needle.as_str()) {
                covered[at..at + needle.len()]
                    .iter_mut()
                    .for_each(|c| *c = true);
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut in_secret = false;
        for (at, ch) in text.char_indices() {
            if covered[at] {
                if !in_secret {
                    out.push_str("[REDACTED]");
                    in_secret = true;
                }
            } else {
                in_secret = false;
                out.push(ch);
            }
        }
        out
    }
}

#[test]
fn secrets_are_found_whole_and_in_part_and_redacted() {
    let mut secrets = Secrets::default();
    secrets.add(
        "the API key",
        "tlw-test-key-0123456789abcdef0123456789abcdef",
    );
    let pem = "-----BEGIN PRIVATE KEY-----\n\
               MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgK1jPm0X6yCgO3mPo\n\
               0QmBx5e7m9c8Jt1Zq1v2w3x4y5ehRANCAAR5m6n7o8p9q0r1s2t3u4v5w6x7y8z9\n\
               A0B1C2D3E4F5G6H7I8J9K0L1M2N3O4P5Q6R7S8T9U0V1W2X3Y4Z5a6b7c8d9e0f1\n\
               -----END PRIVATE KEY-----\n";
    secrets.add_pem_key("the client key", pem);
    let clean = "invocation failed: cannot connect to Temporal at https://127.0.0.1:4433/";
    assert!(secrets.findings("log", clean).is_empty());
    assert_eq!(secrets.redact(clean), clean);

    let leaky = "ok\nauthorization: Bearer tlw-test-key-0123456789abcdef0123456789abcdef!\nok";
    let found = secrets.findings("log", leaky);
    assert_eq!(
        found,
        ["log, line 2: the API key: authorization: Bearer [REDACTED]!"]
    );
    // A piece: the key's last 23 characters, or a few characters of a PEM line's middle.
    let partial = "key ends in 456789abcdef0123456789abcdef";
    assert!(!secrets.findings("log", partial).is_empty());
    assert!(!secrets.redact(partial).contains("0123456789abcdef0123"));
    let pem_piece = "error: x5e7m9c8Jt1Zq1v2w3x4y5ehRANC";
    assert!(!secrets.findings("log", pem_piece).is_empty());
    // The body across a line break, as in JSON with the newlines escaped.
    let joined = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgK1jPm0X6yCgO3mPo0QmBx5e7m9c8";
    assert!(!secrets.findings("log", joined).is_empty());
}
