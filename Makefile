# The lakehouse: `make help` lists the targets. `make demo` and `make test`
# need only Rust and Python; the stack targets need Docker Compose.

SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
BIN := $(CARGO_TARGET_DIR)/release
DEMO_LAKE := $(CURDIR)/data/demo-lake
COMPOSE := docker compose

.PHONY: help build demo test chaos fuzz bench start stop clean logs minio duckdb check-docker

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the three binaries (release)
	cargo build --release --workspace --bins

demo: build ## run the whole job with no Docker: files → local lake → DuckDB
	rm -rf $(DEMO_LAKE) && mkdir -p $(DEMO_LAKE)
	LAKE_URL=$(DEMO_LAKE) $(BIN)/producer --sink files --batches 500 --batch-size 200 --rate 0 \
	  --corrupt-ratio 0.02 --invalid-ratio 0.01 --seed 42 --summary $(CURDIR)/data/demo-summary.json
	LAKE_URL=$(DEMO_LAKE) $(BIN)/consumer --source files --once
	@echo; echo "producer summary:"; cat $(CURDIR)/data/demo-summary.json; echo
	LAKE_URL=$(DEMO_LAKE) $(BIN)/inspector query \
	  "SELECT (SELECT count(*) FROM bronze.events) AS bronze_events, (SELECT count(*) FROM dead_letters.events) AS dead_letters"
	LAKE_URL=$(DEMO_LAKE) $(BIN)/inspector query \
	  "SELECT error_kind, error_code, count(*) AS n FROM dead_letters.events GROUP BY ALL ORDER BY n DESC, error_code"
	@echo; echo "explore it: LAKE_URL=$(DEMO_LAKE) $(BIN)/inspector shell"

test: build ## run every test (unit, end to end on moto S3 + mock Kafka)
	@status=0; set -o pipefail; \
	cargo test --release --workspace --all-targets --no-fail-fast 2>&1 | tee $(CARGO_TARGET_DIR)/test.log || status=$$?; \
	awk '/^test result:/ {p += $$4; f += $$6} END {printf "\ntests: %d passed, %d failed\n", p, f}' $(CARGO_TARGET_DIR)/test.log; \
	exit $$status

chaos: build ## fault scenarios, long: kill -9 cycles (CHAOS_CYCLES, default 200), zombie, rebalance, broker and S3 faults
	CHAOS_CYCLES=$${CHAOS_CYCLES:-200} cargo test --release -p e2e --test chaos --test s3_faults --no-fail-fast -- --nocapture

FUZZ_SECONDS ?= 60
# Outside the repository and apart from the main build: the fuzz build is instrumented.
FUZZ_TARGET_DIR ?= $(HOME)/.cache/lakehouse-fuzz-target

fuzz: ## fuzz the decoder, coverage-guided, for FUZZ_SECONDS (default 60); installs cargo-fuzz
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	mkdir -p $(FUZZ_TARGET_DIR)/corpus/decode
	cd fuzz && CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) cargo fuzz run decode --sanitizer none \
	  $(FUZZ_TARGET_DIR)/corpus/decode corpus/decode -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -dict=decode.dict -print_final_stats=1

bench: build ## throughput, memory and freshness benchmarks
	@echo "make bench: the benchmark harness is not written yet (issue 6)"; exit 1

check-docker:
	@command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 || { \
	  echo "Docker with Compose is needed for this target. Without Docker, run: make demo"; exit 1; }

start: check-docker ## build and start MinIO, Redpanda, producer and consumer
	$(COMPOSE) up -d --build
	@echo "MinIO console: http://localhost:9001 (root login in .env: MINIO_ROOT_USER / MINIO_ROOT_PASSWORD)"
	@echo "S3 API: http://localhost:9000   Kafka: localhost:19092   query: make duckdb"

stop: check-docker ## stop producer and consumer (MinIO stays up)
	$(COMPOSE) stop producer consumer

clean: ## remove the stack, its volumes and local data
	-@command -v docker >/dev/null 2>&1 && $(COMPOSE) down -v --remove-orphans
	rm -rf $(CURDIR)/data

logs: check-docker ## follow the pipeline's logs
	$(COMPOSE) logs -f producer consumer

minio: ## open the MinIO console
	@url=http://localhost:9001; (command -v xdg-open >/dev/null && xdg-open $$url) || \
	  (command -v open >/dev/null && open $$url) || echo "MinIO console: $$url"

duckdb: ## the inspector's DuckDB shell on the running stack
	@if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then \
	  $(COMPOSE) run --rm inspector shell; \
	else $(BIN)/inspector shell; fi
