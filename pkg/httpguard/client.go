package httpguard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies (a TLS-terminating load balancer) trusted to say, in
// X-Forwarded-For, whom they forward for. The zero Proxies trusts none: the client address is
// the connection's.
type Proxies struct{ nets []netip.Prefix }

// ParseProxies reads CIDRs ("10.0.0.0/8") or single addresses ("192.0.2.7").
func ParseProxies(list []string) (Proxies, error) {
	var p Proxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return Proxies{}, fmt.Errorf("trusted proxy %q: not an address or CIDR", s)
			}
			p.nets = append(p.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return Proxies{}, fmt.Errorf("trusted proxy %q: not an address or CIDR", s)
		}
		p.nets = append(p.nets, pfx.Masked())
	}
	return p, nil
}

func (p Proxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the address of the client r comes from: the connection's peer, unless
// that peer is a trusted proxy; then the right-most address of X-Forwarded-For that is not a
// trusted proxy (what the nearest untrusted hop said cannot be forged by the client, the entries
// left of it can). If every entry is trusted, the left-most is the client.
func (p Proxies) ClientAddr(r *http.Request) string {
	peer := hostOf(r.RemoteAddr)
	a, err := netip.ParseAddr(peer)
	if err != nil || len(p.nets) == 0 || !p.trusted(a) {
		return peer
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for _, s := range strings.Split(h, ",") {
			if s = strings.TrimSpace(s); s != "" {
				hops = append(hops, s)
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		ha, err := netip.ParseAddr(hostOf(hops[i]))
		if err != nil {
			return peer // a garbled header: the proxy's own address is all we know
		}
		if !p.trusted(ha) || i == 0 {
			return ha.Unmap().String()
		}
	}
	return peer
}

// hostOf strips the port of host:port (or [v6]:port); an address without one is returned as is.
func hostOf(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return s
}

// AddrKey is the key a per-address limit counts addr under: the address itself for IPv4, its
// /64 network for IPv6 (one subscriber's allocation: counting each of its 2^64 addresses apart
// would give a client as many buckets as it likes).
func AddrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Is4() {
		return addr
	}
	p, err := a.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}
