package wstest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/gobwas/ws"
)

// Dial opens a websocket to url or fails the test; the connection is
// closed when the test ends.
func Dial(t testing.TB, url string) *Conn {
	t.Helper()
	return DialWith(t, url, ws.Dialer{})
}

// DialWith is Dial with d, e.g. for TLS (d.TLSConfig) or a TCP connection
// of its own (d.NetDial).
func DialWith(t testing.TB, url string, d ws.Dialer) *Conn {
	t.Helper()
	c, err := TryDial(t, url, d)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.nc.Close() })
	return c
}

// TryDial dials url with d and returns the error, for tests that expect
// one; the caller closes the connection.
func TryDial(t testing.TB, url string, d ws.Dialer) (*Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	c := &Conn{t: t, nc: nc, r: nc}
	if br != nil {
		c.r = io.MultiReader(br, nc)
	}
	return c, nil
}

// DialRefused dials url expecting the upgrade to be refused, and returns
// the HTTP status and body.
func DialRefused(t testing.TB, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	var body []byte
	d := ws.Dialer{OnStatusError: func(_ int, _ []byte, r io.Reader) {
		// r is the whole response, on a connection kept alive.
		if resp, err := http.ReadResponse(bufio.NewReader(r), nil); err == nil {
			body, _ = io.ReadAll(resp.Body)
		}
	}}
	nc, _, _, err := d.Dial(ctx, url)
	var se ws.StatusError
	if !errors.As(err, &se) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("dial %s: %v, want the upgrade refused", url, err)
	}
	return int(se), string(body)
}
