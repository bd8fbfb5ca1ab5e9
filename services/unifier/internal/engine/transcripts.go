package engine

import (
	"errors"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// Transcript states: a call's row and the desk's call carry the state of its transcript (migration
// 00011): live while a SIP call's caller leg streams to an ASR vendor (its call.answered says
// so), pending while a cloud contact centre call's after-call transcription is to come (its
// call.ended says so), then complete, partial or none — from a SIP call's call.ended, or from
// omni.channel.call.transcribed (omni.in.voice.transcription) for a provider call. A final state
// is never replaced (store.FoldTranscript), so any order and any replay end the same.
//
// A transcription outcome names only its call, as a transfer outcome does, and takes the same
// path (transfers.go): the call's row gives the rest of the desk's call, and an outcome of a call
// not recorded yet is retried.

// prepareTranscribed decodes an omni.channel.call.transcribed; its errors are permanent.
func prepareTranscribed(i int, d bus.Delivery) (transferEvent, error) {
	var o struct {
		CallID     string    `json:"call_id"`
		Transcript string    `json:"transcript"`
		At         time.Time `json:"at"`
	}
	if err := decode(d.Event, &o); err != nil {
		return transferEvent{}, err
	}
	if o.CallID == "" {
		return transferEvent{}, bus.Permanent(errors.New("the transcription outcome has no call_id"))
	}
	if !store.FinalTranscript(o.Transcript) {
		return transferEvent{}, bus.Permanent(errors.New("the transcription outcome's transcript is not complete, partial or none"))
	}
	return transferEvent{i: i, d: d, callID: o.CallID, transcript: o.Transcript, at: eventTime(d.Event, o.At)}, nil
}
