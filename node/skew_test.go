package node_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	p2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
)

// libp2pCertTemplate is the template go-libp2p's TLS makes on a clock
// reading now (p2p/security/tls certTemplate): valid from an hour before
// now.
func libp2pCertTemplate(now time.Time) (*x509.Certificate, error) {
	sn, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{SerialNumber: sn, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(100 * 365 * 24 * time.Hour), Subject: pkix.Name{SerialNumber: sn.String()}}, nil
}

// quicOnlyHost is a host that speaks QUIC only, with the certificate tmpl
// describes.
func quicOnlyHost(t *testing.T, tmpl *x509.Certificate) host.Host {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(nil)
	h, err := libp2p.New(libp2p.Identity(key), libp2p.NoTransports,
		libp2p.Transport(quic.NewTransport, quic.WithTLSIdentityOption(p2ptls.WithCertTemplate(tmpl))),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// quicAddrs are n's QUIC addresses.
func quicAddrs(n *node.Node) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range n.Host().Addrs() {
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// TestF7QUICClockSkew: F7 below kith's protocols. QUIC's TLS handshake
// checks each side's self-signed certificate against the other side's
// clock, and go-libp2p dates a certificate from its clock minus an hour.
// So a peer whose clock ran a day fast could not connect to a kith node
// over QUIC at all (the control below), nor could one a day slow accept a
// kith node's certificate. kith dates its certificates from 2020
// (node/quiccert.go): a contact whose clock is off by ±1 h or ±1 day, with
// kith's certificate, connects over QUIC only and its direct message is
// acked and stored with sent_at as it stated it; and the certificate kith
// makes now passes the check of a peer whose clock is off by as much.
func TestF7QUICClockSkew(t *testing.T) {
	const day = 24 * time.Hour
	skews := []time.Duration{-day, -time.Hour, time.Hour, day}
	w := nothingLost(t)
	n := w.start()

	for i, skew := range skews {
		t.Run(fmt.Sprintf("contact %v off, kith's certificate", skew), func(t *testing.T) {
			tmpl, err := node.QUICCertTemplate(time.Now().Add(skew))
			if err != nil {
				t.Fatal(err)
			}
			h := quicOnlyHost(t, tmpl)
			if _, err := n.AddContact(t.Context(), fmt.Sprintf("skewed%d", i), h.ID().String()); err != nil {
				t.Fatal(err)
			}
			if err := h.Connect(t.Context(), peer.AddrInfo{ID: n.ID(), Addrs: quicAddrs(n)}); err != nil {
				t.Fatalf("connect over QUIC with a clock %v off: %v", skew, err)
			}
			sentAt := time.Now().Add(skew).Truncate(time.Millisecond)
			id := skewedDM(t, h, n.ID(), sentAt, "from a skewed clock")
			ms, err := n.Messages(t.Context(), h.ID().String(), 0)
			if err != nil || len(ms) != 1 || ms[0].ID != hex.EncodeToString(id.ID[:]) || !ms[0].SentAt.Equal(sentAt) {
				t.Fatalf("N holds %+v (%v), want the message once with sent_at %v", ms, err, sentAt)
			}
		})
	}
	t.Run("control: a contact a day fast, go-libp2p's certificate", func(t *testing.T) {
		tmpl, err := libp2pCertTemplate(time.Now().Add(day))
		if err != nil {
			t.Fatal(err)
		}
		h := quicOnlyHost(t, tmpl)
		if _, err := n.AddContact(t.Context(), "fast", h.ID().String()); err != nil {
			t.Fatal(err)
		}
		// The dialer's handshake may end before N has checked its
		// certificate: the refusal shows on the first exchange.
		err = h.Connect(t.Context(), peer.AddrInfo{ID: n.ID(), Addrs: quicAddrs(n)})
		if err == nil {
			_, err = tryDM(t, h, n.ID(), time.Now().Add(day), "from a day ahead")
		}
		if err == nil {
			t.Fatal("a certificate dated from a clock a day fast was accepted: the test shows nothing")
		}
		t.Logf("refused, as go-libp2p's certificates are: %v", err)
	})

	// The other way: kith's certificate, made now, as peers whose clocks
	// are off check it (x509 verification at their time, as go-libp2p's
	// TLS verifies a peer's chain).
	key, _, _ := crypto.GenerateEd25519Key(nil)
	check := func(template func(time.Time) (*x509.Certificate, error), at time.Time) error {
		tmpl, err := template(time.Now()) // NewIdentity adds to its template: one each
		if err != nil {
			return err
		}
		id, err := p2ptls.NewIdentity(key, p2ptls.WithCertTemplate(tmpl))
		if err != nil {
			return err
		}
		conf, _ := id.ConfigForPeer("")
		cert, err := x509.ParseCertificate(conf.Certificates[0].Certificate[0])
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		cert.UnhandledCriticalExtensions = nil // the libp2p key extension, which go-libp2p checks itself
		_, err = cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at})
		return err
	}
	for _, skew := range skews {
		if err := check(node.QUICCertTemplate, time.Now().Add(skew)); err != nil {
			t.Errorf("a peer %v off refuses kith's certificate: %v", skew, err)
		}
	}
	if err := check(libp2pCertTemplate, time.Now().Add(-day)); err == nil {
		t.Error("control: a peer a day slow accepts go-libp2p's certificate; the check shows nothing")
	}
}

// skewedDM sends one direct message stamped sentAt from h to p on a stream
// of its own and fails unless p acks it.
func skewedDM(t *testing.T, h host.Host, p peer.ID, sentAt time.Time, text string) protocols.DMMessage {
	t.Helper()
	m, err := tryDM(t, h, p, sentAt, text)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tryDM sends one direct message stamped sentAt from h to p on a stream of
// its own and waits for its ack.
func tryDM(t *testing.T, h host.Host, p peer.ID, sentAt time.Time, text string) (protocols.DMMessage, error) {
	var m protocols.DMMessage
	rand.Read(m.ID[:])
	m.SentAt, m.Text = sentAt, text
	s, err := h.NewStream(t.Context(), p, protocols.DMProtocol)
	if err != nil {
		return m, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(30 * time.Second))
	if err := protocols.NewDMWriter(s).Write(protocols.DMFrame{Message: &m}); err != nil {
		return m, err
	}
	f, err := protocols.NewDMReader(s).Read()
	if err == nil && (f.Ack == nil || f.Ack.ID != m.ID) {
		err = fmt.Errorf("answered %+v, not the message's ack", f)
	}
	return m, err
}
