//! A snapshot of what the process reads from its surroundings: environment variables and the
//! working directory. Taking it once, at cold start, keeps configuration deterministic and lets
//! tests describe an environment without touching the real one.

use std::{collections::HashMap, path::PathBuf};

/// Environment variables and working directory, as read at cold start.
#[derive(Clone, Debug, Default)]
pub(crate) struct Environment {
    pub(crate) vars: HashMap<String, String>,
    pub(crate) cwd: PathBuf,
}

impl Environment {
    /// Reads the current process's environment. Variables that are not valid UTF-8 are skipped
    /// (none of the ones this crate reads can legitimately contain such bytes).
    pub(crate) fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            cwd: std::env::current_dir().unwrap_or_default(),
        }
    }

    /// The variable's value, or `None` when it is unset or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    #[cfg(test)]
    pub(crate) fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }
}
