# agentd: build, run and test entry points.
#
#   make run        start the dev server (go run ./cmd/agentd dev); it finds or
#                   starts a private PostgreSQL in .agentd/pgdata on port 54320
#   make test       make lint + all tests (needs PostgreSQL server binaries and chromium)
#   make lint       go vet, gofmt, staticcheck and errorlint (pinned, run as go tools)
#   make test-race  the same tests with the race detector (slower)
#   make build      bin/agentd
#   make bench-search  the supervisors' search over 1,000,000 generated messages
#                   (docs/benchmarks.md, "Search"; several minutes)
#   make bench      ceilings and load on a durable cluster; rewrites docs/benchmarks.md's
#                   "make bench" section (a few minutes)
#   make generate   regenerate templ components
#   make fmt | vet | clean
#   make pg-stop    stop the dev PostgreSQL cluster started by make run

GO      ?= go
BIN     ?= bin/agentd
PGDATA  ?= .agentd/pgdata
TESTFLAGS ?=

.PHONY: all run test test-race lint generate build fmt vet clean deps-postgres deps-test pg-stop bench-search bench-load bench

all: build

deps-postgres:
	@scripts/ensure-deps.sh --postgres

deps-test:
	@scripts/ensure-deps.sh --postgres --chromium --node

run: deps-postgres
	$(GO) run ./cmd/agentd dev

test: deps-test lint
	$(GO) test -count=1 -timeout 20m $(TESTFLAGS) ./...

test-race: deps-test lint
	$(GO) test -race -count=1 -timeout 30m $(TESTFLAGS) ./...

# The tree stays as clean as it is: any gofmt difference, vet, staticcheck or errorlint finding
# fails the build. The linters' versions are pinned in go.mod's tool block.
lint:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt -l: not formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) tool staticcheck ./...
	$(GO) tool go-errorlint ./...

# 100,000 chats, 1,000,000 messages; AGENTD_BENCH_SEARCH_CHATS=n for another size,
# AGENTD_BENCH_SEARCH_EXPLAIN=1 to print the plan of each kind's slowest run.
bench-search: deps-postgres
	AGENTD_BENCH_SEARCH=1 $(GO) test -count=1 -timeout 60m -run '^TestSearchBenchmark$$' -v ./postgres/

# chatload's ramp on two agentd processes and a private Durable cluster, with the invariant
# checker; AGENTD_BENCH_LOAD_RATES, _CUSTOMERS, _AGENTS, _STEP, _SCENARIO, _JSON change it
# (cmd/chatload/bench_test.go).
bench-load: deps-postgres
	AGENTD_BENCH_LOAD=1 $(GO) test -count=1 -timeout 30m -run '^TestLoadBenchmark$$' -v ./cmd/chatload/

# The ceilings and the short reproducible set of issue 10 on a private Durable cluster (a few
# minutes): writes docs/benchmarks.md's "make bench" section and docs/bench-latency.svg
# (cmd/chatload/bench_all_test.go; AGENTD_BENCH_* change the sizes).
bench: deps-postgres
	AGENTD_BENCH=1 $(GO) test -count=1 -timeout 30m -run '^TestBench$$' -v ./cmd/chatload/

generate:
	$(GO) tool templ generate

build:
	$(GO) build -o $(BIN) ./cmd/agentd

fmt:
	gofmt -s -w .

vet:
	$(GO) vet ./...

# Stops the dev cluster if it runs (pg_ctl refuses root: run as the data dir's owner).
pg-stop:
	@if [ -f $(PGDATA)/postmaster.pid ]; then \
		bindir=$$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1); \
		pgctl=$${bindir:+$$bindir/pg_ctl}; pgctl=$${pgctl:-pg_ctl}; \
		if [ "$$(id -u)" -eq 0 ]; then \
			runuser -u "$$(stat -c %U $(PGDATA))" -- $$pgctl stop -D "$$(realpath $(PGDATA))" -m fast; \
		else \
			$$pgctl stop -D $(PGDATA) -m fast; \
		fi; \
	fi

clean:
	rm -rf bin
