// Package httpserve serves an HTTP handler until a context ends, then shuts
// down gracefully: the one serve loop of AutoCrane's small programs.
package httpserve
