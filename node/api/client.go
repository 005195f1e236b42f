package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"

	"github.com/kithnet/kith/node"
)

// ErrNoDaemon is returned by Dial when no daemon serves the home.
var ErrNoDaemon = errors.New("no kith daemon is running for this home")

// Error is an error the API answered with.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Client is the typed client of the control API.
type Client struct {
	hc *http.Client
}

// NewClient returns a client that reaches the API through dial.
func NewClient(dial func(ctx context.Context) (net.Conn, error)) *Client {
	tr := &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		DisableKeepAlives: false,
		MaxIdleConns:      4,
	}
	return &Client{hc: &http.Client{Transport: tr}}
}

// Dial connects to the daemon serving home. It returns ErrNoDaemon when the
// socket is missing or nobody answers on it (a daemon that crashed).
func Dial(ctx context.Context, home string) (*Client, error) {
	path := SocketPath(home)
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, ErrNoDaemon
	}
	if err != nil {
		return nil, fmt.Errorf("api: dial %s: %w", path, err)
	}
	c.Close()
	return NewClient(func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "unix", path)
	}), nil
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Identity returns the node's peer ID, addresses and ticket.
func (c *Client) Identity(ctx context.Context) (node.Identity, error) {
	var v node.Identity
	return v, c.do(ctx, http.MethodGet, "/v1/id", nil, &v)
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (node.Status, error) {
	var v node.Status
	return v, c.do(ctx, http.MethodGet, "/v1/status", nil, &v)
}

// Ping pings a peer, calling fn after each round trip.
func (c *Client) Ping(ctx context.Context, req PingRequest, fn func(node.PingResult)) error {
	return c.stream(ctx, http.MethodPost, "/v1/ping", req, func(line []byte) error {
		var r node.PingResult
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		fn(r)
		return nil
	})
}

// Events streams node events to fn until ctx ends, the node stops, or fn
// returns an error. ready, if not nil, is called once the subscription is
// live, so no event after it is missed.
func (c *Client) Events(ctx context.Context, ready func(), fn func(node.Event) error) error {
	return c.streamReady(ctx, http.MethodGet, "/v1/events", nil, ready, func(line []byte) error {
		var ev node.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return err
		}
		return fn(ev)
	})
}

func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if raw, ok := body.(rawBody); ok {
		rd = bytes.NewReader(raw)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://kith"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// rawBody is a request body encoded already, sent as it is.
type rawBody []byte

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return fmt.Errorf("api: %s %s: decode: %w", method, path, err)
	}
	return nil
}

func (c *Client) stream(ctx context.Context, method, path string, body any, fn func([]byte) error) error {
	return c.streamReady(ctx, method, path, body, nil, fn)
}

// streamReady reads an NDJSON response line by line. A line with an "error"
// field ends the stream with that error.
func (c *Client) streamReady(ctx context.Context, method, path string, body any, ready func(), fn func([]byte) error) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ready != nil {
		ready()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxResponse)
	for sc.Scan() {
		var eb ErrorBody
		if json.Unmarshal(sc.Bytes(), &eb) == nil && eb.Error != "" {
			return &Error{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error}
		}
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	return ctx.Err()
}

// maxResponse caps one response object.
const maxResponse = 16 << 20

func readError(resp *http.Response) error {
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = fmt.Sprintf("api: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return &Error{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error}
}

// Contacts lists contacts, then blocked strangers.
func (c *Client) Contacts(ctx context.Context) ([]node.ContactInfo, error) {
	var v []node.ContactInfo
	return v, c.do(ctx, http.MethodGet, "/v1/contacts", nil, &v)
}

// AddContact saves peer (ticket or peer ID) under name.
func (c *Client) AddContact(ctx context.Context, name, peer string) (node.ContactInfo, error) {
	var v node.ContactInfo
	return v, c.do(ctx, http.MethodPost, "/v1/contacts", ContactRequest{Name: name, Peer: peer}, &v)
}

// RemoveContact forgets a contact.
func (c *Client) RemoveContact(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/contacts/"+url.PathEscape(name), nil, &struct{}{})
}

// TrustContact marks a contact trusted or not.
func (c *Client) TrustContact(ctx context.Context, name string, trusted bool) error {
	return c.do(ctx, http.MethodPost, "/v1/contacts/"+url.PathEscape(name)+"/trust", TrustRequest{Trusted: trusted}, &struct{}{})
}

// Block blocks (or unblocks) a contact name, peer ID or ticket.
func (c *Client) Block(ctx context.Context, peer string, blocked bool) (BlockResponse, error) {
	var v BlockResponse
	return v, c.do(ctx, http.MethodPost, "/v1/block", BlockRequest{Peer: peer, Blocked: blocked}, &v)
}

// Send sends a direct message; the result's state is delivered or queued.
func (c *Client) Send(ctx context.Context, peer, text string) (node.MessageInfo, error) {
	var v node.MessageInfo
	return v, c.do(ctx, http.MethodPost, "/v1/messages", SendRequest{Peer: peer, Text: text}, &v)
}

// Messages lists direct messages, oldest first, with one peer if from is
// set, after seq.
func (c *Client) Messages(ctx context.Context, from string, after int64) ([]node.MessageInfo, error) {
	q := url.Values{}
	if from != "" {
		q.Set("from", from)
	}
	q.Set("after", strconv.FormatInt(after, 10))
	var v []node.MessageInfo
	return v, c.do(ctx, http.MethodGet, "/v1/messages?"+q.Encode(), nil, &v)
}

// BenchCopy copies the file at path (absolute) to peer's benchmark sink over
// one plain libp2p stream (POST /v1/bench/copy). Benchmarks only: both
// daemons must run with KITH_BENCH=1, or the API answers 404.
func (c *Client) BenchCopy(ctx context.Context, peer, path string) (node.BenchCopyResult, error) {
	var v node.BenchCopyResult
	return v, c.do(ctx, http.MethodPost, "/v1/bench/copy", BenchCopyRequest{To: peer, Path: path}, &v)
}

// BenchStats returns the node's benchmark counters (GET /v1/bench/stats;
// KITH_BENCH=1 only).
func (c *Client) BenchStats(ctx context.Context) (node.BenchStats, error) {
	var v node.BenchStats
	return v, c.do(ctx, http.MethodGet, "/v1/bench/stats", nil, &v)
}
