// The workflows, with the Rust worker's names; each type name is the exported function's name.
// GreetingWorkflow is the Rust sample's; ApprovalWorkflow adds a timer, a signal and a retried
// activity; FanOutWorkflow runs many activities at once.
import { condition, defineSignal, proxyActivities, setHandler, sleep } from '@temporalio/workflow';
import type * as activities from './activities';

const { hello, square } = proxyActivities<typeof activities>({ startToCloseTimeout: '10 seconds' });

const { approved } = proxyActivities<typeof activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2.0, maximumAttempts: 3 },
});

export const approveSignal = defineSignal<[string]>('approve');

export async function GreetingWorkflow(name: string): Promise<string> {
  return await hello(name);
}

// Greets `name`, sleeps 3 s, waits for `approve` (the first approver wins; one sent during the
// timer is kept), greets the approver, then asks `approved`, which succeeds on its second attempt.
export async function ApprovalWorkflow(name: string): Promise<string> {
  let approver: string | undefined;
  setHandler(approveSignal, (who: string) => {
    approver ??= who;
  });
  const g1 = await hello(name);
  await sleep('3 seconds');
  await condition(() => approver !== undefined);
  const g2 = await hello(approver!);
  const g3 = await approved(name);
  return `${g1} ${g2} ${g3}`;
}

// Calling an activity function schedules it at once, so all `count` are scheduled before any
// result is awaited.
export async function FanOutWorkflow(count: number): Promise<number> {
  const squares = await Promise.all(Array.from({ length: count }, (_, k) => square(k + 1)));
  return squares.reduce((sum, x) => sum + x, 0);
}
