package pool

// NoWatchdog leaves MaxRSS to its check after each batch, for the tests
// of that check: without it, the watchdog would end the batch.
func NoWatchdog() Option { return func(o *options) { o.noWatchdog = true } }
