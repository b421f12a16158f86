// Package drills holds the orders pipeline's integration tests and failure
// drills. They run against the real stack (`make test`): real Postgres
// shards, Kafka, catalog and gateway. Every drill asserts that each accepted
// order ends confirmed or rejected exactly once, that the catalog's stock
// equals its initial value minus the confirmed quantities, and that no order
// has two status events.
package drills
