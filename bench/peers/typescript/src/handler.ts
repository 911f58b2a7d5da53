// The TypeScript peer: the greeting, approval and fan-out workflows on @temporalio/lambda-worker,
// loaded by aws-lambda-ric as `lib/handler.handler` (the _HANDLER variable).
//
// BENCH_DEPLOYMENT and BENCH_BUILD_ID name the Worker Deployment Version (the harness gives each
// implementation its own); the package reads the task queue from TEMPORAL_TASK_QUEUE and the
// server address from TEMPORAL_ADDRESS. Workflows are pre-bundled at build time
// (src/bundle.ts), as the package recommends, so no webpack run happens at cold start.
import { runWorker } from '@temporalio/lambda-worker';
import * as activities from './activities';

export const handler = runWorker(
  {
    deploymentName: process.env.BENCH_DEPLOYMENT ?? '',
    buildId: process.env.BENCH_BUILD_ID ?? '',
  },
  (config) => {
    // Pinned is the package's default versioning behaviour; stated here to match the others.
    config.workerOptions.workerDeploymentOptions = { defaultVersioningBehavior: 'PINNED' };
    config.workerOptions.workflowBundle = { code: require('./workflow-bundle.js').code };
    config.workerOptions.activities = activities;
  },
);
