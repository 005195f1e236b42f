package node

import (
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The router's drops are counted by reason; rejections for what a message
// is (invalid, ignored: the validator's verdicts) are not drops.
func TestRoomDropsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	d, err := newRoomDrops(reg)
	if err != nil {
		t.Fatal(err)
	}
	d.RejectMessage(nil, pubsub.RejectValidationQueueFull)
	d.RejectMessage(nil, pubsub.RejectValidationQueueFull)
	d.RejectMessage(nil, pubsub.RejectValidationThrottled)
	d.RejectMessage(nil, pubsub.RejectValidationFailed)
	d.RejectMessage(nil, pubsub.RejectValidationIgnored)
	d.UndeliverableMessage(nil)
	d.DropRPC(nil, "")
	for reason, want := range map[string]float64{dropValidationQueue: 2, dropThrottled: 1, dropReaderSlow: 1} {
		if got := testutil.ToFloat64(d.messages.WithLabelValues(reason)); got != want {
			t.Errorf("%s: %v, want %v", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(d.rpcs); got != 1 {
		t.Errorf("RPCs dropped: %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "kith_room_messages_dropped_total"); err != nil || n != 3 {
		t.Errorf("%d series of kith_room_messages_dropped_total (%v), want 3: every reason shows", n, err)
	}
}
