package chat

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

// errHistoryMessage: a message of a history answer failed verification.
// One that fails only because its clock is too far ahead of ours (it also
// wraps protocols.ErrRoomClockAhead) does not count against the member that
// answered: its clock may be ahead of ours, and it rightly took it.
var errHistoryMessage = errors.New("chat: history message fails verification")

// verifyHistory checks one signed pubsub message of a history answer for
// room j as pubsub and our validator would have checked it had it come by
// gossip, and returns it as we store it (Raw as received):
//
//   - it decodes as a pubsub Message on j's topic;
//   - it is signed by its From under pubsub's StrictSign rule
//     (verifySignature);
//   - its payload decodes for j (name, key, topic: sealed with j's key in
//     a private room) and its clock is not too far ahead of now
//     (protocols.RoomMessage.CheckTime).
func verifyHistory(j *joined, raw []byte, now time.Time) (RoomMessage, error) {
	var pm pb.Message
	if err := proto.Unmarshal(raw, &pm); err != nil {
		return RoomMessage{}, fmt.Errorf("%w: not a pubsub message: %v", errHistoryMessage, err)
	}
	if pm.GetTopic() != j.Topic {
		return RoomMessage{}, fmt.Errorf("%w: of another topic", errHistoryMessage)
	}
	author, err := verifySignature(&pm)
	if err != nil {
		return RoomMessage{}, fmt.Errorf("%w: %w", errHistoryMessage, err)
	}
	m, err := protocols.DecodeRoomPayload(pm.GetData(), j.Name, j.Key, j.Topic)
	if err != nil {
		return RoomMessage{}, fmt.Errorf("%w: %w", errHistoryMessage, err)
	}
	if err := m.CheckTime(now); err != nil {
		return RoomMessage{}, fmt.Errorf("%w: %w", errHistoryMessage, err)
	}
	id := RoomMessageID(&pm)
	return RoomMessage{ID: hex.EncodeToString([]byte(id)[:16]), Room: j.Name, Author: author, Seq: m.Seq,
		Clock: m.Clock, SentAt: m.SentAt, ReceivedAt: now.UTC(), Text: m.Text, Raw: raw}, nil
}

// verifySignature checks m's signature as pubsub's StrictSign policy does
// (go-libp2p-pubsub sign.go, unexported there) and returns the signer:
// from, seqno and signature are present; the public key is m.Key, which
// must match from, or else is extracted from from (an identity peer ID,
// such as Ed25519's); the signature is over "libp2p-pubsub:" followed by
// the message encoded without signature and key.
func verifySignature(m *pb.Message) (peer.ID, error) {
	if len(m.GetSignature()) == 0 || len(m.GetSeqno()) == 0 {
		return "", errors.New("unsigned, or without seqno")
	}
	from, err := peer.IDFromBytes(m.GetFrom())
	if err != nil {
		return "", fmt.Errorf("from is not a peer ID: %w", err)
	}
	var pub crypto.PubKey
	if m.Key == nil {
		if pub, err = from.ExtractPublicKey(); err != nil || pub == nil {
			return "", fmt.Errorf("no signing key in from %s", from)
		}
	} else {
		if pub, err = crypto.UnmarshalPublicKey(m.Key); err != nil {
			return "", fmt.Errorf("bad signing key: %w", err)
		}
		if !from.MatchesPublicKey(pub) {
			return "", fmt.Errorf("signing key is not from's %s", from)
		}
	}
	xm := proto.CloneOf(m)
	xm.Signature, xm.Key = nil, nil
	b, err := proto.Marshal(xm)
	if err != nil {
		return "", err
	}
	ok, err := pub.Verify(append([]byte(pubsub.SignPrefix), b...), m.GetSignature())
	if err != nil || !ok {
		return "", fmt.Errorf("signature is not from's %s", from)
	}
	return from, nil
}
