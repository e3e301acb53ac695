package config

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strings"
)

// listenerName is what Kafka accepts as a listener name.
var listenerName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// listeners resolves listeners, advertised.listeners,
// listener.security.protocol.map, inter.broker.listener.name and the
// legacy port, host.name, advertised.host.name and advertised.port.
//
// Where to listen: listeners if set; else the legacy host.name:port if
// either is set; else, if an advertised address is configured, all
// interfaces on the advertised ports (as Kafka's Docker images derive
// listeners); else 127.0.0.1:9092.
//
// What to advertise, per listener: its entry of advertised.listeners; or,
// for the PLAINTEXT listener (else the first), the legacy
// advertised.host.name:advertised.port, each part defaulting to the
// listener's; or the listener's own address, which must then name a host.
// A legacy key wins over its modern counterpart only when set by a
// stronger source (KAFKA_ADVERTISED_HOST_NAME over a file's
// advertised.listeners).
func (l *loader) listeners(c *Config) error {
	protocols, err := l.protocolMap()
	if err != nil {
		return err
	}
	legacyListen := l.wins("port", "listeners") || l.wins("host.name", "listeners")
	legacyAdv := l.wins("advertised.host.name", "advertised.listeners") || l.wins("advertised.port", "advertised.listeners")
	modernAdv := l.isSet("advertised.listeners") && !legacyAdv

	var advertised []Listener
	if modernAdv {
		if advertised, err = l.parseListeners("advertised.listeners", protocols); err != nil {
			return err
		}
	}
	legacyPort := int32(9092)
	if l.isSet("port") {
		n, err := parseInt(l.origins["port"].value, 0, math.MaxUint16)
		if err != nil {
			return l.bad("port", err)
		}
		legacyPort = int32(n)
	}

	switch {
	case l.isSet("listeners") && !legacyListen:
		if c.Listeners, err = l.parseListeners("listeners", protocols); err != nil {
			return err
		}
	case legacyListen:
		c.Listeners = []Listener{{Name: "PLAINTEXT", Host: strings.TrimSpace(l.origins["host.name"].value), Port: legacyPort}}
	case modernAdv:
		c.Listeners = nil
		for _, a := range advertised {
			c.Listeners = append(c.Listeners, Listener{Name: a.Name, Port: a.Port})
		}
	case legacyAdv:
		c.Listeners = []Listener{{Name: "PLAINTEXT", Port: legacyPort}}
	default:
		c.Listeners = []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}
	}
	if err := checkListeners(c.Listeners); err != nil {
		return l.bad(l.listenersKey(legacyListen), err)
	}

	// Advertised addresses, one per listener in the same order.
	for _, a := range advertised {
		if !slices.ContainsFunc(c.Listeners, func(x Listener) bool { return x.Name == a.Name }) {
			return l.bad("advertised.listeners", fmt.Errorf("listener %s is not in listeners (%s)", a.Name, joinListeners(c.Listeners)))
		}
	}
	legacyIdx := -1
	if legacyAdv {
		legacyIdx = slices.IndexFunc(c.Listeners, func(x Listener) bool { return x.Name == "PLAINTEXT" })
		if legacyIdx < 0 {
			legacyIdx = 0
		}
	}
	c.AdvertisedListeners = make([]Listener, len(c.Listeners))
	for i, ln := range c.Listeners {
		adv := ln
		if j := slices.IndexFunc(advertised, func(x Listener) bool { return x.Name == ln.Name }); j >= 0 {
			adv = advertised[j]
		}
		if i == legacyIdx {
			if o, ok := l.origins["advertised.host.name"]; ok {
				adv.Host = strings.TrimSpace(o.value)
			}
			if o, ok := l.origins["advertised.port"]; ok {
				n, err := parseInt(o.value, 1, math.MaxUint16)
				if err != nil {
					return l.bad("advertised.port", err)
				}
				adv.Port = int32(n)
			}
		}
		if unspecified(adv.Host) {
			key, where := "advertised.listeners", ""
			if o, ok := l.origins[key]; ok && !legacyAdv {
				where = o.where + ": "
			}
			return fmt.Errorf("%w: %sadvertised.listeners: listener %s binds all interfaces (%s) and has no advertised host: set advertised.listeners (or KAFKA_ADVERTISED_HOST_NAME) to the address clients should connect to",
				ErrInvalidConfig, where, ln.Name, ln)
		}
		c.AdvertisedListeners[i] = adv
	}

	if l.isSet("inter.broker.listener.name") {
		name := strings.ToUpper(strings.TrimSpace(l.origins["inter.broker.listener.name"].value))
		if !slices.ContainsFunc(c.Listeners, func(x Listener) bool { return x.Name == name }) {
			return l.bad("inter.broker.listener.name", fmt.Errorf("no listener named %s in listeners (%s)", name, joinListeners(c.Listeners)))
		}
		c.InterBrokerListenerName = name
	} else if slices.ContainsFunc(c.Listeners, func(x Listener) bool { return x.Name == "PLAINTEXT" }) {
		c.InterBrokerListenerName = "PLAINTEXT"
	} else {
		c.InterBrokerListenerName = c.Listeners[0].Name
	}
	return nil
}

// listenersKey names the key the listeners came from, for errors.
func (l *loader) listenersKey(legacy bool) string {
	switch {
	case !legacy:
		return "listeners"
	case l.wins("port", "listeners"):
		return "port"
	}
	return "host.name"
}

// protocolMap parses listener.security.protocol.map: NAME:PROTOCOL,...
func (l *loader) protocolMap() (map[string]string, error) {
	const key = "listener.security.protocol.map"
	text := defaultProtocolMap
	if o, ok := l.origins[key]; ok {
		text = o.value
	}
	m := map[string]string{}
	for _, pair := range strings.Split(text, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		name, proto, ok := strings.Cut(pair, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		if !ok || !listenerName.MatchString(name) || proto == "" {
			return nil, l.bad(key, fmt.Errorf("%q: want NAME:PROTOCOL", pair))
		}
		if _, dup := m[name]; dup {
			return nil, l.bad(key, fmt.Errorf("listener %s is mapped twice", name))
		}
		m[name] = proto
	}
	return m, nil
}

// parseListeners parses key's NAME://host:port list; names are upper-cased
// as Kafka normalises them, and each must map to PLAINTEXT.
func (l *loader) parseListeners(key string, protocols map[string]string) ([]Listener, error) {
	var ls []Listener
	for _, entry := range strings.Split(l.origins[key].value, ",") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		ln, err := parseListener(entry)
		if err != nil {
			return nil, l.bad(key, err)
		}
		proto, ok := protocols[ln.Name]
		switch {
		case !ok:
			return nil, l.bad(key, fmt.Errorf("listener %s has no security protocol in listener.security.protocol.map", ln.Name))
		case proto != "PLAINTEXT":
			return nil, l.bad(key, fmt.Errorf("listener %s uses %s; Strata serves PLAINTEXT only", ln.Name, proto))
		}
		if slices.ContainsFunc(ls, func(x Listener) bool { return x.Name == ln.Name }) {
			return nil, l.bad(key, fmt.Errorf("listener %s is listed twice", ln.Name))
		}
		ls = append(ls, ln)
	}
	if len(ls) == 0 {
		return nil, l.bad(key, fmt.Errorf("needs at least one NAME://host:port"))
	}
	return ls, nil
}

// parseListener parses NAME://host:port; host may be empty or a bracketed
// IPv6 address.
func parseListener(s string) (Listener, error) {
	name, addr, ok := strings.Cut(s, "://")
	if !ok || !listenerName.MatchString(name) {
		return Listener{}, fmt.Errorf("%q: want NAME://host:port", s)
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return Listener{}, fmt.Errorf("%q: want NAME://host:port", s)
	}
	n, err := parseInt(port, 0, math.MaxUint16)
	if err != nil {
		return Listener{}, fmt.Errorf("%q: port %v", s, err)
	}
	return Listener{Name: strings.ToUpper(name), Host: host, Port: int32(n)}, nil
}

func splitHostPort(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err == nil && port == "" {
		err = fmt.Errorf("no port")
	}
	return host, port, err
}

// checkListeners rejects two listeners on one port (Kafka does too);
// port 0 asks for a free port each, so it may repeat.
func checkListeners(ls []Listener) error {
	for i, a := range ls {
		for _, b := range ls[:i] {
			if a.Port != 0 && a.Port == b.Port {
				return fmt.Errorf("listeners %s and %s share port %d", b.Name, a.Name, a.Port)
			}
		}
	}
	return nil
}

// unspecified reports whether host means "all interfaces", which a client
// cannot connect to.
func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
