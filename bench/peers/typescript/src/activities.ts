// The activities, each registered under its exported name: `hello`, `approved`, `square`.
import { activityInfo, ApplicationFailure } from '@temporalio/activity';

export async function hello(name: string): Promise<string> {
  return `Hello, ${name}!`;
}

// Fails its first attempt on purpose (retryable), so every ApprovalWorkflow run has one retry.
export async function approved(name: string): Promise<string> {
  if (activityInfo().attempt === 1) {
    throw ApplicationFailure.retryable('first attempt fails on purpose');
  }
  return `Approved, ${name}!`;
}

export async function square(i: number): Promise<number> {
  return i * i;
}
