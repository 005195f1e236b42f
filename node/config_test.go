package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ConfigFile), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

func TestLoadConfigMissingFileIsDefaults(t *testing.T) {
	home := t.TempDir()
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.withDefaults()
	if d.Home != home || d.Connections.Low != 64 || d.Connections.High != 192 ||
		time.Duration(d.Connections.GracePeriod) != 20*time.Second || d.DHT.Mode != "auto" ||
		d.Files.AutoAccept != AutoAcceptOff || d.Files.DownloadDir != "" {
		t.Fatalf("defaults: %+v", d)
	}
	if got := d.Network.Listen; len(got) != 4 || !strings.Contains(got[0], "/tcp/4011") {
		t.Fatalf("default listen: %v", got)
	}
	if !d.Network.MDNSEnabled() || !d.Network.PortMappingEnabled() {
		t.Fatal("mdns and port mapping should default to on")
	}
}

func TestLoadConfigDefaultTextIsValid(t *testing.T) {
	// Every key in the file kith init writes is commented out; uncommented,
	// each must still be a key the loader knows.
	var b strings.Builder
	for _, line := range strings.Split(DefaultConfigText, "\n") {
		if strings.HasPrefix(line, "# ") && strings.Contains(line, " = ") && !strings.Contains(line, "12D3KooW...") {
			line = strings.TrimPrefix(line, "# ")
		}
		b.WriteString(line + "\n")
	}
	cfg, err := LoadConfig(writeConfig(t, b.String()))
	if err != nil {
		t.Fatalf("uncommented default config: %v\n%s", err, b.String())
	}
	if cfg.Connections.High != 192 || cfg.Relay.Announce[0] != "/ip4/203.0.113.5/tcp/4011" {
		t.Fatalf("values not read: %+v", cfg)
	}
}

func TestLoadConfigValues(t *testing.T) {
	home := writeConfig(t, `
[network]
listen = ["/ip4/127.0.0.1/tcp/0"]
bootstrap = ["/ip4/127.0.0.1/tcp/4011/p2p/12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ"]
mdns = false

[connections]
low = 10
high = 20
grace_period = "1m"

[dht]
mode = "server"

[files]
download_dir = "/srv/incoming"
auto_accept = "trusted"
`)
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network.MDNSEnabled() || cfg.Connections.Low != 10 || cfg.Connections.High != 20 ||
		time.Duration(cfg.Connections.GracePeriod) != time.Minute || cfg.DHT.Mode != "server" ||
		cfg.Files.DownloadDir != "/srv/incoming" || cfg.Files.AutoAccept != AutoAcceptTrusted {
		t.Fatalf("got %+v", cfg)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string // substrings the error must contain
	}{
		{"unknown key", "[network]\nlisten = []\nlisen = [\"x\"]\n",
			[]string{`unknown key "network.lisen"`, "config.toml:3"}},
		{"unknown section", "[netwrok]\nlisten = []\n", []string{`unknown key "netwrok`, "config.toml:"}},
		{"malformed listen", "[network]\nlisten = [\"/ip4/1.2.3.4/tcpp/1\"]\n",
			[]string{"network.listen", `"/ip4/1.2.3.4/tcpp/1"`}},
		{"malformed bootstrap", "[network]\nbootstrap = [\"/ip4/1.2.3.4/tcp/x\"]\n",
			[]string{"network.bootstrap[0]", "invalid multiaddr"}},
		{"bootstrap without peer", "[network]\nbootstrap = [\"/ip4/1.2.3.4/tcp/4011\"]\n",
			[]string{"network.bootstrap[0]", "/p2p/PEERID"}},
		{"bad relay", "[network]\nrelays = [\"nope\"]\n", []string{"network.relays[0]"}},
		{"wrong type", "[connections]\nlow = \"ten\"\n", []string{"config.toml:2", "connections.low"}},
		{"low above high", "[connections]\nlow = 50\nhigh = 10\n", []string{"low <= high"}},
		{"bad duration", "[connections]\ngrace_period = \"soon\"\n", []string{"config.toml:2"}},
		{"bad mode", "[dht]\nmode = \"sometimes\"\n", []string{"config.toml:2", "dht.mode", "sometimes"}},
		{"bad accept", "[messages]\n# who\naccept = \"friends\"\n", []string{"config.toml:3", "messages.accept", "friends"}},
		{"not toml", "[network\n", []string{"config.toml:1"}},
		{"bad auto_accept", "[files]\n\nauto_accept = \"always\"\n",
			[]string{"config.toml:3", "files.auto_accept", `"always" is not one of off, trusted`}},
		{"relative download_dir", "[files]\ndownload_dir = \"Downloads\"\n",
			[]string{"config.toml:2", "files.download_dir", "absolute"}},
		{"unknown files key", "[files]\nauto_accpet = \"off\"\n", []string{`unknown key "files.auto_accpet"`, "config.toml:2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.text))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestConfigValidateFiles(t *testing.T) {
	// Configs built in code are checked too, not only files.
	for _, c := range []Config{
		{Files: FilesConfig{AutoAccept: "sometimes"}},
		{Files: FilesConfig{DownloadDir: "relative/dir"}},
	} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "files.") {
			t.Errorf("Validate(%+v) = %v, want an error naming the files key", c.Files, err)
		}
	}
}

func TestDirPathExpand(t *testing.T) {
	t.Setenv("HOME", "/home/ana")
	tests := []struct{ in, want string }{
		{"~", "/home/ana"},
		{"~/Downloads", "/home/ana/Downloads"},
		{"/srv/in/", "/srv/in"},
	}
	for _, tt := range tests {
		if got, err := DirPath(tt.in).Expand(); err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestDownloadDir(t *testing.T) {
	user, kithHome := t.TempDir(), t.TempDir()
	t.Setenv("HOME", user)
	cfg := Config{Home: kithHome}
	// No ~/Downloads: the home's downloads folder, created.
	if got, err := cfg.DownloadDir(); err != nil || got != filepath.Join(kithHome, "downloads") {
		t.Fatalf("without ~/Downloads: %q, %v", got, err)
	}
	// Resolved at use: a ~/Downloads made later is picked up.
	if err := os.Mkdir(filepath.Join(user, "Downloads"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.DownloadDir(); err != nil || got != filepath.Join(user, "Downloads") {
		t.Fatalf("with ~/Downloads: %q, %v", got, err)
	}
	cfg.Files.DownloadDir = "~/in/kith"
	if got, err := cfg.DownloadDir(); err != nil || got != filepath.Join(user, "in", "kith") {
		t.Fatalf("configured: %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(user, "in", "kith")); err != nil || !fi.IsDir() {
		t.Fatalf("configured folder not created: %v", err)
	}
}
