// Package strataconformance runs containerd 1.6's own content and snapshot
// test suites against a strata-proxy daemon reached over its unix socket.
//
// Every test case starts a fresh daemon (own root directory and socket),
// talks to it through containerd's proxy clients, either directly or through
// containerd's metadata layer (bolt DB, namespaces, garbage collection), and
// stops it at teardown. See harness_test.go for the daemon lifecycle.
//
// Build and run (GOPATH mode, offline) with scripts/conformance.sh.
package strataconformance
