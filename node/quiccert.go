package node

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/pnet"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	p2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
)

// certNotBefore dates every QUIC certificate kith makes, whatever its clock
// says (RELIABILITY.md F7).
//
// QUIC's TLS 1.3 handshake checks the peer's self-signed certificate
// against the local clock, and go-libp2p dates a certificate from its own
// clock minus one hour: a peer whose clock ran more than an hour fast had
// its certificates refused as not yet valid, and a peer whose clock ran
// more than an hour slow refused everyone else's, so neither could connect
// over QUIC (TestF7QUICClockSkew). The dates prove nothing in libp2p's TLS:
// the certificate is bound to the peer's key by a signed extension, not by
// a CA, and is made afresh at every start.
var certNotBefore = time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)

// certValidity is go-libp2p's: a certificate lives about 100 years.
const certValidity = 100 * 365 * 24 * time.Hour

// quicCertTemplate is the template of the QUIC transport's certificate,
// made at now: valid from certNotBefore to 100 years after now.
func quicCertTemplate(now time.Time) (*x509.Certificate, error) {
	limit := big.NewInt(1 << 62)
	sn, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("node: certificate serial number: %w", err)
	}
	subject, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("node: certificate subject: %w", err)
	}
	return &x509.Certificate{
		SerialNumber: sn,
		NotBefore:    certNotBefore,
		NotAfter:     now.Add(certValidity),
		// RFC 3280 4.1.2.4: the issuer (here the subject) must be set.
		Subject: pkix.Name{SerialNumber: subject.String()},
	}, nil
}

// quicCertOption has the QUIC transport make its certificate from
// quicCertTemplate.
func quicCertOption(now time.Time) (quic.Option, error) {
	tmpl, err := quicCertTemplate(now)
	if err != nil {
		return nil, err
	}
	return quic.WithTLSIdentityOption(p2ptls.WithCertTemplate(tmpl)), nil
}

// quicTransportWithCert returns a QUIC transport constructor that makes its
// certificate from quicCertTemplate (quicCertOption), for
// libp2p.Transport.
//
// The option is bound in a constructor that takes none, rather than passed
// as libp2p.Transport(quic.NewTransport, opt): go-libp2p tags a
// constructor that takes options with a random fx group name, from which
// fx builds new reflect types, and the runtime never frees a type. Each
// host built so kept about 11 KiB for the life of the process: in
// TestSoakChurn (build tag soak; a node replaced every 5 s) that was
// L9's whole heap slope, +10 %/h (TestStartCloseRetainsNothing).
func quicTransportWithCert(now time.Time) (func(ic.PrivKey, *quicreuse.ConnManager, pnet.PSK, connmgr.ConnectionGater, network.ResourceManager) (tpt.Transport, error), error) {
	opt, err := quicCertOption(now)
	if err != nil {
		return nil, err
	}
	return func(key ic.PrivKey, cm *quicreuse.ConnManager, psk pnet.PSK, gater connmgr.ConnectionGater, rm network.ResourceManager) (tpt.Transport, error) {
		return quic.NewTransport(key, cm, psk, gater, rm, opt)
	}, nil
}
