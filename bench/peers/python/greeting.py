"""The greeting workflow and its activity, as in the Rust sample.

Kept apart from handler.py because Temporal's workflow sandbox re-imports the module that defines
a workflow: importing the handler there would call run_worker a second time.
"""

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import VersioningBehavior


@activity.defn(name="hello")
async def hello(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn(name="GreetingWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            hello, name, start_to_close_timeout=timedelta(seconds=10)
        )
