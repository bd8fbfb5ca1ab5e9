package logistics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/cache"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/cainiao"
	"github.com/omnibus-dev/omnibus/pkg/wire/sfexpress"
)

// sfKey is one number to look up at SF, with the phone digits SF may require for it.
type sfKey struct {
	No, CheckPhone string
}

// sfAnswer is one number's share of a batch: its track, or the failure of its route query.
type sfAnswer struct {
	track Track
	err   error
}

// sfProvider looks numbers up at SF: concurrent lookups are coalesced by a resilience.Batcher
// into route queries of up to 10 numbers, each one call through the sfexpress.route_query route
// (one audit record, one rate-limit permit per batch).
type sfProvider struct {
	client *sfClient
	route  *resilience.Route
	// checkRoute is the start check's route (check.go).
	checkRoute *resilience.Route
	batch      *resilience.Batcher[sfKey, sfAnswer]
	now        func() time.Time
}

func newSFProvider(cfg Config, o Options, route *resilience.Route) *sfProvider {
	p := &sfProvider{
		client: &sfClient{http: o.HTTP, url: cfg.SFAPIBase + sfexpress.Path, partnerID: cfg.SFPartnerID,
			checkword: cfg.SFCheckword, language: cfg.SFLanguage, now: o.Now},
		route: route, now: o.Now,
	}
	p.batch = resilience.NewBatcher(batchOptions(cfg, route), p.query)
	return p
}

// batchOptions pace SF lookups to the route's rate limit: a lookup goes out after
// LOGISTICS_BATCH_WINDOW (default 2ms) when the quota has a permit for it, else it joins the
// batch that leaves with the next permit (RESILIENCE_SFEXPRESS_ROUTE_QUERY_RATE_LIMIT, 30/s →
// one every 33ms). Lookups arriving faster than the quota share calls instead of queueing for
// permits (75 lookups/s go out as 30 calls of ~2.5), and retries, which take permits too, make
// the next batches larger rather than later.
func batchOptions(cfg Config, route *resilience.Route) resilience.BatchOptions {
	return resilience.BatchOptions{MaxSize: sfexpress.MaxTrackingNumbers, MaxWait: cmp.Or(cfg.BatchWindow, defaultBatchWindow), Route: route}
}

const defaultBatchWindow = 2 * time.Millisecond

// tracks returns the track of each key, or its error, sharing route queries with each other
// (keys asked together are one call) and with concurrent lookups.
func (p *sfProvider) tracks(ctx context.Context, keys []sfKey) ([]Track, []error) {
	as, errs := p.batch.GetMany(ctx, keys)
	out := make([]Track, len(keys))
	for i, a := range as {
		if errs[i] == nil {
			out[i], errs[i] = a.track, a.err
		}
	}
	return out, errs
}

// query is the batcher's call: one route query per check phone among keys (SF takes one per
// query; nearly every batch has a single one), run concurrently. The audit record names the
// first caller of the batch.
func (p *sfProvider) query(ctx context.Context, keys []sfKey) (map[sfKey]sfAnswer, error) {
	groups := map[string][]string{}
	var phones []string
	for _, k := range keys {
		if _, ok := groups[k.CheckPhone]; !ok {
			phones = append(phones, k.CheckPhone)
		}
		groups[k.CheckPhone] = append(groups[k.CheckPhone], k.No)
	}
	out := make(map[sfKey]sfAnswer, len(keys))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, phone := range phones {
		nos := groups[phone]
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := resilience.CallFrom(ctx)
			call.Key = strings.Join(nos, ",")
			routes, err := resilience.Do(ctx, p.route, call, func(ctx context.Context, a *resilience.Attempt) ([]sfexpress.RouteResp, error) {
				return p.client.query(ctx, a, nos, phone)
			})
			fetched := p.now().UTC()
			byNo := make(map[string]sfexpress.RouteResp, len(routes))
			for _, r := range routes {
				byNo[r.MailNo] = r
			}
			mu.Lock()
			defer mu.Unlock()
			for _, no := range nos {
				if err != nil {
					out[sfKey{no, phone}] = sfAnswer{err: err}
					continue
				}
				r, ok := byNo[no]
				if !ok {
					r = sfexpress.RouteResp{MailNo: no} // SF answered without this number: no scans
				}
				out[sfKey{no, phone}] = sfAnswer{track: fromSF(r, fetched)}
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// cainiaoProvider looks one number up per call, through the cache (resilience.Cached: a stale
// answer served on failure is what the call's audit record names as its fallback).
type cainiaoProvider struct {
	client *cainiaoClient
	route  *resilience.Route
	// checkRoute is the start check's route (check.go).
	checkRoute *resilience.Route
	now        func() time.Time
}

func newCainiaoProvider(cfg Config, o Options, route *resilience.Route) *cainiaoProvider {
	return &cainiaoProvider{client: &cainiaoClient{http: o.HTTP, url: cfg.CainiaoAPIBase + cainiao.Path,
		providerID: cfg.CainiaoProviderID, secret: cfg.CainiaoSecretKey, msgType: cfg.CainiaoMsgType,
		supplierID: cfg.CainiaoSupplierID, deliveryCode: cfg.CainiaoDeliveryCode}, route: route, now: o.Now}
}

func (p *cainiaoProvider) lookup(ctx context.Context, tracks *cache.Cache[string, Track], key, no string) (cache.Result[Track], error) {
	call := resilience.CallFrom(ctx)
	call.Key = no
	return resilience.Cached(ctx, tracks, key, p.route, call, func(ctx context.Context, a *resilience.Attempt) (Track, error) {
		d, err := p.client.trace(ctx, a, no)
		if err != nil {
			return Track{}, err
		}
		return fromCainiao(d, p.client.deliveryCodeOf(no), p.now().UTC()), nil
	})
}

// manualNote is the fallback's note for the agent.
func manualNote(no string) string {
	return "承运商查询暂不可用，请打开官网手动查询运单 " + no
}

// errorCode names a failure for the failed event: the carrier's code when it gave one, else
// http_<status>, else the pipeline's outcome (circuit_open, timeout, rate_limited, throttled, ...).
func errorCode(err error) string {
	var fail *resilience.Error
	switch {
	case errors.Is(err, errNotConfigured):
		return "not_configured"
	case errors.As(err, &fail):
		switch {
		case fail.VendorCode != "":
			return fail.VendorCode
		case fail.Status != 0:
			return fmt.Sprintf("http_%d", fail.Status)
		}
		return fail.Outcome
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "unavailable"
}
