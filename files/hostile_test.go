package files

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// fakeSender is a peer that offers a real file and then serves fetches its
// own way, to play a hostile or broken sender.
type fakeSender struct {
	h     host.Host
	src   *Source
	id    TransferID
	serve func(t *testing.T, st network.Stream, r *protocols.FilesReader, w *protocols.FilesWriter, rd *SourceReader)
}

func newFakeSender(t *testing.T, size int, serve func(*testing.T, network.Stream, *protocols.FilesReader, *protocols.FilesWriter, *SourceReader)) *fakeSender {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	file := filepath.Join(t.TempDir(), "data.bin")
	randomFile(t, file, size)
	src, err := BuildSource(t.Context(), []string{file}, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSender{h: h, src: src, id: NewTransferID(), serve: serve}
	h.SetStreamHandler(protocols.FilesProtocol, func(st network.Stream) {
		defer st.Close()
		r, w := protocols.NewFilesReader(st), protocols.NewFilesWriter(st)
		fr, err := r.Read(protocols.MaxFilesControlFrame)
		if err != nil || fr.Fetch == nil {
			st.Reset()
			return
		}
		if err := w.Write(protocols.FilesFrame{Serving: &protocols.FileServing{}}); err != nil {
			return
		}
		rd := src.NewReader()
		defer rd.Close()
		f.serve(t, st, r, w, rd)
	})
	return f
}

// offer sends the fake's offer to b and returns the answer.
func (f *fakeSender) offer(t *testing.T, b *tnode, manifest []byte) protocols.FilesFrame {
	f.h.Peerstore().AddAddrs(b.h.ID(), b.h.Addrs(), peerstore.PermanentAddrTTL)
	b.h.Peerstore().AddAddrs(f.h.ID(), f.h.Addrs(), peerstore.PermanentAddrTTL)
	st, err := f.h.NewStream(t.Context(), b.h.ID(), protocols.FilesProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := protocols.NewFilesWriter(st).Write(protocols.FilesFrame{Offer: &protocols.FileOffer{TransferID: f.id, Manifest: manifest}}); err != nil {
		t.Fatal(err)
	}
	ans, err := protocols.NewFilesReader(st).Read(protocols.MaxFilesControlFrame)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

// serveWith answers each requested chunk with what send returns for it.
func serveWith(send func(n int, h protocols.ChunkHeader, data []byte) (protocols.ChunkHeader, []byte, bool)) func(*testing.T, network.Stream, *protocols.FilesReader, *protocols.FilesWriter, *SourceReader) {
	return func(t *testing.T, st network.Stream, r *protocols.FilesReader, w *protocols.FilesWriter, rd *SourceReader) {
		buf := make([]byte, protocols.ChunkSize)
		n := 0
		for {
			fr, err := r.Read(protocols.MaxFilesControlFrame)
			if err != nil || fr.Request == nil {
				if fr.Complete != nil {
					w.Write(protocols.FilesFrame{Done: &protocols.FileDone{}})
				}
				return
			}
			for i := range uint64(fr.Request.Count) {
				data, err := rd.ReadChunk(int(fr.Request.Entry), fr.Request.First+i, buf)
				if err != nil {
					if t.Context().Err() == nil { // not the test's folders going away after it
						t.Error(err)
					}
					return
				}
				h := protocols.ChunkHeader{Entry: fr.Request.Entry, Index: fr.Request.First + i, Size: uint32(len(data))}
				h, data, ok := send(n, h, append([]byte(nil), data...))
				n++
				if !ok {
					st.CloseWrite()
					return
				}
				if h.Size == 0 {
					continue // stall: send nothing
				}
				if err := w.WriteChunk(h, data); err != nil {
					return
				}
			}
		}
	}
}

func TestHostileSender(t *testing.T) {
	flip := func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }
	for _, tc := range []struct {
		name  string
		send  func(n int, h protocols.ChunkHeader, data []byte) (protocols.ChunkHeader, []byte, bool)
		state State
		says  string
	}{
		{"corrupt chunk, once", func(n int, h protocols.ChunkHeader, d []byte) (protocols.ChunkHeader, []byte, bool) {
			if n == 1 {
				d = flip(d)
			}
			return h, d, true
		}, StateDone, ""},
		{"corrupt chunk, always", func(n int, h protocols.ChunkHeader, d []byte) (protocols.ChunkHeader, []byte, bool) {
			if h.Index == 2 {
				d = flip(d)
			}
			return h, d, true
		}, StateFailed, "failed verification"},
		{"unrequested chunk", func(n int, h protocols.ChunkHeader, d []byte) (protocols.ChunkHeader, []byte, bool) {
			if n == 1 {
				h.Index += 2
			}
			return h, d, true
		}, StateFailed, "not requested"},
		{"chunk of the wrong size", func(n int, h protocols.ChunkHeader, d []byte) (protocols.ChunkHeader, []byte, bool) {
			if n == 1 {
				h.Size, d = h.Size-1, d[1:]
			}
			return h, d, true
		}, StateFailed, "not requested"},
		{"truncated stream", func(n int, h protocols.ChunkHeader, d []byte) (protocols.ChunkHeader, []byte, bool) {
			return h, d, n < 2
		}, StateFailed, "ended the stream"},
		{"stalled sender", func(n int, h protocols.ChunkHeader, d []byte) (protocols.ChunkHeader, []byte, bool) {
			if n >= 1 {
				h.Size = 0
			}
			return h, d, true
		}, StatePaused, "deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := resumeConfig()
			cfg.FrameTimeout = 300 * time.Millisecond
			cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour // one attempt
			b := newNode(t, cfg)
			f := newFakeSender(t, 5*protocols.ChunkSize+99, serveWith(tc.send))
			if ans := f.offer(t, b, f.src.Bytes); ans.OfferAck == nil {
				t.Fatalf("offer answered %+v", ans)
			}
			in := b.waitOffer(t)
			dir := t.TempDir()
			if _, err := b.svc.Accept(t.Context(), in.ID, ReceiveOptions{Dir: dir}); err != nil {
				t.Fatal(err)
			}
			got := b.waitState(t, in.ID, tc.state)
			if !containsAny(got.Error, tc.says) {
				t.Errorf("ended %s with %q; want it to say %q", got.State, got.Error, tc.says)
			}
			if tc.state != StateDone {
				assertNoFinal(t, dir)
				return
			}
			want, _ := os.ReadFile(f.src.Locals[0])
			if got, _ := os.ReadFile(filepath.Join(dir, "data.bin")); string(got) != string(want) {
				t.Error("received bytes differ")
			}
		})
	}
}

func TestHostileOffers(t *testing.T) {
	b := newNode(t, Config{MaxPendingOffers: 2})
	f := newFakeSender(t, 100, nil)
	bad := append([]byte(nil), f.src.Bytes...)
	bad[len(bad)-1] ^= 1 // the manifest root
	if ans := f.offer(t, b, bad); ans.Error == nil || ans.Error.Code != protocols.CodeMalformed {
		t.Errorf("a manifest with a wrong root: answered %+v, want MALFORMED", ans)
	}
	first := NewTransferID()
	for i := range 3 {
		f.id = NewTransferID()
		if i == 0 {
			f.id = first
		}
		ans := f.offer(t, b, f.src.Bytes)
		if i < 2 && ans.OfferAck == nil {
			t.Fatalf("offer %d: %+v", i, ans)
		}
		if i == 2 && (ans.Error == nil || ans.Error.Code != protocols.CodeRateLimited) {
			t.Errorf("offer over the limit answered %+v, want RATE_LIMITED", ans)
		}
	}
	// The same ID with another manifest is refused.
	f.id = first
	if ans := f.offer(t, b, rawManifest(rawEntry{path: "other.txt", size: 3, mode: 0o644})); ans.Error == nil || ans.Error.Code != protocols.CodeMalformed {
		t.Errorf("a transfer ID offered again with another manifest answered %+v, want MALFORMED", ans)
	}
	// An offer the receiver holds is acked again, not stored twice.
	if ans := f.offer(t, b, f.src.Bytes); ans.OfferAck == nil {
		t.Errorf("a repeated offer answered %+v", ans)
	}
	if ts, _ := b.store.Transfers(t.Context(), Filter{}); len(ts) != 2 {
		t.Errorf("%d offers stored, want 2", len(ts))
	}
}

// TestHostileTicketManifest: a sender that answers a ticket fetch with a
// manifest the ticket does not name is told MALFORMED, and nothing is
// stored.
func TestHostileTicketManifest(t *testing.T) {
	b := newNode(t, Config{})
	refused := make(chan protocols.ErrorCode, 1)
	f := newFakeSender(t, 10, func(t *testing.T, st network.Stream, r *protocols.FilesReader, w *protocols.FilesWriter, rd *SourceReader) {
		if fr, err := r.Read(protocols.MaxFilesControlFrame); err == nil && fr.Error != nil {
			refused <- fr.Error.Code
		}
	})
	b.h.Peerstore().AddAddrs(f.h.ID(), f.h.Addrs(), peerstore.PermanentAddrTTL)
	// The fake answers every fetch with an empty Serving: not the manifest
	// whose content ID the ticket holds.
	_, err := b.svc.Fetch(t.Context(), f.h.ID(), f.src.ContentID, make([]byte, 32), ReceiveOptions{Dir: t.TempDir()})
	if err == nil {
		t.Fatal("a fetch took a manifest the ticket does not name")
	}
	select {
	case code := <-refused:
		if code != protocols.CodeMalformed {
			t.Errorf("the sender was told %s, want malformed", code)
		}
	case <-time.After(waitBound):
		t.Fatal("the sender was told nothing")
	}
	if ts, _ := b.store.Transfers(t.Context(), Filter{}); len(ts) != 0 {
		t.Errorf("%d transfers stored", len(ts))
	}
}
