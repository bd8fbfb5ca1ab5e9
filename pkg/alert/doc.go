// Package alert raises operational alerts on stream OMNI_OPS: omni.ops.alert.raised once when
// something needs an operator, omni.ops.alert.resolved once when it no longer does, both carrying
// the same alert_id. There are two kinds:
//
//   - vendor_failure_ratio, raised by a [Monitor] when the failure ratio of a vendor route gets
//     too high. The pkg/resilience pipeline feeds every call's outcome to a Monitor; nothing else
//     needs to.
//   - dead_letters, raised by [WatchDeadLetters] when a service's dead-letter subject
//     omni.dlq.<service> holds messages. The audit service, which keeps the ops record, runs it.
//
// Monitor rules (defaults in Options):
//   - The window is a sliding 5 minutes made of 10 count buckets of 30 s: each bucket counts the
//     calls and failures that ended in it, and the window is the sum of the buckets of the last
//     5 minutes. Memory per route is constant, whatever the traffic.
//   - A failure is any outcome but "ok"; "canceled" (the caller gave up) is not counted at all.
//     Connectors map a vendor's business answers ("no such waybill") to success, so a failure is
//     a call the vendor did not serve.
//   - Raise when the window holds at least MinCalls calls (100) and failures/calls >= Threshold
//     (1 %). MinCalls keeps small samples quiet: 1 failure in 3 calls is 33 % but says little,
//     and 100 calls is the least for which 1 % means one failure.
//   - Raise a quiet route (fewer than MinCalls calls in the window) when at least QuietFailures
//     calls (5) failed and they are at least QuietRatio (10 %) of its calls: an open breaker or a
//     down vendor on a route that sees 60 calls in 5 minutes is an outage, which the 1 % rule's
//     floor would keep silent; 1 failure in 3 calls is not.
//   - Resolve a busy route (at least MinCalls calls in the window) when failures/calls <=
//     ResolveRatio (half the threshold). The gap between the two thresholds is the hysteresis
//     that keeps a ratio hovering around 1 % from flapping.
//   - Resolve a quiet route (fewer than MinCalls calls in the window, but some) when at least
//     RecoveryCalls calls (3) have succeeded since its last failure and no call has failed for
//     QuietPeriod (two buckets: 1 minute). Its ratio means little with so few calls, so what
//     counts is that the vendor serves again: a recovered vendor resolves within QuietPeriod and
//     a bucket, whatever the traffic, while a route that still fails now and then (a failure
//     less than QuietPeriod ago) stays raised. The resolve restarts the route's window empty, so
//     the failures it forgave cannot raise the alert again as soon as traffic picks up: a new
//     alert needs MinCalls new calls at the threshold. That keeps a route whose traffic hovers
//     around MinCalls and that fails intermittently from flapping.
//   - Resolve an idle route when the window holds no call at all.
//   - One alert per route at a time, per Monitor: each replica of a service watches its own
//     calls. Events are published in the background and never delay a call.
//
// A Monitor survives a restart when it has a [Store] (by default a [KVStore] on the JetStream
// key-value bucket OMNI_ALERTS, when it publishes through a *bus.Client). It saves each route's
// buckets, alert id, raise time, last failure and successes since, under the key
// vendor_failure_ratio.<service>.<instance>.<vendor>.<op>, in the background: the routes that
// changed, once per bucket, and at once after a raise or a resolve; never on the call path. A new
// Monitor for the same service and instance restores them at start and goes on from there: an
// alert raised before the restart is resolved, with its alert id, when its route recovers (or
// when its window empties, if the process was down that long). A crash loses at most the last
// bucket's counts; Close saves everything.
//
// Dead-letter rules (defaults in DeadLetterOptions):
//   - Every Interval (5 s) the watcher reads how many messages each subject of OMNI_DLQ holds:
//     one stream info request with a subject filter; no message is read.
//   - Raise when omni.dlq.<service> holds messages and has no raised alert. The summary gives
//     the count and the commands to look at them (omnibus dlq list --service <service>) and to
//     redrive them once the cause is fixed (omnibus dlq redrive --service <service>). One alert
//     per subject, however many more messages arrive.
//   - Resolve when the subject is empty again: redriven, deleted, or aged out of the stream.
//   - The state is kept in the same bucket, under dead_letters.<service>, and written with
//     compare-and-set before the event is published: a restarted watcher neither raises a
//     duplicate nor forgets to resolve, and replicas of the watching service raise one alert
//     between them.
package alert
