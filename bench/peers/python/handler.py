"""The Python peer: the greeting, approval and fan-out workflows on
temporalio.contrib.aws.lambda_worker.

awslambdaric loads `handler.lambda_handler`. BENCH_DEPLOYMENT and BENCH_BUILD_ID name the Worker
Deployment Version (the harness gives each implementation its own); the package reads the task
queue from TEMPORAL_TASK_QUEUE and the server address from TEMPORAL_ADDRESS.
"""

import os

from temporalio.common import WorkerDeploymentVersion
from temporalio.contrib.aws.lambda_worker import LambdaWorkerConfig, run_worker

from greeting import GreetingWorkflow, hello
from workloads import ApprovalWorkflow, FanOutWorkflow, approved, square


def configure(config: LambdaWorkerConfig) -> None:
    config.worker_config["workflows"] = [GreetingWorkflow, ApprovalWorkflow, FanOutWorkflow]
    config.worker_config["activities"] = [hello, approved, square]


lambda_handler = run_worker(
    WorkerDeploymentVersion(
        deployment_name=os.environ["BENCH_DEPLOYMENT"],
        build_id=os.environ["BENCH_BUILD_ID"],
    ),
    configure,
)
