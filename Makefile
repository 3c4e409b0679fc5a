# The lakehouse: `make help` lists the targets. `make demo` and `make test`
# need only Rust and Python; the stack targets (start, stop, clean, logs,
# duckdb) need Docker with Compose v2 and say so, pointing to `make demo`,
# when it is missing. e2e/tests/stack.rs checks this file (make -n of every
# target, and the stack targets with a stand-in docker).

SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
BIN ?= $(CARGO_TARGET_DIR)/release
DATA_DIR ?= $(CURDIR)/data
DEMO_LAKE := $(DATA_DIR)/demo-lake
# The lake `make duckdb` opens with the host inspector when Docker is not there.
LOCAL_LAKE ?= $(DEMO_LAKE)

COMPOSE ?= docker compose
IMAGE := lakehouse:local
CONSOLE_URL := http://localhost:9001
S3_URL := http://localhost:9000
KAFKA_HOST := localhost:19092
# The services `make logs` follows, e.g. `make logs LOGS="minio-init topic-init"`.
LOGS ?= producer consumer refiner
# True when the docker CLI, Compose v2 and a running Docker engine are all there.
DOCKER_OK := command -v docker >/dev/null 2>&1 && $(COMPOSE) version >/dev/null 2>&1 && docker info >/dev/null 2>&1
NO_DOCKER_HINT := Without Docker, \`make demo\` runs the whole job on this machine (file source, local lake, DuckDB), then \`make duckdb\` opens it.

.PHONY: help build venv demo test chaos fuzz bench start stop clean logs minio ui duckdb check-docker

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-7s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the binaries (release)
	cargo build --release --workspace --bins

# The project's Python environment: what the tests run (the moto S3 server,
# the official DuckDB CLI and DuckDB's extensions, the Compose validator) at
# the versions requirements.txt pins. Made again whenever requirements.txt
# is newer than the environment; `make test` and `make duckdb` use it.
VENV := $(CURDIR)/.venv
VENV_STAMP := $(VENV)/requirements.txt
venv: $(VENV_STAMP) ## create or update .venv with the pinned Python packages of the tests (requirements.txt)
$(VENV_STAMP): requirements.txt
	@python3 -m venv --help >/dev/null 2>&1 || { echo "make venv: python3 has no venv module: apt-get install python3-venv" >&2; exit 1; }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	cp requirements.txt $@

# `make demo CONTRACT=orders` runs the same job for contracts/orders.schema.json
# (clicks, orders, sensor_readings); the default is the built-in events table.
CONTRACT ?= events
DEMO_CONTRACT := $(if $(filter events,$(CONTRACT)),,--contract contracts/$(CONTRACT).schema.json)

demo: build ## run the whole job with no Docker: files → local lake → DuckDB (CONTRACT=orders|clicks|sensor_readings for another table)
	rm -rf $(DEMO_LAKE) && mkdir -p $(DEMO_LAKE)
	LAKE_URL=$(DEMO_LAKE) $(BIN)/producer --sink files --batches 500 --batch-size 200 --rate 0 \
	  --corrupt-ratio 0.02 --invalid-ratio 0.01 --duplicate-ratio 0.01 --late-ratio 0.01 --seed 42 --summary $(DATA_DIR)/demo-summary.json $(DEMO_CONTRACT)
	LAKE_URL=$(DEMO_LAKE) $(BIN)/consumer --source files --once $(DEMO_CONTRACT)
	@echo; echo "producer summary:"; cat $(DATA_DIR)/demo-summary.json; echo
	LAKE_URL=$(DEMO_LAKE) $(BIN)/inspector query \
	  "SELECT (SELECT count(*) FROM bronze.$(CONTRACT)) AS bronze_$(CONTRACT), (SELECT count(*) FROM dead_letters.$(CONTRACT)) AS dead_letters"
	LAKE_URL=$(DEMO_LAKE) $(BIN)/inspector query \
	  "SELECT error_kind, error_code, count(*) AS n FROM dead_letters.$(CONTRACT) GROUP BY ALL ORDER BY n DESC, error_code"
	LAKE_URL=$(DEMO_LAKE) $(BIN)/refiner --once --models models
	@echo; echo "silver and gold (models/):"
	@LAKE_URL=$(DEMO_LAKE) $(BIN)/inspector query \
	  "SELECT (SELECT count(*) FROM silver.$(CONTRACT)) AS silver_$(CONTRACT), (SELECT count(*) FROM bronze.$(CONTRACT)) AS bronze_$(CONTRACT)"
	@if [ "$(CONTRACT)" = events ]; then \
	  LAKE_URL=$(DEMO_LAKE) $(BIN)/inspector query "SELECT * EXCLUDE (event_date) FROM gold.events_per_minute ORDER BY minute, event_type LIMIT 8" && \
	  LAKE_URL=$(DEMO_LAKE) $(BIN)/inspector query "SELECT * EXCLUDE (event_date) FROM gold.funnel_daily ORDER BY day"; fi
	@echo; echo "explore it: make duckdb (without Docker), or LAKE_URL=$(DEMO_LAKE) $(BIN)/inspector shell"

test: build venv ## run every test (unit, end to end on moto S3 + mock Kafka, the status page in headless Chromium)
	@status=0; set -o pipefail; export PATH="$(VENV)/bin:$$PATH" VIRTUAL_ENV="$(VENV)"; \
	cargo test --release --workspace --all-targets --no-fail-fast 2>&1 | tee $(CARGO_TARGET_DIR)/test.log || status=$$?; \
	awk '/^test result:/ {p += $$4; f += $$6} END {printf "\ntests: %d passed, %d failed\n", p, f}' $(CARGO_TARGET_DIR)/test.log; \
	exit $$status

chaos: build venv ## fault scenarios, long: kill -9 cycles of the Kafka and files sources (CHAOS_CYCLES, default 200; REDRIVE_KILL_CYCLES of re-drives, default 100), zombie, rebalance, broker and S3 faults
	PATH="$(VENV)/bin:$$PATH" CHAOS_CYCLES=$${CHAOS_CYCLES:-200} REDRIVE_KILL_CYCLES=$${REDRIVE_KILL_CYCLES:-100} \
	  cargo test --release --workspace --test chaos --test s3_faults --test refiner --test redrive --no-fail-fast -- --nocapture

FUZZ_SECONDS ?= 60
# Outside the repository and apart from the main build: the fuzz build is instrumented.
FUZZ_TARGET_DIR ?= $(HOME)/.cache/lakehouse-fuzz-target

fuzz: ## fuzz the decoder, coverage-guided, for FUZZ_SECONDS (default 60); installs cargo-fuzz
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	mkdir -p $(FUZZ_TARGET_DIR)/corpus/decode
	cd fuzz && CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) cargo fuzz run decode --sanitizer none \
	  $(FUZZ_TARGET_DIR)/corpus/decode corpus/decode -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -dict=decode.dict -print_final_stats=1

BENCH_DATA := $(DATA_DIR)/bench
BENCH_RESULTS := $(CURDIR)/bench/results
# One core, as the targets are per core; taskset is in util-linux. The
# consumer's runtime gets one worker thread (tokio reads TOKIO_WORKER_THREADS).
PIN := $(shell command -v taskset >/dev/null 2>&1 && echo taskset -c 0)
# The fixed dataset: 4,000 batches of 500 (2 % corrupt batches, 1 % invalid
# records); the backlog run has ten times as many batches. pathbench sends the
# same batches through Kafka (same flags and seed).
BENCH_PRODUCE = $(BIN)/producer --sink files --batch-size 500 --rate 0 --corrupt-ratio 0.02 --invalid-ratio 0.01 --seed 1
BENCH_PIP = duckdb==1.5.5 pyarrow pyspark matplotlib 'moto[server]' 'duckdb-extension-httpfs==1.5.5' \
  'duckdb-extension-delta==1.5.5' 'duckdb-cli==1.5.5' polars==2.1.0
# versus.py's dataset: clean batches (no corrupt or invalid records), so that
# every peer, strict or not, reads the same 1 M records.
VERSUS_PRODUCE = $(BIN)/producer --sink files --batch-size 500 --rate 0 --corrupt-ratio 0 --invalid-ratio 0 --seed 1
VERSUS_DATA := $(BENCH_DATA)/versus

bench: build ## benchmarks on one core: hot path, Kafka → local/S3 with Delta commit times, memory at 1x/10x, freshness, count(*) after 10,000 commits, DuckDB/pyarrow/PySpark; whole processes against DuckDB/Polars/simdjson; table + JSON + chart in bench/results/
	@python3 -c "import duckdb, pyarrow, pyspark, matplotlib, moto, duckdb_extension_httpfs, duckdb_extension_delta, polars" 2>/dev/null && \
	  command -v duckdb >/dev/null || \
	  python3 -m pip install -q $(BENCH_PIP)
	@# versus.py compiles its simdjson peer against Debian's headers; without root, a hint (it skips that peer).
	@test -f /usr/include/simdjson.h || { [ "$$(id -u)" = 0 ] && { apt-get install -y -q libsimdjson-dev || \
	  { apt-get update -q && apt-get install -y -q libsimdjson-dev; }; }; } || \
	  echo "make bench: no simdjson headers: sudo apt-get install -y libsimdjson-dev (versus.py skips simdjson-parse)" >&2
	@for n in 1 10; do test -f $(BENCH_DATA)/summary-$${n}x.json || { rm -rf $(BENCH_DATA)/lake-$${n}x && \
	  LAKE_URL=$(BENCH_DATA)/lake-$${n}x $(BENCH_PRODUCE) --batches $$((4000 * n)) --summary $(BENCH_DATA)/summary-$${n}x.json; }; done
	rm -rf $(BENCH_RESULTS) && mkdir -p $(BENCH_RESULTS)
	set -o pipefail; $(PIN) $(BIN)/lakebench --dataset $(BENCH_DATA)/lake-1x --out $(BENCH_DATA)/out | tee $(BENCH_RESULTS)/hot-path.json
	@# The orders contract (nested line items) on the same hot path, beside the events.
	@test -f $(BENCH_DATA)/summary-orders.json || { rm -rf $(BENCH_DATA)/lake-orders && \
	  LAKE_URL=$(BENCH_DATA)/lake-orders $(BENCH_PRODUCE) --contract contracts/orders.schema.json --batches 2000 \
	    --summary $(BENCH_DATA)/summary-orders.json; }
	set -o pipefail; $(PIN) $(BIN)/lakebench --contract contracts/orders.schema.json --dataset $(BENCH_DATA)/lake-orders \
	  --out $(BENCH_DATA)/out | tee -a $(BENCH_RESULTS)/hot-path.json
	@set -o pipefail; for n in 1 10; do rm -rf $(BENCH_DATA)/lake-$${n}x/{bronze,dead_letters,_checkpoints} && \
	  LAKE_URL=$(BENCH_DATA)/lake-$${n}x RUST_LOG=warn TOKIO_WORKER_THREADS=1 python3 bench/measure.py --name consumer-files-$${n}x \
	    --events $$(python3 -c "import json; print(json.load(open('$(BENCH_DATA)/summary-$${n}x.json'))['records'])") \
	    -- $(PIN) $(BIN)/consumer --source files --once || exit 1; done | tee $(BENCH_RESULTS)/consumer-memory.json
	@# The same on every core with the default threads, beside the Kafka path on every core.
	@set -o pipefail; rm -rf $(BENCH_DATA)/lake-1x/{bronze,dead_letters,_checkpoints} && \
	  LAKE_URL=$(BENCH_DATA)/lake-1x RUST_LOG=warn python3 bench/measure.py --name consumer-files-1x-all \
	    --events $$(python3 -c "import json; print(json.load(open('$(BENCH_DATA)/summary-1x.json'))['records'])") \
	    -- $(BIN)/consumer --source files --once | tee -a $(BENCH_RESULTS)/consumer-memory.json
	@# The refiner over the 1x lake's bronze: silver.events and the events gold models, from scratch, one core.
	@rm -rf $(BENCH_DATA)/lake-1x/silver $(BENCH_DATA)/lake-1x/gold $(BENCH_DATA)/lake-1x/_checkpoints/_refiner
	set -o pipefail; LAKE_URL=$(BENCH_DATA)/lake-1x RUST_LOG=warn python3 bench/measure.py --name refiner-events-1x \
	  --events $$(python3 -c "import json; print(json.load(open('$(BENCH_DATA)/summary-1x.json'))['valid_records'])") \
	  -- $(PIN) $(BIN)/refiner --once --models models | tee $(BENCH_RESULTS)/refiner.json
	set -o pipefail; $(BIN)/pathbench --work $(BENCH_DATA)/path throughput --name kafka-local-1x | tee $(BENCH_RESULTS)/whole-path.json
	set -o pipefail; $(BIN)/pathbench --work $(BENCH_DATA)/path throughput --name kafka-local-1x-all --all-cores | tee -a $(BENCH_RESULTS)/whole-path.json
	set -o pipefail; $(BIN)/pathbench --work $(BENCH_DATA)/path throughput --name kafka-s3-1x --target s3 | tee -a $(BENCH_RESULTS)/whole-path.json
	@# 400 partitions, every core busy: memory against the backlog (the mock broker's retention needs 400
	@# partitions for 10x) and the bronze objects' median size, with a busy stream's event times (1 ms apart at
	@# most: a few dates per flush); then the dataset's own times (70 days: dozens of dates per flush).
	set -o pipefail; $(BIN)/pathbench --work $(BENCH_DATA)/path throughput --name kafka-local-400p-1x-all --partitions 400 --all-cores --event-gap 1ms | tee -a $(BENCH_RESULTS)/whole-path.json
	set -o pipefail; $(BIN)/pathbench --work $(BENCH_DATA)/path throughput --name kafka-local-400p-10x-all --batches 40000 --partitions 400 --all-cores --event-gap 1ms | tee -a $(BENCH_RESULTS)/whole-path.json
	set -o pipefail; $(BIN)/pathbench --work $(BENCH_DATA)/path throughput --name kafka-local-400p-spread-all --partitions 400 --all-cores | tee -a $(BENCH_RESULTS)/whole-path.json
	set -o pipefail; $(BIN)/pathbench --work $(BENCH_DATA)/path freshness | tee $(BENCH_RESULTS)/freshness.json
	set -o pipefail; $(BIN)/pathbench --work $(BENCH_DATA)/path gold-freshness | tee $(BENCH_RESULTS)/gold-freshness.json
	set -o pipefail; $(BIN)/pathbench --work $(BENCH_DATA)/path log-read --commits 10000 | tee $(BENCH_RESULTS)/delta-log.json
	set -o pipefail; $(PIN) python3 bench/peers.py --dataset $(BENCH_DATA)/lake-1x --work $(BENCH_DATA)/peers | tee $(BENCH_RESULTS)/peers.json
	@# Whole processes by the wall clock, timed from outside, on 2,000 clean batches of 500: the consumer on one
	@# core and on every core against the DuckDB CLI, Polars and a simdjson parse (versus.py pins each itself).
	@test -f $(VERSUS_DATA)/summary.json || { rm -rf $(VERSUS_DATA)/lake && mkdir -p $(VERSUS_DATA) && \
	  LAKE_URL=$(VERSUS_DATA)/lake $(VERSUS_PRODUCE) --batches 2000 --summary $(VERSUS_DATA)/summary.json; }
	set -o pipefail; python3 bench/versus.py --lake $(VERSUS_DATA)/lake --consumer $(BIN)/consumer --work $(VERSUS_DATA)/work \
	  --events $$(python3 -c "import json; print(json.load(open('$(VERSUS_DATA)/summary.json'))['records'])") \
	  --name versus | tee $(BENCH_RESULTS)/versus.json
	python3 bench/report.py --results $(BENCH_RESULTS)

check-docker:
	@command -v docker >/dev/null 2>&1 || { \
	  echo "make $(MAKECMDGOALS): Docker is not installed (no docker command on PATH); the stack needs Docker with Compose v2." >&2; \
	  echo "$(NO_DOCKER_HINT)" >&2; exit 1; }
	@$(COMPOSE) version >/dev/null 2>&1 || { \
	  echo "make $(MAKECMDGOALS): Docker Compose v2 is missing ('$(COMPOSE) version' failed): install the Compose plugin, or pass COMPOSE=docker-compose for a standalone v2." >&2; \
	  echo "$(NO_DOCKER_HINT)" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { \
	  echo "make $(MAKECMDGOALS): the Docker engine is not running or not reachable ('docker info' failed): start Docker." >&2; \
	  echo "$(NO_DOCKER_HINT)" >&2; exit 1; }

start: check-docker ## build the image if needed, start MinIO, Redpanda, the init steps, producer, consumer, refiner, the status page, Prometheus and Grafana
	$(COMPOSE) up -d --build
	@echo
	@echo "The stack is starting; the pipeline waits for MinIO, Redpanda and the init steps (make logs follows it)."
	@echo "  MinIO console  $(CONSOLE_URL)   log in with MINIO_ROOT_USER / MINIO_ROOT_PASSWORD from .env"
	@echo "  S3 API         $(S3_URL)   bucket lake; pipeline user AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from .env"
	@echo "  Kafka          $(KAFKA_HOST)        topic events, 3 partitions"
	@echo "  DuckDB         make duckdb             bronze.events, dead_letters.events"
	@echo "  Status page    $(STATUS_URL)   make ui opens it"
	@echo "  Grafana        http://localhost:3000   the lakehouse dashboard (Prometheus: http://localhost:9090)"
	@echo "  make stop stops producer, consumer and refiner (MinIO stays up); make clean removes everything."

stop: check-docker ## stop producer, consumer and refiner; MinIO stays up so the console still shows the data
	$(COMPOSE) stop producer consumer refiner
	@echo "producer, consumer and refiner stopped; MinIO is still up: $(CONSOLE_URL) (make start resumes, make clean removes everything)"

clean: ## remove the whole stack with its volumes (MinIO, Redpanda) and the local data
	@if $(DOCKER_OK); then \
	  echo "$(COMPOSE) --profile tools down --volumes --remove-orphans"; \
	  $(COMPOSE) --profile tools down --volumes --remove-orphans; \
	else echo "Docker is not available: no stack to remove, removing the local data only"; fi
	rm -rf $(DATA_DIR)

logs: check-docker ## follow the logs of producer, consumer and refiner (LOGS="..." for other services)
	$(COMPOSE) logs --follow --tail=200 $(LOGS)

minio: ## open the MinIO console in the default browser (or print its URL)
	@echo "MinIO console: $(CONSOLE_URL) (log in with MINIO_ROOT_USER / MINIO_ROOT_PASSWORD from .env)"
	@if [ "$$(uname -s 2>/dev/null)" = Darwin ] && open "$(CONSOLE_URL)" >/dev/null 2>&1; then \
	  echo "opened in your default browser"; \
	elif command -v xdg-open >/dev/null 2>&1 && xdg-open "$(CONSOLE_URL)" >/dev/null 2>&1; then \
	  echo "opened in your default browser"; \
	else echo "no browser could be opened from here: open the URL above"; fi

# The status page of `inspector serve` (in the stack: STATUS_ADDR=0.0.0.0:8080).
STATUS_URL := http://localhost:8080

ui: ## open the status page (inspector serve) in the default browser (or print its URL)
	@echo "Status page: $(STATUS_URL) (inspector serve; without Docker: LAKE_URL=$(LOCAL_LAKE) $(BIN)/inspector serve)"
	@if [ "$$(uname -s 2>/dev/null)" = Darwin ] && open "$(STATUS_URL)" >/dev/null 2>&1; then \
	  echo "opened in your default browser"; \
	elif command -v xdg-open >/dev/null 2>&1 && xdg-open "$(STATUS_URL)" >/dev/null 2>&1; then \
	  echo "opened in your default browser"; \
	else echo "no browser could be opened from here: open the URL above"; fi

# `make duckdb` on the host: the path of DuckDB extension $(1) in .venv.
venv_extension = $$("$(VENV)/bin/python" -c 'import duckdb_extension_$(1) as m, os; print(os.path.join(os.path.dirname(m.__file__), "extensions/v1.5.5/$(1).duckdb_extension"))')

# Through a variable, so that `make -n duckdb` only prints the recipe: a recipe line naming $(MAKE)
# directly is run even under -n.
MAKE_VENV = $(MAKE) --no-print-directory venv

duckdb: ## the official DuckDB CLI with the lake's views (inspector init-sql): on the running stack; without Docker, on make demo's local lake
	@if $(DOCKER_OK); then \
	  docker image inspect $(IMAGE) >/dev/null 2>&1 || $(COMPOSE) build producer; \
	  echo "$(COMPOSE) run --rm inspector (duckdb -init the lake's views)"; \
	  $(COMPOSE) run --rm inspector sh -c 'inspector init-sql --with-secrets > /tmp/lake.sql && exec duckdb -init /tmp/lake.sql'; \
	else \
	  echo "Docker is not available: DuckDB on the local lake $(LOCAL_LAKE)"; \
	  if [ ! -d "$(LOCAL_LAKE)" ]; then \
	    echo "make duckdb: there is no local lake at $(LOCAL_LAKE). $(NO_DOCKER_HINT)" >&2; exit 1; \
	  fi; \
	  [ -x "$(BIN)/inspector" ] || cargo build --release --workspace --bins; \
	  [ -x "$(VENV)/bin/duckdb" ] || $(MAKE_VENV) || true; \
	  if [ -x "$(VENV)/bin/duckdb" ]; then \
	    mkdir -p "$(DATA_DIR)"; \
	    LAKE_URL="$(LOCAL_LAKE)" DUCKDB_DELTA_EXTENSION="$(call venv_extension,delta)" \
	      DUCKDB_HTTPFS_EXTENSION="$(call venv_extension,httpfs)" "$(BIN)/inspector" init-sql > "$(DATA_DIR)/lake.sql" || exit 1; \
	    echo "DuckDB CLI $$("$(VENV)/bin/duckdb" --version) with the lake's schemas and views ($(DATA_DIR)/lake.sql): try .tables"; \
	    exec "$(VENV)/bin/duckdb" -init "$(DATA_DIR)/lake.sql"; \
	  else \
	    echo "The official DuckDB CLI is missing (make venv installs duckdb-cli==1.5.5 into .venv): opening the inspector's own shell instead."; \
	    LAKE_URL="$(LOCAL_LAKE)" "$(BIN)/inspector" shell; \
	  fi; \
	fi
