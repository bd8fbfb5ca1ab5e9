package sms_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	aliwire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/services/sms"
)

// bigPush is an Aliyun push of n items whose ids start at first: uplinks (SmsUp) or receipts
// (SmsReport), timed at now.
func bigPush(kind string, first, n int, now time.Time) string {
	at := aliwire.FormatTime(now)
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		seq := first + i
		if kind == "up" {
			fmt.Fprintf(&b, `{"phone_number":"1380013%04d","send_time":"%s","content":"退订 %d","sign_name":"omnibus","dest_code":"","sequence_id":%d}`,
				seq%10000, at, seq, seq)
			continue
		}
		fmt.Fprintf(&b, `{"phone_number":"1380013%04d","send_time":"%s","report_time":"%s","success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"%d^0","out_id":"o%d"}`,
			seq%10000, at, at, seq, seq)
	}
	b.WriteByte(']')
	return b.String()
}

// BenchmarkPush5000 measures how long the connector takes to answer one 5,000-item Aliyun push
// (every item new) on a real in-process JetStream, the answer coming only once every event is
// stored. sync=always is the all-in-one's server (every write fsynced).
func BenchmarkPush5000(b *testing.B) {
	const items = 5000
	for _, sync := range []string{"", "always"} {
		for _, kind := range []string{"up", "report"} {
			name := kind
			if sync != "" {
				name += "/sync=" + sync
			}
			b.Run(name, func(b *testing.B) {
				tb := setupSynced(b, sync, aliyunEnv)
				path := "/hooks/sms/aliyun/" + kind + "?token=" + token
				subject := sms.SubjectIn
				if kind == "report" {
					subject = sms.SubjectStatus
				}
				first := 1
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					body := bigPush(kind, first, items, time.Now().Add(-time.Hour))
					first += items
					b.StartTimer()
					if status, answer := tb.post(b, path, body); status != 200 {
						b.Fatalf("answered %d %.300s", status, answer)
					}
				}
				b.StopTimer()
				if n := tb.bus.StoredCount(b, bus.StreamIn, subject+".>"); n != uint64(b.N*items) {
					b.Fatalf("%d events stored, want %d", n, b.N*items)
				}
			})
		}
	}
}
