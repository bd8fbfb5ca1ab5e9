package toolload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// admin talks to the sandbox's admin API (faults, route counters) and scrapes /metrics.
type admin struct {
	base string
	hc   *http.Client
}

// fault is the sandbox's fault JSON (sim.Fault).
type fault struct {
	Latency    string  `json:"latency,omitempty"`
	ErrorRatio float64 `json:"error_ratio,omitempty"`
	Code       string  `json:"code,omitempty"`
}

func (a *admin) send(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: HTTP %d: %.300s", method, path, resp.StatusCode, out)
	}
	return out, nil
}

// setFault sets the fault of one route key ("salesforce query"): PUT /sandbox/_admin/faults/<key>.
func (a *admin) setFault(ctx context.Context, key string, f fault) error {
	_, err := a.send(ctx, http.MethodPut, "/sandbox/_admin/faults/"+escapeKey(key), f)
	return err
}

// clearFaults removes every fault.
func (a *admin) clearFaults(ctx context.Context) error {
	_, err := a.send(ctx, http.MethodDelete, "/sandbox/_admin/faults", nil)
	return err
}

// escapeKey escapes each path segment of a fault key ("salesforce oauth2/token").
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// routeStats is one route's counters as GET /sandbox/_admin/routes lists them.
type routeStats struct {
	Key   string `json:"Key"`
	Stats struct {
		Calls    int64 `json:"calls"`
		Injected int64 `json:"injected_errors"`
		Hung     int64 `json:"hung"`
	} `json:"Stats"`
}

// routes returns the counters of every sandbox route by fault key.
func (a *admin) routes(ctx context.Context) (map[string]routeStats, error) {
	b, err := a.send(ctx, http.MethodGet, "/sandbox/_admin/routes", nil)
	if err != nil {
		return nil, err
	}
	var list []routeStats
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("sandbox routes: %w", err)
	}
	out := make(map[string]routeStats, len(list))
	for _, r := range list {
		out[r.Key] = r
	}
	return out, nil
}

// sample is one metric sample: name, labels and value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics scrapes the Prometheus exposition of the all-in-one and keeps the samples whose name
// is in names.
func (a *admin) metrics(ctx context.Context, names ...string) ([]sample, error) {
	b, err := a.send(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return nil, err
	}
	return parseMetrics(b, names...), nil
}

// parseMetrics reads the samples of the named metrics from a Prometheus text exposition.
func parseMetrics(b []byte, names ...string) []sample {
	var out []sample
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		want := false
		for _, n := range names {
			want = want || n == name
		}
		if !want {
			continue
		}
		s := sample{name: name, labels: map[string]string{}}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			s.labels = parseLabels(rest[1:end])
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// parseLabels reads `a="x",b="y\"z"`.
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return out
		}
		name := strings.TrimSpace(strings.TrimLeft(s[:eq], ","))
		var v strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(s[i])
				}
				continue
			}
			v.WriteByte(s[i])
		}
		out[name] = v.String()
		if i+1 >= len(s) {
			break
		}
		s = s[i+1:]
	}
	return out
}

// sum adds the values of the samples that match every given label.
func sum(samples []sample, name string, match map[string]string) float64 {
	var t float64
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		t += s.value
	}
	return t
}

// peakSampler polls the route counters every 100 ms while a phase runs, for the busiest second
// of each route (SF's quota is per second).
type peakSampler struct {
	a      *admin
	keys   []string
	mu     sync.Mutex
	times  []time.Time
	counts [][]int64
	stop   chan struct{}
	done   chan struct{}
}

func (a *admin) startPeaks(ctx context.Context, keys []string) *peakSampler {
	p := &peakSampler{a: a, keys: keys, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if rs, err := a.routes(ctx); err == nil {
				row := make([]int64, len(keys))
				for i, k := range keys {
					row[i] = rs[k].Stats.Calls
				}
				p.mu.Lock()
				p.times = append(p.times, time.Now())
				p.counts = append(p.counts, row)
				p.mu.Unlock()
			}
			select {
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// finish stops the sampler and returns each key's most calls within any one second.
func (p *peakSampler) finish() map[string]int64 {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int64{}
	for i := range p.times {
		for j := i + 1; j < len(p.times); j++ {
			if p.times[j].Sub(p.times[i]) > time.Second+20*time.Millisecond {
				break
			}
			for k, key := range p.keys {
				if d := p.counts[j][k] - p.counts[i][k]; d > out[key] {
					out[key] = d
				}
			}
		}
	}
	return out
}
