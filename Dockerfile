# One image for the producer, consumer, refiner and inspector (docker-compose.yml).
#
# Stage `build` compiles the dependencies from the manifests alone first
# (stage `manifests`), so editing the project's code does not recompile DuckDB
# and librdkafka (about 30 minutes on 2 cores the first time); stage `httpfs`
# takes DuckDB's httpfs and delta extensions from their PyPI wheels; the runtime stage is
# Debian slim with the four binaries and the SQL models, run as a non-root user.
#
# Checked without Docker by tests/stack/check_stack.py (run by `make test`):
# the dependency build sees every workspace member, the binaries match the
# workspace and the Compose file, the images are pinned, the user is not
# root, the runtime installs the binaries' shared libraries.

# The workspace's manifests alone, every crate with empty placeholder
# sources: what the dependency build below needs, and nothing that changes
# when only code changes (so its COPY --from stays cached). Found, not listed,
# so a new workspace member needs no edit here.
FROM rust:1.95.0-slim-bookworm AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name Cargo.toml ! -name Cargo.lock ! -path './.cargo/*' -delete \
 && find . -name Cargo.toml ! -path ./Cargo.toml | while read -r manifest; do \
        dir=$(dirname "$manifest"); mkdir -p "$dir/src"; \
        : > "$dir/src/lib.rs"; echo 'fn main() {}' > "$dir/src/main.rs"; \
    done \
 && find . -type d -empty -delete

FROM rust:1.95.0-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential pkg-config libssl-dev zlib1g-dev python3 \
    && rm -rf /var/lib/apt/lists/*
# Release profile as in Cargo.toml, minus what only helps on a developer's
# machine: no debug line tables, stripped binaries, no incremental cache.
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true \
    CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    CARGO_TERM_COLOR=never
WORKDIR /src

# 1. The dependencies, from the manifests and placeholders.
COPY --from=manifests /src ./
RUN cargo build --release --locked -p producer -p consumer -p refiner -p inspector \
 && find . -path ./target -prune -o -name Cargo.toml ! -path ./Cargo.toml -execdir rm -rf src \;

# 2. The project itself. COPY keeps the files' modification times, which can
#    be older than the placeholders': touch them so cargo rebuilds our crates.
COPY . .
RUN find . -path ./target -prune -o -type f -exec touch {} + \
 && cargo build --release --locked -p producer -p consumer -p refiner -p inspector \
 && mkdir -p /out \
 && cp target/release/producer target/release/consumer target/release/refiner target/release/inspector /out/

# DuckDB's httpfs and delta extensions for the bundled DuckDB 1.5.5, and the
# official DuckDB CLI of the same version, from their PyPI wheels (x86_64 and
# aarch64), so `make duckdb` reads the s3:// Delta tables without
# downloading anything at run time. Keep the versions equal to the duckdb crate's.
FROM python:3.11.11-slim-bookworm AS httpfs
RUN pip install --no-cache-dir --no-deps --target /opt/httpfs 'duckdb-extension-httpfs==1.5.5' 'duckdb-extension-delta==1.5.5' 'duckdb-cli==1.5.5' \
 && cp /opt/httpfs/duckdb_extension_httpfs/extensions/v1.5.5/httpfs.duckdb_extension /httpfs.duckdb_extension \
 && cp /opt/httpfs/duckdb_extension_delta/extensions/v1.5.5/delta.duckdb_extension /delta.duckdb_extension \
 && cp /opt/httpfs/duckdb_cli/duckdb /duckdb

FROM debian:bookworm-slim AS runtime
# The binaries' shared libraries (ldd): OpenSSL and zlib for librdkafka and
# the S3 client, libstdc++ for DuckDB; CA certificates for https endpoints.
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates libssl3 zlib1g libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --user-group lake
COPY --from=build /out/producer /out/consumer /out/refiner /out/inspector /usr/local/bin/
# The refiner's silver and gold models; mount another directory over it, or
# set MODELS_DIR, to run your own.
COPY models /opt/lakehouse/models
ENV MODELS_DIR=/opt/lakehouse/models
COPY --from=httpfs /httpfs.duckdb_extension /opt/duckdb/httpfs.duckdb_extension
COPY --from=httpfs /delta.duckdb_extension /opt/duckdb/delta.duckdb_extension
COPY --from=httpfs /duckdb /usr/local/bin/duckdb
ENV DUCKDB_HTTPFS_EXTENSION=/opt/duckdb/httpfs.duckdb_extension
ENV DUCKDB_DELTA_EXTENSION=/opt/duckdb/delta.duckdb_extension
USER 10001:10001
WORKDIR /home/lake
CMD ["inspector", "--help"]
