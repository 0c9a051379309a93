// Package controller holds AutoCrane's controllers, one sub-package each:
// watchdog (the prober, which records each pod's watchdog levels and its
// health label), eviction (which evicts pods that stay in error, within
// the PodDisruptionBudget and AutoCrane's own brakes) and datarollout
// (which rolls data versions out in waves and rolls them back). Each keeps
// its decisions in pure, table-tested functions, with the reconciler a
// thin shell.
//
// This package holds what they share: the trimmed pod cache and its owner
// index, and the workload an Event about a pod names.
package controller
