package payment

import (
	"context"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// sweepLoop checks the open links every PAYMENT_SWEEP until ctx ends.
func (c *Connector) sweepLoop(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.sweep(ctx)
		}
	}
}

// sweep queries the pending links created more than PAYMENT_QUERY_AFTER ago whose notify has
// not come (at most once per PAYMENT_QUERY_AFTER each), and closes the expired ones: paid ones
// (a lost notify) publish paid, closed ones closed. Replicas may sweep the same order: the
// status event's id makes that harmless.
func (c *Connector) sweep(ctx context.Context) {
	pending, err := c.orders.pending(ctx)
	if err != nil {
		c.rt.Log.WarnContext(ctx, "payment sweep: orders unreadable", "err", err)
		return
	}
	now := c.now()
	for _, o := range pending {
		if ctx.Err() != nil {
			return
		}
		p, ok := c.providers[o.Provider]
		if !ok || now.Sub(o.CreatedAt) < c.cfg.QueryAfter || now.Sub(o.QueriedAt) < c.cfg.QueryAfter && now.Before(o.ExpiresAt) {
			continue
		}
		c.check(ctx, p, o, now)
	}
}

// check queries one order and closes it when it expired unpaid.
func (c *Connector) check(ctx context.Context, p provider, o order, now time.Time) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cctx = resilience.WithCall(cctx, resilience.Call{CustomerID: o.CustomerID, CorrelationID: o.RequestID, Key: o.OutTradeNo})
	out, err := p.query(cctx, o)
	if err != nil {
		c.rt.Log.InfoContext(ctx, "payment sweep: query failed", "out_trade_no", o.OutTradeNo, "err", err)
		return
	}
	source := "query"
	if out.Status == StatusPending && !now.Before(o.ExpiresAt) {
		if err := p.close(cctx, o); err != nil {
			c.rt.Log.InfoContext(ctx, "payment sweep: close failed", "out_trade_no", o.OutTradeNo, "err", err)
			return
		}
		out, source = outcome{Status: StatusClosed, At: now}, "close"
	}
	if out.Status == StatusPending {
		_ = c.orders.update(ctx, o.OutTradeNo, func(o *order) { o.QueriedAt = now })
		return
	}
	e, err := c.statusEvent(o, out, source)
	if err == nil {
		err = c.rt.Publish(cctx, []bus.Outgoing{e}...)
	}
	if err != nil {
		c.rt.Log.WarnContext(ctx, "payment sweep: status not published", "out_trade_no", o.OutTradeNo, "err", err)
		return
	}
	c.settle(ctx, o.OutTradeNo, out.Status)
}
