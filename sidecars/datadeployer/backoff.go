package datadeployer

import "time"

// backoff spaces out retries: min doubled per failure, capped at max, with
// "equal jitter" (half fixed, half random), so the pods of a large
// Deployment do not retry a recovering repository in lockstep.
type backoff struct {
	min, max time.Duration
	random   func() float64
}

// delay is the wait after the failures-th failure in a row (1, 2, ...).
func (b backoff) delay(failures int) time.Duration {
	d := b.max
	if failures < 1 {
		failures = 1
	}
	if shift := failures - 1; shift < 40 {
		if exp := b.min << shift; exp > 0 && exp < b.max {
			d = exp
		}
	}
	half := d / 2
	return half + time.Duration(b.random()*float64(d-half))
}
