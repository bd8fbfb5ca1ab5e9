//go:build race

package sms_test

// raceEnabled: the race detector slows publishing about tenfold, so TestLargePush sends fewer
// items (still more than one batch of 1,000) to stay within the push's publish timeout.
const raceEnabled = true
