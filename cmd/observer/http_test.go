package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// testHTTP is the tests' HTTP client: it reaches TCP addresses as usual and a
// daemon's unix socket through the host name socketURL hands out for it.
var testHTTP = &http.Client{Transport: &http.Transport{DialContext: dialTest}}

var (
	sockets    sync.Map // "sock-N:80" -> socket path
	lastSocket atomic.Int64
)

// socketURL is a base URL under which testHTTP reaches the unix socket at path.
func socketURL(path string) string {
	host := fmt.Sprintf("sock-%d", lastSocket.Add(1))
	sockets.Store(host+":80", path)
	return "http://" + host
}

func dialTest(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if path, ok := sockets.Load(addr); ok && strings.HasPrefix(addr, "sock-") {
		return d.DialContext(ctx, "unix", path.(string))
	}
	return d.DialContext(ctx, network, addr)
}
