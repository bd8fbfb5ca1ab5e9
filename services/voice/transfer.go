package voice

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// Transfer (RFC 3515 REFER, blind): an omni.channel.call.transfer.requested command names a call
// and a target; the connector sends REFER in the call's dialog with Refer-To
// sip:<extension>@VOICE_TRANSFER_DOMAIN (or the sip: URI given), and follows the implicit
// subscription's NOTIFYs, whose message/sipfrag bodies carry the new leg's status line. A final
// 2xx publishes omni.channel.call.transferred and omnibus leaves the call (BYE, ended reason
// transferred); a refused REFER, a final failure in a NOTIFY, no final NOTIFY within
// VOICE_TRANSFER_TIMEOUT or the call ending first publish omni.channel.call.transfer.failed, and
// the call stays as it was.

// Failure reasons of omni.channel.call.transfer.failed.
const (
	transferNotAnswered = "not_answered"
	transferRefused     = "refused"
	transferFailed      = "failed"
	transferTimeout     = "timeout"
	transferEnded       = "ended"
)

// sipfrag is the status line a NOTIFY of a REFER subscription carries (RFC 3420).
type sipfrag struct {
	code int
	line string
}

// parseSipfrag reads the status line of a message/sipfrag body: "SIP/2.0 200 OK".
func parseSipfrag(body []byte) (sipfrag, bool) {
	line, _, _ := strings.Cut(string(body), "\n")
	line = strings.TrimSpace(line)
	rest, ok := strings.CutPrefix(line, "SIP/2.0 ")
	if !ok || len(rest) < 3 {
		return sipfrag{}, false
	}
	code, err := strconv.Atoi(rest[:3])
	if err != nil || code < 100 || code > 699 || (len(rest) > 3 && rest[3] != ' ') {
		return sipfrag{}, false
	}
	if len(line) > 256 {
		line = line[:256]
	}
	return sipfrag{code: code, line: line}, true
}

// transfer is one transfer command in progress.
type transfer struct {
	id, target, referTo, agent string
}

// referTo builds the Refer-To URI of target: a sip:/sips: URI as given, an extension at
// VOICE_TRANSFER_DOMAIN, or, without it, at the host:port of the INVITE's Contact (the trunk).
func (s *server) referTo(c *call, target string) (string, error) {
	if strings.HasPrefix(target, "sip:") || strings.HasPrefix(target, "sips:") {
		var u sip.Uri
		if err := sip.ParseUri(target, &u); err != nil {
			return "", fmt.Errorf("transfer target %q: %w", target, err)
		}
		return u.String(), nil
	}
	for _, r := range target {
		if (r < '0' || r > '9') && r != '*' && r != '#' && r != '+' {
			return "", fmt.Errorf("transfer target %q is neither an extension nor a sip: URI", target)
		}
	}
	domain := s.cfg.TransferDomain
	if domain == "" {
		domain = c.dlg.InviteRequest.Contact().Address.HostPort() // where the trunk takes requests
	}
	u := "sip:" + target + "@" + domain
	var parsed sip.Uri
	if err := sip.ParseUri(u, &parsed); err != nil {
		return "", fmt.Errorf("transfer target %q: %w", u, err)
	}
	return parsed.String(), nil
}

// onTransferCommand sends the REFER of a call this connector holds and leaves the rest to
// awaitTransfer; a call held elsewhere (or over) is acknowledged and ignored.
func (s *server) onTransferCommand(ctx context.Context, d bus.Delivery) error {
	var cmd struct {
		CallID  string `json:"call_id"`
		Target  string `json:"target"`
		AgentID string `json:"agent_id"`
		Reason  string `json:"reason"`
	}
	if err := event.DecodeData(d.Event, &cmd); err != nil {
		return bus.Permanent(fmt.Errorf("undecodable transfer command: %w", err))
	}
	c := s.held(cmd.CallID)
	if c == nil {
		s.rt.Log.Info("transfer of a call not held here ignored", "call_id", cmd.CallID)
		return nil
	}
	t := transfer{id: d.Event.ID(), target: cmd.Target, agent: cmd.AgentID}
	log := s.rt.Log.With("call_id", c.info.ID, "target", cmd.Target, "agent_id", cmd.AgentID)
	if !c.answered.Load() {
		return s.transferFailed(ctx, c, t, 0, transferNotAnswered, "the call is not answered")
	}
	if c.dlg.InviteRequest.Contact() == nil {
		return s.transferFailed(ctx, c, t, 0, transferRefused, "the trunk's INVITE had no Contact to send a REFER to")
	}
	var err error
	if t.referTo, err = s.referTo(c, cmd.Target); err != nil {
		return bus.Permanent(err)
	}
	if !c.transferring.CompareAndSwap(false, true) {
		return s.transferFailed(ctx, c, t, 0, transferRefused, "another transfer of the call is in progress")
	}
	for len(c.notify) > 0 { // NOTIFYs of an earlier transfer
		<-c.notify
	}
	req := sip.NewRequest(sip.REFER, c.dlg.InviteRequest.Contact().Address)
	req.SetTransport(c.dlg.InviteRequest.Transport())
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+t.referTo+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+s.contact.Address.String()+">"))
	rctx, cancel := context.WithTimeout(ctx, s.cfg.TransferTimeout)
	res, err := c.dlg.Do(rctx, req)
	cancel()
	switch {
	case err != nil:
		c.transferring.Store(false)
		log.Warn("REFER not answered", "err", err)
		return s.transferFailed(ctx, c, t, 0, transferTimeout, "REFER not answered: "+err.Error())
	case !res.IsSuccess():
		c.transferring.Store(false)
		log.Warn("REFER refused", "status", res.StatusCode, "reason", res.Reason)
		return s.transferFailed(ctx, c, t, res.StatusCode, transferRefused, res.Reason)
	}
	log.Info("REFER accepted", "refer_to", t.referTo, "status", res.StatusCode, "reason", cmd.Reason)
	s.transfers.Add(1)
	go s.awaitTransfer(context.WithoutCancel(ctx), c, t) // it outlives the delivery
	return nil
}

// awaitTransfer follows the NOTIFYs of an accepted REFER to the transfer's outcome.
func (s *server) awaitTransfer(ctx context.Context, c *call, t transfer) {
	defer s.transfers.Done()
	defer c.transferring.Store(false)
	log := s.rt.Log.With("call_id", c.info.ID, "refer_to", t.referTo)
	timer := time.NewTimer(s.cfg.TransferTimeout)
	defer timer.Stop()
	outcome := func(f sipfrag) (done bool) {
		switch {
		case f.code < 200:
			return false
		case f.code < 300:
			data := map[string]any{"channel": "voice", "call_id": c.info.ID, "target": t.target, "refer_to": t.referTo, "at": time.Now().UTC()}
			if t.agent != "" {
				data["agent_id"] = t.agent
			}
			if err := s.publishOn(ctx, SubjectTransferOutcome, c.info, TypeTransferred, "transfer:"+t.id, data, time.Now().UTC()); err != nil {
				log.Error("transferred event not published", "err", err)
			}
			log.Info("call transferred; leaving it")
			c.requestHangup(reasonTransferred)
		default:
			log.Warn("transfer failed", "sipfrag", f.line)
			_ = s.transferFailed(ctx, c, t, f.code, transferFailed, f.line)
		}
		return true
	}
	for {
		select {
		case f := <-c.notify:
			if outcome(f) {
				return
			}
		case <-timer.C:
			_ = s.transferFailed(ctx, c, t, 0, transferTimeout, "no final NOTIFY within VOICE_TRANSFER_TIMEOUT")
			return
		case <-c.dlg.Context().Done():
			for len(c.notify) > 0 { // a final NOTIFY that came with the BYE still counts
				if outcome(<-c.notify) {
					return
				}
			}
			_ = s.transferFailed(ctx, c, t, 0, transferEnded, "the call ended before the transfer completed")
			return
		}
	}
}

// transferFailed publishes omni.channel.call.transfer.failed (status 0: none).
func (s *server) transferFailed(ctx context.Context, c *call, t transfer, status int, reason, detail string) error {
	data := map[string]any{"channel": "voice", "call_id": c.info.ID, "target": t.target, "reason": reason, "at": time.Now().UTC()}
	if t.referTo != "" {
		data["refer_to"] = t.referTo
	}
	if status != 0 {
		data["status"] = status
	}
	if detail != "" {
		if len(detail) > 256 {
			detail = detail[:256]
		}
		data["detail"] = detail
	}
	if t.agent != "" {
		data["agent_id"] = t.agent
	}
	return s.publishOn(ctx, SubjectTransferOutcome, c.info, TypeTransferFailed, "transfer:"+t.id, data, time.Now().UTC())
}

// onNotify takes the NOTIFYs of a REFER subscription (Event: refer) in a call's dialog.
func (s *server) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	c := s.callByDialog(req)
	if c == nil {
		respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	if ev := req.GetHeader("Event"); ev == nil || !strings.EqualFold(strings.TrimSpace(strings.SplitN(ev.Value(), ";", 2)[0]), "refer") {
		respond(tx, req, 489, "Bad Event")
		return
	}
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		respond(tx, req, sip.StatusInternalServerError, "Server Internal Error")
		return
	}
	f, ok := parseSipfrag(req.Body())
	if ok && f.code >= 200 && f.code < 300 && c.transferring.Load() {
		c.referred.Store(true) // before the 200: the trunk's BYE may follow it at once
	}
	respond(tx, req, sip.StatusOK, "OK")
	if !ok {
		s.rt.Log.Warn("NOTIFY without a sipfrag status line ignored", "call_id", c.info.ID)
		return
	}
	select {
	case c.notify <- f:
	default:
	}
}
