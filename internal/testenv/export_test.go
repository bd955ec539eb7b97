package testenv

import "time"

// SetClock makes the limiter read now instead of the time: the tests step through its window.
func (l *StripeRateLimiter) SetClock(now func() time.Time) { l.now = now }
