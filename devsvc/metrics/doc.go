// Package metrics is the service's Prometheus metrics: what devsvc serve
// shows on /metrics of its metrics listener (metrics_addr). It is the only
// package that imports the Prometheus client library.
//
// # Two kinds of metric
//
// Counts made on the request path (check-ins, reports and downloads, as
// package deviceapi's Observer is told; store commits, timed by the store;
// imports) are Prometheus counters and a histogram whose label values are
// resolved once, in New: counting one check-in is an array index and an
// atomic add, no map, no lock, no allocation.
//
// Everything else is read when Prometheus scrapes, from snapshot functions
// the service gives in Config: the counts its parts keep anyway
// (deviceapi.Server.Stats, signin.Limiter.Stats, devlogs.Handler.Stats),
// the inventory's health, the certificates, the readiness checks, the
// state of the last reload, the live rollouts (store.LiveRollouts: one
// pass over the fleet index for all of them), the open alarms, a
// primary's replicas and a replica's follower. Such a metric costs
// nothing between scrapes; families that share a read (a rollout's
// devices and its state) are read once per scrape.
//
// # Names
//
// Every metric of the service starts with opendus_; counters end in
// _total, durations are in seconds and sizes in bytes; labels take only
// values from small fixed sets (listener, answer, state, result, reason,
// certificate name) or the admin's short lists (a rule's ID and identity,
// one per model; a replica and its site), never a device, an address or
// a user. The list with
// what each means is in docs/operations.md; TestNames checks the
// conventions and TestDocumented that the page lists every metric.
//
// # Adding a metric
//
// A new part of the service adds its metrics the same two ways: counters
// its hot path increments, resolved once, or a snapshot read at scrape
// time with Metrics.Gauges (or Metrics.Counters), which takes a function
// that emits one value per label set:
//
//	m.Gauges("opendus_sites", "Sites, by whether a replica serves them.",
//		[]string{"by_replica"}, func(emit func(v float64, labels ...string)) {
//			with, without := sites.Count()
//			emit(float64(with), "yes")
//			emit(float64(without), "no")
//		})
//
// The rollouts, alarms and replication came this way, through Config.
package metrics
