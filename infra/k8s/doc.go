// Package k8s holds the Kubernetes manifests of the stack (base and the dev
// and prod overlays, kustomize) and, in its tests, the offline checks that
// make test runs on them: every overlay renders, every core object passes a
// strict schema check, the operators' objects pass schemas of the fields
// they use, and the rendered objects match infra/topology. No cluster is
// involved; docs/kubernetes.md says what that does and does not prove.
package k8s
