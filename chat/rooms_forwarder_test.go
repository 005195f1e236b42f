package chat_test

import (
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
)

// A flooder sends to B and C; C's bucket is larger than B's (another
// RoomConfig: another version, or another operator's settings), so C
// accepts and forwards to B messages that B rejected, over its rate, when
// the flooder sent them to B itself. C is honest: it forwarded what it
// judged valid, and B must keep scoring it at 0 or above.
//
// It failed while the validator rejected a message over its author's rate
// when the author sent it: pubsub's scorer then counts every later copy of
// that message ID, from any forwarder, as an invalid delivery of that
// forwarder (peerScore.DuplicateMessage, status deliveryInvalid), and B
// scored C down by -100 × count² until it graylisted it. The same happened
// with equal buckets when timing differed, and with the clock check. Now
// such messages are ignored and the author alone is penalised through the
// application-specific score (PenaltyWeight), which graylists the flooder.
func TestHostileRoomRateRejectSparesForwarders(t *testing.T) {
	nothingLost(t)
	bScores, bOpt := newScoreWatch()
	b := newRoomNode(t, chat.RoomConfig{}, bOpt)
	c := newRoomNode(t, chat.RoomConfig{Rate: 1000, Burst: 1000})
	flooder := newRoomNode(t, chat.RoomConfig{})
	nodes := []*roomNode{b, c, flooder}
	for i, n := range nodes {
		connect(t, n.h, nodes[(i+1)%3].h)
		n.join(t, "lobby", nil)
	}
	for i, n := range nodes {
		n.waitMesh(t, "lobby", nodes[(i+1)%3].h.ID(), nodes[(i+2)%3].h.ID())
	}
	topic, err := flooder.svc.Topic("lobby")
	if err != nil {
		t.Fatal(err)
	}
	// One at a time, each once C has it: far over B's 20/s, and none lost
	// to the flooder's outbound queue (C must hold and forward all); 70 past
	// B's bucket (roomBurst), enough offences, after the bucket's refill, to
	// graylist the flooder (16).
	const flood = roomBurst + 70
	for seq := range uint64(flood) {
		if err := topic.Publish(t.Context(), openPayload(t, "lobby", seq+1, "spam")); err != nil {
			t.Fatal(err)
		}
		// Published past the flooder's service: B, which ignored what was
		// over the rate, may later fetch it from C as history.
		wroteElsewhere(t, "lobby", flooder.h.ID(), seq+1, "spam")
		if m := c.nextMessage(t); m.Author != flooder.h.ID() || m.Seq != seq+1 {
			t.Fatalf("C got %s/%d, want the flooder's %d", m.Author, m.Seq, seq+1)
		}
	}
	bScores.wait(t, flooder.h.ID(), "below the graylist threshold", func(s float64) bool {
		return s < chat.RoomScoreThresholds().GraylistThreshold
	})
	// C's stream to B carries its forwards of the flood, then its own
	// message: once B shows that message, B has judged the forwards.
	if _, err := c.svc.Send(t.Context(), "lobby", "after the flood"); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(meshBound)
	for shown := false; !shown; {
		select {
		case e := <-b.events:
			shown = e.Message != nil && e.Message.Author == c.h.ID() && e.Message.Text == "after the flood"
		case <-timeout:
			s := bScores.wait(t, c.h.ID(), "known", func(float64) bool { return true })
			t.Fatalf("B never shows C's own message: it scores C at %.0f (graylist below %v)",
				s, chat.RoomScoreThresholds().GraylistThreshold)
		}
	}
	if s := bScores.wait(t, c.h.ID(), "known", func(float64) bool { return true }); s < 0 {
		t.Errorf("B scores the honest forwarder C at %.0f, want 0 or above", s)
	}
}
