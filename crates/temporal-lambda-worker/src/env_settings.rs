//! The Lambda-specific settings a deployment can change without a rebuild: `TEMPORAL_LAMBDA_*`
//! variables in the function's environment. They are applied to [`Options`] before `configure`
//! runs, so values set in code win.

use std::time::Duration;

use crate::{Error, Options, environment::Environment};

/// Time reserved before the deadline (`options.shutdown_deadline_buffer`).
pub const SHUTDOWN_BUFFER_VAR: &str = "TEMPORAL_LAMBDA_SHUTDOWN_BUFFER";
/// The worker's stop timeout (`options.worker.graceful_shutdown_period`).
pub const STOP_TIMEOUT_VAR: &str = "TEMPORAL_LAMBDA_STOP_TIMEOUT";
/// Idle exit period, or `off` (`options.idle_exit`).
pub const IDLE_EXIT_VAR: &str = "TEMPORAL_LAMBDA_IDLE_EXIT";
/// How far the idle exit looks ahead for due work, or `off` (`options.idle_exit_lookahead`).
pub const IDLE_LOOKAHEAD_VAR: &str = "TEMPORAL_LAMBDA_IDLE_LOOKAHEAD";
/// `true` or `false` (`options.reuse_connection`).
pub const REUSE_CONNECTION_VAR: &str = "TEMPORAL_LAMBDA_REUSE_CONNECTION";

/// Applies every `TEMPORAL_LAMBDA_*` variable that is set.
pub(crate) fn apply(env: &Environment, options: &mut Options) -> Result<(), Error> {
    if let Some(value) = env.get(SHUTDOWN_BUFFER_VAR) {
        options.shutdown_deadline_buffer = Some(duration(SHUTDOWN_BUFFER_VAR, value)?);
    }
    if let Some(value) = env.get(STOP_TIMEOUT_VAR) {
        options.worker.graceful_shutdown_period = Some(duration(STOP_TIMEOUT_VAR, value)?);
    }
    if let Some(value) = env.get(IDLE_EXIT_VAR) {
        options.idle_exit = duration_or_off(IDLE_EXIT_VAR, value)?;
    }
    if let Some(value) = env.get(IDLE_LOOKAHEAD_VAR) {
        options.idle_exit_lookahead = duration_or_off(IDLE_LOOKAHEAD_VAR, value)?;
    }
    if let Some(value) = env.get(REUSE_CONNECTION_VAR) {
        options.reuse_connection = match value.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(Error::InvalidOptions(format!(
                    "{REUSE_CONNECTION_VAR} is '{value}': use true or false"
                )));
            }
        };
    }
    Ok(())
}

/// `off`, or a [`duration`].
fn duration_or_off(variable: &str, value: &str) -> Result<Option<Duration>, Error> {
    if value.trim().eq_ignore_ascii_case("off") {
        Ok(None)
    } else {
        duration(variable, value).map(Some)
    }
}

/// A positive duration written as a whole number with a unit: `ms`, `s` or `m`.
fn duration(variable: &str, value: &str) -> Result<Duration, Error> {
    let problem = |what: &str| {
        Error::InvalidOptions(format!(
            "{variable} is '{value}': {what}; write a whole number with a unit, for example 7s, \
             1500ms or 2m"
        ))
    };
    let text = value.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| problem("not a duration"))?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "" => return Err(problem("the unit is missing")),
        _ => return Err(problem("unknown unit")),
    };
    if duration.is_zero() {
        return Err(problem("it must be greater than zero"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        BoxError, Version, VersioningBehavior, options::Settings, test_support::FirstWorkflow,
        worker::setup,
    };

    fn setup_with(
        vars: &[(&str, &str)],
        configure: impl FnOnce(&mut Options),
    ) -> Result<Settings, Error> {
        let dir = tempfile::tempdir().unwrap();
        let mut env = Environment {
            cwd: dir.path().to_owned(),
            ..Default::default()
        }
        .with("TEMPORAL_TASK_QUEUE", "tq");
        for (name, value) in vars {
            env = env.with(name, *value);
        }
        setup(&env, &Version::new("app", "b1"), |options| {
            options.register_workflow_with_behavior::<FirstWorkflow>(VersioningBehavior::Pinned)?;
            configure(options);
            Ok::<_, BoxError>(())
        })
    }

    #[test]
    fn variables_tune_the_options() {
        let settings = setup_with(
            &[
                (SHUTDOWN_BUFFER_VAR, "12s"),
                (STOP_TIMEOUT_VAR, "9s"),
                (IDLE_EXIT_VAR, "1500ms"),
                (IDLE_LOOKAHEAD_VAR, "20s"),
                (REUSE_CONNECTION_VAR, "FALSE"),
            ],
            |_| {},
        )
        .unwrap();
        assert_eq!(settings.timing.buffer, Duration::from_secs(12));
        assert_eq!(settings.timing.stop_timeout, Duration::from_secs(9));
        assert_eq!(
            settings.worker.graceful_shutdown_period,
            Some(Duration::from_secs(9))
        );
        assert_eq!(settings.timing.idle_exit, Some(Duration::from_millis(1500)));
        assert_eq!(
            settings.timing.idle_lookahead,
            Some(Duration::from_secs(20))
        );
        assert!(!settings.reuse_connection);
    }

    #[test]
    fn code_wins_over_variables_and_off_turns_idle_exit_off() {
        let settings = setup_with(
            &[
                (SHUTDOWN_BUFFER_VAR, "12s"),
                (IDLE_EXIT_VAR, "off"),
                (IDLE_LOOKAHEAD_VAR, "OFF"),
            ],
            |options| options.shutdown_deadline_buffer = Some(Duration::from_secs(20)),
        )
        .unwrap();
        assert_eq!(settings.timing.buffer, Duration::from_secs(20));
        assert_eq!(settings.timing.idle_exit, None);
        assert_eq!(settings.timing.idle_lookahead, None);
        assert!(settings.reuse_connection, "on by default");
    }

    #[test]
    fn an_unset_buffer_follows_the_stop_timeout_from_either_source() {
        let from_variable = setup_with(&[(STOP_TIMEOUT_VAR, "10s")], |_| {}).unwrap();
        assert_eq!(from_variable.timing.stop_timeout, Duration::from_secs(10));
        assert_eq!(from_variable.timing.buffer, Duration::from_secs(12));
        let from_code = setup_with(&[], |options| {
            options.worker.graceful_shutdown_period = Some(Duration::from_secs(30));
        })
        .unwrap();
        assert_eq!(from_code.timing.buffer, Duration::from_secs(32));
        let by_default = setup_with(&[], |_| {}).unwrap();
        assert_eq!(by_default.timing.buffer, Duration::from_secs(7));
    }

    #[test]
    fn a_stop_timeout_beyond_the_buffer_names_both_variables() {
        let message = setup_with(
            &[(SHUTDOWN_BUFFER_VAR, "7s"), (STOP_TIMEOUT_VAR, "10s")],
            |_| {},
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            message.contains(SHUTDOWN_BUFFER_VAR)
                && message.contains(STOP_TIMEOUT_VAR)
                && message.contains("7000ms")
                && message.contains("10000ms"),
            "{message}"
        );
    }

    #[test]
    fn a_bad_variable_fails_setup_with_its_name() {
        for (name, value, expected) in [
            (SHUTDOWN_BUFFER_VAR, "0s", "greater than zero"),
            (STOP_TIMEOUT_VAR, "five", "not a duration"),
            (IDLE_EXIT_VAR, "50ms", "too short"),
            (REUSE_CONNECTION_VAR, "yes", "use true or false"),
        ] {
            let message = setup_with(&[(name, value)], |_| {})
                .err()
                .unwrap()
                .to_string();
            assert!(
                message.contains(name) && message.contains(expected),
                "{name}={value}: {message}"
            );
        }
    }

    fn error(value: &str) -> String {
        duration(SHUTDOWN_BUFFER_VAR, value)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn durations_with_units() {
        let parse = |v| duration(SHUTDOWN_BUFFER_VAR, v).unwrap();
        assert_eq!(parse("7s"), Duration::from_secs(7));
        assert_eq!(parse(" 1500ms "), Duration::from_millis(1500));
        assert_eq!(parse("2m"), Duration::from_secs(120));
        assert_eq!(parse("3 s"), Duration::from_secs(3));
    }

    #[test]
    fn bad_durations_name_the_variable_and_the_fix() {
        for (value, problem) in [
            ("seven", "not a duration"),
            ("-1s", "not a duration"),
            ("1.5s", "unknown unit"),
            ("7", "the unit is missing"),
            ("7h", "unknown unit"),
            ("0s", "greater than zero"),
            ("0ms", "greater than zero"),
        ] {
            let message = error(value);
            assert!(
                message.contains(SHUTDOWN_BUFFER_VAR)
                    && message.contains(&format!("'{value}'"))
                    && message.contains(problem)
                    && message.contains("for example 7s"),
                "{value}: {message}"
            );
        }
    }
}
