// Package examples holds no code: its tests run the example fleets in this
// directory through the real hosts meshfleet integrates with — the
// kustomize CLI, kustomize with meshfleet as a KRM function, pre-commit's
// hook contract and Argo CD's plugin contract — using a meshfleet binary
// built from this repository.
package examples
