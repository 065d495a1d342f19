package coordinator

import (
	"fmt"
	"net"
)

// safeListen decides where a coordinator may listen. With tokens, anywhere.
// Without, an unauthenticated API would let anyone who can reach it run
// containers, so it serves loopback only: a listen address with no host
// (":8989") becomes 127.0.0.1, and any other non-loopback host is refused,
// unless the operator says --insecure.
func safeListen(listen string, haveTokens, insecure bool) (addr, notice string, err error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", "", fmt.Errorf("--listen %q: %w", listen, err)
	}
	if haveTokens || insecure {
		if !haveTokens {
			notice = "no API tokens configured and --insecure given: anyone who can reach " + listen + " can run containers"
		}
		return listen, notice, nil
	}
	if host == "" {
		addr = net.JoinHostPort("127.0.0.1", port)
		return addr, "no API tokens configured: serving loopback only (" + addr + "); configure --admin-token/--read-token, or pass --insecure", nil
	}
	if host == "localhost" {
		return listen, "", nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return listen, "", nil
	}
	return "", "", fmt.Errorf("refusing to serve the API on %s without tokens: configure --admin-token/--read-token, or pass --insecure", listen)
}
