package node

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/prometheus/client_golang/prometheus"
)

// Provider records (room rendezvous) on a kith DHT server: how long one
// lives, how often expired ones are swept, and how many one holds.
const (
	// providerValidity is how long a server keeps a provider record it
	// was not sent again (kad-dht: 48 hours). Members renew theirs every
	// 7/8 of chat.RendezvousAdvertiseTTL (3 hours, ±10%: at most 2 h 53
	// min apart), so twice the TTL survives one renewal lost; a member
	// that left is named by lookups for at most that long.
	providerValidity = 2 * chat.RendezvousAdvertiseTTL
	// providerCleanup is how often expired records are deleted (kad-dht:
	// hourly): a record is gone at most providerValidity + providerCleanup
	// after its last renewal.
	providerCleanup = 15 * time.Minute
	// providerAddrTTL is how long a provider's addresses stay in the
	// peerstore (kad-dht: 24 hours) unless kith's pruner forgets them
	// first: no longer than its record.
	providerAddrTTL = providerValidity
	// maxProviderRecordsPerPeer bounds the records one peer makes a
	// server hold, in each half of the DHT: a member advertises one key
	// per room it is in.
	maxProviderRecordsPerPeer = 256
	// maxProviderRecords bounds the records a server holds in each half
	// of the DHT (about 250 bytes each: 8 MiB at most).
	maxProviderRecords = 1 << 15
)

// providerLimits are the caps of a server's provider records, per half of
// the DHT.
type providerLimits struct {
	PerPeer, Total int
}

var defaultProviderLimits = providerLimits{PerPeer: maxProviderRecordsPerPeer, Total: maxProviderRecords}

// providerManagerOpts configure kad-dht's provider manager over store.
func providerManagerOpts() []records.Option {
	return []records.Option{
		records.ProvideValidity(providerValidity),
		records.CleanupInterval(providerCleanup),
		records.ProviderAddrTTL(providerAddrTTL),
	}
}

// providerStore is the datastore of one DHT half's provider records: in
// memory, like kad-dht's default, but capped. kad-dht v0.42 takes no
// provider store of our own, only its datastore, and stores every
// ADD_PROVIDER its sender makes for itself, for any number of keys: with
// its default map datastore one peer could grow a server's memory without
// bound. This one refuses a new record (a renewal always passes) once its
// peer holds PerPeer or the store holds Total; the refusal is silent (the
// provider manager writes in batches and would retry a failed batch,
// honest records with it), and the sender is told nothing. It also answers
// the provider manager's query for one key from that key's records alone,
// where a map datastore copies every record it holds for each. A record
// takes about 250 bytes, as in a map datastore.
//
// Keys are kad-dht's: /providers/<base32 key>/<base32 peer ID>; the value
// is the record's time. (kad-dht's provider manager first buffers up to 256
// writes, and reads overlay them: the store holds what it has flushed.)
type providerStore struct {
	limits providerLimits
	log    *slog.Logger

	mu      sync.Mutex
	keys    map[string]*keyRecords // base32 key → its records
	perPeer map[string]int         // base32 peer → records
	total   int
	refused uint64    // new records refused, ever
	warned  time.Time // the last refusal logged
}

// keyRecords are the records of one key: a slice, which a map indexes once
// the key has many providers.
type keyRecords struct {
	recs []providerRecord
	idx  map[string]int // base32 peer → index in recs, when len(recs) > keyIndexAfter
}

type providerRecord struct {
	peer  string // base32 peer ID
	value string // the record's time, as kad-dht encodes it
}

// keyIndexAfter is how many providers of a key are searched one by one.
const keyIndexAfter = 16

func (k *keyRecords) find(p string) int {
	if k.idx != nil {
		if i, ok := k.idx[p]; ok {
			return i
		}
		return -1
	}
	for i, r := range k.recs {
		if r.peer == p {
			return i
		}
	}
	return -1
}

func (k *keyRecords) add(r providerRecord) {
	k.recs = append(k.recs, r)
	switch {
	case k.idx != nil:
		k.idx[r.peer] = len(k.recs) - 1
	case len(k.recs) > keyIndexAfter:
		k.idx = make(map[string]int, len(k.recs))
		for i, r := range k.recs {
			k.idx[r.peer] = i
		}
	}
}

func (k *keyRecords) remove(i int) {
	last := len(k.recs) - 1
	if k.idx != nil {
		delete(k.idx, k.recs[i].peer)
		if i != last {
			k.idx[k.recs[last].peer] = i
		}
	}
	k.recs[i] = k.recs[last]
	k.recs[last] = providerRecord{}
	k.recs = k.recs[:last]
}

var _ ds.Batching = (*providerStore)(nil)

func newProviderStore(limits providerLimits, log *slog.Logger) *providerStore {
	return &providerStore{limits: limits, log: log,
		keys: map[string]*keyRecords{}, perPeer: map[string]int{}}
}

// splitProviderKey splits a record's datastore key into its key and peer
// parts.
func splitProviderKey(k ds.Key) (key, p string, ok bool) {
	rest, ok := strings.CutPrefix(k.String(), records.ProvidersKeyPrefix)
	if !ok {
		return "", "", false
	}
	key, p, ok = strings.Cut(rest, "/")
	if !ok || key == "" || p == "" || strings.Contains(p, "/") {
		return "", "", false
	}
	return key, p, true
}

// Put stores a record, or refuses a new one over the caps (see the type).
// A key that is not a provider record's is refused with an error.
func (s *providerStore) Put(_ context.Context, k ds.Key, value []byte) error {
	key, p, ok := splitProviderKey(k)
	if !ok {
		return errNotProviderKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := s.keys[key]
	if recs != nil {
		if i := recs.find(p); i >= 0 {
			recs.recs[i].value = string(value) // a renewal
			return nil
		}
	}
	if s.perPeer[p] >= s.limits.PerPeer || s.total >= s.limits.Total {
		s.refuseLocked(p)
		return nil
	}
	if recs == nil {
		recs = &keyRecords{}
		s.keys[strings.Clone(key)] = recs // not a slice of the whole datastore key
	}
	p = strings.Clone(p)
	recs.add(providerRecord{peer: p, value: string(value)})
	s.perPeer[p]++
	s.total++
	return nil
}

// refuseLocked counts a refused record and logs it, at most once a minute.
func (s *providerStore) refuseLocked(p string) {
	s.refused++
	if now := time.Now(); now.Sub(s.warned) >= time.Minute {
		s.warned = now
		s.log.Warn("dht: provider records refused over the cap",
			"refused", s.refused, "peer_records", s.perPeer[p], "per_peer_cap", s.limits.PerPeer,
			"records", s.total, "cap", s.limits.Total)
	}
}

var errNotProviderKey = errors.New("node: provider datastore: not a provider record key")

// Delete removes a record (none is no error).
func (s *providerStore) Delete(_ context.Context, k ds.Key) error {
	key, p, ok := splitProviderKey(k)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := s.keys[key]
	if recs == nil {
		return nil
	}
	i := recs.find(p)
	if i < 0 {
		return nil
	}
	recs.remove(i)
	if len(recs.recs) == 0 {
		delete(s.keys, key)
	}
	if s.perPeer[p]--; s.perPeer[p] <= 0 {
		delete(s.perPeer, p)
	}
	s.total--
	return nil
}

func (s *providerStore) Get(_ context.Context, k ds.Key) ([]byte, error) {
	key, p, ok := splitProviderKey(k)
	if !ok {
		return nil, ds.ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := s.keys[key]
	if recs == nil {
		return nil, ds.ErrNotFound
	}
	i := recs.find(p)
	if i < 0 {
		return nil, ds.ErrNotFound
	}
	return []byte(recs.recs[i].value), nil
}

func (s *providerStore) Has(ctx context.Context, k ds.Key) (bool, error) {
	_, err := s.Get(ctx, k)
	return err == nil, nil
}

func (s *providerStore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	v, err := s.Get(ctx, k)
	if err != nil {
		return -1, err
	}
	return len(v), nil
}

// Query answers from a copy of the records the prefix can match: one
// key's, for /providers/<key>, else all of them.
func (s *providerStore) Query(_ context.Context, q dsq.Query) (dsq.Results, error) {
	s.mu.Lock()
	var entries []dsq.Entry
	add := func(key string, recs *keyRecords) {
		if recs == nil {
			return
		}
		for _, r := range recs.recs {
			e := dsq.Entry{Key: records.ProvidersKeyPrefix + key + "/" + r.peer, Size: len(r.value)}
			if !q.KeysOnly {
				e.Value = []byte(r.value)
			}
			entries = append(entries, e)
		}
	}
	prefix := strings.TrimSuffix(q.Prefix, "/")
	if key, ok := strings.CutPrefix(prefix, records.ProvidersKeyPrefix); ok && key != "" && !strings.Contains(key, "/") {
		add(key, s.keys[key])
	} else {
		entries = make([]dsq.Entry, 0, s.total)
		for key, recs := range s.keys {
			add(key, recs)
		}
	}
	s.mu.Unlock()
	return dsq.NaiveQueryApply(q, dsq.ResultsWithEntries(q, entries)), nil
}

func (s *providerStore) Batch(context.Context) (ds.Batch, error) { return ds.NewBasicBatch(s), nil }
func (s *providerStore) Sync(context.Context, ds.Key) error      { return nil }
func (s *providerStore) Close() error                            { return nil }

// providerCounts is what a providerStore holds.
type providerCounts struct {
	Records int    // records held
	Keys    int    // keys with at least one
	Peers   int    // peers with at least one
	MaxPeer int    // the most any one peer holds
	Refused uint64 // new records refused over the caps, ever
}

func (s *providerStore) counts() providerCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := providerCounts{Records: s.total, Keys: len(s.keys), Peers: len(s.perPeer), Refused: s.refused}
	for _, n := range s.perPeer {
		c.MaxPeer = max(c.MaxPeer, n)
	}
	return c
}

// providerMetrics exports what the provider stores hold and refused.
type providerMetrics struct {
	stores  [2]*providerStore // WAN, LAN
	records *prometheus.Desc
	refused *prometheus.Desc
}

func newProviderMetrics(stores [2]*providerStore) *providerMetrics {
	return &providerMetrics{stores: stores,
		records: prometheus.NewDesc("kith_dht_provider_records",
			"Provider records (room rendezvous) this node holds as a DHT server, per half of the DHT.", []string{"dht"}, nil),
		refused: prometheus.NewDesc("kith_dht_provider_records_refused_total",
			"New provider records refused over the caps (256 per providing peer, 32768 in all), per half of the DHT.", []string{"dht"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *providerMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.records
	ch <- m.refused
}

// Collect implements prometheus.Collector.
func (m *providerMetrics) Collect(ch chan<- prometheus.Metric) {
	for i, half := range []string{"wan", "lan"} {
		c := m.stores[i].counts()
		ch <- prometheus.MustNewConstMetric(m.records, prometheus.GaugeValue, float64(c.Records), half)
		ch <- prometheus.MustNewConstMetric(m.refused, prometheus.CounterValue, float64(c.Refused), half)
	}
}
