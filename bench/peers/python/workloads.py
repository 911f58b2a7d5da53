"""The approval and fan-out workflows and their activities, with the Rust worker's names.

ApprovalWorkflow exercises a timer, a signal and a retried activity; FanOutWorkflow many concurrent
activities. Like greeting.py, kept apart from handler.py because the workflow sandbox re-imports
the module that defines a workflow: importing the handler there would call run_worker again.
"""

import asyncio
from datetime import timedelta
from typing import Optional

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ApplicationError

from greeting import hello


@activity.defn(name="approved")
async def approved(name: str) -> str:
    # Fails once on purpose so every run carries one activity retry.
    if activity.info().attempt == 1:
        raise ApplicationError("first attempt fails on purpose")
    return f"Approved, {name}!"


@activity.defn(name="square")
async def square(i: int) -> int:
    return i * i


@workflow.defn(name="ApprovalWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class ApprovalWorkflow:
    """Greets `name`, sleeps 3 s, waits for `approve`, greets the approver, then `approved`."""

    def __init__(self) -> None:
        self._approver: Optional[str] = None

    @workflow.signal(name="approve")
    def approve(self, approver: str) -> None:
        if self._approver is None:
            self._approver = approver

    @workflow.run
    async def run(self, name: str) -> str:
        timeout = timedelta(seconds=10)
        g1 = await workflow.execute_activity(hello, name, start_to_close_timeout=timeout)
        await workflow.sleep(timedelta(seconds=3))
        # Returns at once if the signal already came (e.g. during the timer).
        await workflow.wait_condition(lambda: self._approver is not None)
        assert self._approver is not None
        g2 = await workflow.execute_activity(hello, self._approver, start_to_close_timeout=timeout)
        g3 = await workflow.execute_activity(
            approved,
            name,
            start_to_close_timeout=timeout,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_attempts=3,
            ),
        )
        return f"{g1} {g2} {g3}"


@workflow.defn(name="FanOutWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class FanOutWorkflow:
    """Schedules `square` for 1..=count all at once and returns the sum."""

    @workflow.run
    async def run(self, count: int) -> int:
        # start_activity schedules immediately; gather only awaits the results.
        handles = [
            workflow.start_activity(square, i, start_to_close_timeout=timedelta(seconds=10))
            for i in range(1, count + 1)
        ]
        return sum(await asyncio.gather(*handles))
