// Package archtest holds the test that keeps the layout honest: the folder
// rules of docs/architecture.md checked over `go list -deps`, so breaking
// one fails `make test` instead of going unnoticed.
package archtest
