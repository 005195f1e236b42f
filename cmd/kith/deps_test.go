package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// importRule forbids the packages at or under from to import any package at
// or under one of the forbidden prefixes. A package may always import its own
// subpackages, so a prefix that covers from itself (the module) means "anything
// else". Unless direct is set, a forbidden package reached through other
// packages counts too, and the report shows the whole chain.
type importRule struct {
	from      string
	forbidden []string
	direct    bool
	why       string
}

// kithRules is the import direction of GUIDE.md §1:
// protocols ← chat, files ← node ← cmd/kith, and the TUI talks only to node/api's client.
func kithRules(mod string) []importRule {
	in := func(rel string) string { return path.Join(mod, rel) }
	return []importRule{
		{from: in("protocols"), forbidden: []string{mod},
			why: "protocols is wire only and imports nothing else from this module"},
		{from: in("chat"), forbidden: []string{in("node"), in("files"), in("cmd")},
			why: "chat takes a host.Host and a store interface; it never imports node, files or cmd"},
		{from: in("files"), forbidden: []string{in("node"), in("chat"), in("cmd")},
			why: "files takes a host.Host and a store interface; it never imports node, chat or cmd"},
		{from: in("node"), forbidden: []string{in("cmd")},
			why: "node is a library; only cmd/kith imports it, never the other way"},
		{from: in("cmd/kith/tui"), forbidden: []string{"github.com/libp2p"}, direct: true,
			why: "the TUI talks only to node/api's client, never to libp2p directly"},
	}
}

// violation is one forbidden import: chain runs from the offending package to
// the forbidden one, one import edge per step.
type violation struct {
	rule  importRule
	chain []string
}

func (v violation) String(mod string) string {
	short := make([]string, len(v.chain))
	for i, p := range v.chain {
		short[i] = strings.TrimPrefix(strings.TrimPrefix(p, mod), "/")
		if short[i] == "" || !under(p, mod) {
			short[i] = p
		}
	}
	if len(short) == 2 {
		return fmt.Sprintf("%s imports %s: %s", short[0], short[1], v.rule.why)
	}
	return fmt.Sprintf("%s imports %s indirectly (%s): %s",
		short[0], short[len(short)-1], strings.Join(short, " → "), v.rule.why)
}

// under reports whether pkg is prefix or a package below it.
func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

func (r importRule) forbids(pkg string) bool {
	if under(pkg, r.from) {
		return false
	}
	return slices.ContainsFunc(r.forbidden, func(f string) bool { return under(pkg, f) })
}

// checkImports applies rules to graph (package → its direct imports) and
// returns every violation, in a stable order.
func checkImports(graph map[string][]string, rules []importRule) []violation {
	var out []violation
	pkgs := make([]string, 0, len(graph))
	for p := range graph {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, r := range rules {
		for _, p := range pkgs {
			if under(p, r.from) {
				out = append(out, reach(graph, r, p)...)
			}
		}
	}
	return out
}

// reach walks breadth first from start and returns the shortest chain to each
// forbidden package it meets; it does not walk past a forbidden package.
func reach(graph map[string][]string, r importRule, start string) []violation {
	var out []violation
	parent := map[string]string{start: ""}
	queue := []string{start}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range graph[p] {
			if _, seen := parent[imp]; seen {
				continue
			}
			parent[imp] = p
			switch {
			case r.forbids(imp):
				out = append(out, violation{rule: r, chain: chainTo(parent, imp)})
			case !r.direct && !under(imp, r.from):
				queue = append(queue, imp)
			}
		}
	}
	return out
}

func chainTo(parent map[string]string, pkg string) []string {
	var chain []string
	for p := pkg; p != ""; p = parent[p] {
		chain = append(chain, p)
	}
	slices.Reverse(chain)
	return chain
}

// listedPackage is the part of `go list -json` output that the rules need.
type listedPackage struct {
	ImportPath string
	ForTest    string
	Imports    []string
}

// basePath maps go list's test variants back to the package they belong to:
// "p [p.test]" is p, and the external test package "p_test [p.test]" is p too.
func basePath(importPath, forTest string) string {
	p, _, _ := strings.Cut(importPath, " ")
	if forTest != "" && p == forTest+"_test" {
		return forTest
	}
	return p
}

// parseGoList reads the JSON stream of `go list -json` into an import graph,
// with test imports merged into the package they test.
func parseGoList(r io.Reader) (map[string][]string, error) {
	graph := map[string][]string{}
	dec := json.NewDecoder(r)
	for {
		var lp listedPackage
		err := dec.Decode(&lp)
		if errors.Is(err, io.EOF) {
			return graph, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		if strings.HasSuffix(lp.ImportPath, ".test") {
			continue // the generated test main imports the package under test
		}
		from := basePath(lp.ImportPath, lp.ForTest)
		for _, imp := range lp.Imports {
			imp = basePath(imp, "")
			if imp != from && !slices.Contains(graph[from], imp) {
				graph[from] = append(graph[from], imp)
			}
		}
		if _, ok := graph[from]; !ok {
			graph[from] = nil
		}
	}
}

// moduleGraph lists every package of the module, with its tests and with the
// natlab, soak and failpoint build tags, and returns the module path and import graph.
func moduleGraph(t *testing.T) (string, map[string][]string) {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	mod, err := goCmd(root, "list", "-m")
	if err != nil {
		t.Fatal(err)
	}
	out, err := goCmd(root, "list", "-deps", "-test", "-tags=natlab,soak,failpoint",
		"-json=ImportPath,ForTest,Imports", "./...")
	if err != nil {
		t.Fatal(err)
	}
	graph, err := parseGoList(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(mod), graph
}

func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out), nil
}

// TestImportDirection fails when a package imports against the direction of
// GUIDE.md §1. Run it alone with `just deps`.
func TestImportDirection(t *testing.T) {
	mod, graph := moduleGraph(t)
	if len(graph) == 0 {
		t.Fatal("go list found no packages")
	}
	for _, v := range checkImports(graph, kithRules(mod)) {
		t.Error(v.String(mod))
	}
}

// TestImportRulesCatchViolations feeds the checker a made-up graph, so that
// TestImportDirection passing means something.
func TestImportRulesCatchViolations(t *testing.T) {
	const mod = "example.com/k"
	graph := map[string][]string{
		mod + "/protocols":             {mod + "/protocols/internal/pb", "fmt"},
		mod + "/protocols/internal/pb": {"google.golang.org/protobuf/proto"},
		mod + "/protocols/bad":         {mod + "/chat"},
		mod + "/chat":                  {mod + "/protocols", mod + "/chat/rooms"},
		mod + "/chat/rooms":            {mod + "/internal/util"},
		mod + "/internal/util":         {mod + "/node/store"},
		mod + "/files":                 {mod + "/protocols", "github.com/libp2p/go-libp2p/core/host"},
		mod + "/node":                  {mod + "/chat", mod + "/files", mod + "/cmd/kith/tui"},
		mod + "/node/api":              {mod + "/node", "github.com/libp2p/go-libp2p/core/peer"},
		mod + "/cmd/kith":              {mod + "/node", mod + "/cmd/kith/tui"},
		mod + "/cmd/kith/tui":          {mod + "/node/api", "github.com/charmbracelet/bubbletea"},
		mod + "/cmd/kith/tui/view":     {"github.com/libp2p/go-libp2p/core/peer"},
	}
	want := []string{
		"protocols/bad imports chat: protocols is wire only and imports nothing else from this module",
		"chat/rooms imports node/store indirectly (chat/rooms → internal/util → node/store): " + kithRules(mod)[1].why,
		"node imports cmd/kith/tui: " + kithRules(mod)[3].why,
		"cmd/kith/tui/view imports github.com/libp2p/go-libp2p/core/peer: " + kithRules(mod)[4].why,
	}
	var got []string
	for _, v := range checkImports(graph, kithRules(mod)) {
		got = append(got, v.String(mod))
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n got  %q\n want %q", got, want)
	}
}

func TestParseGoListMergesTestVariants(t *testing.T) {
	const stream = `
{"ImportPath": "m/chat", "Imports": ["m/protocols"]}
{"ImportPath": "m/chat [m/chat.test]", "ForTest": "m/chat", "Imports": ["m/protocols", "testing"]}
{"ImportPath": "m/chat_test [m/chat.test]", "ForTest": "m/chat", "Imports": ["m/chat [m/chat.test]", "m/node/nodetest"]}
{"ImportPath": "m/chat.test", "Imports": ["m/chat [m/chat.test]", "m/chat_test [m/chat.test]"]}
{"ImportPath": "m/protocols"}
`
	graph, err := parseGoList(strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"m/chat":      {"m/protocols", "testing", "m/node/nodetest"},
		"m/protocols": nil,
	}
	if len(graph) != len(want) {
		t.Fatalf("graph = %q, want %q", graph, want)
	}
	for p, imps := range want {
		if !slices.Equal(graph[p], imps) {
			t.Errorf("graph[%q] = %q, want %q", p, graph[p], imps)
		}
	}
}
