// Package manifests has no code of its own: its test holds the deployment
// files under deploy/ (the Kubernetes manifests, the Compose file, the
// example configuration, the Grafana dashboard and the Dockerfile) to the
// pipeline's option registry, to its command line and to the schemas of
// Kubernetes, the Compose Specification and Grafana.
//
// Every file is decoded strictly, so that a misspelled field is an error
// rather than a setting the orchestrator silently drops. It is a module of
// its own so that the pipeline's module does not depend on Kubernetes'.
//
//	cd deploy/manifests && go test ./...    (make deploy-test)
package manifests
