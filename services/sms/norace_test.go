//go:build !race

package sms_test

const raceEnabled = false
