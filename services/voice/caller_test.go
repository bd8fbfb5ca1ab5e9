package voice_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	sandboxcaller "github.com/omnibus-dev/omnibus/services/sandbox/caller"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// tone is d of a 440 Hz tone at 8 kHz.
func tone(d time.Duration) []int16 {
	n := int(d.Seconds() * 8000)
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	return out
}

// The sandbox's caller (what the demo's simulated customers and the load tool call with) places
// concurrent calls through digest auth; each is answered, its audio recorded to within a
// packet of what was played, and ended by the caller's BYE.
func TestSandboxCallerCalls(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, map[string]string{"VOICE_DIGEST_USER": "pbx", "VOICE_DIGEST_PASSWORD": "s3cret"})
	d, err := sandboxcaller.New(sandboxcaller.Config{Target: tb.sipAddr, Username: "pbx", Password: "s3cret", Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const calls = 4
	audio := tone(1200 * time.Millisecond)
	var wg sync.WaitGroup
	res := make([]sandboxcaller.Call, calls)
	errs := make([]error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res[i], errs[i] = d.Call(ctx, customer, hotline, audio, 200*time.Millisecond)
		}()
	}
	wg.Wait()
	for i := range calls {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if r := res[i]; r.Status != 200 || r.HungUpBy != "caller" || r.Sent != 70 {
			t.Fatalf("call %d: %+v, want answered, 70 packets sent, hung up by the caller", i, r)
		}
	}
	evs := tb.waitEnded(t, calls, 15*time.Second)
	for _, e := range evs[voice.TypeCallEnded] {
		got := ended(t, e)
		if got.Reason != "bye" || got.HangupSide != "caller" || got.Recording == nil || len(got.Recording.Legs) == 0 {
			t.Fatalf("ended: %+v", got)
		}
		// 1.4 s played (70 packets of 20 ms): the recording holds them, give or take a packet.
		if ms := got.Recording.Legs[0].DurationMS; ms < 1380 || ms > 1420 {
			t.Fatalf("recording of %d ms, want 1400 ± 20", ms)
		}
		if m := got.Media; m == nil || m.Packets != 70 || m.Lost != 0 {
			t.Fatalf("media %+v, want the 70 packets sent and none lost", m)
		}
	}

	// A wrong password is refused, and the caller says how.
	bad, err := sandboxcaller.New(sandboxcaller.Config{Target: tb.sipAddr, Username: "pbx", Password: "guess", Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := bad.Call(ctx, customer, hotline, audio, 0); err == nil || r.Status != 403 {
		t.Fatalf("wrong password: %+v %v, want 403", r, err)
	}
}

// TestSandboxCallerTransferred: the sandbox's caller takes a transfer as a PBX does — the
// desk's transfer command becomes a REFER, the caller answers 202 and NOTIFYs 100 Trying then
// 200 OK, and ends its leg to omnibus with BYE — so the connector reports the call transferred
// (not refused) and its ended event says why it ended, with the recording whole.
func TestSandboxCallerTransferred(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, map[string]string{"VOICE_TRANSFER_DOMAIN": "pbx.example.com"})
	d, err := sandboxcaller.New(sandboxcaller.Config{Target: tb.sipAddr, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		res sandboxcaller.Call
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := d.Call(ctx, customer, hotline, tone(20*time.Second), 0) // hangs up after 20 s unless handed off
		done <- result{r, err}
	}()
	id := answeredCallID(t, tb)
	command(t, tb, voice.TypeTransfer, voice.SubjectTransfer, map[string]any{"channel": "voice", "call_id": id, "target": "8003", "agent_id": "agent-li"})
	typ, out := waitTransfer(t, tb)
	if typ != voice.TypeTransferred || out.CallID != id || out.Target != "8003" || out.ReferTo != "sip:8003@pbx.example.com" {
		t.Fatalf("outcome %s %+v, want transferred to sip:8003@pbx.example.com", typ, out)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the caller did not leave the transferred call")
	}
	if r.err != nil || r.res.TransferredTo != "sip:8003@pbx.example.com" || r.res.Talk >= 15*time.Second {
		t.Fatalf("the caller's call: %+v, %v; want handed off to sip:8003@pbx.example.com well before its audio ran out", r.res, r.err)
	}
	e := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
	if e.Reason != "transferred" || e.Recording == nil || len(e.Recording.Legs) == 0 {
		t.Fatalf("ended = %+v, want reason transferred with the recording", e)
	}
	// After a transfer both ends may send BYE at once (the transferee's BYE and the connector's
	// after the final NOTIFY cross on the wire), so either side may be recorded as hanging up;
	// the reason is what must say transferred.
	if e.HangupSide != "caller" && e.HangupSide != "omnibus" {
		t.Errorf("hang-up side %q after the transfer, want caller or omnibus", e.HangupSide)
	}
}
