package resilience

import (
	"context"

	"github.com/omnibus-dev/omnibus/pkg/cache"
)

// Cached serves key from c and calls the vendor through Do only on a miss, one call per key at a
// time however many callers miss together. When the call fails and c serves stale values
// (cache.Options.StaleIfError), the expired value is returned with Result.Stale set and the call's
// audit record says fallback "stale_cache"; otherwise the *Error of the call is returned, with the
// manual fallback if the route or call has one.
//
//	profiles := cache.New[string, Profile](cache.Options{Name: "crm_profile", TTL: time.Minute, StaleIfError: time.Hour})
//	res, err := resilience.Cached(ctx, profiles, phone, crmLookup, resilience.Call{CustomerID: id},
//		func(ctx context.Context, a *resilience.Attempt) (Profile, error) { ... })
//
// A hit makes no call, so it has no audit record.
func Cached[K comparable, V any](ctx context.Context, c *cache.Cache[K, V], key K, rt *Route, call Call, fn Func[V]) (cache.Result[V], error) {
	call.staleAvailable = func() bool {
		if !c.ServesStale() {
			return false
		}
		_, _, ok := c.PeekStale(key)
		return ok
	}
	return c.Fetch(ctx, key, func(ctx context.Context, _ K) (V, error) { return Do(ctx, rt, call, fn) })
}
