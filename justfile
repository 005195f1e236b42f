# kith's developer recipes. `just` itself: npm i -g rust-just.
# Nothing here is required: every recipe is one plain command you can run
# without just, and CI runs .ci/run, not just.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Pinned tools, run through the Go module proxy (bump on purpose).
staticcheck := "honnef.co/go/tools/cmd/staticcheck@v0.8.2"

# Seconds (or any Go duration) per fuzz target: `FUZZTIME=2m just fuzz`.
fuzztime := env_var_or_default("FUZZTIME", "30s")

# List the recipes.
default:
    @just --list

# Build the kith binary into bin/kith.
build:
    go build -o bin/kith ./cmd/kith

# Run the unit tests (extra flags pass through: just test -run TestX -v).
test *flags:
    go test {{flags}} ./...

# go vet, then staticcheck at a pinned version.
lint:
    go vet ./...
    go run {{staticcheck}} ./...

# Fuzz every Fuzz target, one at a time, for FUZZTIME each (default 30s).
fuzz *packages:
    FUZZTIME={{fuzztime}} bash .ci/fuzz {{packages}}

# Run the local demo.
demo:
    go run ./cmd/kith demo

# Run every benchmark, with allocations (the file benchmarks below run once each).
bench:
    go test -run='^$' -bench=. -benchmem ./...

# KITH_BENCH_SIZE=256MiB for a smaller file (default 1GiB); flags pass through,
# e.g. just bench-files -bench=FileTransfer/tcp. README, Benchmarks, says more.
# File transfers between two kith daemons: vs a raw libp2p copy, resume at 90%, receiver RSS.
bench-files *flags:
    go test -run='^$' -bench='FileTransfer|ResumeAt90|ReceiverPeakRSS' -benchtime=5x -timeout=60m {{flags}} ./cmd/kith/

# The NAT lab in network namespaces (run as root; no sudo is used here).
lab *flags:
    go test -tags natlab -v {{flags}} ./node/natlab/

# KITH_SOAK_DURATION for just lab-churn (RELIABILITY L3; just lab and CI run 30s).
lab_churn_duration := env_var_or_default("KITH_SOAK_DURATION", "10m")

# L3's long run in the NAT lab: 100 clients reserve, restart and re-reserve on one kith relay (root).
lab-churn *flags:
    KITH_SOAK_DURATION={{lab_churn_duration}} go test -tags natlab -count=1 -timeout=0 -run TestRelayReservationChurn -v {{flags}} ./node/natlab/

# L2 at the row's sizes in the NAT lab: 32 × 16 MiB + 8 × 64 MiB through one relay, peers behind symmetric NATs (root; just lab and CI run a quarter).
lab-l2 *flags:
    KITH_L2_SIZE=full go test -tags natlab -count=1 -timeout=20m -run TestRelayConcurrentTransfers -v {{flags}} ./node/natlab/

# Check that imports flow one way (protocols ← chat, files ← node ← cmd/kith).
deps:
    go test -count=1 -run='^TestImport' -v ./cmd/kith/

# Regenerate generated code (protobuf in protocols/internal/pb, ...).
gen:
    go generate ./...

# Crashes at the failpoints between write, fsync, rename and journal (F11; build tag failpoint).
failpoints *flags:
    go test -tags failpoint -count=1 -run 'F11|Failpoint' {{flags}} ./files/ ./cmd/kith/

# KITH_SOAK_DURATION for just soak (the load rows of RELIABILITY.md; CI runs 30s).
soak_duration := env_var_or_default("KITH_SOAK_DURATION", "30m")

# Soak tests (build tag soak), KITH_SOAK_DURATION (default 30m; 24h nightly); prints their figures, not node logs.
soak *flags:
    KITH_SOAK_DURATION={{soak_duration}} go test -tags soak -run Soak -count=1 -p 1 -timeout=0 -v {{flags}} ./... \
        | grep -E '^(=== RUN|--- |PASS|FAIL|ok |panic|\s+[a-z_]+_test\.go:)'

# RELIABILITY L9 alone (TestSoakChurn: 20 churning nodes), KITH_SOAK_DURATION (default 30m).
soak-churn *flags:
    KITH_SOAK_DURATION={{soak_duration}} go test -tags soak -run TestSoakChurn -count=1 -timeout=0 -v {{flags}} ./node/ \
        | grep -E '^(=== RUN|--- |PASS|FAIL|ok |panic|\s+[a-z_]+_test\.go:)'

# L9's nightly run: TestSoakChurn for 24 h (past the DHT's 6 h provider-record validity).
soak-long *flags:
    KITH_SOAK_DURATION=24h go test -tags soak -run TestSoakChurn -count=1 -timeout=0 -v {{flags}} ./node/ \
        | grep -E '^(=== RUN|--- |PASS|FAIL|ok |panic|\s+[a-z_]+_test\.go:)'

# The whole CI, as .ci/run (apt and the NAT lab only when root).
ci:
    bash .ci/run

# The 50-member room in-process (chat's BenchmarkRoom50 and BenchmarkRoom50Cold): delivery, latency, bursts, throughput, RSS.
bench-rooms *flags:
    go test -run='^$' -bench='Room50' -benchtime=100x -timeout=10m {{flags}} ./chat/
