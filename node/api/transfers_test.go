package api_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kithnet/kith/node/api"
	"github.com/kithnet/kith/node/nodetest"
)

// The transfer endpoints' answers to bad requests, which need no engine.
func TestTransferErrors(t *testing.T) {
	n := nodetest.Start(t)
	other := nodetest.Start(t)
	c := embedded(t, n)
	file := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tests := []struct {
		name string
		code string
		call func() error
	}{
		{"unknown id", api.CodeNotFound, func() error { _, err := c.Transfer(ctx, "abcd1234"); return err }},
		{"full unknown id", api.CodeNotFound, func() error { _, err := c.Transfer(ctx, "0123456789abcdef0123456789abcdef"); return err }},
		{"short id", api.CodeBadRequest, func() error { _, err := c.Transfer(ctx, "abc"); return err }},
		{"not hex", api.CodeBadRequest, func() error { _, err := c.RejectTransfer(ctx, "wxyz"); return err }},
		{"accept unknown", api.CodeNotFound, func() error { _, err := c.AcceptTransfer(ctx, "abcd", "", false); return err }},
		{"cancel unknown", api.CodeNotFound, func() error { _, err := c.CancelTransfer(ctx, "abcd"); return err }},
		{"relative path", api.CodeBadRequest, func() error { _, err := c.SendFiles(ctx, other.ID().String(), []string{"f.txt"}); return err }},
		{"missing path", api.CodeBadRequest, func() error { _, err := c.SendFiles(ctx, other.ID().String(), []string{file + "x"}); return err }},
		{"unknown peer", api.CodeUnknownPeer, func() error { _, err := c.SendFiles(ctx, "nobody", []string{file}); return err }},
		{"share nothing", api.CodeBadRequest, func() error { _, err := c.ShareFiles(ctx, nil, false); return err }},
		{"peer ticket", api.CodeBadRequest, func() error { _, err := c.ReceiveTicket(ctx, other.Identity().Ticket, "", false); return err }},
		{"bad ticket", api.CodeUnknownPeer, func() error { _, err := c.ReceiveTicket(ctx, "kith1abc", "", false); return err }},
	}
	for _, tt := range tests {
		var ae *api.Error
		if err := tt.call(); !errors.As(err, &ae) || ae.Code != tt.code {
			t.Errorf("%s: %v (%+v), want code %s", tt.name, err, ae, tt.code)
		}
	}
	ts, err := c.Transfers(ctx)
	if err != nil || ts == nil || len(ts) != 0 {
		t.Fatalf("transfers of a new node: %#v %v", ts, err)
	}
}
