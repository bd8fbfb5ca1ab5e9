package bus

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// InPartitions is the number of partitions of OMNI_IN. Inbound subjects carry their partition as
// a last token — omni.in.<channel>.<kind>.<partition> — derived from the event's partitionkey
// (the identity it must stay ordered behind), so N consumers can share the stream while every
// identity's events stay in order. It is part of the wire contract: changing it reshuffles keys.
const InPartitions = 16

// Partition returns the partition of key among n.
func Partition(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// PartitionedSubject returns the subject an event is stored under: for a four-token inbound
// subject (omni.in.<channel>.<kind>) the partition token of key is appended; every other
// subject is returned unchanged.
func PartitionedSubject(subject, key string) string {
	if !inbound(subject) {
		return subject
	}
	return subject + "." + strconv.Itoa(Partition(key, InPartitions))
}

// PartitionFilters returns the filter subjects that select partition p of the given
// four-token inbound patterns (e.g. "omni.in.*.message"). Partition 0 also takes messages
// published without a partition token by foreign producers.
func PartitionFilters(p int, patterns ...string) []string {
	out := make([]string, 0, 2*len(patterns))
	for _, pat := range patterns {
		out = append(out, pat+"."+strconv.Itoa(p))
		if p == 0 {
			out = append(out, pat)
		}
	}
	return out
}

// SubjectTemplate strips the partition token from an inbound subject, and writes the last token
// of a live subject (an id: omni.live.ai.suggest.<request id>) as *, for span names and metrics,
// which must not multiply by partition or by request.
func SubjectTemplate(subject string) string {
	if strings.HasPrefix(subject, "omni.in.") && strings.Count(subject, ".") == 4 {
		return subject[:strings.LastIndexByte(subject, '.')]
	}
	if strings.HasPrefix(subject, LivePrefix) && strings.Count(subject, ".") >= 3 {
		return subject[:strings.LastIndexByte(subject, '.')] + ".*"
	}
	return subject
}

// inbound reports whether pattern is a four-token inbound subject pattern
// (omni.in.<channel>.<kind>), the shape that gets a partition token when stored.
func inbound(pattern string) bool {
	return strings.HasPrefix(pattern, "omni.in.") && strings.Count(pattern, ".") == 3 && !strings.HasSuffix(pattern, ">")
}

// ExpandInbound returns filter subjects that match what patterns mean once partition tokens are
// stored: every four-token inbound pattern also matches each of its partitions
// ("omni.in.sms.message" → also "omni.in.sms.message.*"). Subscribe, Replay and the dead-letter
// filter apply it, so callers write subjects as connectors declare them. A list that already
// names partitions (PartitionFilters) is returned unchanged.
func ExpandInbound(patterns []string) []string {
	for _, p := range patterns {
		if strings.HasPrefix(p, "omni.in.") && strings.Count(p, ".") == 4 {
			return patterns
		}
	}
	out := make([]string, 0, 2*len(patterns))
	for _, p := range patterns {
		out = append(out, p)
		if inbound(p) {
			out = append(out, p+".*")
		}
	}
	return out
}
