# One image for producer, consumer and inspector.
# Stage 1 builds the dependencies from the manifests alone, so editing the
# project's code does not recompile DuckDB and librdkafka.
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential pkg-config libssl-dev zlib1g-dev python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY lake/Cargo.toml lake/
COPY producer/Cargo.toml producer/
COPY consumer/Cargo.toml consumer/
COPY inspector/Cargo.toml inspector/
COPY e2e/Cargo.toml e2e/
RUN for c in lake e2e; do mkdir -p $c/src && echo '' > $c/src/lib.rs; done \
 && for c in producer consumer inspector; do mkdir -p $c/src && echo 'fn main() {}' > $c/src/main.rs && echo '' > $c/src/lib.rs; done \
 && cargo build --release --locked --bins \
 && rm -rf lake/src producer/src consumer/src inspector/src e2e/src
COPY . .
# Touch the sources so cargo sees them as newer than the placeholders.
RUN find lake producer consumer inspector e2e -name '*.rs' -exec touch {} + \
 && cargo build --release --locked --bins

# DuckDB's httpfs extension for the bundled DuckDB 1.5.5, from its PyPI wheel,
# so `make duckdb` reads s3:// without downloading anything at run time.
FROM python:3.11-slim-bookworm AS httpfs
RUN pip install --no-cache-dir --target /opt/httpfs 'duckdb-extension-httpfs==1.5.5' \
 && cp /opt/httpfs/duckdb_extension_httpfs/extensions/v1.5.5/httpfs.duckdb_extension /httpfs.duckdb_extension

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 lake
COPY --from=build /src/target/release/producer /src/target/release/consumer /src/target/release/inspector /usr/local/bin/
COPY --from=httpfs /httpfs.duckdb_extension /opt/duckdb/httpfs.duckdb_extension
ENV DUCKDB_HTTPFS_EXTENSION=/opt/duckdb/httpfs.duckdb_extension
USER lake
WORKDIR /home/lake
