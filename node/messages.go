package node

import (
	"context"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Messages config values: who may send us direct messages.
const (
	AcceptContacts = "contacts"
	AcceptAnyone   = "anyone"
)

// MessageInfo is a direct message as `kith inbox` prints it.
type MessageInfo struct {
	ID     string    `json:"id"`
	Seq    int64     `json:"seq"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Name   string    `json:"name,omitempty"` // the other side's contact name
	Text   string    `json:"text"`
	SentAt time.Time `json:"sent_at"`
	State  string    `json:"state"`
}

func (n *Node) messageInfo(ctx context.Context, m chat.Message) MessageInfo {
	from, to := m.Peer.String(), n.host.ID().String()
	if m.Out {
		from, to = to, from
	}
	return MessageInfo{
		ID: m.ID.String(), Seq: m.Seq, From: from, To: to, Name: n.nameOf(ctx, m.Peer),
		Text: m.Text, SentAt: m.SentAt.UTC(), State: string(m.State),
	}
}

// SendMessage sends text to target (a contact name, peer ID or ticket). The
// result's state is "delivered" once the peer acked it, "queued" when the
// peer could not be reached and the outbox took it.
func (n *Node) SendMessage(ctx context.Context, target, text string) (MessageInfo, error) {
	if err := chat.CheckText(text); err != nil {
		return MessageInfo{}, err
	}
	p, err := n.Resolve(ctx, target)
	if err != nil {
		return MessageInfo{}, err
	}
	m, err := n.dm.Send(ctx, p, text)
	if err != nil {
		return n.messageInfo(ctx, m), err
	}
	return n.messageInfo(ctx, m), nil
}

// Messages lists stored direct messages, oldest first: with one peer when
// from is set (a contact name, peer ID or ticket), and after seq.
func (n *Node) Messages(ctx context.Context, from string, after int64) ([]MessageInfo, error) {
	var p peer.ID
	if from != "" {
		var err error
		if p, err = n.Resolve(ctx, from); err != nil {
			return nil, err
		}
	}
	ms, err := n.store.Messages(ctx, chat.Filter{Peer: p, AfterSeq: after})
	if err != nil {
		return nil, err
	}
	out := make([]MessageInfo, len(ms))
	for i, m := range ms {
		out[i] = n.messageInfo(ctx, m)
	}
	return out, nil
}

// onMessage publishes a stored or changed message on the event stream.
func (n *Node) onMessage(m chat.Message) {
	info := n.messageInfo(n.ctx, m)
	n.events.Publish(Event{Type: EventMessage, PeerID: m.Peer.String(), Message: &info})
}
