package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/node/store"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// ContactInfo is a contact as `kith contacts ls` prints it.
type ContactInfo struct {
	Name    string   `json:"name"`
	PeerID  string   `json:"peer_id"`
	Trusted bool     `json:"trusted"`
	Blocked bool     `json:"blocked"`
	Addrs   []string `json:"addrs,omitempty"`
}

func contactInfo(c store.Contact) ContactInfo {
	return ContactInfo{Name: c.Name, PeerID: c.PeerID.String(), Trusted: c.Trusted, Blocked: c.Blocked, Addrs: strs(c.Addrs)}
}

// AddContact saves target (a ticket or a peer ID) under name. A ticket's
// addresses are remembered for dialing.
func (n *Node) AddContact(ctx context.Context, name, target string) (ContactInfo, error) {
	if err := store.ValidContactName(name); err != nil {
		return ContactInfo{}, err
	}
	c := store.Contact{Name: name}
	target = strings.TrimSpace(target)
	if strings.HasPrefix(strings.ToLower(target), protocols.TicketPrefix) {
		t, err := protocols.ParseTicket(target)
		if err != nil {
			return ContactInfo{}, err
		}
		c.PeerID, c.Addrs = t.Peer, t.Addrs
	} else {
		id, err := peer.Decode(target)
		if err != nil {
			return ContactInfo{}, fmt.Errorf("%q: %w", target, ErrNotPeer)
		}
		c.PeerID = id
	}
	if err := CheckPeerKey(c.PeerID); err != nil {
		return ContactInfo{}, fmt.Errorf("node: contact %q: %w", name, err)
	}
	if c.PeerID == n.host.ID() {
		return ContactInfo{}, fmt.Errorf("node: %s is this node: %w", c.PeerID, ErrNotPeer)
	}
	if err := n.store.AddContact(ctx, c); err != nil {
		return ContactInfo{}, err
	}
	n.rememberAddrs(c.PeerID, c.Addrs)
	// Already connected (through the DHT, mDNS or a room), the contact's
	// identify came before it was a contact: keep what it said then.
	if n.host.Network().Connectedness(c.PeerID) == network.Connected {
		n.learnContactAddrs(c.PeerID, n.listenAddrsOf(c.PeerID))
	}
	got, err := n.store.ContactByPeer(ctx, c.PeerID)
	return contactInfo(got), err
}

// listenAddrsOf is what p said it listens on: its signed peer record from
// identify if we hold one, else the addresses the peerstore has for it.
func (n *Node) listenAddrsOf(p peer.ID) []ma.Multiaddr {
	if cab, ok := peerstore.GetCertifiedAddrBook(n.host.Peerstore()); ok {
		if env := cab.GetPeerRecord(p); env != nil {
			if rec, err := env.Record(); err == nil {
				if pr, ok := rec.(*peer.PeerRecord); ok && len(pr.Addrs) > 0 {
					return pr.Addrs
				}
			}
		}
	}
	return n.host.Peerstore().Addrs(p)
}

// ErrNotPeer is returned for an argument that is not a peer ID or ticket.
var ErrNotPeer = errors.New("not a peer ID or ticket")

// Contacts lists contacts, then blocked strangers.
func (n *Node) Contacts(ctx context.Context) ([]ContactInfo, error) {
	cs, err := n.store.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ContactInfo, len(cs))
	for i, c := range cs {
		out[i] = contactInfo(c)
	}
	return out, nil
}

// RemoveContact forgets a contact (a blocked one stays blocked).
func (n *Node) RemoveContact(ctx context.Context, name string) error {
	return n.store.RemoveContact(ctx, name)
}

// TrustContact marks a contact trusted (or not).
func (n *Node) TrustContact(ctx context.Context, name string, trusted bool) error {
	return n.store.SetTrusted(ctx, name, trusted)
}

// Block refuses target (a contact name, peer ID or ticket) from now on and
// closes any connection to it; unblock admits it again.
func (n *Node) Block(ctx context.Context, target string, blocked bool) (peer.ID, error) {
	p, err := n.Resolve(ctx, target)
	if err != nil {
		return "", err
	}
	if err := n.store.SetBlocked(ctx, p, blocked); err != nil {
		return "", err
	}
	if blocked {
		n.gater.Block(p)
		n.host.Network().ClosePeer(p)
	} else {
		n.gater.Unblock(p)
	}
	return p, nil
}

// loadBlocked feeds the store's block list to the gater at start.
func (n *Node) loadBlocked(ctx context.Context) error {
	ps, err := n.store.BlockedPeers(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		n.gater.Block(p)
	}
	return nil
}

// rememberContactAddrs puts every contact's known addresses in the
// peerstore, so they are dialed before asking the DHT.
func (n *Node) rememberContactAddrs(ctx context.Context) error {
	cs, err := n.store.Contacts(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		n.rememberAddrs(c.PeerID, c.Addrs)
	}
	return nil
}

// maxContactAddrs caps the addresses kept for a contact, the most widely
// reachable first (as in a ticket).
const maxContactAddrs = protocols.MaxTicketAddrs

// learnContactAddrs keeps the addresses a contact said (in identify) it
// listens on as its last-known ones, in the store and for good in the
// peerstore, so the node can still dial it when the DHT cannot find it: all
// bootstrap peers down, even across a restart (F10 in RELIABILITY.md).
// Addresses learnt from the DHT or a connection otherwise live only in the
// peerstore, for minutes, and a contact added by peer ID had none stored.
func (n *Node) learnContactAddrs(p peer.ID, listen []ma.Multiaddr) {
	addrs := rankAddrs(ma.FilterAddrs(listen, func(a ma.Multiaddr) bool { return len(a) > 0 }))
	if len(addrs) == 0 {
		return
	}
	addrs = addrs[:min(len(addrs), maxContactAddrs)]
	// A read first: most peers identified are not contacts, or contacts
	// whose addresses have not changed, and a read takes no write lock.
	c, err := n.store.ContactByPeer(n.ctx, p)
	if err != nil || c.Name == "" || slices.EqualFunc(c.Addrs, addrs, ma.Multiaddr.Equal) {
		return
	}
	ok, err := n.store.SetContactAddrs(n.ctx, p, addrs)
	if err != nil {
		if n.ctx.Err() == nil {
			n.log.Warn("keep contact addresses", "peer", p, "err", err)
		}
		return
	}
	if ok {
		n.rememberAddrs(p, addrs)
		n.log.Debug("contact addresses kept", "peer", p, "addrs", len(addrs))
	}
}

func (n *Node) rememberAddrs(p peer.ID, addrs []ma.Multiaddr) {
	if len(addrs) > 0 {
		n.host.Peerstore().AddAddrs(p, addrs, peerstore.PermanentAddrTTL)
	}
}

// admission is what the [messages] accept policy says about a peer.
type admission int

const (
	admitted  admission = iota
	isBlocked           // blocked: refused whatever the policy
	stranger            // not a contact, and the policy admits contacts only
)

// admit applies the policy shared by direct messages and file offers:
// blocked peers never, others by [messages] accept (contacts only, by
// default).
func (n *Node) admit(p peer.ID) (admission, error) {
	c, err := n.store.ContactByPeer(n.ctx, p)
	switch {
	case err == nil && c.Blocked:
		return isBlocked, nil
	case err == nil && c.Name != "":
		return admitted, nil
	case err != nil && !errors.Is(err, store.ErrNoContact):
		return 0, fmt.Errorf("node: look up contact: %w", err)
	case n.cfg.Messages.Accept == AcceptAnyone:
		return admitted, nil
	default:
		return stranger, nil
	}
}

// authorizeDM is the direct-message policy (see admit).
func (n *Node) authorizeDM(p peer.ID) error {
	a, err := n.admit(p)
	switch {
	case err != nil:
		return err
	case a == isBlocked:
		return chat.ErrBlocked
	case a == stranger:
		return fmt.Errorf("%w: this node accepts messages from its contacts only", chat.ErrNotAllowed)
	}
	return nil
}

// nameOf returns p's contact name, or "".
func (n *Node) nameOf(ctx context.Context, p peer.ID) string {
	c, err := n.store.ContactByPeer(ctx, p)
	if err != nil {
		return ""
	}
	return c.Name
}
