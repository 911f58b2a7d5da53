// The Go package's telemetry, for comparison with ours on the same collector: the benchmark's Go
// peer (go.temporal.io/sdk/contrib/aws/lambdaworker and its greeting workflow) with the
// lambdaworker otel package's ApplyDefaults, as its README shows. The collector e2e test builds
// it into target/tools/ and runs it as a lambda-local function.
//
// GO_WORKER_DEPLOYMENT and GO_WORKER_BUILD_ID name the Worker Deployment Version; the task queue
// and the collector come from TEMPORAL_TASK_QUEUE and OTEL_EXPORTER_OTLP_ENDPOINT.
package main

import (
	"os"

	"bench/peers/go/greeting"

	"go.temporal.io/sdk/contrib/aws/lambdaworker"
	"go.temporal.io/sdk/contrib/aws/lambdaworker/otel"
	"go.temporal.io/sdk/worker"
)

func main() {
	version := worker.WorkerDeploymentVersion{
		DeploymentName: os.Getenv("GO_WORKER_DEPLOYMENT"),
		BuildID:        os.Getenv("GO_WORKER_BUILD_ID"),
	}
	lambdaworker.RunWorker(version, func(o *lambdaworker.Options) error {
		greeting.Register(o)
		return otel.ApplyDefaults(o, &o.ClientOptions, otel.Options{})
	})
}
