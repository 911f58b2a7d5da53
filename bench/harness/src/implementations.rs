//! The implementations under test: how each one's `bootstrap` is started in an execution
//! environment, and where its deployment package is (for its size).
//!
//! `bench/run` builds every package into `<artifacts>/<name>/package`; this file only describes
//! how to run what it built, so the harness itself installs nothing.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// One implementation of the greeting worker.
#[derive(Clone, Debug)]
pub struct Implementation {
    /// Function name, deployment name suffix, and row label: `rust`, `go`, `python`, ...
    pub name: String,
    /// What it is, for the report.
    pub description: String,
    /// The bootstrap and its arguments.
    pub command: Vec<String>,
    /// The unpacked deployment package (`LAMBDA_TASK_ROOT`).
    pub package: PathBuf,
    /// Variables of the function beyond the ones every implementation gets.
    pub env: BTreeMap<String, String>,
}

/// The interpreters the peers run on (absolute paths, so no shim sits in the cold start).
pub struct Interpreters {
    pub python: String,
    pub node: String,
}

/// Ours, then the Go peer (the headline), then Python and TypeScript.
pub fn all(artifacts: &Path, interpreters: &Interpreters) -> Vec<Implementation> {
    let package = |name: &str| artifacts.join(name).join("package");
    let bootstrap = |name: &str| package(name).join("bootstrap").display().to_string();
    vec![
        Implementation {
            name: "rust".into(),
            description: "temporal-lambda-worker (this repository), release build".into(),
            command: vec![bootstrap("rust")],
            package: package("rust"),
            env: BTreeMap::new(),
        },
        Implementation {
            name: "go".into(),
            description: "go.temporal.io/sdk/contrib/aws/lambdaworker v0.1.1".into(),
            command: vec![bootstrap("go")],
            package: package("go"),
            env: BTreeMap::new(),
        },
        Implementation {
            name: "python".into(),
            description:
                "PyPI temporalio 1.35.0 (contrib.aws.lambda_worker) via awslambdaric 4.2.2".into(),
            command: vec![
                interpreters.python.clone(),
                "-m".into(),
                "awslambdaric".into(),
                "handler.lambda_handler".into(),
            ],
            package: package("python"),
            env: BTreeMap::new(),
        },
        Implementation {
            name: "typescript".into(),
            description: "npm @temporalio/lambda-worker 1.23.0 via aws-lambda-ric 4.0.2".into(),
            command: vec![
                interpreters.node.clone(),
                "node_modules/aws-lambda-ric/index.mjs".into(),
            ],
            package: package("typescript"),
            // aws-lambda-ric takes the handler from _HANDLER, as Lambda's Node runtime sets it.
            env: BTreeMap::from([("_HANDLER".to_owned(), "lib/handler.handler".to_owned())]),
        },
    ]
}

/// A variant of ours: `LABEL:KEY=VALUE[,KEY=VALUE...]` becomes `rust-LABEL`, the Rust worker with
/// those variables (how switches such as idle exit are compared with the default).
pub fn rust_variant(spec: &str, rust: &Implementation) -> Result<Implementation, String> {
    let (label, assignments) = spec
        .split_once(':')
        .ok_or_else(|| format!("--variant {spec}: write LABEL:KEY=VALUE[,KEY=VALUE]"))?;
    if label.is_empty()
        || !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(format!(
            "--variant {spec}: the label must be letters, digits or '-'"
        ));
    }
    let mut variant = rust.clone();
    variant.name = format!("rust-{label}");
    variant.description = format!("{} with {assignments}", rust.description);
    for assignment in assignments.split(',').filter(|a| !a.is_empty()) {
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("--variant {spec}: '{assignment}' is not KEY=VALUE"))?;
        variant.env.insert(key.to_owned(), value.to_owned());
    }
    Ok(variant)
}

/// Bytes and files of a package directory, following no symbolic links.
pub fn package_size(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .flatten()
        .fold((0, 0), |(bytes, files), entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => {
                let (b, f) = package_size(&entry.path());
                (bytes + b, files + f)
            }
            Ok(kind) if kind.is_file() => {
                (bytes + entry.metadata().map_or(0, |m| m.len()), files + 1)
            }
            _ => (bytes, files),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust() -> Implementation {
        all(
            Path::new("/a"),
            &Interpreters {
                python: "py".into(),
                node: "node".into(),
            },
        )
        .remove(0)
    }

    #[test]
    fn variants_add_variables_to_ours() {
        let variant = rust_variant("idle:IDLE_EXIT=1,X=y", &rust()).unwrap();
        assert_eq!(variant.name, "rust-idle");
        assert_eq!(variant.env["IDLE_EXIT"], "1");
        assert_eq!(variant.env["X"], "y");
        assert_eq!(variant.command, rust().command);
    }

    #[test]
    fn malformed_variants_are_explained() {
        assert!(rust_variant("no-colon", &rust()).is_err());
        assert!(rust_variant("bad label:X=1", &rust()).is_err());
        assert!(rust_variant("ok:X", &rust()).is_err());
    }

    #[test]
    fn package_sizes_add_up() {
        let dir = std::env::temp_dir().join(format!("bench-size-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), b"12345").unwrap();
        std::fs::write(dir.join("sub/b"), b"123").unwrap();
        assert_eq!(package_size(&dir), (8, 2));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
