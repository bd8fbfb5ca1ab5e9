package connector_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
)

// shopConfig is the connector's configuration, loaded from the environment by pkg/config.
type shopConfig struct {
	Secret string `env:"SHOP_SECRET" default:"s3cret" desc:"HMAC key of the vendor's callbacks"`
}

// A channel connector in full: its Spec declares what it publishes, its setup mounts a webhook
// that verifies the vendor's signature and turns the callback into an inbound message, and the
// Runtime publishes it (schema-checked, acked by JetStream) before the vendor gets its 200.
func Example() {
	spec := connector.Spec{
		Name: "shop",
		Produces: []connector.Route{
			{Subject: "omni.in.shop.message", Type: schemas.TypeChannelMessageReceived},
		},
	}
	setup := func(ctx context.Context, rt *connector.Runtime, cfg *shopConfig) error {
		return rt.Webhook(connector.Webhook{
			Path: "/messages",
			Verify: func(r *http.Request, body []byte) error {
				mac := hmac.New(sha256.New, []byte(cfg.Secret))
				mac.Write(body)
				if !hmac.Equal([]byte(r.Header.Get("X-Shop-Signature")), []byte(hex.EncodeToString(mac.Sum(nil)))) {
					return errors.New("bad signature")
				}
				return nil
			},
			Decode: func(r *http.Request, body []byte) ([]bus.Outgoing, error) {
				var in struct{ ID, Buyer, Text string }
				if err := json.Unmarshal(body, &in); err != nil || in.ID == "" {
					return nil, fmt.Errorf("%w: want {id, buyer, text}", webhook.ErrMalformed)
				}
				e, err := rt.NewEvent(schemas.TypeChannelMessageReceived, map[string]any{
					"channel": "shop", "channel_message_id": in.ID,
					"from":    map[string]string{"kind": "phone", "value": in.Buyer},
					"message": map[string]any{"type": "text", "text": in.Text}, "sent_at": time.Now().UTC(),
				})
				if err != nil {
					return nil, err
				}
				return []bus.Outgoing{{Subject: "omni.in.shop.message", Event: e}}, nil
			},
		})
	}
	svc := connector.Define(spec, setup)

	// The process around it: NATS, the bus, an HTTP mux (service.Run does this in production).
	srv, err := natsembed.Start(natsembed.Options{Sync: "2m"})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect("example")
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	client, err := bus.Connect(nc, bus.WithLogger(log))
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	if err := client.Provision(ctx); err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- svc.Run(ctx, service.Deps{Bus: client, Mux: mux, Log: log, Env: func(string) (string, bool) { return "", false },
			Started: func() { close(started) }})
	}()
	<-started
	web := httptest.NewServer(mux)
	defer web.Close()

	post := func(body, sig string) {
		req, _ := http.NewRequest(http.MethodPost, web.URL+"/hooks/shop/messages", strings.NewReader(body))
		req.Header.Set("X-Shop-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		reason, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(reason)))
	}
	body := `{"id":"m-1","buyer":"+8613800138000","text":"还没发货吗？"}`
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte(body))
	post(body, hex.EncodeToString(mac.Sum(nil)))
	post(body, "forged")

	stop()
	fmt.Println("stopped:", <-done)
	// Output:
	// 200 {"ok":true}
	// 401 {"error":"Unauthorized","reason":"bad signature"}
	// stopped: <nil>
}
