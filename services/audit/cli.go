package audit

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

// CommandUsage documents Command's flags.
const CommandUsage = `omnibus audit [flags]   list third-party call records, newest first

  --from T        records at or after T: RFC 3339, a date (2026-03-01) or a duration ago (2h, 7d)
  --to T          records before T (same forms)
  --service S     calling service (logistics, crm, sms, ...)
  --vendor V      vendor (sfexpress, salesforce, ...)
  --op O          vendor operation
  --outcome O     ok, error, timeout, permanent, rate_limited, circuit_open, bulkhead_full, throttled, canceled
  --customer ID   customer id
  --trace ID      trace id
  --limit N       most records to print (default 50)
  --json          one JSON record per line instead of a table
  --url U         audit API base URL (default $AUDIT_URL, else http://$OMNIBUS_HTTP_ADDR, else http://127.0.0.1:8080)
  --token T       bearer token of the desk's issuer with the auditor or supervisor role (default
                  $AUDIT_API_TOKEN; the demo's dev login issues one: curl -d agent=supervisor-wang
                  -d role=auditor -d format=token http://127.0.0.1:8080/desk/dev/login)
`

// Command runs `omnibus audit`: it reads records through the audit API (GET /api/audit) of a
// running audit service or all-in-one, following cursors up to --limit, and prints them as a
// table or as NDJSON. env supplies the defaults of --url and --token (os.LookupEnv fits).
func Command(ctx context.Context, args []string, env config.Lookup, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, CommandUsage) }
	get := func(k string) string { v, _ := env(k); return v }
	base := get("AUDIT_URL")
	if base == "" {
		addr := get("OMNIBUS_HTTP_ADDR")
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		base = "http://" + addr
	}
	var (
		from, to, service, vendor, op, outcome, customer, trace string
		limit                                                   int
		asJSON                                                  bool
		token                                                   = get("AUDIT_API_TOKEN")
	)
	fs.StringVar(&from, "from", "", "")
	fs.StringVar(&to, "to", "", "")
	fs.StringVar(&service, "service", "", "")
	fs.StringVar(&vendor, "vendor", "", "")
	fs.StringVar(&op, "op", "", "")
	fs.StringVar(&outcome, "outcome", "", "")
	fs.StringVar(&customer, "customer", "", "")
	fs.StringVar(&trace, "trace", "", "")
	fs.IntVar(&limit, "limit", 50, "")
	fs.BoolVar(&asJSON, "json", false, "")
	fs.StringVar(&base, "url", base, "")
	fs.StringVar(&token, "token", token, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n\n%s", fs.Arg(0), CommandUsage)
	}
	if limit < 1 {
		return fmt.Errorf("--limit must be >= 1, got %d", limit)
	}
	q := url.Values{}
	now := time.Now()
	for name, v := range map[string]string{"from": from, "to": to} {
		if v == "" {
			continue
		}
		t, err := cliTime(v, now)
		if err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
		q.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
	for name, v := range map[string]string{"service": service, "vendor": vendor, "op": op, "outcome": outcome, "customer_id": customer, "trace_id": trace} {
		if v != "" {
			q.Set(name, v)
		}
	}
	var tw *tabwriter.Writer
	if !asJSON {
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tSERVICE\tVENDOR\tOP\tOUTCOME\tSTATUS\tCODE\tMS\tATTEMPTS\tFALLBACK\tCUSTOMER\tTRACE")
	}
	printed := 0
	client := &http.Client{Timeout: 30 * time.Second}
	for printed < limit {
		q.Set("limit", strconv.Itoa(min(limit-printed, 1000)))
		page, err := fetchPage(ctx, client, strings.TrimSuffix(base, "/")+"/api/audit?"+q.Encode(), token)
		if err != nil {
			return err
		}
		for _, r := range page.Records {
			if asJSON {
				b, _ := json.Marshal(r)
				fmt.Fprintln(stdout, string(b))
			} else {
				status := ""
				if r.Status != 0 {
					status = strconv.Itoa(r.Status)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%d\t%s\t%s\t%s\n", r.At.Format(time.RFC3339Nano), r.Service, r.Vendor,
					r.Op, r.Outcome, status, r.Code, r.LatencyMS, r.Attempts, r.Fallback, r.CustomerID, r.TraceID)
			}
			printed++
		}
		if page.NextCursor == "" || len(page.Records) == 0 {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func fetchPage(ctx context.Context, client *http.Client, u, token string) (Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Page{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Page{}, fmt.Errorf("audit API: %w (is the audit service or the all-in-one running? --url)", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return Page{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error  string `json:"error"`
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		if e.Reason != "" {
			e.Error += ": " + e.Reason
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Error += " (give --token or AUDIT_API_TOKEN: a token of the desk's issuer with the auditor or supervisor role)"
		}
		return Page{}, fmt.Errorf("audit API: %s: %s", resp.Status, e.Error)
	}
	var p Page
	if err := json.Unmarshal(body, &p); err != nil {
		return Page{}, fmt.Errorf("audit API: %w", err)
	}
	return p, nil
}

// cliTime reads RFC 3339, a date, or a duration ago (2h, 7d).
func cliTime(s string, now time.Time) (time.Time, error) {
	if d, err := ParseRetention(s); err == nil && !strings.ContainsAny(s, "T:") {
		return now.Add(-d), nil
	}
	t, err := parseTime("time", s)
	if err != nil {
		return time.Time{}, errors.New("want an RFC 3339 time, a date (2026-03-01) or a duration ago (2h, 7d)")
	}
	return t, nil
}
