package node

import (
	"context"
	"encoding/binary"
	"log/slog"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-base32"
)

// What the provider-record tests check against.
const (
	ProviderValidity          = providerValidity
	ProviderCleanup           = providerCleanup
	MaxProviderRecordsPerPeer = maxProviderRecordsPerPeer
	MaxProviderRecords        = maxProviderRecords
)

// ProviderCounts is what one half's provider store holds.
type ProviderCounts = providerCounts

// WithProviderLimits replaces the caps of the node's provider records.
func WithProviderLimits(perPeer, total int) Option {
	return func(o *options) { o.providers = providerLimits{PerPeer: perPeer, Total: total} }
}

// ProviderRecords is what the node's provider stores hold: WAN, LAN.
func (n *Node) ProviderRecords() (wan, lan ProviderCounts) {
	return n.provs[0].counts(), n.provs[1].counts()
}

// PlantProviderRecord stores, in half (0 WAN, 1 LAN) of n's DHT, a record
// of p providing key written at the time at, as kad-dht writes them.
func (n *Node) PlantProviderRecord(half int, key []byte, p peer.ID, at time.Time) error {
	return n.provs[half].Put(context.Background(), ProviderKey(key, p), binary.AppendVarint(nil, at.UnixNano()))
}

// HasProviderRecord reports whether half (0 WAN, 1 LAN) of n's DHT has
// written p's record for key to its store.
func (n *Node) HasProviderRecord(half int, key []byte, p peer.ID) bool {
	ok, _ := n.provs[half].Has(context.Background(), ProviderKey(key, p))
	return ok
}

// ProviderKey is kad-dht's datastore key of p's record for key.
func ProviderKey(key []byte, p peer.ID) ds.Key {
	enc := base32.RawStdEncoding.EncodeToString
	return ds.NewKey(records.ProvidersKeyPrefix + enc(key) + "/" + enc([]byte(p)))
}

// NewProviderStore is a provider store with the given caps.
func NewProviderStore(perPeer, total int) ds.Batching {
	return newProviderStore(providerLimits{PerPeer: perPeer, Total: total}, slog.Default())
}

// ProviderStoreCounts is what a store from NewProviderStore holds.
func ProviderStoreCounts(s ds.Batching) ProviderCounts { return s.(*providerStore).counts() }
