// The greeting workflow, as in the Rust sample. Its type name is the exported function's name.
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from './activities';

const { hello } = proxyActivities<typeof activities>({ startToCloseTimeout: '10 seconds' });

export async function GreetingWorkflow(name: string): Promise<string> {
  return await hello(name);
}
