// The Go peer: the greeting workflow (package greeting) and the approval and fan-out workflows
// (package workloads) on go.temporal.io/sdk/contrib/aws/lambdaworker, used as its README shows.
// The harness builds this into a `bootstrap` binary and lambda-local runs it exactly as it runs
// our Rust worker.
//
// BENCH_DEPLOYMENT and BENCH_BUILD_ID name the Worker Deployment Version (the harness gives each
// implementation its own); the task queue comes from TEMPORAL_TASK_QUEUE, read by the package.
package main

import (
	"os"

	"bench/peers/go/greeting"
	"bench/peers/go/workloads"

	"go.temporal.io/sdk/contrib/aws/lambdaworker"
	"go.temporal.io/sdk/worker"
)

func main() {
	version := worker.WorkerDeploymentVersion{
		DeploymentName: os.Getenv("BENCH_DEPLOYMENT"),
		BuildID:        os.Getenv("BENCH_BUILD_ID"),
	}
	lambdaworker.RunWorker(version, func(o *lambdaworker.Options) error {
		greeting.Register(o)
		workloads.Register(o)
		return nil
	})
}
