// The Go peer: the greeting workflow on go.temporal.io/sdk/contrib/aws/lambdaworker, used as
// its README shows. The harness builds this into a `bootstrap` binary and lambda-local runs it
// exactly as it runs our Rust worker.
//
// BENCH_DEPLOYMENT and BENCH_BUILD_ID name the Worker Deployment Version (the harness gives each
// implementation its own); the task queue comes from TEMPORAL_TASK_QUEUE, read by the package.
package main

import (
	"context"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/contrib/aws/lambdaworker"
	"go.temporal.io/sdk/worker"
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

func main() {
	version := worker.WorkerDeploymentVersion{
		DeploymentName: os.Getenv("BENCH_DEPLOYMENT"),
		BuildID:        os.Getenv("BENCH_BUILD_ID"),
	}
	lambdaworker.RunWorker(version, func(o *lambdaworker.Options) error {
		// The same names as the Rust sample, so one starter drives every implementation.
		o.RegisterWorkflowWithOptions(Greeting, workflow.RegisterOptions{
			Name:               "GreetingWorkflow",
			VersioningBehavior: workflow.VersioningBehaviorPinned,
		})
		o.RegisterActivityWithOptions(Hello, activity.RegisterOptions{Name: "hello"})
		return nil
	})
}
