// Package greeting is the Go peer's workflow and activity, with the names of the Rust sample so
// one starter drives every implementation. The benchmark's peer (../main.go) and the e2e tests'
// Go worker with the lambdaworker otel package register it the same way.
package greeting

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/contrib/aws/lambdaworker"
	"go.temporal.io/sdk/workflow"
)

// Greeting asks the `hello` activity for the greeting of `name`.
func Greeting(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
	})
	var greeting string
	err := workflow.ExecuteActivity(ctx, "hello", name).Get(ctx, &greeting)
	return greeting, err
}

// Hello returns "Hello, <name>!".
func Hello(_ context.Context, name string) (string, error) {
	return "Hello, " + name + "!", nil
}

// Register registers Greeting as the Pinned workflow `GreetingWorkflow` and Hello as `hello`.
func Register(o *lambdaworker.Options) {
	o.RegisterWorkflowWithOptions(Greeting, workflow.RegisterOptions{
		Name:               "GreetingWorkflow",
		VersioningBehavior: workflow.VersioningBehaviorPinned,
	})
	o.RegisterActivityWithOptions(Hello, activity.RegisterOptions{Name: "hello"})
}
