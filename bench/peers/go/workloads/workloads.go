// Package workloads is the Go peer's two heavier benchmark workflows beside the greeting:
// ApprovalWorkflow (timer, signal, a retried activity) and FanOutWorkflow (many concurrent
// activities). Names, inputs and outputs match the Rust worker's so one harness drives all peers.
package workloads

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/contrib/aws/lambdaworker"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Approval greets `name`, waits 3 s on a durable timer, then for the `approve` signal (taking the
// first approver, even if it came during the timer), greets the approver and asks the `approved`
// activity, which fails its first attempt so one retry shows in every run.
func Approval(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
	})
	// Every `approve` is taken off the channel (so none is left unhandled), the first one kept.
	var approver string
	signalled := false
	workflow.Go(ctx, func(ctx workflow.Context) {
		ch := workflow.GetSignalChannel(ctx, "approve")
		for {
			var who string
			ch.Receive(ctx, &who)
			if !signalled {
				approver, signalled = who, true
			}
		}
	})
	var g1, g2, g3 string
	if err := workflow.ExecuteActivity(ctx, "hello", name).Get(ctx, &g1); err != nil {
		return "", err
	}
	if err := workflow.Sleep(ctx, 3*time.Second); err != nil {
		return "", err
	}
	if err := workflow.Await(ctx, func() bool { return signalled }); err != nil {
		return "", err
	}
	if err := workflow.ExecuteActivity(ctx, "hello", approver).Get(ctx, &g2); err != nil {
		return "", err
	}
	retried := workflow.WithRetryPolicy(ctx, temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2.0,
		MaximumAttempts:    3,
	})
	if err := workflow.ExecuteActivity(retried, "approved", name).Get(ctx, &g3); err != nil {
		return "", err
	}
	return g1 + " " + g2 + " " + g3, nil
}

// Approved fails its first attempt with a retryable error and returns "Approved, <name>!" after.
func Approved(ctx context.Context, name string) (string, error) {
	if activity.GetInfo(ctx).Attempt == 1 {
		return "", temporal.NewApplicationError("first attempt fails on purpose", "")
	}
	return "Approved, " + name + "!", nil
}

// FanOut schedules `square` for 1..=count all at once, then sums the results.
func FanOut(ctx workflow.Context, count int) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
	})
	futures := make([]workflow.Future, 0, count)
	for i := 1; i <= count; i++ {
		futures = append(futures, workflow.ExecuteActivity(ctx, "square", i))
	}
	sum := 0
	for _, f := range futures {
		var sq int
		if err := f.Get(ctx, &sq); err != nil {
			return 0, err
		}
		sum += sq
	}
	return sum, nil
}

// Square returns i*i.
func Square(_ context.Context, i int) (int, error) {
	return i * i, nil
}

// Register registers the two workflows (Pinned) and the `approved` and `square` activities;
// `hello` comes from package greeting.
func Register(o *lambdaworker.Options) {
	pinned := func(name string) workflow.RegisterOptions {
		return workflow.RegisterOptions{Name: name, VersioningBehavior: workflow.VersioningBehaviorPinned}
	}
	o.RegisterWorkflowWithOptions(Approval, pinned("ApprovalWorkflow"))
	o.RegisterWorkflowWithOptions(FanOut, pinned("FanOutWorkflow"))
	o.RegisterActivityWithOptions(Approved, activity.RegisterOptions{Name: "approved"})
	o.RegisterActivityWithOptions(Square, activity.RegisterOptions{Name: "square"})
}
