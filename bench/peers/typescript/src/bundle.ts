// Build step: bundles the workflow code once, so cold starts load it instead of running webpack.
import { bundleWorkflowCode } from '@temporalio/worker';
import { writeFileSync } from 'fs';
import * as path from 'path';

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
  });
  writeFileSync(path.join(__dirname, 'workflow-bundle.js'), `exports.code = ${JSON.stringify(code)};\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
