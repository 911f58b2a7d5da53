//! The timing rules of an invocation. Every duration the lifecycle waits on is here, with the
//! checks on the ones you set; the crate turns them into the instants of each invocation's
//! phases with pure functions, and the invocation only waits on those.
//!
//! The phases of an invocation with Lambda's `deadline` (the defaults in brackets):
//!
//! 1. **work**: connect (or check the kept connection), then poll until the idle exit
//!    ([`crate::Options::idle_exit`], at least [`IDLE_EXIT_FIRST_TASK_WAIT`] before the first
//!    task), SIGTERM, or `deadline - shutdown_deadline_buffer` [7 s], earlier by what the last
//!    polls need beyond the room the buffer leaves them (1 s with the defaults). With
//!    [`MIN_WORK_TIME`] or less to do this the invocation fails at once; below
//!    [`LOW_WORK_TIME`] it warns.
//! 2. **drain**: no new poll is sent; the last ones end at the server (1.5 s after they
//!    arrive at most) and their answers come back (0.5 s allowed: a throttled CPU is slow), for
//!    at most [`crate::POLL_DEADLINE`], while the worker processes what they bring; never past
//!    the moment the stop must begin to keep its whole length.
//! 3. **stop**: the worker finishes its tasks for the stop timeout [5 s]; 0.5 s later whatever
//!    ignored cancellation is abandoned, and never later than 0.5 s before the deadline.
//! 4. **hooks**: the shutdown hooks, until 0.25 s before the deadline; the rest is for the
//!    response.
//!
//! Lambda's SIGTERM skips phase 2 and cuts phase 3 to 0.2 s and phase 4 to 0.4 s after the
//! signal; the process exits 0.48 s after it, within Lambda's 500 ms.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    Error, InvocationError, defaults,
    polls::{LAST_POLL_RETURN, LAST_POLL_WAIT},
};

/// An invocation with this little work time (deadline − now − buffer) or less fails at once.
pub const MIN_WORK_TIME: Duration = Duration::from_secs(1);
/// An invocation with less work time than this logs a warning.
pub const LOW_WORK_TIME: Duration = Duration::from_secs(5);
/// Before its first task, an idle exit waits at least this long: the first polls for a version
/// the server has only just seen can take a second or more to be matched, and an invocation that
/// leaves before its task arrives may not be replaced for minutes.
pub const IDLE_EXIT_FIRST_TASK_WAIT: Duration = Duration::from_secs(5);
/// How long past the stop timeout a stopping worker may take before it is abandoned: activities
/// have been cancelled by then, and this is their time to notice.
const HARD_STOP_GRACE: Duration = Duration::from_millis(500);
/// Kept free before the deadline so the response reaches Lambda in time; the stop keeps two
/// (one for the hooks, one for the response).
const RETURN_MARGIN: Duration = Duration::from_millis(250);
/// How long a kept connection may take to answer its check before a new one is made.
pub(crate) const REUSE_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// After SIGTERM, how long the stopping worker may drain.
const SIGTERM_DRAIN: Duration = Duration::from_millis(200);
/// After SIGTERM, when the hooks must be done.
pub(crate) const SIGTERM_BUDGET: Duration = Duration::from_millis(400);
/// After SIGTERM, when the process exits at the latest, answered or not: Lambda kills it at
/// 500 ms. What is left after [`SIGTERM_BUDGET`] is for posting the response.
pub(crate) const SIGTERM_EXIT: Duration = Duration::from_millis(480);
const _: () = assert!(SIGTERM_DRAIN.as_millis() < SIGTERM_BUDGET.as_millis());
const _: () = assert!(SIGTERM_BUDGET.as_millis() < SIGTERM_EXIT.as_millis());
/// The shortest idle exit period accepted: shorter cannot tell idle from between two tasks.
const MIN_IDLE_EXIT: Duration = Duration::from_millis(100);
/// The smallest gap between the stop timeout and the buffer: time for the hard stop and hooks.
const MIN_BUFFER_BEYOND_STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// The checked timing settings of every invocation of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing {
    /// Reserved before the deadline for the last polls, the stop and the hooks.
    pub(crate) buffer: Duration,
    /// How long the stopping worker may drain its tasks.
    pub(crate) stop_timeout: Duration,
    /// The idle exit period, or `None` to poll until the deadline stop.
    pub(crate) idle_exit: Option<Duration>,
    /// How far ahead an idle worker looks for work that is due, or `None` to leave without
    /// looking ([`crate::Options::idle_exit_lookahead`]).
    pub(crate) idle_lookahead: Option<Duration>,
}

impl Timing {
    /// Checks the user's values; an unset buffer follows the stop timeout.
    pub(crate) fn new(
        stop_timeout: Duration,
        buffer: Option<Duration>,
        idle_exit: Option<Duration>,
    ) -> Result<Self, Error> {
        let buffer =
            buffer.unwrap_or(stop_timeout + defaults::SHUTDOWN_DEADLINE_BUFFER_BEYOND_STOP_TIMEOUT);
        if buffer < stop_timeout + MIN_BUFFER_BEYOND_STOP_TIMEOUT {
            return Err(Error::InvalidOptions(format!(
                "the shutdown deadline buffer ({}ms; TEMPORAL_LAMBDA_SHUTDOWN_BUFFER or \
                 shutdown_deadline_buffer) must exceed the worker stop timeout ({}ms; \
                 TEMPORAL_LAMBDA_STOP_TIMEOUT or worker.graceful_shutdown_period) by at least \
                 {MIN_BUFFER_BEYOND_STOP_TIMEOUT:?}, time for the hard stop and the shutdown \
                 hooks: raise the buffer, or leave it unset (it is then the stop timeout + \
                 {:?}), or lower the stop timeout",
                buffer.as_millis(),
                stop_timeout.as_millis(),
                defaults::SHUTDOWN_DEADLINE_BUFFER_BEYOND_STOP_TIMEOUT,
            )));
        }
        if let Some(idle) = idle_exit
            && idle < MIN_IDLE_EXIT
        {
            return Err(Error::InvalidOptions(format!(
                "idle exit of {}ms (TEMPORAL_LAMBDA_IDLE_EXIT or idle_exit) is too short to tell \
                 idle from between tasks: use at least {}ms, or off (None) to poll until the \
                 deadline",
                idle.as_millis(),
                MIN_IDLE_EXIT.as_millis()
            )));
        }
        Ok(Self {
            buffer,
            stop_timeout,
            idle_exit,
            idle_lookahead: Some(defaults::IDLE_EXIT_LOOKAHEAD),
        })
    }

    /// What the stop keeps before the deadline: the stop timeout, its grace and two margins.
    fn stop_budget(&self) -> Duration {
        self.stop_timeout + HARD_STOP_GRACE + RETURN_MARGIN * 2
    }

    /// The instants of an invocation that must answer by `deadline` ([`Plan::work_time`] says
    /// whether it has enough time left to start).
    pub(crate) fn plan(&self, deadline: Instant) -> Plan {
        // The last polls may wait at the server for LAST_POLL_WAIT after the last one is sent,
        // and take LAST_POLL_RETURN there and back; what the buffer leaves beyond the stop
        // covers part of that, polling stops early enough for the rest.
        let room_for_last_polls = self.buffer.saturating_sub(self.stop_budget());
        Plan {
            timing: *self,
            deadline,
            stop_polling: earlier(
                deadline,
                self.buffer
                    + (LAST_POLL_WAIT + LAST_POLL_RETURN).saturating_sub(room_for_last_polls),
            ),
            latest_stop: earlier(deadline, self.stop_budget()),
            hard_stop_cap: earlier(deadline, RETURN_MARGIN * 2),
            hooks_end: earlier(deadline, RETURN_MARGIN),
        }
    }

    /// How long nothing may be in flight before the idle exit, once any task has been seen or
    /// before the first one.
    pub(crate) fn idle_period(&self, any_task_seen: bool) -> Option<Duration> {
        self.idle_exit.map(|period| {
            if any_task_seen {
                period
            } else {
                period.max(IDLE_EXIT_FIRST_TASK_WAIT)
            }
        })
    }

    /// Until when a worker idle for its period (`idle_period`) stays for work due at `due`: the
    /// moment it is due plus the period, when it is due within the lookahead from `now` and
    /// before polling stops. `None`: it leaves now.
    pub(crate) fn stay_for_due_work(
        &self,
        due: Option<Instant>,
        idle_period: Duration,
        now: Instant,
        stop_polling: Instant,
    ) -> Option<Instant> {
        let (lookahead, due) = (self.idle_lookahead?, due?);
        (due <= now + lookahead && due < stop_polling).then_some(due + idle_period)
    }
}

/// The instants of one invocation (see the module's phases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    timing: Timing,
    deadline: Instant,
    /// Polling ends (the deadline stop); connecting must be done by then.
    pub(crate) stop_polling: Instant,
    /// The drain ends by then at the latest, so the stop keeps its whole length.
    latest_stop: Instant,
    /// The worker is abandoned by then at the latest.
    hard_stop_cap: Instant,
    /// The hooks must be done by then.
    pub(crate) hooks_end: Instant,
}

impl Plan {
    /// Work time left at `now` (until `deadline - buffer`), or
    /// [`InvocationError::DeadlineTooClose`] when it is [`MIN_WORK_TIME`] or less.
    pub(crate) fn work_time(&self, now: Instant) -> Result<Duration, InvocationError> {
        let until_deadline = self.deadline.saturating_duration_since(now);
        let work_time = until_deadline.saturating_sub(self.timing.buffer);
        if work_time <= MIN_WORK_TIME {
            return Err(InvocationError::DeadlineTooClose {
                until_deadline,
                buffer: self.timing.buffer,
                work_time,
            });
        }
        Ok(work_time)
    }

    /// When the drain of the last polls, started at `started`, ends at the latest.
    pub(crate) fn drain_by(&self, started: Instant) -> Instant {
        (started + crate::POLL_DEADLINE).min(self.latest_stop.max(started))
    }

    /// When a worker asked to stop at `started` is abandoned: the SDK cancels activities after
    /// the stop timeout but then waits for them however long they take.
    pub(crate) fn hard_stop(&self, started: Instant) -> Instant {
        (started + self.timing.stop_timeout + HARD_STOP_GRACE).min(self.hard_stop_cap)
    }
}

/// A phase that SIGTERM cuts short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The worker's stop: it may drain for [`SIGTERM_DRAIN`] after the signal.
    Stop,
    /// The shutdown hooks: done [`SIGTERM_BUDGET`] after the signal.
    Hooks,
}

impl Phase {
    /// When the phase planned to end at `end` ends, given when SIGTERM arrived (if it has).
    pub(crate) fn cut_by_sigterm(self, end: Instant, sigterm: Option<Instant>) -> Instant {
        let allowance = match self {
            Self::Stop => SIGTERM_DRAIN,
            Self::Hooks => SIGTERM_BUDGET,
        };
        sigterm.map_or(end, |received| end.min(received + allowance))
    }
}

fn earlier(instant: Instant, by: Duration) -> Instant {
    instant.checked_sub(by).unwrap_or(instant)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn defaults() -> Timing {
        Timing::new(
            defaults::WORKER_STOP_TIMEOUT,
            None,
            Some(defaults::IDLE_EXIT),
        )
        .unwrap()
    }

    #[test]
    fn the_default_plan_polls_until_a_second_before_the_buffer_and_keeps_every_stop_whole() {
        let timing = defaults();
        assert_eq!(timing.buffer, ms(7_000));
        let deadline = Instant::now() + ms(30_000);
        let plan = timing.plan(deadline);
        assert_eq!(plan.work_time(deadline - ms(30_000)).unwrap(), ms(23_000));
        assert_eq!(plan.stop_polling, deadline - ms(8_000));
        assert_eq!(plan.hooks_end, deadline - ms(250));
        // A deadline stop: the drain ends with the poll deadline or 6 s before the deadline,
        // and the stop keeps its 5 s and 0.5 s of grace.
        assert_eq!(plan.drain_by(plan.stop_polling), deadline - ms(6_000));
        assert_eq!(plan.hard_stop(deadline - ms(6_000)), deadline - ms(500));
        // An idle stop early on: the whole poll deadline, then the whole stop.
        let idle = deadline - ms(20_000);
        assert_eq!(plan.drain_by(idle), idle + ms(2_500));
        assert_eq!(plan.hard_stop(idle), idle + ms(5_500));
        // A drain that started late ends at once; the abandonment is capped by the deadline.
        assert_eq!(plan.drain_by(deadline - ms(3_000)), deadline - ms(3_000));
        assert_eq!(plan.hard_stop(deadline - ms(3_000)), deadline - ms(500));
    }

    #[test]
    fn a_buffer_with_room_beyond_the_stop_needs_no_earlier_stop() {
        let timing = Timing::new(ms(5_000), Some(ms(10_000)), None).unwrap();
        let deadline = Instant::now() + ms(60_000);
        let plan = timing.plan(deadline);
        assert_eq!(plan.stop_polling, deadline - ms(10_000));
        assert_eq!(plan.drain_by(plan.stop_polling), deadline - ms(7_500));
        // The smallest buffer allowed leaves no room: polling stops the whole last-poll wait
        // and return earlier.
        let tight = Timing::new(ms(5_000), Some(ms(6_000)), None).unwrap();
        let plan = tight.plan(deadline);
        assert_eq!(plan.stop_polling, deadline - ms(8_000));
    }

    #[test]
    fn an_unset_buffer_follows_the_stop_timeout_and_a_set_one_must_exceed_it_by_a_second() {
        assert_eq!(
            Timing::new(ms(10_000), None, None).unwrap().buffer,
            ms(12_000)
        );
        assert!(Timing::new(ms(5_000), Some(ms(6_000)), None).is_ok());
        let error = Timing::new(ms(5_000), Some(ms(5_999)), None).unwrap_err();
        let message = error.to_string();
        for quoted in [
            "(5999ms;",
            "(5000ms;",
            "by at least 1s",
            "stop timeout + 2s",
        ] {
            assert!(message.contains(quoted), "{quoted} not in {message}");
        }
    }

    #[test]
    fn an_idle_exit_below_a_tenth_of_a_second_is_refused() {
        assert!(Timing::new(ms(5_000), None, Some(ms(100))).is_ok());
        let error = Timing::new(ms(5_000), None, Some(ms(99))).unwrap_err();
        assert!(error.to_string().contains("use at least 100ms"), "{error}");
    }

    #[test]
    fn the_work_time_must_exceed_a_second() {
        let timing = defaults();
        let deadline = Instant::now() + ms(60_000);
        let plan = timing.plan(deadline);
        assert_eq!(plan.work_time(deadline - ms(8_001)).unwrap(), ms(1_001));
        match plan.work_time(deadline - ms(8_000)) {
            Err(InvocationError::DeadlineTooClose {
                until_deadline,
                buffer,
                work_time,
            }) => {
                assert_eq!(
                    (until_deadline, buffer, work_time),
                    (ms(8_000), ms(7_000), ms(1_000))
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn before_the_first_task_the_idle_exit_waits_longer() {
        let timing = defaults();
        assert_eq!(timing.idle_period(true), Some(ms(1_000)));
        assert_eq!(timing.idle_period(false), Some(IDLE_EXIT_FIRST_TASK_WAIT));
        let long = Timing::new(ms(5_000), None, Some(ms(8_000))).unwrap();
        assert_eq!(long.idle_period(false), Some(ms(8_000)));
        assert_eq!(
            Timing::new(ms(5_000), None, None)
                .unwrap()
                .idle_period(true),
            None
        );
    }

    #[test]
    fn an_idle_worker_stays_for_work_due_within_the_lookahead_and_before_polling_stops() {
        let timing = defaults();
        assert_eq!(timing.idle_lookahead, Some(defaults::IDLE_EXIT_LOOKAHEAD));
        let now = Instant::now();
        let stop = now + ms(30_000);
        let period = ms(1_000);
        let within = now + defaults::IDLE_EXIT_LOOKAHEAD;
        assert_eq!(
            timing.stay_for_due_work(Some(within), period, now, stop),
            Some(within + period)
        );
        let beyond = within + ms(1);
        assert_eq!(
            timing.stay_for_due_work(Some(beyond), period, now, stop),
            None
        );
        assert_eq!(timing.stay_for_due_work(None, period, now, stop), None);
        // Due after polling stops: the deadline stop comes first, staying would only bill.
        let short = now + ms(1_000);
        assert_eq!(
            timing.stay_for_due_work(Some(now + ms(1_500)), period, now, short),
            None
        );
        let off = Timing {
            idle_lookahead: None,
            ..timing
        };
        assert_eq!(off.stay_for_due_work(Some(now), period, now, stop), None);
    }

    #[test]
    fn sigterm_cuts_the_stop_and_the_hooks_short_but_never_extends_them() {
        let now = Instant::now();
        let end = now + ms(3_000);
        assert_eq!(Phase::Stop.cut_by_sigterm(end, None), end);
        assert_eq!(Phase::Stop.cut_by_sigterm(end, Some(now)), now + ms(200));
        assert_eq!(Phase::Hooks.cut_by_sigterm(end, Some(now)), now + ms(400));
        assert_eq!(
            Phase::Hooks.cut_by_sigterm(now + ms(100), Some(now)),
            now + ms(100)
        );
    }
}
