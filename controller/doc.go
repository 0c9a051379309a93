// Package controller holds AutoCrane's controllers, one sub-package each:
// watchdog (the prober, which records each pod's watchdog levels and its
// health label) and eviction (which evicts pods that stay in error, within
// the PodDisruptionBudget and AutoCrane's own brakes). Each keeps its
// decisions in pure, table-tested functions, with the reconciler a thin shell.
package controller
