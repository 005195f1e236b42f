package node

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// DefaultPort is the TCP and UDP port a node listens on unless told otherwise.
// When it is taken the node falls back to a random port and says so.
const DefaultPort = 4011

// ConfigFile is the name of the configuration file inside a kith home.
const ConfigFile = "config.toml"

// Config is a node's configuration, read from $KITH_HOME/config.toml and
// overridden by command-line flags. The zero value is valid: every empty field
// takes the default documented on it.
type Config struct {
	// Home is the directory holding the identity, config, database and socket.
	// It is not read from the file.
	Home string `toml:"-"`

	Network     NetworkConfig     `toml:"network"`
	Connections ConnectionsConfig `toml:"connections"`
	DHT         DHTConfig         `toml:"dht"`
	Relay       RelayConfig       `toml:"relay"`
	Messages    MessagesConfig    `toml:"messages"`
	Files       FilesConfig       `toml:"files"`
}

// MessagesConfig says who may send this node direct messages.
type MessagesConfig struct {
	// Accept is "contacts" (default: only saved, unblocked contacts) or
	// "anyone" (any peer that is not blocked).
	Accept string `toml:"accept"`
}

// NetworkConfig says where the node listens and whom it talks to first.
type NetworkConfig struct {
	// Listen multiaddrs. Default: TCP and QUIC on port 4011 on all IPv4 and
	// IPv6 interfaces (a random port when 4011 is taken).
	Listen []string `toml:"listen"`
	// Bootstrap peers of the private DHT, as multiaddrs ending in /p2p/ID.
	Bootstrap []string `toml:"bootstrap"`
	// Relays this node reserves a slot on when it is behind a NAT, as
	// multiaddrs ending in /p2p/ID.
	Relays []string `toml:"relays"`
	// MDNS finds peers on the local network. Default true.
	MDNS *bool `toml:"mdns"`
	// PortMapping asks the router for a port mapping (UPnP / NAT-PMP).
	// Default true.
	PortMapping *bool `toml:"port_mapping"`
}

// ConnectionsConfig holds the connection manager's watermarks: above High
// connections it trims down to Low, sparing those younger than GracePeriod.
type ConnectionsConfig struct {
	Low         int      `toml:"low"`          // default 64
	High        int      `toml:"high"`         // default 192
	GracePeriod Duration `toml:"grace_period"` // default "20s"
}

// DHTConfig configures the private Kademlia DHT.
type DHTConfig struct {
	// Mode is "auto" (server once AutoNAT says we are public), "client" or
	// "server". Default "auto"; a relay is always a server.
	Mode string `toml:"mode"`
}

// RelayConfig configures relay mode (kith relay).
type RelayConfig struct {
	// Enabled runs the circuit relay v2 service, an AutoNAT server and a DHT
	// server. Set by `kith relay`; not read from the file.
	Enabled bool `toml:"-"`
	// Announce multiaddrs this relay advertises instead of what it observes,
	// e.g. its public address behind a forwarded port. Announcing (or
	// listening on an explicit public address) declares the relay reachable,
	// so it relays from the start.
	Announce []string `toml:"announce"`
	// Allow lists peer IDs that may reserve slots and be relayed under the
	// limits below, besides the relay's own contacts.
	Allow []string `toml:"allow"`
	// AllowFile names a file of further peer IDs, one per line (# comments).
	AllowFile string `toml:"allow_file"`
	// Closed refuses everyone not allowed. Otherwise others get go-libp2p's
	// default relay limits: a slot (at most 8 per IP address) and circuits
	// of 2 min and 128 KiB, enough to coordinate hole punching.
	Closed bool `toml:"closed"`
	// CircuitDuration and CircuitData bound each relayed connection
	// (default "2h" and "16GiB": enough for a large file transfer).
	CircuitDuration Duration `toml:"circuit_duration"`
	CircuitData     Size     `toml:"circuit_data"`
	// MaxReservations bounds reservations in all (default 1024); MaxCircuits
	// bounds relayed connections per peer (default 64).
	MaxReservations int `toml:"max_reservations"`
	MaxCircuits     int `toml:"max_circuits"`
	// ConnsPerIP bounds the connections the relay admits at once from one
	// IPv4 address or IPv6 /56 (default 64; go-libp2p's 8, which a kith
	// daemon keeps, would shut out the ninth colleague behind an office
	// NAT). New connections from one address are paced too: a burst of
	// twice ConnsPerIP, then ConnsPerIP/8 a second.
	ConnsPerIP int `toml:"conns_per_ip"`
	// PrefixLimits set the limit of whole networks instead, each network's
	// connections counted together, e.g. {"203.0.113.0/28" = 512} for an
	// office's block of public addresses. Loopback is never limited.
	PrefixLimits map[string]int `toml:"prefix_limits"`
	// ReachabilityCheck is how often the relay asks connected colleagues to
	// dial its public addresses back (AutoNAT v2), so that it notices when
	// it stops being reachable, e.g. when its port-forward is removed, and
	// stops relaying (default "15s"; go-libp2p alone checks an address it
	// confirmed once an hour).
	ReachabilityCheck Duration `toml:"reachability_check"`
}

// Duration is a time.Duration written as "20s" or "1m30s" in the file.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Size is a byte count written as 1048576, "128KiB", "16GiB" or "1MB".
type Size int64

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// ParseSize parses a byte count with an optional unit: B, KB, MB, GB, TB
// (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if err != nil || !ok || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size (e.g. 1048576, 512KiB, 16GiB)", s)
	}
	return n * mult, nil
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// DefaultHome returns $KITH_HOME, else $XDG_CONFIG_HOME/kith, else ~/.config/kith.
func DefaultHome() (string, error) {
	if h := os.Getenv("KITH_HOME"); h != "" {
		return h, nil
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "kith"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("node: no home directory: set KITH_HOME or pass --home: %w", err)
	}
	return filepath.Join(home, ".config", "kith"), nil
}

// LoadConfig reads home/config.toml (a missing file means all defaults) and
// validates it. An unknown key is an error naming the key and its line.
func LoadConfig(home string) (Config, error) {
	cfg := Config{Home: home}
	path := filepath.Join(home, ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("node: read config: %w", err)
	}
	if err := decodeConfig(path, b, &cfg); err != nil {
		return cfg, err
	}
	cfg.Home = home
	if err := cfg.Validate(); err != nil {
		var ke keyError
		if errors.As(err, &ke) {
			if line := keyLine(b, ke.key); line > 0 {
				return cfg, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// keyError is a Validate error about one key ("files.auto_accept"), so
// LoadConfig can say on which line the key was set.
type keyError struct {
	key string
	err error
}

func (e keyError) Error() string { return e.key + ": " + e.err.Error() }
func (e keyError) Unwrap() error { return e.err }

// keyLine returns the line where key (dotted, e.g. "files.auto_accept") is
// set in the TOML document b, or 0.
func keyLine(b []byte, key string) int {
	var p unstable.Parser
	p.Reset(b)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
		case unstable.KeyValue:
			if strings.Join(append(slices.Clone(table), keyParts(e.Key())...), ".") == key {
				return p.Shape(e.Raw).Start.Line
			}
		}
	}
	return 0
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

func decodeConfig(path string, b []byte, cfg *Config) error {
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	err := dec.Decode(cfg)
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) {
		var msgs []string
		for _, e := range missing.Errors {
			line, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q", path, line, strings.Join(e.Key(), ".")))
		}
		return fmt.Errorf("node: config: %s", strings.Join(msgs, "; "))
	}
	var derr *toml.DecodeError
	if errors.As(err, &derr) {
		line, col := derr.Position()
		key := strings.Join(derr.Key(), ".")
		if key != "" {
			key = fmt.Sprintf(" (key %q)", key)
		}
		return fmt.Errorf("node: config: %s:%d:%d%s: %w", path, line, col, key, err)
	}
	if err != nil {
		return fmt.Errorf("node: config: %s: %w", path, err)
	}
	return nil
}

// Validate checks every field and says which one is wrong.
func (c Config) Validate() error {
	for _, l := range c.Network.Listen {
		if _, err := ma.NewMultiaddr(l); err != nil {
			return fmt.Errorf("network.listen: invalid multiaddr %q: %w", l, err)
		}
	}
	if _, err := parsePeerAddrs("network.bootstrap", c.Network.Bootstrap); err != nil {
		return err
	}
	if _, err := parsePeerAddrs("network.relays", c.Network.Relays); err != nil {
		return err
	}
	if err := c.Relay.validate(); err != nil {
		return err
	}
	cc := c.withDefaults().Connections
	if cc.Low < 1 || cc.High < cc.Low {
		return fmt.Errorf("connections: need 1 <= low <= high, got low=%d high=%d", cc.Low, cc.High)
	}
	if cc.GracePeriod < 0 {
		return fmt.Errorf("connections.grace_period: must not be negative")
	}
	switch c.Messages.Accept {
	case "", AcceptContacts, AcceptAnyone:
	default:
		return keyError{"messages.accept", fmt.Errorf("%q is not one of contacts, anyone", c.Messages.Accept)}
	}
	if err := c.Files.AutoAccept.validate(); err != nil {
		return keyError{"files.auto_accept", err}
	}
	if err := c.Files.DownloadDir.validate(); err != nil {
		return keyError{"files.download_dir", err}
	}
	switch c.DHT.Mode {
	case "", "auto", "client", "server":
	default:
		return keyError{"dht.mode", fmt.Errorf("%q is not one of auto, client, server", c.DHT.Mode)}
	}
	return nil
}

// withDefaults fills every empty field with its documented default.
func (c Config) withDefaults() Config {
	if len(c.Network.Listen) == 0 {
		c.Network.Listen = DefaultListen()
	}
	if c.Connections.Low == 0 {
		c.Connections.Low = 64
	}
	if c.Connections.High == 0 {
		c.Connections.High = max(192, c.Connections.Low)
	}
	if c.Connections.GracePeriod == 0 {
		c.Connections.GracePeriod = Duration(20 * time.Second)
	}
	if c.DHT.Mode == "" {
		c.DHT.Mode = "auto"
	}
	if c.Messages.Accept == "" {
		c.Messages.Accept = AcceptContacts
	}
	if c.Files.AutoAccept == "" {
		c.Files.AutoAccept = AutoAcceptOff
	}
	if c.Relay.Enabled {
		c.DHT.Mode = "server"
	}
	if c.Relay.CircuitDuration == 0 {
		c.Relay.CircuitDuration = Duration(2 * time.Hour)
	}
	if c.Relay.CircuitData == 0 {
		c.Relay.CircuitData = 16 << 30
	}
	if c.Relay.MaxReservations == 0 {
		c.Relay.MaxReservations = 1024
	}
	if c.Relay.MaxCircuits == 0 {
		c.Relay.MaxCircuits = 64
	}
	if c.Relay.ConnsPerIP == 0 {
		c.Relay.ConnsPerIP = 64
	}
	if c.Relay.ReachabilityCheck == 0 {
		c.Relay.ReachabilityCheck = Duration(15 * time.Second)
	}
	return c
}

func (r RelayConfig) validate() error {
	for _, a := range r.Announce {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("relay.announce: invalid multiaddr %q: %w", a, err)
		}
	}
	for i, s := range r.Allow {
		p, err := peer.Decode(s)
		if err != nil {
			return fmt.Errorf("relay.allow[%d]: %q is not a peer ID: %w", i, s, err)
		}
		if err := CheckPeerKey(p); err != nil {
			return fmt.Errorf("relay.allow[%d]: %w", i, err)
		}
	}
	if r.CircuitDuration < 0 || r.CircuitData < 0 || r.MaxReservations < 0 || r.MaxCircuits < 0 ||
		r.ConnsPerIP < 0 || r.ReachabilityCheck < 0 {
		return fmt.Errorf("relay: limits must not be negative")
	}
	for _, k := range slices.Sorted(maps.Keys(r.PrefixLimits)) {
		if _, err := netip.ParsePrefix(k); err != nil {
			return keyError{"relay.prefix_limits", fmt.Errorf("%q is not a network prefix such as 203.0.113.0/28", k)}
		}
		if r.PrefixLimits[k] < 1 {
			return keyError{"relay.prefix_limits", fmt.Errorf("%q: the limit must be at least 1, got %d", k, r.PrefixLimits[k])}
		}
	}
	return nil
}

// DefaultListen is the listen set used when none is configured.
func DefaultListen() []string {
	p := DefaultPort
	return []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", p),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", p),
		fmt.Sprintf("/ip6/::/tcp/%d", p),
		fmt.Sprintf("/ip6/::/udp/%d/quic-v1", p),
	}
}

// MDNSEnabled reports whether mDNS discovery is on (the default).
func (c NetworkConfig) MDNSEnabled() bool { return c.MDNS == nil || *c.MDNS }

// PortMappingEnabled reports whether UPnP/NAT-PMP port mapping is on (the default).
func (c NetworkConfig) PortMappingEnabled() bool { return c.PortMapping == nil || *c.PortMapping }

// parsePeerAddrs parses multiaddrs that must name a peer (/p2p/ID) and
// groups them by peer.
func parsePeerAddrs(field string, addrs []string) ([]peer.AddrInfo, error) {
	mas := make([]ma.Multiaddr, 0, len(addrs))
	for i, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: invalid multiaddr %q: %w", field, i, s, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
			return nil, fmt.Errorf("%s[%d]: %q must end in /p2p/PEERID: %w", field, i, s, err)
		}
		mas = append(mas, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return infos, nil
}

// DefaultConfigText is written by `kith init`: every key, commented out, at
// its default.
const DefaultConfigText = `# kith configuration. Every key is optional; shown here at its default.
# Command-line flags override this file. An unknown key is an error.

[network]
# Where to listen. Default: TCP and QUIC on port 4011, all interfaces
# (a random port, with a warning, when 4011 is taken).
# listen = ["/ip4/0.0.0.0/tcp/4011", "/ip4/0.0.0.0/udp/4011/quic-v1", "/ip6/::/tcp/4011", "/ip6/::/udp/4011/quic-v1"]
# Bootstrap peers of the private /kith DHT (e.g. a colleague's kith relay).
# bootstrap = ["/ip4/203.0.113.5/tcp/4011/p2p/12D3KooW..."]
# Relays to reserve a slot on when behind a NAT.
# relays = ["/ip4/203.0.113.5/tcp/4011/p2p/12D3KooW..."]
# Find colleagues on the local network.
# mdns = true
# Ask the router for a port mapping (UPnP / NAT-PMP).
# port_mapping = true

[connections]
# The connection manager trims to low when more than high are open.
# low = 64
# high = 192
# grace_period = "20s"

[dht]
# "auto" (serve once reachable from the internet), "client" or "server".
# mode = "auto"

[messages]
# Who may send you direct messages: "contacts" (saved, unblocked contacts)
# or "anyone" (any peer you have not blocked).
# accept = "contacts"

[files]
# Where accepted files go when no folder is given (kith transfers accept
# --dir). Default: ~/Downloads if it exists, else the downloads folder in
# this home. An absolute path, or one starting with ~/.
# download_dir = "~/Downloads"
# Offers accepted without asking: "off" (every offer waits for kith
# transfers accept or reject) or "trusted" (offers from contacts marked
# trusted, see kith contacts trust, are received into download_dir at once).
# Offers are only ever taken from peers [messages] accept admits.
# auto_accept = "off"

[relay]
# For kith relay. Addresses to advertise instead of the observed ones;
# announcing declares the relay reachable, so it relays from the start.
# announce = ["/ip4/203.0.113.5/tcp/4011"]
# Peers that may reserve a slot and be relayed, besides the relay's contacts.
# allow = ["12D3KooW..."]
# allow_file = "/etc/kith/allow"
# Refuse everyone else (otherwise they get go-libp2p's default limits: a slot,
# at most 8 per IP address, and circuits of 2 min and 128 KiB).
# closed = false
# Limits of each relayed connection, and of the relay as a whole.
# circuit_duration = "2h"
# circuit_data = "16GiB"
# max_reservations = 1024
# max_circuits = 64
# Connections admitted at once from one IPv4 address (IPv6: one /56):
# colleagues behind one office NAT share an address.
# conns_per_ip = 64
# Limits for whole networks instead, e.g. an office's public addresses.
# prefix_limits = { "203.0.113.0/28" = 512 }
# How often colleagues are asked to dial the relay back, so that it stops
# relaying (and its clients move to another relay) once unreachable.
# reachability_check = "15s"
`
