#!/usr/bin/env python3
"""Checks the Docker Compose stack without a Docker engine.

What `make start` runs is docker-compose.yml, the Dockerfile, docker/minio-init.sh
and .env. No engine runs here, so this script checks them against each other
and against the real binaries:

* the Compose file, with .env interpolated as Compose does, against the Compose
  specification's JSON schema (tests/stack/compose-spec.json);
* every service's command and environment against the binaries' own --help
  (flags, flag values, the variables each binary reads), and the variables the
  stack needs point at the right service and port;
* depends_on, healthchecks, restart policies, profiles, images pinned, ports,
  volumes, the Kafka listeners, the topic init step, the MinIO init script and
  its bucket policy (parsed and checked to be least-privilege);
* the refiner: on the lake only (MinIO and its init step, no Kafka), on the
  consumer's lake, restarted, and its SQL models in the image (MODELS_DIR);
* the Dockerfile against the Cargo workspace (manifests, packages, binaries,
  the httpfs extension's version, shared libraries, non-root user, the
  models) and .dockerignore against what the build needs;
* the Makefile's service names, image name and URLs against the Compose file;
* monitoring: the consumer and the refiner serve METRICS_ADDR where the other
  containers reach it; Prometheus (monitoring/prometheus.yml, parsed) scrapes
  exactly those services on those ports; Grafana's provisioning (datasource on
  the prometheus service, dashboard provider) names files that exist; the
  dashboards parse, use the provisioned datasource, and every metric their
  PromQL uses is one lake/src/metrics.rs exports and (with --metrics) one a
  real /metrics scrape holds, with the labels the queries group and filter by;
  the status page (`inspector serve`) reads every /metrics endpoint.

Usage:
  check_stack.py [--bin-dir DIR] [--metrics FILE...] [-v]   every check; one line per failure
  check_stack.py --self-test [--bin-dir DIR] [--metrics FILE...]
                                             each check must catch a broken copy
  check_stack.py --print-service NAME        the service, interpolated, as JSON

--metrics FILE...: /metrics scrapes of the real consumer and refiner (the
Prometheus text format), as e2e/tests/stack.rs saves them; without it the
dashboard's metrics are checked against lake/src/metrics.rs only.

Exit status: 0 when every check passes, 1 otherwise, 2 for a usage problem.
Run by e2e/tests/stack.rs, so by `make test`. Needs `pip install jsonschema pyyaml`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

try:
    import jsonschema
    import yaml
except ImportError as e:  # pragma: no cover - environment problem
    print(f"check_stack.py: {e}: pip install jsonschema pyyaml", file=sys.stderr)
    sys.exit(2)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BINARIES = ("producer", "consumer", "refiner", "inspector")
# What the stack's binaries need to reach MinIO and Redpanda (docs/DESIGN.md §2).
LAKE_ENV = (
    "LAKE_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)
KAFKA_ENV = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
)
# The refiner reads the lake only (bronze in, silver and gold out): no Kafka.
REQUIRED_ENV = {
    "producer": LAKE_ENV + KAFKA_ENV,
    "consumer": LAKE_ENV + KAFKA_ENV,
    "inspector": LAKE_ENV + KAFKA_ENV,
    "refiner": LAKE_ENV,
}
# What every pipeline service must agree on with the consumer: the same lake,
# reached the same way (AWS_REGION defaults to us-east-1 in every binary).
LAKE_SETTINGS = ("LAKE_URL", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# Long-running pipeline services: restarted by Compose, stopped by `make stop`.
LONG_RUNNING = ("producer", "consumer", "refiner")
# Read by the binaries without a clap flag: RUST_LOG (tracing), AWS_*
# (object_store's AmazonS3Builder::from_env), KAFKA_SETTING_* (librdkafka
# pass-through), HOME / XDG_CACHE_HOME (inspector's history and mirror).
EXTRA_ENV = re.compile(r"^(RUST_LOG|RUST_BACKTRACE|AWS_[A-Z0-9_]+|KAFKA_SETTING_[A-Z0-9_]+|HOME|XDG_CACHE_HOME|TZ)$")
# What the prometheus crate's ProcessCollector exports (Linux), registered by lake/src/metrics.rs.
PROCESS_METRICS = (
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
)
# The binaries that serve /metrics, /healthz and /readyz on METRICS_ADDR.
METRICS_BINARIES = ("consumer", "refiner")
# Labels Prometheus adds to every scraped series (not in /metrics itself).
TARGET_LABELS = {"job", "instance"}
# Where the dashboards find their numbers: the metric names the PromQL uses.
METRIC_NAME = re.compile(r"(?<![\w:$])((?:lakehouse|process)_[A-Za-z0-9_:]*)\s*(\{[^{}]*\})?")
# Never needed by a pipeline user that only reads and writes objects.
FORBIDDEN_ACTIONS = re.compile(r"^(\*|s3:\*|admin:.*|s3:(Create|Delete)Bucket.*|s3:Put.*Policy|s3:Delete.*Policy|s3:PutBucket.*)$")


# --------------------------------------------------------------------------
# Inputs


@dataclass
class Files:
    """The texts the checks read; --self-test swaps in broken copies."""

    compose: str
    env: str
    dockerfile: str
    dockerignore: str
    makefile: str
    cargo: str
    cargo_lock: str
    ci_run: str
    scripts: dict[str, str] = field(default_factory=dict)  # repo-relative path -> text
    monitoring: dict[str, str] = field(default_factory=dict)  # monitoring/**: repo-relative path -> text
    metrics_rs: str = ""  # lake/src/metrics.rs: the metrics the binaries export
    scrapes: dict[str, str] = field(default_factory=dict)  # --metrics FILE -> a real /metrics scrape

    @staticmethod
    def load(root: Path, scrapes: list[Path] | None = None) -> "Files":
        def read(rel: str) -> str:
            p = root / rel
            return p.read_text() if p.exists() else ""

        scripts = {str(p.relative_to(root)): p.read_text() for p in sorted((root / "docker").glob("*")) if p.is_file()}
        monitoring = {str(p.relative_to(root)): p.read_text() for p in sorted((root / "monitoring").rglob("*")) if p.is_file()}
        return Files(
            compose=read("docker-compose.yml"),
            env=read(".env"),
            dockerfile=read("Dockerfile"),
            dockerignore=read(".dockerignore"),
            makefile=read("Makefile"),
            cargo=read("Cargo.toml"),
            cargo_lock=read("Cargo.lock"),
            ci_run=read(".ci/run"),
            scripts=scripts,
            monitoring=monitoring,
            metrics_rs=read("lake/src/metrics.rs"),
            scrapes={str(p): p.read_text() for p in scrapes or []},
        )

    def copy(self) -> "Files":
        return Files(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()})


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines as docker compose and dotenvy read them (no interpolation)."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        env[key.strip()] = value
    return env


VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, env: dict[str, str], used: set[str], errors: list[str], where: str = ""):
    """Compose's interpolation of every string value (keys stay as written); `used` gets the variables that must be set (no default)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, used, errors, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, used, errors, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        if op is None or op in (":?", "?"):  # ${X:-default} and ${X:+alt} need no .env entry
            used.add(name)
        present = name in env
        nonempty = present and env[name] != ""
        if op is None:
            if not present:
                errors.append(f"{where}: ${{{name}}} is not defined")
            return env.get(name, "")
        if op in (":-", "-"):
            return env[name] if (nonempty if op == ":-" else present) else interpolate(arg, env, used, errors, where)
        if op in (":?", "?"):
            if not (nonempty if op == ":?" else present):
                errors.append(f"{where}: ${{{name}}} is required: {arg}")
                return ""
            return env[name]
        if op in (":+", "+"):
            return interpolate(arg, env, used, errors, where) if (nonempty if op == ":+" else present) else ""
        return m.group(0)

    return VAR.sub(sub, value)


def as_mapping(env) -> dict[str, str]:
    """A service's `environment`, list or mapping, as a mapping of strings."""
    if env is None:
        return {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    return {k: "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in env.items()}


def argv(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def depends_on(svc: dict) -> dict[str, dict]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: {"condition": "service_started"} for d in deps}
    return {k: (v or {"condition": "service_started"}) for k, v in deps.items()}


@dataclass
class Port:
    host: int | None
    container: int


def ports(svc: dict) -> list[Port]:
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.append(Port(int(p["published"]) if p.get("published") else None, int(p["target"])))
            continue
        spec = str(p).split("/")[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            out.append(Port(None, int(parts[0])))
        else:
            out.append(Port(int(parts[-2]) if parts[-2] else None, int(parts[-1])))
    return out


def image_tag(image: str) -> tuple[str, str | None]:
    """(name, tag) with a registry port not taken for a tag; a digest counts as a tag."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, None


def host_port(url: str) -> tuple[str, int | None]:
    m = re.match(r"^(?:[a-z]+://)?([^/:]+)(?::(\d+))?", url)
    return (m.group(1), int(m.group(2)) if m.group(2) else None) if m else ("", None)


def bucket_of(lake_url: str) -> str | None:
    m = re.match(r"^s3://([^/]+)", lake_url or "")
    return m.group(1) if m else None


def flag_values(args: list[str], flag: str) -> list[str]:
    """Values of `--flag=v` and `--flag v` in an argv."""
    out = []
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            out.append(args[i + 1])
        elif a.startswith(flag + "="):
            out.append(a[len(flag) + 1 :])
    return out


# --------------------------------------------------------------------------
# The binaries' own --help


@dataclass
class Flag:
    name: str
    takes_value: bool
    env: str | None = None
    values: list[str] | None = None  # possible values, when clap lists them
    default: str | None = None  # clap's [default: …]


@dataclass
class Help:
    flags: dict[str, Flag]
    subcommands: dict[str, "Help"]

    def envs(self) -> dict[str, Flag]:
        out = {f.env: f for f in self.flags.values() if f.env}
        for sub in self.subcommands.values():
            out.update(sub.envs())
        return out


def parse_help(text: str) -> tuple[dict[str, Flag], list[str]]:
    """clap's --help: the options (with [env: X] and possible values) and the subcommands."""
    flags: dict[str, Flag] = {}
    subcommands: list[str] = []
    section = None
    current: Flag | None = None
    possible_block = False
    for line in text.splitlines():
        if re.match(r"^\S.*:$", line):
            section = line.rstrip(":").strip()
            current = None
            continue
        if section == "Commands":
            m = re.match(r"^  ([a-z][a-z0-9-]*)\s", line + " ")
            if m and m.group(1) != "help":
                subcommands.append(m.group(1))
            continue
        m = re.match(r"^\s{2,6}(?:-\w, )?(--[a-z0-9][a-z0-9-]*)(?:[ =]<([^>]+)>)?", line)
        if m:
            current = Flag(m.group(1), takes_value=m.group(2) is not None)
            flags[current.name] = current
            possible_block = False
        if current is None:
            continue
        for env in re.findall(r"\[env: ([A-Z0-9_]+)(?:=[^\]]*)?\]", line):
            current.env = env
        dv = re.search(r"\[default: ([^\]]*)\]", line)
        if dv:
            current.default = dv.group(1)
        pv = re.search(r"\[possible values: ([^\]]*)\]", line)
        if pv:
            current.values = [v.strip() for v in pv.group(1).split(",")]
        if re.match(r"^\s+Possible values:\s*$", line):
            possible_block = True
            current.values = []
            continue
        if possible_block:
            pm = re.match(r"^\s+- ([a-z0-9_-]+)(?::|$)", line)
            if pm:
                current.values.append(pm.group(1))
            elif line.strip():
                possible_block = False
    return flags, subcommands


def load_help(bin_dir: Path, binary: str) -> Help:
    def run(args: list[str]) -> str:
        with tempfile.TemporaryDirectory() as tmp:  # no .env of the repo read
            env = {k: v for k, v in os.environ.items() if not re.match(r"^(AWS_|KAFKA_|LAKE_|DUCKDB_|INSPECTOR_|PRODUCER_|CONSUMER_|REFINER_|REFINE_|MODELS_DIR$)", k)}
            out = subprocess.run([str(bin_dir / binary), *args, "--help"], cwd=tmp, env=env, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"{binary} {' '.join(args)} --help exited {out.returncode}: {out.stderr.strip()[:300]}")
        return out.stdout

    flags, subs = parse_help(run([]))
    subcommands = {}
    for sub in subs:
        sflags, _ = parse_help(run([sub]))
        subcommands[sub] = Help(sflags, {})
    return Help(flags, subcommands)


# --------------------------------------------------------------------------
# Dockerfile and .dockerignore


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, args)

    def all(self, instr: str) -> list[str]:
        return [a for i, a in self.instructions if i == instr]


def parse_dockerfile(text: str) -> list[Stage]:
    logical, buf = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[Stage] = []
    for line in logical:
        instr, _, args = line.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.I)
            stages.append(Stage(m.group(1), m.group(2)))
        elif stages:
            stages[-1].instructions.append((instr, args.strip()))
    return stages


def dockerignore_patterns(text: str) -> list[tuple[bool, re.Pattern]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line[1:] if negate else line
        pat = pat.strip().lstrip("/").rstrip("/")
        rx = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**/", i):
                rx += "(?:.*/)?"
                i += 3
            elif pat.startswith("**", i):
                rx += ".*"
                i += 2
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pat[i] == "?":
                rx += "[^/]"
                i += 1
            else:
                rx += re.escape(pat[i])
                i += 1
        out.append((negate, re.compile(f"^{rx}$")))
    return out


def dockerignored(path: str, patterns) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent directory excludes the file."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, rx in patterns:
        if any(rx.match(p) for p in prefixes):
            excluded = not negate
    return excluded


# --------------------------------------------------------------------------
# The checks


class Report:
    def __init__(self, verbose: bool = False):
        self.failures: list[tuple[str, str]] = []
        self.passed: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        self.verbose = verbose

    def check(self, name: str, ok: bool, detail: str) -> bool:
        """One check: `detail` says what is wrong when `ok` is false."""
        if ok:
            self.passed.append(name)
        else:
            self.failures.append((name, detail))
        return ok

    def skip(self, name: str, why: str):
        self.skipped.append((name, why))


@dataclass
class Stack:
    """docker-compose.yml as the checks see it: interpolated, each service's part in the stack, and what earlier checks found out."""

    dotenv: dict[str, str]
    model: dict  # the whole Compose file, .env interpolated
    raw_services: dict  # as written: a reference to a variable shows only before interpolation
    services: dict[str, dict]
    minio: str | None
    broker: str | None
    minio_init: str | None
    topic_init: str | None
    app_image: str | None
    app_services: dict[str, dict]
    app_binaries: dict[str, str | None]
    # What the MinIO, Kafka and pipeline checks find: the later checks compare
    # against what the stack really uses, not against fixed ports and names.
    api_port: int = 9000
    internal_port: int | None = None
    ext_port: int | None = None
    pipe: dict[str, str] = field(default_factory=dict)  # the consumer's environment; the others must agree with it
    # Monitoring: the Prometheus and Grafana services, the status page
    # (`inspector serve`), and where each consumer and refiner serves /metrics.
    prometheus: str | None = None
    grafana: str | None = None
    status: str | None = None
    metrics: dict[str, int] = field(default_factory=dict)  # service -> METRICS_ADDR port, reachable in the network

    @property
    def by_binary(self) -> dict[str, str]:
        """The (first) service that runs each binary; the status page is not "the inspector" (that one is `make duckdb`'s)."""
        out: dict[str, str] = {}
        for n, b in self.app_binaries.items():
            if b and n != self.status:
                out.setdefault(b, n)
        return out

    def running(self, *binaries: str) -> list[str]:
        """Every service running one of these binaries, in file order."""
        return [n for n, b in self.app_binaries.items() if b in binaries and n != self.status]

    def published(self, n: str | None, container: int) -> int | None:
        if not n:
            return None
        return next((p.host for p in ports(self.services[n]) if p.container == container), None)

    def closure(self, n: str, seen=None) -> set[str]:
        """Every service `n` waits for, directly or not."""
        seen = set() if seen is None else seen
        for dep in depends_on(self.services.get(n, {})):
            if dep in self.services and dep not in seen:
                seen.add(dep)
                self.closure(dep, seen)
        return seen


def run_checks(files: Files, root: Path, bin_dir: Path, report: Report, helps: dict[str, Help] | None = None) -> dict:
    """Every check; returns the interpolated Compose model."""
    r = report
    dotenv = parse_dotenv(files.env)
    compose = load_compose(files, dotenv, r)
    if compose is None:
        return {}
    st = find_services(*compose, dotenv, r)
    check_images_pinned(st, r)
    check_healthchecks(st, r)
    check_depends_on(st, r)
    check_restart_and_profiles(st, r)
    check_ports(st, r)
    check_volumes(st, root, r)
    st.api_port = check_minio(st, r)
    check_root_credentials(st, r)
    st.internal_port, st.ext_port = check_kafka_listeners(st, r)
    helps = helps if helps is not None else {}
    load_helps(bin_dir, helps, r)
    st.pipe = check_pipeline(st, helps, r)
    check_topic_init(st, r)
    check_minio_init(st, files, r)
    check_dockerfile(files, root, bin_dir, r, st.services, st.app_services, st.app_binaries)
    check_makefile(st, files, r)
    st.metrics = check_metrics_endpoints(st, helps, r)
    prom_port, interval = check_prometheus(st, files, root, r)
    uids, dashboards = check_grafana(st, files, root, prom_port, interval, r)
    check_dashboards(dashboards, uids, files, r)
    check_status(st, helps, r)
    return st.model


def load_compose(files: Files, dotenv: dict[str, str], r: Report) -> tuple[dict, dict] | None:
    """yaml, env-file-vars, schema: the Compose file as written and interpolated; None if there is no services mapping to check."""
    try:
        raw = yaml.safe_load(files.compose)
    except yaml.YAMLError as e:
        r.check("yaml", False, f"docker-compose.yml is not YAML: {e}")
        return None
    r.check("yaml", isinstance(raw, dict) and isinstance(raw.get("services"), dict), "docker-compose.yml has no services mapping")
    if not isinstance(raw, dict) or not isinstance(raw.get("services"), dict):
        return None
    used: set[str] = set()
    errors: list[str] = []
    c = interpolate(raw, dotenv, used, errors)
    for e in errors:
        r.check("env-file-vars", False, f"docker-compose.yml {e} in .env")
    if not errors:
        r.check("env-file-vars", True, "")
    for name in sorted(used):
        r.check("env-file-vars", name in dotenv and dotenv[name] != "", f"${{{name}}} is used by docker-compose.yml but not set in .env")

    schema = json.loads((HERE / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    schema_errors = sorted(validator.iter_errors(c), key=lambda e: list(e.absolute_path))
    for e in schema_errors:
        path = "/".join(str(p) for p in e.absolute_path) or "(top)"
        r.check("schema", False, f"docker-compose.yml {path}: {e.message}")
    if not schema_errors:
        r.check("schema", True, "")
    return raw, c


def find_services(raw: dict, c: dict, dotenv: dict[str, str], r: Report) -> Stack:
    """services: which service is MinIO, the broker, each init step, and which run the pipeline's binaries."""
    services: dict[str, dict] = {k: (v or {}) for k, v in (c.get("services") or {}).items()}

    def find(pred) -> str | None:
        names = [n for n, s in services.items() if pred(n, s)]
        return names[0] if names else None

    minio = find(lambda n, s: str(s.get("image", "")).startswith(("minio/minio", "quay.io/minio/minio")))
    broker = find(lambda n, s: ("redpanda" in str(s.get("image", "")) or "kafka" in str(s.get("image", ""))) and "start" in argv(s.get("command")))
    minio_init = find(lambda n, s: "minio/mc" in str(s.get("image", "")))
    topic_init = find(lambda n, s: "rpk topic create" in " ".join(argv(s.get("entrypoint")) + argv(s.get("command"))))
    app_image = next((s.get("image") for s in services.values() if s.get("build")), None)
    app_services = {n: s for n, s in services.items() if s.get("build") or (app_image and s.get("image") == app_image)}
    for role, name in (("minio", minio), ("broker", broker), ("minio-init", minio_init), ("topic-init", topic_init)):
        r.check("services", name is not None, f"no {role} service found in docker-compose.yml")
    app_binaries = {}
    for n, s in app_services.items():
        a = argv(s.get("entrypoint")) + argv(s.get("command"))
        app_binaries[n] = Path(a[0]).name if a else None
    for b in BINARIES:
        r.check("services", b in app_binaries.values(), f"no service runs the {b} binary")
    st = Stack(dotenv, c, raw.get("services") or {}, services, minio, broker, minio_init, topic_init, app_image, app_services, app_binaries)
    st.prometheus = find(lambda n, s: image_tag(str(s.get("image", "")))[0] in ("prom/prometheus", "quay.io/prometheus/prometheus"))
    st.grafana = find(lambda n, s: image_tag(str(s.get("image", "")))[0] in ("grafana/grafana", "grafana/grafana-oss", "grafana/grafana-enterprise"))
    st.status = next((n for n, s in app_services.items() if app_binaries.get(n) == "inspector"
                      and (argv(s.get("entrypoint")) + argv(s.get("command")))[1:2] == ["serve"]), None)
    for role, name in (("prometheus", st.prometheus), ("grafana", st.grafana), ("status page (inspector serve)", st.status)):
        r.check("services", name is not None, f"no {role} service found in docker-compose.yml")
    return st


def check_images_pinned(st: Stack, r: Report):
    """images-pinned: every service's image has a release tag (the Dockerfile's bases are checked with the Dockerfile)."""
    for n, s in st.services.items():
        img = s.get("image")
        if not img:
            r.check("images-pinned", bool(s.get("build")), f"service {n} has neither image nor build")
            continue
        _, tag = image_tag(str(img))
        r.check("images-pinned", tag is not None and tag != "latest", f"service {n}: image {img} is not pinned to a release (no tag, or latest)")


def healthy(s: dict) -> bool:
    hc = s.get("healthcheck") or {}
    return bool(hc.get("test")) and not hc.get("disable") and hc.get("test") != ["NONE"]


def check_healthchecks(st: Stack, r: Report):
    """healthcheck: MinIO and the broker have one, and every healthcheck duration is one Compose reads."""
    for n in (st.minio, st.broker, st.prometheus, st.grafana):
        if n:
            r.check("healthcheck", healthy(st.services[n]), f"service {n} has no healthcheck")
    # Prometheus' and Grafana's own readiness endpoints, on the port they listen on.
    for n, port, paths in ((st.prometheus, prometheus_port(st), ("/-/ready", "/-/healthy")), (st.grafana, grafana_port(st), ("/api/health",))):
        if n and healthy(st.services[n]):
            test = " ".join(argv(st.services[n]["healthcheck"]["test"]))
            r.check("healthcheck", any(f"localhost:{port}{p}" in test or f"127.0.0.1:{port}{p}" in test for p in paths) and re.search(r"\b(wget|curl)\b", test) is not None,
                    f"service {n}: healthcheck `{test}` does not ask localhost:{port}{paths[0]} (with wget or curl)")
    for n, s in st.services.items():
        for key in ("interval", "timeout", "start_period", "start_interval"):
            d = (s.get("healthcheck") or {}).get(key)
            if d is not None:
                r.check("healthcheck", re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", str(d)) is not None,
                        f"service {n}: healthcheck {key}: {d!r} is not a Compose duration (e.g. 5s, 1m30s)")


def check_depends_on(st: Stack, r: Report):
    """depends-on, profiles: each service waits, in the right way, for what exists and runs with it, with no cycle, and each binary for what it needs."""
    services = st.services
    for n, s in services.items():
        for dep, opts in depends_on(s).items():
            if not r.check("depends-on", dep in services, f"service {n} depends on {dep}, which does not exist"):
                continue
            cond = opts.get("condition", "service_started")
            target = services[dep]
            if healthy(target):
                r.check("depends-on", cond == "service_healthy", f"service {n} depends on {dep} with {cond}; {dep} has a healthcheck: use service_healthy")
            elif target.get("restart") in (None, "no"):
                r.check("depends-on", cond == "service_completed_successfully", f"service {n} depends on the one-shot {dep} with {cond}: use service_completed_successfully")
            prof_n, prof_dep = set(s.get("profiles") or []), set(target.get("profiles") or [])
            r.check("profiles", not prof_dep or prof_dep & prof_n, f"service {n} depends on {dep}, which only runs with profile {sorted(prof_dep)}")

    for n in services:
        r.check("depends-on", n not in st.closure(n), f"service {n} depends on itself through depends_on (a cycle)")
    by_binary = st.by_binary
    needs = {
        "producer": {st.broker, st.topic_init},
        "consumer": {st.minio, st.broker, st.minio_init, st.topic_init},
        "refiner": {st.minio, st.minio_init},
        "inspector": {st.minio, st.minio_init},
    }
    for b, deps in needs.items():
        n = by_binary.get(b)
        if n:
            missing = sorted(d for d in deps if d and d not in st.closure(n))
            r.check("depends-on", not missing, f"service {n} ({b}) starts without waiting for {', '.join(missing)}")
    # The status page reads the lake; Grafana's datasource is Prometheus.
    for n, deps in ((st.status, {st.minio, st.minio_init}), (st.grafana, {st.prometheus})):
        if n:
            missing = sorted(d for d in deps if d and d not in depends_on(services[n]))
            r.check("depends-on", not missing, f"service {n} starts without waiting for {', '.join(missing)}")
    # The refiner waits for the lake itself, not through the consumer, and not
    # for Kafka: it never talks to the broker.
    n = by_binary.get("refiner")
    if n:
        direct = depends_on(services[n])
        for d in (st.minio, st.minio_init):
            if d:
                r.check("depends-on", d in direct, f"service {n} (refiner) does not depend on {d} itself: it needs the lake (depends_on {d})")
        for d in (st.broker, st.topic_init):
            if d:
                r.check("depends-on", d not in direct, f"service {n} (refiner) depends on {d}: it reads the lake only, no Kafka")


def check_restart_and_profiles(st: Stack, r: Report):
    """restart, profiles: one-shots can complete, the consumer and the refiner come back, the inspector is on demand and the rest starts with `up`."""
    services = st.services
    by_binary = st.by_binary
    one_shots = {dep for s in services.values() for dep, o in depends_on(s).items() if o.get("condition") == "service_completed_successfully"}
    for n in one_shots:
        r.check("restart", services.get(n, {}).get("restart") in (None, "no", "on-failure") or str(services[n].get("restart")).startswith("on-failure"),
                f"one-shot service {n} has restart: {services.get(n, {}).get('restart')}: it would never complete")
    for b in ("consumer", "refiner"):
        if by_binary.get(b):
            rp = str(services[by_binary[b]].get("restart", "no"))
            r.check("restart", rp in ("always", "unless-stopped") or rp.startswith("on-failure"), f"service {by_binary[b]} ({b}) has no restart policy (restart: {rp})")
    if by_binary.get("inspector"):
        r.check("profiles", bool(services[by_binary["inspector"]].get("profiles")), f"service {by_binary['inspector']} (inspector) is not on demand: give it a profile")
    for n in (st.minio, st.broker, st.minio_init, st.topic_init, *(by_binary.get(b) for b in LONG_RUNNING), st.status, st.prometheus, st.grafana):
        if n:
            r.check("profiles", not services[n].get("profiles"), f"service {n} is in a profile, so `docker compose up` would not start it")
    # The servers of the stack come back after a crash or a reboot of the engine.
    for n in (st.status, st.prometheus, st.grafana):
        if n:
            rp = str(services[n].get("restart", "no"))
            r.check("restart", rp in ("always", "unless-stopped") or rp.startswith("on-failure"), f"service {n} has no restart policy (restart: {rp})")


def check_ports(st: Stack, r: Report):
    """ports: every port spec is understood and no host port is published twice."""
    seen_ports: dict[int, str] = {}
    for n, s in st.services.items():
        try:
            ps = ports(s)
        except (ValueError, KeyError) as e:
            r.check("ports", False, f"service {n}: ports not understood: {e}")
            continue
        for p in ps:
            if p.host is not None:
                r.check("ports", p.host not in seen_ports, f"host port {p.host} is published by {seen_ports.get(p.host)} and {n}")
                seen_ports[p.host] = n


def check_volumes(st: Stack, root: Path, r: Report):
    """volumes: named volumes are declared and used, bind mounts exist, MinIO's data is on a named volume."""
    declared = set((st.model.get("volumes") or {}).keys())
    used_volumes = set()
    for n, s in st.services.items():
        for v in s.get("volumes") or []:
            if isinstance(v, dict):
                src, typ = v.get("source"), v.get("type")
            else:
                src = str(v).split(":")[0] if ":" in str(v) else None
                typ = "bind" if src and (src.startswith((".", "/", "~"))) else ("volume" if src else "anonymous")
            if typ == "volume" and src:
                used_volumes.add(src)
                r.check("volumes", src in declared, f"service {n} mounts volume {src}, not declared under top-level volumes")
            elif typ == "bind" and src:
                r.check("volumes", (root / src).exists(), f"service {n} mounts {src}, which does not exist in the repository")
    for v in sorted(declared - used_volumes):
        r.check("volumes", False, f"volume {v} is declared but no service mounts it")
    minio = st.minio
    if minio:
        data_dir = next((a for a in argv(st.services[minio].get("command"))[1:2]), "/data")
        mounted = [str(v).split(":")[1] for v in st.services[minio].get("volumes") or [] if isinstance(v, str) and ":" in v and not str(v).startswith((".", "/"))]
        r.check("volumes", data_dir in mounted, f"MinIO's data directory {data_dir} is not on a named volume")


def check_minio(st: Stack, r: Report) -> int:
    """minio, env-file: MinIO's ports are fixed and published, its root user is valid, .env reaches it; returns its API port in the network."""
    api_port = 9000
    minio, dotenv, published = st.minio, st.dotenv, st.published
    if not minio:
        return api_port
    s = st.services[minio]
    cmd = argv(s.get("command"))
    address = (flag_values(cmd, "--address") or [":9000"])[-1]
    console = (flag_values(cmd, "--console-address") or [""])[-1]
    api_port = int(address.rsplit(":", 1)[-1])
    r.check("minio", bool(console), f"service {minio}: no --console-address, so the console port changes on every start")
    console_port = int(console.rsplit(":", 1)[-1]) if console else None
    r.check("minio", published(minio, api_port) == 9000, f"service {minio}: the S3 API (container port {api_port}) is not published on host port 9000")
    r.check("minio", console_port is not None and published(minio, console_port) == 9001, f"service {minio}: the console (container port {console_port}) is not published on host port 9001")
    menv = as_mapping(s.get("environment"))
    r.check("minio", len(menv.get("MINIO_ROOT_USER", "")) >= 3, "MINIO_ROOT_USER must be set, 3 characters or more")
    r.check("minio", len(menv.get("MINIO_ROOT_PASSWORD", "")) >= 8, "MINIO_ROOT_PASSWORD must be set, 8 characters or more (MinIO refuses to start)")
    h, p = host_port(dotenv.get("AWS_ENDPOINT_URL", ""))
    r.check("env-file", h in ("localhost", "127.0.0.1") and p == published(minio, api_port),
            f".env AWS_ENDPOINT_URL={dotenv.get('AWS_ENDPOINT_URL')} is not MinIO's published API port (localhost:{published(minio, api_port)})")
    return api_port


def check_root_credentials(st: Stack, r: Report):
    """root-credentials: only MinIO and its init step see MinIO's root user."""
    dotenv = st.dotenv
    root_vals = {dotenv.get("MINIO_ROOT_USER"), dotenv.get("MINIO_ROOT_PASSWORD")} - {None, ""}
    for n, s in st.raw_services.items():
        if n in (st.minio, st.minio_init):
            continue
        text = json.dumps(s)
        r.check("root-credentials", "MINIO_ROOT_" not in text, f"service {n} references MinIO's root credentials")
        vals = set(as_mapping(st.services[n].get("environment")).values())
        r.check("root-credentials", not (vals & root_vals), f"service {n} is given MinIO's root credentials")


def listeners(cmd: list[str], flag: str) -> dict[str, tuple[str, int]]:
    """A broker's `--flag name://host:port,…` values, by listener name."""
    out = {}
    for v in flag_values(cmd, flag):
        for item in v.split(","):
            m = re.match(r"^(?:(\w+)://)?([^:]+):(\d+)$", item.strip())
            if m:
                out[m.group(1) or "default"] = (m.group(2), int(m.group(3)))
    return out


def check_kafka_listeners(st: Stack, r: Report) -> tuple[int | None, int | None]:
    """kafka-listeners: one listener for the containers, one published for the host, and .env on the host one; returns their ports."""
    internal_port = None
    ext_port = None
    broker, dotenv, published = st.broker, st.dotenv, st.published
    if not broker:
        return internal_port, ext_port
    cmd = argv(st.services[broker].get("command"))
    bind = listeners(cmd, "--kafka-addr")
    adv = listeners(cmd, "--advertise-kafka-addr")
    r.check("kafka-listeners", len(bind) >= 2 and set(bind) == set(adv), f"service {broker}: want two named listeners in --kafka-addr and --advertise-kafka-addr, found {sorted(bind)} and {sorted(adv)}")
    for name, (host, port) in adv.items():
        if host == broker:
            internal_port = bind.get(name, ("", None))[1]
            r.check("kafka-listeners", internal_port == port, f"listener {name}: advertised {host}:{port} but listens on port {internal_port}")
        elif host in ("localhost", "127.0.0.1"):
            ext_port = port
            container = bind.get(name, ("", None))[1]
            r.check("kafka-listeners", published(broker, container) == port,
                    f"listener {name} advertises {host}:{port}, but host port {port} is not mapped to its container port {container}")
    r.check("kafka-listeners", internal_port is not None, f"service {broker}: no listener advertises {broker}:<port> for the containers")
    r.check("kafka-listeners", ext_port is not None, f"service {broker}: no listener advertises localhost:<port> for the host")
    h, p = host_port(dotenv.get("KAFKA_BOOTSTRAP_SERVERS", ""))
    r.check("kafka-listeners", h in ("localhost", "127.0.0.1") and p == ext_port and ext_port is not None,
            f".env KAFKA_BOOTSTRAP_SERVERS={dotenv.get('KAFKA_BOOTSTRAP_SERVERS')} is not the host listener localhost:{ext_port}")
    return internal_port, ext_port


def load_helps(bin_dir: Path, helps: dict[str, Help], r: Report):
    """binaries: each binary is built and answers --help; fills `helps`, which --self-test reuses for every broken copy."""
    for b in BINARIES:
        if b in helps:
            continue
        exe = bin_dir / b
        if not r.check("binaries", exe.exists(), f"{exe} is missing: cargo build --release --workspace --bins"):
            continue
        try:
            helps[b] = load_help(bin_dir, b)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            r.check("binaries", False, str(e))


def check_pipeline(st: Stack, helps: dict[str, Help], r: Report) -> dict[str, str]:
    """commands, env-required: each pipeline service runs a binary of the workspace, and all of them share the consumer's lake and keys (and topic, those on Kafka); returns the consumer's environment."""
    pipeline_env: dict[str, dict[str, str]] = {}
    for n, s in st.app_services.items():
        b = st.app_binaries.get(n)
        a = argv(s.get("entrypoint")) + argv(s.get("command"))
        if not r.check("commands", b in BINARIES, f"service {n} runs {a[:1]}, not one of {', '.join(BINARIES)}"):
            continue
        env = as_mapping(s.get("environment"))
        pipeline_env[n] = env
        check_pipeline_env(st, n, b, env, r)
        if b == "refiner":  # a service, not a one-off run (restart would rerun it)
            one_shot = [x for x in a[1:] if x.split("=")[0] in ("--once", "--check")]
            r.check("commands", not one_shot, f"service {n}: refiner {' '.join(one_shot)} exits after one round, but the service keeps the models up to date")
        h = helps.get(b)
        if h is None:
            continue
        check_command(n, b, a[1:], env, h, r)

    # One lake: every service's lake settings are the consumer's (it writes
    # bronze; the refiner reads it and writes silver and gold beside it).
    def lake(e: dict[str, str]) -> dict[str, str | None]:
        return {k: e.get(k, "us-east-1" if k == "AWS_REGION" else None) for k in LAKE_SETTINGS}

    ref = st.by_binary.get("consumer")
    ref = ref if ref in pipeline_env else next(iter(pipeline_env), None)
    for n, e in pipeline_env.items():
        if ref is None or n == ref:
            continue
        differ = [k for k in LAKE_SETTINGS if lake(e)[k] != lake(pipeline_env[ref])[k]]
        r.check("env-required", not differ, f"service {n} ({st.app_binaries.get(n)}) and {ref} disagree on the lake: {', '.join(differ)}")
    # One topic, among the services that use Kafka.
    topics = {n: e.get("KAFKA_TOPIC") for n, e in pipeline_env.items() if "KAFKA_TOPIC" in REQUIRED_ENV.get(st.app_binaries.get(n) or "", ())}
    r.check("env-required", len(set(topics.values())) <= 1, f"{', '.join(sorted(topics))} disagree on the topic: {topics}")
    return pipeline_env.get(ref, {}) if ref else {}


def check_pipeline_env(st: Stack, n: str, b: str, env: dict[str, str], r: Report):
    """env-required, env-file: service `n` reaches MinIO and the broker inside the network, in the bucket .env names."""
    minio, broker, dotenv = st.minio, st.broker, st.dotenv
    required = REQUIRED_ENV.get(b, LAKE_ENV + KAFKA_ENV)
    for k in required:
        r.check("env-required", bool(env.get(k)), f"service {n} ({b}) does not set {k}")
    if minio:
        r.check("env-required", env.get("AWS_ENDPOINT_URL") == f"http://{minio}:{st.api_port}",
                f"service {n}: AWS_ENDPOINT_URL={env.get('AWS_ENDPOINT_URL')}, want http://{minio}:{st.api_port} (MinIO inside the network)")
    if "KAFKA_BOOTSTRAP_SERVERS" not in required:
        kafka = sorted(k for k in env if k.startswith("KAFKA_"))
        r.check("env-read", not kafka, f"service {n} ({b}) sets {', '.join(kafka)}: {b} reads the lake only, no Kafka")
    elif broker and st.internal_port:
        r.check("env-required", env.get("KAFKA_BOOTSTRAP_SERVERS") == f"{broker}:{st.internal_port}",
                f"service {n}: KAFKA_BOOTSTRAP_SERVERS={env.get('KAFKA_BOOTSTRAP_SERVERS')}, want {broker}:{st.internal_port} (the internal listener)")
    r.check("env-required", bucket_of(env.get("LAKE_URL", "")) is not None, f"service {n}: LAKE_URL={env.get('LAKE_URL')} is not an s3:// lake")
    r.check("env-file", bucket_of(env.get("LAKE_URL", "")) == bucket_of(dotenv.get("LAKE_URL", "")),
            f"service {n}: LAKE_URL={env.get('LAKE_URL')} and .env LAKE_URL={dotenv.get('LAKE_URL')} name different buckets")


def check_command(n: str, b: str, args: list[str], env: dict[str, str], h: Help, r: Report):
    """commands, flags, flag-values, env-read, env-values, env-required: service `n`'s arguments and environment against `b --help`."""
    flags = dict(h.flags)
    if b == "inspector":
        sub = args[0] if args else None
        if not r.check("commands", sub in h.subcommands, f"service {n}: inspector subcommand {sub!r} is not one of {sorted(h.subcommands)}"):
            return
        flags = dict(h.subcommands[sub].flags)
        args = args[1:]
    check_flags(n, b, args, flags, r)
    envs = h.envs()
    for k, v in env.items():
        known = k in envs or EXTRA_ENV.match(k)
        r.check("env-read", bool(known), f"service {n} sets {k}, which {b} does not read (not in its --help, not a known variable)")
        f = envs.get(k)
        if f and f.values is not None:
            r.check("env-values", v in f.values, f"service {n}: {k}={v}: {b} accepts {', '.join(f.values)}")
    if b == "consumer":
        r.check("env-required", env.get("CREATE_BUCKET") == "false",
                f"service {n}: the pipeline's user may not create buckets, so the consumer needs CREATE_BUCKET=false (minio-init creates it)")
    if b in ("producer", "consumer"):
        mode = flag_values(args, "--sink" if b == "producer" else "--source")
        r.check("commands", mode == ["kafka"], f"service {n}: {b} should use Kafka (--{'sink' if b == 'producer' else 'source'} kafka), has {mode}")


def check_flags(n: str, b: str, args: list[str], flags: dict[str, Flag], r: Report):
    """flags, flag-values: every `--flag` of service `n` is one `b` has, with a value it accepts."""
    i = 0
    while i < len(args):
        tok = args[i]
        if tok.startswith("--"):
            name, eq, val = tok.partition("=")
            f = flags.get(name)
            if r.check("flags", f is not None, f"service {n}: {b} has no flag {name} (see {b} --help)") and f.takes_value:
                if not eq:
                    i += 1
                    val = args[i] if i < len(args) else None
                r.check("flags", val is not None, f"service {n}: {name} needs a value")
                if f.values is not None and val is not None:
                    r.check("flag-values", val in f.values, f"service {n}: {name} {val}: {b} accepts {', '.join(f.values)}")
        i += 1


def check_topic_init(st: Stack, r: Report):
    """topic-init: the init step creates the pipeline's topic, with 3 partitions, on the internal listener."""
    topic_init, pipe, dotenv = st.topic_init, st.pipe, st.dotenv
    if not topic_init:
        return
    text = " ".join(argv(st.services[topic_init].get("entrypoint")) + argv(st.services[topic_init].get("command")))
    m = re.search(r"rpk topic create (\S+)(.*?)(?:$|\|\||&&|;)", text)
    create = m.group(2) if m else ""
    topic = m.group(1) if m else None
    r.check("topic-init", topic == pipe.get("KAFKA_TOPIC"), f"service {topic_init} creates topic {topic}, the pipeline uses {pipe.get('KAFKA_TOPIC')}")
    r.check("topic-init", re.search(r"(--partitions|-p)[ =]3\b", create) is not None, f"service {topic_init} does not create the topic with 3 partitions: {create.strip()}")
    brokers = re.findall(r"-X brokers=(\S+)", text)
    r.check("topic-init", bool(brokers) and all(x == f"{st.broker}:{st.internal_port}" for x in brokers),
            f"service {topic_init} talks to {brokers}, want -X brokers={st.broker}:{st.internal_port}")
    r.check("topic-init", dotenv.get("KAFKA_TOPIC") == topic, f".env KAFKA_TOPIC={dotenv.get('KAFKA_TOPIC')}, the stack's topic is {topic}")


def check_minio_init(st: Stack, files: Files, r: Report):
    """minio-init-script, env-file: the init step runs a valid script of docker/, sets what it reads, and creates the pipeline's bucket and user."""
    minio, minio_init, api_port, pipe, dotenv = st.minio, st.minio_init, st.api_port, st.pipe, st.dotenv
    if not minio_init:
        return
    s = st.services[minio_init]
    ienv = as_mapping(s.get("environment"))
    a = argv(s.get("entrypoint")) + argv(s.get("command"))
    script_in_container = next((x for x in a if x.endswith(".sh")), None)
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in s.get("volumes") or [] if isinstance(v, str) and str(v).count(":") >= 1}
    host_src = mounts.get(script_in_container or "")
    rel = os.path.normpath(host_src) if host_src else None
    ok = r.check("minio-init-script", rel is not None and rel in files.scripts,
                 f"service {minio_init} runs {script_in_container}, which is not a mounted script of docker/ (mounts: {mounts})")
    script = files.scripts.get(rel or "", "")
    if not ok:
        return
    if shutil.which("sh"):
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
            f.write(script)
            f.flush()
            syn = subprocess.run(["sh", "-n", f.name], capture_output=True, text=True)
        r.check("minio-init-script", syn.returncode == 0, f"{rel}: sh -n: {syn.stderr.strip()}")
    body = re.sub(r"<<-?\s*'?(\w+)'?\n.*?\n\1\n", "\n", script, flags=re.S)
    body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("#"))
    assigned = set(re.findall(r"(?:^|[\s;!(])([A-Za-z_][A-Za-z0-9_]*)=", body))
    for var in sorted(set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", body)) - assigned):
        r.check("minio-init-script", var in ienv and ienv[var] != "", f"{rel} reads ${var}, which service {minio_init} does not set")
    r.check("minio-init-script", ienv.get("MINIO_URL", f"http://{minio}:{api_port}") == f"http://{minio}:{api_port}",
            f"service {minio_init}: MINIO_URL={ienv.get('MINIO_URL')}, want http://{minio}:{api_port}")
    bucket = ienv.get("BUCKET")
    r.check("minio-init-script", bucket is not None and bucket == bucket_of(pipe.get("LAKE_URL", "")),
            f"service {minio_init} creates bucket {bucket}, the pipeline's LAKE_URL is {pipe.get('LAKE_URL')}")
    r.check("minio-init-script", ienv.get("PIPELINE_ACCESS_KEY_ID") == pipe.get("AWS_ACCESS_KEY_ID") and ienv.get("PIPELINE_SECRET_ACCESS_KEY") == pipe.get("AWS_SECRET_ACCESS_KEY"),
            f"service {minio_init} creates a user whose keys are not the pipeline's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    r.check("minio-init-script", pipe.get("AWS_ACCESS_KEY_ID") not in (None, "", dotenv.get("MINIO_ROOT_USER")), "the pipeline's AWS_ACCESS_KEY_ID must differ from MINIO_ROOT_USER")
    r.check("minio-init-script", len(pipe.get("AWS_SECRET_ACCESS_KEY") or "") >= 8, "AWS_SECRET_ACCESS_KEY must be 8 characters or more (MinIO refuses shorter secrets)")
    r.check("env-file", dotenv.get("AWS_ACCESS_KEY_ID") == pipe.get("AWS_ACCESS_KEY_ID"), ".env AWS_ACCESS_KEY_ID (host binaries) is not the stack's pipeline user")
    check_policy(script, rel, bucket, r)


def check_policy(script: str, rel: str, bucket: str | None, r: Report):
    """policy: the init script attaches one policy to the pipeline's user, and it allows read and write on the bucket and nothing more."""
    created = re.findall(r"mc admin policy create \S+ (\S+) (\S+)", script)
    attached = re.findall(r"mc admin policy attach \S+ (\S+) --user \"?\$\{?(\w+)", script)
    r.check("policy", len(created) == 1, f"{rel}: want one `mc admin policy create`, found {len(created)}")
    r.check("policy", bool(attached) and created and attached[0] == (created[0][0], "PIPELINE_ACCESS_KEY_ID"),
            f"{rel}: the policy created ({created}) is not the one attached to $PIPELINE_ACCESS_KEY_ID ({attached})")
    heredocs = dict((m.group(1), m.group(2)) for m in re.finditer(r"<<-?\s*'?(\w+)'?\n(.*?)\n\1\n", script, re.S))
    policy_file = created[0][1] if created else None
    writes = re.findall(r"cat > (\S+) <<-?\s*'?(\w+)'?", script)
    doc_name = next((d for f_, d in writes if f_ == policy_file), None)
    text = heredocs.get(doc_name or "", "")
    text = re.sub(r"\$\{?BUCKET\}?", bucket or "", text)
    try:
        policy = json.loads(text)
    except json.JSONDecodeError as e:
        r.check("policy", False, f"{rel}: the policy written to {policy_file} is not JSON: {e}")
        return
    r.check("policy", True, "")
    stmts = policy.get("Statement", [])
    stmts = [stmts] if isinstance(stmts, dict) else stmts
    allowed: dict[str, set[str]] = {}
    for st in stmts:
        acts = st.get("Action", [])
        acts = [acts] if isinstance(acts, str) else acts
        res = st.get("Resource", [])
        res = [res] if isinstance(res, str) else res
        r.check("policy", st.get("Effect") == "Allow" and "NotAction" not in st and "NotResource" not in st, f"{rel}: unexpected statement {st}")
        for act in acts:
            r.check("policy", not FORBIDDEN_ACTIONS.match(act), f"{rel}: the pipeline's policy allows {act}: more than read/write on the bucket")
            for x in res:
                r.check("policy", x in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"), f"{rel}: the policy grants {act} on {x}, beyond bucket {bucket}")
                allowed.setdefault(act, set()).add(x)
    for act, res in (("s3:ListBucket", f"arn:aws:s3:::{bucket}"), ("s3:GetObject", f"arn:aws:s3:::{bucket}/*"),
                     ("s3:PutObject", f"arn:aws:s3:::{bucket}/*"), ("s3:DeleteObject", f"arn:aws:s3:::{bucket}/*")):
        r.check("policy", res in allowed.get(act, set()), f"{rel}: the pipeline needs {act} on {res}")


def check_makefile(st: Stack, files: Files, r: Report):
    """makefile: the services, image and URLs the Makefile names are the Compose file's, and `make stop` stops the whole pipeline."""
    services, minio, broker = st.services, st.minio, st.broker
    mk = dict(re.findall(r"^([A-Z][A-Z0-9_]*)\s*[:?]?=[ \t]*(.*)$", files.makefile, re.M))
    compose_cmds = re.findall(r"\$\(COMPOSE\)((?:[^\n;\\]|\\\n)*)", files.makefile)
    stopped: set[str] = set()
    for cmd in compose_cmds:
        words = [w.strip("\"'") for w in cmd.split()]
        for verb in ("stop", "run", "build", "logs"):
            if verb in words:
                names = [w for w in words[words.index(verb) + 1 :] if not w.startswith("-") and not w.startswith("$(")]
                if verb == "run":
                    names = names[:1]
                if verb == "stop":
                    stopped.update(names)
                for name in names:
                    r.check("makefile", name in services, f"Makefile: `$(COMPOSE){cmd.strip()}` names service {name}, which docker-compose.yml does not have")
    for b in LONG_RUNNING:
        n = st.by_binary.get(b)
        if n:
            r.check("makefile", n in stopped, f"Makefile: `make stop` does not stop service {n} ({b}): `$(COMPOSE) stop` names {sorted(stopped)}")
    for name in (mk.get("LOGS") or "").split():
        r.check("makefile", name in services, f"Makefile: LOGS names service {name}, which docker-compose.yml does not have")
    r.check("makefile", mk.get("IMAGE") == st.app_image, f"Makefile IMAGE={mk.get('IMAGE')}, docker-compose.yml builds {st.app_image}")
    if minio:
        r.check("makefile", mk.get("CONSOLE_URL") == "http://localhost:9001" and mk.get("S3_URL") == f"http://localhost:{st.published(minio, st.api_port)}",
                f"Makefile CONSOLE_URL / S3_URL ({mk.get('CONSOLE_URL')}, {mk.get('S3_URL')}) are not MinIO's published ports")
    if broker:
        r.check("makefile", mk.get("KAFKA_HOST") == f"localhost:{st.ext_port}", f"Makefile KAFKA_HOST={mk.get('KAFKA_HOST')}, the host listener is localhost:{st.ext_port}")


_LIBS: dict[Path, list[tuple[str, str]]] = {}


def shared_library_packages(exe: Path) -> list[tuple[str, str]]:
    """(library, Debian package) for each shared library `ldd` lists; cached (dpkg -S is slow)."""
    if exe not in _LIBS:
        out = subprocess.run(["ldd", str(exe)], capture_output=True, text=True).stdout
        found = []
        for lib in re.findall(r"=>\s+(/\S+)", out):
            real = os.path.realpath(lib)
            pk = ""
            for cand in (lib, real, lib.replace("/lib/", "/usr/lib/", 1), real.replace("/usr/lib/", "/lib/", 1)):
                q = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
                if q.returncode == 0:
                    pk = q.stdout.split(":")[0]
                    break
            found.append((os.path.basename(lib), pk))
        _LIBS[exe] = found
    return _LIBS[exe]


def copy_parts(args: str) -> tuple[list[str], list[str], str | None]:
    """A COPY's (--flags, sources, destination), shell or JSON form."""
    a = args.strip()
    try:
        words = [str(w) for w in json.loads(a)] if a.startswith("[") else shlex.split(a)
    except (ValueError, json.JSONDecodeError):
        words = a.split()
    flags = [w for w in words if w.startswith("--")]
    rest = [w for w in words if not w.startswith("--")]
    return flags, rest[:-1], (rest[-1] if len(rest) >= 2 else None)


def check_dockerfile(files: Files, root: Path, bin_dir: Path, r: Report, services, app_services, app_binaries):
    stages = parse_dockerfile(files.dockerfile)
    if not r.check("dockerfile", len(stages) >= 2, "Dockerfile: want a multi-stage build (build stage, runtime stage)"):
        return
    names = {s.name for s in stages if s.name}
    for s in stages:
        if s.base in names:
            continue
        _, tag = image_tag(s.base)
        r.check("images-pinned", tag is not None and tag != "latest", f"Dockerfile: FROM {s.base} is not pinned")
    cargo = tomllib.loads(files.cargo) if files.cargo else {}
    members = cargo.get("workspace", {}).get("members", [])
    build = next((s for s in stages if any("cargo build" in a for a in s.all("RUN"))), None)
    runtime = stages[-1]
    if not r.check("dockerfile", build is not None, "Dockerfile: no stage runs cargo build"):
        return
    runs = build.all("RUN")
    first_build = next((i for i, (ins, a) in enumerate(build.instructions) if ins == "RUN" and "cargo build" in a), None)
    copy_all = next((i for i, (ins, a) in enumerate(build.instructions) if ins == "COPY" and re.match(r"^\.\s", a)), None)
    r.check("dockerfile-workspace", first_build is not None and copy_all is not None and first_build < copy_all,
            "Dockerfile: dependencies are not built before `COPY . .`, so every code change rebuilds DuckDB and librdkafka")
    # The dependency build sees the manifests of every member through a stage
    # that keeps only Cargo.toml / Cargo.lock and adds placeholder sources.
    manifests = next((s for s in stages if any(re.match(r"^\.\s", a) for a in s.all("COPY"))
                      and any("Cargo.toml" in a and "-delete" in a and "src/lib.rs" in a and "src/main.rs" in a for a in s.all("RUN"))), None)
    from_manifests = next((i for i, (ins, a) in enumerate(build.instructions)
                           if manifests is not None and ins == "COPY" and a.startswith(f"--from={manifests.name} ")), None)
    r.check("dockerfile-workspace", manifests is not None and from_manifests is not None and first_build is not None and from_manifests < first_build,
            "Dockerfile: the dependency build does not start from the workspace's manifests (a stage keeping every Cargo.toml and Cargo.lock, with placeholder src/lib.rs and src/main.rs)")
    for m in members:
        manifest = root / m / "Cargo.toml"
        if not r.check("dockerfile-workspace", manifest.exists(), f"workspace member {m} has no Cargo.toml"):
            continue
        spec = tomllib.loads(manifest.read_text())
        paths = [t.get("path") for t in spec.get("bin", []) + ([spec["lib"]] if "lib" in spec else []) if t.get("path")]
        for path in paths:
            r.check("dockerfile-workspace", path in ("src/main.rs", "src/lib.rs"),
                    f"workspace member {m} has a target at {path}: the Dockerfile's placeholders (src/lib.rs, src/main.rs) do not cover it")
    bins = {m for m in members if (root / m / "src" / "main.rs").exists()}
    for m in members:
        manifest = root / m / "Cargo.toml"
        if manifest.exists():
            for b in tomllib.loads(manifest.read_text()).get("bin", []):
                bins.add(b.get("name", m))
    # What the image must ship: every binary of the stack, whether or not a service runs it yet.
    wanted = {b for b in app_binaries.values() if b} | set(BINARIES)
    for b in sorted(wanted):
        r.check("dockerfile-binaries", b in bins, f"the image ships {b} (docker-compose.yml, BINARIES), which is not a binary of the Cargo workspace (members: {', '.join(members)})")
    cargo_builds = [a for a in runs if "cargo build" in a]
    selections = []
    for a in cargo_builds:
        cmd = a[a.index("cargo build") :].split("&&")[0]
        r.check("dockerfile", "--release" in cmd and "--locked" in cmd, f"Dockerfile: `{cmd.strip()}` wants --release --locked")
        pk = sorted(re.findall(r"-p\s+(\S+)", cmd))
        selections.append(tuple(pk) if pk else ("--workspace",) if "--workspace" in cmd else ())
        for b in sorted(wanted):
            r.check("dockerfile-binaries", b in pk or "--workspace" in cmd, f"Dockerfile: `{cmd.strip()}` does not build {b}")
    r.check("dockerfile-workspace", len(set(selections)) == 1, f"Dockerfile: the dependency build and the final build select different packages ({selections}), so the cache is not reused")
    final_run = " ".join(runs)
    rt_copies = runtime.all("COPY")
    for b in sorted(wanted):
        r.check("dockerfile-binaries", f"target/release/{b}" in final_run, f"Dockerfile: target/release/{b} is never taken from the build")
        r.check("dockerfile-binaries", any(re.search(rf"--from=\S+ .*\b{b}\b.* /usr/(local/)?bin/?$", c) for c in rt_copies),
                f"Dockerfile: the runtime stage does not copy {b} into /usr/local/bin")
    user = (runtime.all("USER") or ["root"])[-1].split(":")[0]
    r.check("dockerfile-user", user not in ("root", "0"), f"Dockerfile: the runtime stage runs as {user}; use a non-root user")
    r.check("dockerfile", any(w in runtime.base for w in ("slim", "distroless", "alpine")), f"Dockerfile: the runtime stage is based on {runtime.base}, not a slim image")
    rust = next((s.base for s in stages if s.base.startswith("rust:")), "")
    mv = re.match(r"rust:(\d+)\.(\d+)", rust)
    need = cargo.get("workspace", {}).get("package", {}).get("rust-version", "0.0")
    nv = tuple(int(x) for x in need.split(".")[:2])
    r.check("dockerfile", bool(mv) and (int(mv.group(1)), int(mv.group(2))) >= nv, f"Dockerfile: {rust or 'no rust image'} is older than the workspace's rust-version {need}")

    # The httpfs extension: the version of the bundled DuckDB, at the path the image announces.
    lock = tomllib.loads(files.cargo_lock) if files.cargo_lock else {}
    duck = next((p["version"] for p in lock.get("package", []) if p["name"] in ("libduckdb-sys", "duckdb")), None)
    if duck:
        minor = int(duck.split(".")[1])
        dv = f"{minor // 10000}.{minor // 100 % 100}.{minor % 100}"
        for name in ("httpfs", "delta"):
            pins = set(re.findall(rf"duckdb-extension-{name}==([\d.]+)", files.dockerfile))
            r.check("httpfs", pins == {dv}, f"Dockerfile: duckdb-extension-{name} pinned to {sorted(pins)}, the bundled DuckDB is {dv} (duckdb crate {duck})")
            r.check("httpfs", set(re.findall(rf"extensions/v([\d.]+)/{name}", files.dockerfile)) == {dv}, f"Dockerfile: the {name} extension path is not extensions/v{dv}/")
            r.check("httpfs", set(re.findall(rf"duckdb-extension-{name}==([\d.]+)", files.ci_run)) <= {dv}, f".ci/run pins another duckdb-extension-{name} than {dv}")
    env_lines = " ".join(runtime.all("ENV"))
    for var in ("DUCKDB_HTTPFS_EXTENSION", "DUCKDB_DELTA_EXTENSION"):
        m = re.search(rf"{var}[= ](\S+)", env_lines)
        ext = m.group(1) if m else None
        r.check("httpfs", ext is not None and any(c.rstrip().endswith(" " + ext) for c in rt_copies),
                f"Dockerfile: {var}={ext} is not a file the runtime stage copies in")

    # The refiner's SQL models: MODELS_DIR (the image's, or the service's own
    # MODELS_DIR / --models) is where the runtime stage copies models/, or a
    # volume mounted into the service.
    copies = [copy_parts(c) for c in rt_copies]
    models_dirs = {os.path.normpath(dest) for flags, srcs, dest in copies
                   if dest and not any(f.startswith("--from") for f in flags) and any(os.path.normpath(x) == "models" for x in srcs)}
    r.check("dockerfile-models", any((root / "models").rglob("*.sql")), "models/ has no SQL model (models/silver/*.sql, models/gold/*.sql) for the image")
    m = re.search(r"(?<![A-Z0-9_])MODELS_DIR[= ](\S+)", env_lines)
    image_dir = m.group(1).strip("\"'") if m else None
    r.check("dockerfile-models", image_dir is not None and os.path.normpath(image_dir) in models_dirs,
            f"Dockerfile: ENV MODELS_DIR={image_dir} is not a directory the runtime stage copies models into (COPY models <dir>: {sorted(models_dirs)})")
    for n, b in app_binaries.items():
        if b != "refiner":
            continue
        s = app_services.get(n) or {}
        a = argv(s.get("entrypoint")) + argv(s.get("command"))
        own = (flag_values(a[1:], "--models") or [None])[-1] or as_mapping(s.get("environment")).get("MODELS_DIR")
        if own:
            mounted = {os.path.normpath(str(v).split(":")[1]) for v in s.get("volumes") or [] if isinstance(v, str) and ":" in str(v)}
            mounted |= {os.path.normpath(str(v["target"])) for v in s.get("volumes") or [] if isinstance(v, dict) and v.get("target")}
            r.check("dockerfile-models", os.path.normpath(own) in models_dirs | mounted,
                    f"service {n}: the refiner's models directory {own} is neither where the image has models/ ({sorted(models_dirs)}) nor a volume of the service")

    # Shared libraries of the built binaries: each one's Debian package in the runtime stage.
    installed = set()
    for a in runtime.all("RUN"):
        for m2 in re.finditer(r"apt-get install ([^&|;]*)", a):
            installed |= {w for w in m2.group(1).split() if not w.startswith("-")}
    if shutil.which("ldd") and shutil.which("dpkg"):
        for b in sorted(wanted):
            exe = bin_dir / b
            if not exe.exists():
                continue
            for lib, pk in shared_library_packages(exe):
                if not pk or pk in ("libc6", "libgcc-s1"):  # in every Debian image
                    continue
                r.check("dockerfile-libraries", pk in installed, f"Dockerfile: {b} needs {lib} from {pk}, which the runtime stage does not install")
    else:
        r.skip("dockerfile-libraries", "ldd or dpkg not found")

    # .dockerignore: keeps out the junk, keeps in what the build copies.
    pats = dockerignore_patterns(files.dockerignore)
    for p in (".git", "target", ".env", "data"):
        r.check("dockerignore", dockerignored(p, pats), f".dockerignore does not exclude {p}")
    needed = ["Cargo.toml", "Cargo.lock"]
    for m_ in members:
        needed.append(f"{m_}/Cargo.toml")
        src = root / m_ / "src"
        if src.is_dir():
            needed += [str(f.relative_to(root)) for f in src.rglob("*") if f.is_file()]
        for inc in re.findall(r'include_(?:str|bytes)!\("([^"]+)"\)', " ".join(f.read_text() for f in src.rglob("*.rs")) if src.is_dir() else ""):
            for f in src.rglob("*.rs"):
                cand = (f.parent / inc).resolve()
                if cand.exists():
                    needed.append(str(cand.relative_to(root)))
    # What the runtime stage copies from the build context (the models).
    for flags, srcs, _ in copies:
        if any(f.startswith("--from") for f in flags):
            continue
        for x in srcs:
            src = root / x
            if src.is_file():
                needed.append(os.path.normpath(x))
            elif src.is_dir():
                needed += [str(f.relative_to(root)) for f in src.rglob("*") if f.is_file()]
    for p in sorted(set(needed)):
        r.check("dockerignore", not dockerignored(p, pats), f".dockerignore excludes {p}, which the image build needs")


# --------------------------------------------------------------------------
# Monitoring: /metrics, Prometheus, Grafana, the dashboards, the status page


def listen_port(addr: str) -> tuple[str, int | None]:
    """host:port (`:port`, `[::]:port`) as (host, port); port None when there is none."""
    m = re.match(r"^(\[[^\]]*\]|[^:]*):(\d+)$", (addr or "").strip())
    return (m.group(1), int(m.group(2))) if m else (addr, None)


def reachable_host(host: str) -> bool:
    """Whether a server bound to `host` answers other containers (not loopback only)."""
    return host in ("", "0.0.0.0", "[::]", "::")


def bind_mounts(svc: dict) -> list[tuple[str, str]]:
    """(repo-relative source, container path) of each bind mount."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            if v.get("type") == "bind" and v.get("source") and v.get("target"):
                out.append((os.path.normpath(str(v["source"])), str(v["target"]).rstrip("/") or "/"))
            continue
        parts = str(v).split(":")
        if len(parts) >= 2 and parts[0].startswith((".", "/")):
            out.append((os.path.normpath(parts[0]), parts[1].rstrip("/") or "/"))
    return out


def in_repo(svc: dict, container_path: str) -> str | None:
    """The repo-relative path a bind mount of `svc` shows at `container_path`, if one does."""
    path = os.path.normpath(container_path)
    best = None
    for src, dst in bind_mounts(svc):
        if path == dst or path.startswith(dst.rstrip("/") + "/"):
            if best is None or len(dst) > len(best[1]):
                best = (src, dst)
    if best is None:
        return None
    return os.path.normpath(best[0] + path[len(best[1]):])


def repo_text(files: Files, root: Path, rel: str) -> str | None:
    """A file's text: monitoring/ from `files` (so --self-test's broken copies count), the rest from disk."""
    if rel in files.monitoring:
        return files.monitoring[rel]
    if rel.startswith("monitoring/"):
        return None
    p = root / rel
    return p.read_text() if p.is_file() else None


def repo_dir(files: Files, root: Path, rel: str) -> dict[str, str]:
    """The files directly in a repository directory, by repo-relative path."""
    rel = rel.rstrip("/")
    if rel == "monitoring" or rel.startswith("monitoring/"):
        return {k: v for k, v in files.monitoring.items() if os.path.dirname(k) == rel}
    d = root / rel
    return {str(p.relative_to(root)): p.read_text() for p in sorted(d.glob("*")) if p.is_file()} if d.is_dir() else {}


def prom_duration(text) -> float | None:
    """A Prometheus duration (1m, 10s, 1h30m, 500ms) in seconds; None if it is not one."""
    m = re.fullmatch(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?", str(text))
    if not m or not str(text) or not any(m.groups()):
        return None
    scale = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
    return sum(int(g) * s for g, s in zip(m.groups(), scale) if g)


def prometheus_port(st: Stack) -> int:
    a = argv(st.services.get(st.prometheus or "", {}).get("command"))
    return listen_port((flag_values(a, "--web.listen-address") or [":9090"])[-1])[1] or 9090


def grafana_port(st: Stack) -> int:
    env = as_mapping(st.services.get(st.grafana or "", {}).get("environment"))
    try:
        return int(env.get("GF_SERVER_HTTP_PORT") or 3000)
    except ValueError:
        return 3000


def check_metrics_endpoints(st: Stack, helps: dict[str, Help], r: Report) -> dict[str, int]:
    """metrics: every consumer and refiner service serves /metrics (METRICS_ADDR, or the binary's default) where other containers reach it; returns service -> port."""
    out: dict[str, int] = {}
    for n in st.running(*METRICS_BINARIES):
        b = st.app_binaries[n]
        s = st.services[n]
        env = as_mapping(s.get("environment"))
        flag = helps[b].envs().get("METRICS_ADDR") if b in helps else None
        if b in helps:
            r.check("metrics", flag is not None, f"{b} --help has no [env: METRICS_ADDR]: it serves no /metrics for Prometheus")
        a = argv(s.get("entrypoint")) + argv(s.get("command"))
        addr = (flag_values(a[1:], "--metrics-addr") or [None])[-1]
        addr = addr if addr is not None else env.get("METRICS_ADDR", flag.default if flag else None)
        if addr is None:
            continue
        host, port = listen_port(addr)
        if not r.check("metrics", addr != "" and port is not None, f"service {n}: METRICS_ADDR={addr!r} serves nothing: Prometheus and the status page scrape it (want 0.0.0.0:9464)"):
            continue
        r.check("metrics", reachable_host(host), f"service {n}: METRICS_ADDR={addr} listens on {host} only: other containers cannot scrape it (want 0.0.0.0:{port})")
        r.check("metrics", "--once" not in a[1:], f"service {n}: {b} --once serves no /metrics")
        out[n] = port
    return out


def scrape_targets(job: dict) -> list[tuple[str, int | None, str]]:
    """(host, port, how) of a scrape job's static and DNS targets."""
    out = []
    for sc in job.get("static_configs") or []:
        for tg in (sc or {}).get("targets") or []:
            h, p = listen_port(str(tg))
            out.append((h, p, f"static target {tg}"))
    for dc in job.get("dns_sd_configs") or []:
        dc = dc or {}
        typ = str(dc.get("type", "SRV")).upper()
        for name in dc.get("names") or []:
            port = dc.get("port") if typ in ("A", "AAAA") else None
            out.append((str(name), int(port) if isinstance(port, int) else None, f"dns_sd_configs {name} (type {typ})"))
    return out


def check_prometheus(st: Stack, files: Files, root: Path, r: Report) -> tuple[int, float | None]:
    """prometheus: the config file Prometheus is given is a file of the repository, parses, scrapes every 5–15 s exactly the consumer and refiner services on their METRICS_ADDR port, and Prometheus is published on 9090; returns its port and scrape interval."""
    n = st.prometheus
    port = prometheus_port(st)
    if not n:
        return port, None
    s = st.services[n]
    a = argv(s.get("entrypoint")) + argv(s.get("command"))
    r.check("prometheus", st.published(n, port) == 9090, f"service {n}: Prometheus (container port {port}) is not published on host port 9090")
    config = (flag_values(a, "--config.file") or ["/etc/prometheus/prometheus.yml"])[-1]
    rel = in_repo(s, config)
    text = repo_text(files, root, rel) if rel else None
    if not r.check("prometheus", text is not None, f"service {n}: its --config.file {config} is not a file of the repository mounted into it (bind mounts: {bind_mounts(s)})"):
        return port, None
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        r.check("prometheus", False, f"{rel} is not YAML: {e}")
        return port, None
    if not r.check("prometheus", isinstance(cfg, dict) and isinstance(cfg.get("scrape_configs"), list) and cfg["scrape_configs"],
                   f"{rel}: no scrape_configs list"):
        return port, None
    glob = cfg.get("global") or {}
    known = {"global", "scrape_configs", "rule_files", "alerting", "remote_write", "remote_read", "storage", "tracing", "otlp", "runtime", "scrape_config_files"}
    r.check("prometheus", set(cfg) <= known, f"{rel}: unknown top-level keys {sorted(set(cfg) - known)} (Prometheus refuses the file)")

    def timing(where: str, d: dict, interval_default: float, timeout_default: float) -> float | None:
        iv = prom_duration(d.get("scrape_interval")) if "scrape_interval" in d else interval_default
        to = prom_duration(d.get("scrape_timeout")) if "scrape_timeout" in d else min(timeout_default, iv or timeout_default)
        if not r.check("prometheus", iv is not None and to is not None, f"{rel} {where}: scrape_interval {d.get('scrape_interval')!r} / scrape_timeout {d.get('scrape_timeout')!r} are not Prometheus durations"):
            return None
        r.check("prometheus", 5 <= iv <= 15, f"{rel} {where}: scrape_interval {d.get('scrape_interval', '1m')} is not 5–15 s")
        r.check("prometheus", to <= iv, f"{rel} {where}: scrape_timeout {to:g}s is longer than scrape_interval {iv:g}s (Prometheus refuses it)")
        return iv

    interval = timing("global", glob, 60.0, 10.0)
    g_timeout = prom_duration(glob.get("scrape_timeout", "10s")) or 10.0
    names = [j.get("job_name") for j in cfg["scrape_configs"] if isinstance(j, dict)]
    r.check("prometheus", len(names) == len(cfg["scrape_configs"]) and all(names) and len(set(names)) == len(names), f"{rel}: job_name missing or repeated: {names}")
    scraped: dict[str, int] = {}
    for job in cfg["scrape_configs"]:
        if not isinstance(job, dict):
            continue
        jn = job.get("job_name")
        timing(f"job {jn}", job, interval or 60.0, g_timeout)
        r.check("prometheus", job.get("metrics_path", "/metrics") == "/metrics" and job.get("scheme", "http") == "http",
                f"{rel} job {jn}: scrapes {job.get('scheme', 'http')}://…{job.get('metrics_path', '/metrics')}, the binaries serve http://…/metrics")
        targets = scrape_targets(job)
        r.check("prometheus", bool(targets), f"{rel} job {jn}: no static_configs or dns_sd_configs targets")
        for host, p, how in targets:
            want = st.metrics.get(host)
            r.check("prometheus", want is not None and p == want,
                    f"{rel} job {jn}: {how} is not a consumer or refiner service on its METRICS_ADDR port "
                    f"({', '.join(f'{k}:{v}' for k, v in st.metrics.items()) or 'none'}) (dns_sd_configs needs type A and a port)")
            if want is not None and p == want:
                scraped[host] = scraped.get(host, 0) + 1
    for svc in st.metrics:
        r.check("prometheus", scraped.get(svc) == 1, f"{rel}: service {svc}'s /metrics is scraped {scraped.get(svc, 0)} times, want once")
    return port, interval


def check_grafana(st: Stack, files: Files, root: Path, prom_port: int, interval: float | None, r: Report) -> tuple[set[str], dict[str, str]]:
    """grafana: published on 3000, anonymous users view only, the admin's password comes from .env, the provisioned datasource is the prometheus service (through Grafana's proxy) and the dashboard providers load files of the repository; returns the datasource uids and the dashboards (repo path -> text)."""
    n = st.grafana
    uids: set[str] = set()
    dashboards: dict[str, str] = {}
    if not n:
        return uids, dashboards
    s = st.services[n]
    env = as_mapping(s.get("environment"))
    raw_env = as_mapping((st.raw_services.get(n) or {}).get("environment"))
    port = grafana_port(st)
    r.check("grafana", st.published(n, port) == 3000, f"service {n}: Grafana (container port {port}) is not published on host port 3000")
    if env.get("GF_AUTH_ANONYMOUS_ENABLED", "false").lower() == "true":
        role = env.get("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer")
        r.check("grafana", role == "Viewer", f"service {n}: anonymous visitors get role {role}; only Viewer (they could edit the dashboards and datasources)")
    for key in ("GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD"):
        r.check("grafana", bool(env.get(key)) and "${" in raw_env.get(key, ""), f"service {n}: {key} is not taken from .env (${{GRAFANA_…}})")
    r.check("grafana", env.get("GF_SECURITY_ADMIN_PASSWORD") not in ("admin", ""), f"service {n}: the admin password is Grafana's default")

    prov = env.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
    prov_rel = in_repo(s, prov)
    if not r.check("grafana", prov_rel is not None, f"service {n}: no directory of the repository is mounted at {prov} (GF_PATHS_PROVISIONING)"):
        return uids, dashboards

    def yamls(kind: str) -> dict[str, object]:
        found = {k: v for k, v in repo_dir(files, root, f"{prov_rel}/{kind}").items() if k.endswith((".yml", ".yaml"))}
        r.check("grafana", bool(found), f"{prov_rel}/{kind}/ has no *.yml for Grafana to provision")
        out = {}
        for rel, text in found.items():
            try:
                doc = yaml.safe_load(text)
            except yaml.YAMLError as e:
                r.check("grafana", False, f"{rel} is not YAML: {e}")
                continue
            if r.check("grafana", isinstance(doc, dict) and doc.get("apiVersion") == 1, f"{rel}: want a mapping with apiVersion: 1"):
                out[rel] = doc
        return out

    defaults = 0
    prom_sources = 0
    for rel, doc in yamls("datasources").items():
        for ds in doc.get("datasources") or []:
            if not r.check("grafana", isinstance(ds, dict) and ds.get("name") and ds.get("type"), f"{rel}: a datasource without name or type: {ds}"):
                continue
            defaults += bool(ds.get("isDefault"))
            if ds.get("uid"):
                uids.add(str(ds["uid"]))
            if ds.get("type") != "prometheus":
                continue
            prom_sources += 1
            r.check("grafana", bool(ds.get("uid")), f"{rel}: datasource {ds['name']} has no uid for the dashboards to name")
            m = re.match(r"^https?://([^/:]+)(?::(\d+))?/?$", str(ds.get("url", "")))
            r.check("grafana", bool(m) and m.group(1) == st.prometheus and int(m.group(2) or 80) == prom_port,
                    f"{rel}: datasource {ds['name']} url {ds.get('url')} is not the prometheus service (http://{st.prometheus}:{prom_port})")
            r.check("grafana", ds.get("access", "proxy") == "proxy", f"{rel}: datasource {ds['name']} access {ds.get('access')}: a browser cannot resolve {st.prometheus}; use proxy")
            ti = (ds.get("jsonData") or {}).get("timeInterval")
            if ti is not None and interval is not None:
                r.check("grafana", prom_duration(ti) == interval, f"{rel}: datasource {ds['name']} timeInterval {ti} is not Prometheus' scrape_interval ({interval:g}s)")
    r.check("grafana", prom_sources >= 1, f"{prov_rel}/datasources/: no prometheus datasource")
    r.check("grafana", defaults == 1, f"{prov_rel}/datasources/: {defaults} datasources are isDefault, want one")

    for rel, doc in yamls("dashboards").items():
        for pv in doc.get("providers") or []:
            if not r.check("grafana", isinstance(pv, dict) and pv.get("name"), f"{rel}: a provider without name: {pv}"):
                continue
            r.check("grafana", pv.get("type", "file") == "file", f"{rel}: provider {pv['name']} has type {pv.get('type')}, want file")
            path = str((pv.get("options") or {}).get("path") or "")
            drel = in_repo(s, path) if path else None
            found = {k: v for k, v in repo_dir(files, root, drel).items() if k.endswith(".json")} if drel else {}
            r.check("grafana", bool(found), f"{rel}: provider {pv['name']} loads {path or '(no options.path)'}, which is no directory of the repository with *.json mounted into {n}")
            dashboards.update(found)
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        hrel = in_repo(s, home)
        r.check("grafana", hrel in dashboards, f"service {n}: GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH={home} is not a provisioned dashboard ({sorted(dashboards)})")
    return uids, dashboards


def strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


@dataclass
class Scrape:
    """The series of some /metrics scrapes: sample name -> label names, and family -> TYPE."""

    series: dict[str, set[str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def parse(text: str, into: "Scrape") -> int:
        samples = 0
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            m = re.match(r"^# TYPE ([A-Za-z_:][\w:]*) (\w+)$", line)
            if m:
                into.types[m.group(1)] = m.group(2)
                continue
            if line.startswith("#"):
                continue
            m = re.match(r"^([A-Za-z_:][\w:]*)(\{.*\})?\s+\S+(\s+-?\d+)?$", line)
            if m:
                samples += 1
                labels = set(re.findall(r'([A-Za-z_]\w*)="(?:[^"\\]|\\.)*"', m.group(2) or ""))
                into.series.setdefault(m.group(1), set()).update(labels)
        return samples


def exported_metrics(metrics_rs: str) -> tuple[set[str], set[str]]:
    """(families, sample names) lake/src/metrics.rs exports: a histogram's samples are _bucket, _sum, _count."""
    histograms = set(re.findall(r'HistogramOpts::new\(\s*"((?:lakehouse)_\w+)"', metrics_rs))
    families = set(re.findall(r'"(lakehouse_\w+)"', metrics_rs))
    samples = {f for f in families if f not in histograms} | {f"{h}_{s}" for h in histograms for s in ("bucket", "sum", "count")}
    if "ProcessCollector" in metrics_rs:
        samples |= set(PROCESS_METRICS)
    return families, samples


def dashboard_queries(dash: dict) -> tuple[list[dict], list[tuple[str, str]], list[str]]:
    """(panels, flattened with rows' own panels; (where, PromQL) of every target and query variable; datasources named)."""
    panels = []
    for p in dash.get("panels") or []:
        if isinstance(p, dict):
            panels.append(p)
            panels += [q for q in p.get("panels") or [] if isinstance(q, dict)]
    exprs, sources = [], []
    for p in panels:
        if p.get("datasource") is not None:
            sources.append(p["datasource"])
        for t in p.get("targets") or []:
            exprs.append((f"panel {p.get('id')} ({p.get('title')}) {t.get('refId')}", str(t.get("expr") or "")))
            if t.get("datasource") is not None:
                sources.append(t["datasource"])
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            exprs.append((f"variable {v.get('name')}", str(q or "")))
            if v.get("datasource") is not None:
                sources.append(v["datasource"])
    return panels, exprs, sources


def check_dashboards(dashboards: dict[str, str], uids: set[str], files: Files, r: Report):
    """dashboard, dashboard-metrics, dashboard-scrape: each dashboard parses, has panels with queries on the provisioned datasource, and its PromQL uses only metrics lake/src/metrics.rs exports (histograms through _bucket/_sum/_count, quantiles by le), covers every lakehouse_* metric, and (with --metrics) finds each metric and each label it filters or groups by in the real scrapes."""
    families, exported = exported_metrics(files.metrics_rs)
    r.check("dashboard-metrics", bool(families), "lake/src/metrics.rs declares no lakehouse_* metric")
    scrape = Scrape()
    for path, text in files.scrapes.items():
        r.check("dashboard-scrape", Scrape.parse(text, scrape) > 0, f"--metrics {path}: no samples in the Prometheus text format")
    if not files.scrapes:
        r.skip("dashboard-scrape", "no --metrics FILE given (a real /metrics scrape of the consumer and the refiner)")
    if dashboards:
        r.check("dashboard", True, "")
    used_anywhere: set[str] = set()
    seen_uids: set[str] = set()
    for rel, text in sorted(dashboards.items()):
        try:
            dash = json.loads(text)
        except json.JSONDecodeError as e:
            r.check("dashboard", False, f"{rel} is not JSON: {e}")
            continue
        if not r.check("dashboard", isinstance(dash, dict) and dash.get("uid") and dash.get("title"), f"{rel}: a dashboard wants a uid and a title"):
            continue
        r.check("dashboard", dash["uid"] not in seen_uids, f"{rel}: dashboard uid {dash['uid']} is used twice")
        seen_uids.add(dash["uid"])
        panels, exprs, sources = dashboard_queries(dash)
        ids = [p.get("id") for p in panels]
        r.check("dashboard", bool(panels) and len(set(ids)) == len(ids) and None not in ids, f"{rel}: panels missing, or panel ids missing or repeated: {ids}")
        for p in panels:
            if p.get("type") == "row":
                continue
            targets = p.get("targets") or []
            r.check("dashboard", bool(targets) and all(str(t.get("expr") or "").strip() for t in targets),
                    f"{rel}: panel {p.get('id')} ({p.get('title')}) has a target without a PromQL expr")
            refs = [t.get("refId") for t in targets]
            r.check("dashboard", len(set(refs)) == len(refs), f"{rel}: panel {p.get('id')} repeats a refId: {refs}")
        for ds in sources:
            uid = ds.get("uid") if isinstance(ds, dict) else ds
            r.check("dashboard", str(uid).startswith("$") or uid in uids, f"{rel}: datasource {ds} is not a provisioned datasource (uids {sorted(uids)})")
        for where, expr in exprs:
            bare = strip_strings(expr)
            depth = {"(": 0, "[": 0, "{": 0}
            closing = {")": "(", "]": "[", "}": "{"}
            ok = True
            for ch in bare:
                if ch in depth:
                    depth[ch] += 1
                elif ch in closing:
                    depth[closing[ch]] -= 1
                    ok = ok and depth[closing[ch]] >= 0
            r.check("dashboard", ok and not any(depth.values()), f"{rel} {where}: unbalanced brackets in {expr}")
            used = [(m.group(1), m.group(2) or "") for m in METRIC_NAME.finditer(bare)]
            lv = re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,\s*(\w+)\s*\)", bare)
            r.check("dashboard-metrics", bool(used) or "up{" in bare.replace(" ", "") or expr.startswith("up"), f"{rel} {where}: no lakehouse_* or process_* metric in {expr}")
            for name, _ in used:
                used_anywhere.add(name)
                hint = f" (a histogram: use {name}_bucket, _sum or _count)" if name in families and name not in exported else ""
                r.check("dashboard-metrics", name in exported, f"{rel} {where}: {name} is not a metric lake/src/metrics.rs exports{hint}")
            for hq in re.finditer(r"histogram_quantile\(", bare):
                inner = bare[hq.end():]
                r.check("dashboard-metrics", "_bucket" in inner and re.search(r"\bby\s*\([^)]*\ble\b", inner) is not None,
                        f"{rel} {where}: histogram_quantile wants the rate of a _bucket series summed by (le, …): {expr}")
            if not files.scrapes:
                continue
            labels_of_expr = set(TARGET_LABELS)
            for name, matchers in used:
                have = scrape.series.get(name)
                if not r.check("dashboard-scrape", have is not None, f"{rel} {where}: {name} is in none of the /metrics scrapes given ({', '.join(files.scrapes)})"):
                    continue
                labels_of_expr |= have
                for label in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers):
                    r.check("dashboard-scrape", label in have | TARGET_LABELS, f"{rel} {where}: {name} has no label {label} in the scrapes (it has {sorted(have)})")
            for name, label in lv:
                have = scrape.series.get(name, set())
                r.check("dashboard-scrape", label in have | TARGET_LABELS, f"{rel} {where}: label_values({name}, {label}): {name} has no label {label} in the scrapes")
            for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", bare):
                for label in [x.strip() for x in group.split(",") if x.strip()]:
                    r.check("dashboard-scrape", label in labels_of_expr, f"{rel} {where}: groups by {label}, a label none of its metrics has in the scrapes ({sorted(labels_of_expr)})")
    # A panel for every metric the binaries export.
    for f in sorted(families):
        r.check("dashboard-metrics", any(u == f or u.startswith(f + "_") and u[len(f) + 1:] in ("bucket", "sum", "count") for u in used_anywhere),
                f"no dashboard shows {f} (lake/src/metrics.rs exports it)")


def check_status(st: Stack, helps: dict[str, Help], r: Report):
    """status: the status page (`inspector serve`) listens where the host reaches it and reads the /metrics of every consumer and refiner service (its flags and variables are checked against `inspector serve --help` with the other commands)."""
    n = st.status
    if not n:
        return
    s = st.services[n]
    env = as_mapping(s.get("environment"))
    a = (argv(s.get("entrypoint")) + argv(s.get("command")))[2:]
    serve = helps["inspector"].subcommands.get("serve") if "inspector" in helps else None
    by_env = serve.envs() if serve else {}
    addr_flag = by_env.get("STATUS_ADDR")
    urls_flag = by_env.get("METRICS_URLS")
    addr = env.get("STATUS_ADDR", (addr_flag.default if addr_flag else None) or "127.0.0.1:8080")
    if addr_flag:
        addr = (flag_values(a, addr_flag.name) or [addr])[-1]
    host, port = listen_port(addr)
    r.check("status", port is not None and reachable_host(host), f"service {n}: STATUS_ADDR={addr}: in a container it must listen on 0.0.0.0 to be published")
    r.check("status", port is not None and st.published(n, port) is not None, f"service {n}: STATUS_ADDR's port {port} is not published (ports: {s.get('ports')})")
    urls = [u.strip() for u in env.get("METRICS_URLS", "").split(",") if u.strip()]
    urls += flag_values(a, urls_flag.name) if urls_flag else []
    covered: set[str] = set()
    for u in urls:
        m = re.match(r"^http://([^/:]+)(?::(\d+))?(/[^?#]*)?$", u)
        ok = bool(m) and m.group(1) in st.metrics and int(m.group(2) or 80) == st.metrics[m.group(1)] and (m.group(3) or "/") == "/metrics"
        r.check("status", ok, f"service {n}: METRICS_URLS has {u}, not http://<consumer or refiner service>:<its METRICS_ADDR port>/metrics "
                              f"({', '.join(f'http://{k}:{v}/metrics' for k, v in st.metrics.items())})")
        if ok:
            covered.add(m.group(1))
    for svc in st.metrics:
        r.check("status", svc in covered, f"service {n}: METRICS_URLS does not read service {svc}'s /metrics")


# --------------------------------------------------------------------------
# Self-test: each check must catch a broken copy.

MUTATIONS = [
    # (expected check, file, old, new)
    ("schema", "compose", "    restart: unless-stopped\n    depends_on:\n      minio:", "    restart: unless-stopped\n    dependson: []\n    depends_on:\n      minio:"),
    ("images-pinned", "compose", "image: minio/minio:RELEASE.2024-10-13T13-34-11Z", "image: minio/minio:latest"),
    ("images-pinned", "compose", "image: minio/mc:RELEASE.2024-10-08T09-37-26Z", "image: minio/mc"),
    ("images-pinned", "dockerfile", "FROM debian:bookworm-slim AS runtime", "FROM debian AS runtime"),
    ("flags", "compose", '"--batch-size", "200"', '"--batch-sise", "200"'),
    ("flag-values", "compose", '"--sink", "kafka"', '"--sink", "kafak"'),
    ("commands", "compose", 'command: ["shell"]', 'command: ["sh"]'),
    ("commands", "compose", '"--source", "kafka"', '"--source", "files"'),
    ("env-read", "compose", "      KAFKA_GROUP_ID: ${KAFKA_GROUP_ID}\n", "      KAFKA_GROUP_ID: ${KAFKA_GROUP_ID}\n      FLUSH_INTREVAL: 5s\n"),
    ("env-read", "compose", "    environment:\n      <<: *lake-env\n    command: [\"producer\"", "    environment:\n      <<: *lake-env\n      KAFKA_GROUP_ID: x\n    command: [\"producer\""),
    ("env-values", "compose", 'CREATE_BUCKET: "false"', 'CREATE_BUCKET: "no"'),
    ("env-required", "compose", 'CREATE_BUCKET: "false"', 'CREATE_BUCKET: "true"'),
    ("env-required", "compose", "  AWS_ENDPOINT_URL: http://minio:9000\n", "  AWS_ENDPOINT_URL: http://minio:9002\n"),
    ("env-required", "compose", "  KAFKA_BOOTSTRAP_SERVERS: redpanda:9092\n", "  KAFKA_BOOTSTRAP_SERVERS: redpanda:19092\n"),
    ("env-required", "compose", "  KAFKA_TOPIC: ${KAFKA_TOPIC}\n", ""),
    ("env-file-vars", "compose", "  AWS_SECRET_ACCESS_KEY: ${AWS_SECRET_ACCESS_KEY}\n", "  AWS_SECRET_ACCESS_KEY: ${AWS_SECRET_KEY}\n"),
    ("depends-on", "compose", "      minio:\n        condition: service_healthy\n      redpanda:", "      minio:\n        condition: service_started\n      redpanda:"),
    ("depends-on", "compose", "      topic-init:\n        condition: service_completed_successfully\n    environment:\n      <<: *lake-env\n    command: [\"producer\"",
     "      topic-init:\n        condition: service_started\n    environment:\n      <<: *lake-env\n    command: [\"producer\""),
    ("depends-on", "compose", "      minio-init:\n        condition: service_completed_successfully\n      topic-init:", "      minio-inti:\n        condition: service_completed_successfully\n      topic-init:"),
    ("healthcheck", "compose", '      test: ["CMD", "mc", "ready", "local"]', "      disable: true"),
    ("healthcheck", "compose", "      interval: 5s\n      timeout: 5s\n", "      interval: 5 seconds\n      timeout: 5s\n"),
    ("restart", "compose", "    restart: unless-stopped\n    depends_on:\n      minio:", "    depends_on:\n      minio:"),
    ("profiles", "compose", '    profiles: ["tools"]\n', ""),
    ("kafka-listeners", "compose", "external://localhost:19092", "external://localhost:19093"),
    ("kafka-listeners", "env", "KAFKA_BOOTSTRAP_SERVERS=localhost:19092", "KAFKA_BOOTSTRAP_SERVERS=localhost:9092"),
    ("minio", "compose", '      - "9001:9001"\n', ""),
    ("env-file", "env", "AWS_ENDPOINT_URL=http://localhost:9000", "AWS_ENDPOINT_URL=http://localhost:9090"),
    ("volumes", "compose", "      - minio-data:/data\n", "      - minio-dta:/data\n"),
    ("volumes", "compose", "      - ./docker/minio-init.sh:/minio-init.sh:ro", "      - ./docker/init.sh:/minio-init.sh:ro"),
    ("root-credentials", "compose", '      CREATE_BUCKET: "false"\n', '      CREATE_BUCKET: "false"\n      AWS_SESSION_TOKEN: ${MINIO_ROOT_PASSWORD}\n'),
    ("topic-init", "compose", "--partitions 3", "--partitions 1"),
    ("minio-init-script", "compose", 'entrypoint: ["/bin/sh", "/minio-init.sh"]', 'entrypoint: ["/bin/sh", "/init.sh"]'),
    ("minio-init-script", "compose", "      BUCKET: lake\n", "      BUCKET: lakes\n"),
    ("minio-init-script", "script", 'mc admin user add local "$PIPELINE_ACCESS_KEY_ID"', 'mc admin user add local "$PIPELINE_USER"'),
    ("minio-init-script", "script", "  case \"$out\" in", "  case \"$out\" in)"),
    ("policy", "script", '"s3:GetObject", "s3:PutObject"', '"s3:*", "s3:PutObject"'),
    ("policy", "script", '"Resource": ["arn:aws:s3:::$BUCKET/*"]', '"Resource": ["arn:aws:s3:::*"]'),
    ("policy", "script", '"Resource": ["arn:aws:s3:::$BUCKET/*"]\n    }', '"Resource": ["arn:aws:s3:::$BUCKET/*"]\n    },'),
    ("dockerfile-workspace", "dockerfile", "COPY --from=manifests /src ./\n", "COPY Cargo.toml Cargo.lock ./\n"),
    ("dockerfile-workspace", "dockerfile", "COPY . .\nRUN find . -path", "RUN find . -path"),
    ("dockerfile-workspace", "dockerfile", "cargo build --release --locked -p producer -p consumer -p refiner -p inspector \\\n && mkdir", "cargo build --release --locked --workspace --bins \\\n && mkdir"),
    ("dockerfile-binaries", "dockerfile", "COPY --from=build /out/producer /out/consumer /out/refiner /out/inspector /usr/local/bin/", "COPY --from=build /out/producer /out/consumer /out/refiner /usr/local/bin/"),
    # The refiner: built, shipped, its models in the image, on the consumer's lake, no Kafka, restarted, stopped.
    ("dockerfile-binaries", "dockerfile", "COPY --from=build /out/producer /out/consumer /out/refiner /out/inspector /usr/local/bin/", "COPY --from=build /out/producer /out/consumer /out/inspector /usr/local/bin/"),
    ("dockerfile-binaries", "dockerfile", " -p consumer -p refiner -p inspector \\\n && find", " -p consumer -p inspector \\\n && find"),
    ("dockerfile-models", "dockerfile", "COPY models /opt/lakehouse/models\n", ""),
    ("dockerfile-models", "dockerfile", "ENV MODELS_DIR=/opt/lakehouse/models", "ENV MODELS_DIR=/opt/models"),
    ("dockerignore", "dockerignore", "**/*.parquet\n", "**/*.parquet\nmodels/gold\n"),
    ("restart", "compose", "    restart: unless-stopped\n    depends_on:\n      minio:\n        condition: service_healthy\n      minio-init:", "    depends_on:\n      minio:\n        condition: service_healthy\n      minio-init:"),
    ("depends-on", "compose", "      minio-init:\n        condition: service_completed_successfully\n      consumer:", "      topic-init:\n        condition: service_completed_successfully\n      consumer:"),
    ("env-required", "compose", "      LAKE_URL: s3://lake\n      AWS_ENDPOINT_URL: http://minio:9000\n      AWS_REGION: us-east-1\n      AWS_ACCESS_KEY_ID",
     "      LAKE_URL: s3://lake/refined\n      AWS_ENDPOINT_URL: http://minio:9000\n      AWS_REGION: us-east-1\n      AWS_ACCESS_KEY_ID"),
    ("env-read", "compose", "      REFINE_INTERVAL: ${REFINE_INTERVAL:-5s}\n", "      REFINE_INTERVAL: ${REFINE_INTERVAL:-5s}\n      KAFKA_BOOTSTRAP_SERVERS: redpanda:9092\n"),
    ("commands", "compose", 'command: ["refiner"]', 'command: ["refiner", "--once"]'),
    ("dockerfile-user", "dockerfile", "USER 10001:10001", "USER root"),
    ("dockerfile-libraries", "dockerfile", "ca-certificates libssl3 zlib1g libstdc++6", "ca-certificates zlib1g"),
    ("httpfs", "dockerfile", "ENV DUCKDB_HTTPFS_EXTENSION=/opt/duckdb/httpfs.duckdb_extension", "ENV DUCKDB_HTTPFS_EXTENSION=/opt/httpfs.duckdb_extension"),
    ("httpfs", "dockerfile", "'duckdb-extension-httpfs==1.5.5'", "'duckdb-extension-httpfs==1.4.1'"),
    ("httpfs", "dockerfile", "ENV DUCKDB_DELTA_EXTENSION=/opt/duckdb/delta.duckdb_extension", "ENV DUCKDB_DELTA_EXTENSION=/opt/delta.duckdb_extension"),
    ("httpfs", "dockerfile", "'duckdb-extension-delta==1.5.5'", "'duckdb-extension-delta==1.4.1'"),
    ("dockerignore", "dockerignore", "**/*.parquet\n", "**/*.parquet\n*/src\n"),
    ("dockerignore", "dockerignore", ".env\n", ""),
    ("makefile", "makefile", "$(COMPOSE) stop producer consumer refiner", "$(COMPOSE) stop producers consumer refiner"),
    ("makefile", "makefile", "$(COMPOSE) stop producer consumer refiner", "$(COMPOSE) stop producer consumer"),
    ("makefile", "makefile", "KAFKA_HOST := localhost:19092", "KAFKA_HOST := localhost:9092"),
    # Monitoring: the endpoints, Prometheus, Grafana, the dashboard, the status page.
    ("metrics", "compose", '      METRICS_ADDR: 0.0.0.0:9464\n    command: ["consumer"', '      METRICS_ADDR: 127.0.0.1:9464\n    command: ["consumer"'),
    ("metrics", "compose", '      METRICS_ADDR: 0.0.0.0:9464\n    command: ["refiner"]', '      METRICS_ADDR: ""\n    command: ["refiner"]'),
    ("prometheus", "monitoring/prometheus.yml", "        port: 9464\n", "        port: 9465\n"),
    ("prometheus", "monitoring/prometheus.yml", "names: [refiner]", "names: [refiners]"),
    ("prometheus", "monitoring/prometheus.yml", "        type: A\n", ""),
    ("prometheus", "monitoring/prometheus.yml", "  scrape_interval: 10s\n", "  scrape_interval: 1m\n"),
    ("prometheus", "monitoring/prometheus.yml", "  scrape_timeout: 5s\n", "  scrape_timeout: 20s\n"),
    ("prometheus", "monitoring/prometheus.yml", "  - job_name: refiner\n", "  - job_name: consumer\n"),
    ("prometheus", "monitoring/prometheus.yml", "scrape_configs:\n", "scrape_configs:\n  - [\n"),
    ("prometheus", "compose", "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro", "./monitoring/prometheus.yml:/etc/prometheus/prom.yml:ro"),
    ("prometheus", "compose", '      - "127.0.0.1:9090:9090"\n', '      - "127.0.0.1:9091:9090"\n'),
    ("healthcheck", "compose", '"http://localhost:9090/-/ready"', '"http://localhost:9091/-/ready"'),
    ("healthcheck", "compose", '      test: ["CMD", "wget", "-qO-", "http://localhost:3000/api/health"]', "      disable: true"),
    ("images-pinned", "compose", "image: prom/prometheus:v3.5.0", "image: prom/prometheus:latest"),
    ("images-pinned", "compose", "image: grafana/grafana:12.2.0", "image: grafana/grafana"),
    ("restart", "compose", "    image: prom/prometheus:v3.5.0\n    restart: unless-stopped\n", "    image: prom/prometheus:v3.5.0\n"),
    ("volumes", "compose", "      - prometheus-data:/prometheus\n", "      - prometheus-dta:/prometheus\n"),
    ("depends-on", "compose", "    depends_on:\n      prometheus:\n        condition: service_healthy\n", ""),
    ("grafana", "compose", "GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer", "GF_AUTH_ANONYMOUS_ORG_ROLE: Editor"),
    ("grafana", "compose", "GF_SECURITY_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD}", "GF_SECURITY_ADMIN_PASSWORD: admin"),
    ("grafana", "compose", "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro", "./monitoring/grafana/provisioning:/etc/grafana/provision:ro"),
    ("grafana", "compose", "./monitoring/grafana/dashboards:/etc/grafana/dashboards:ro", "./monitoring/grafana/dashboards:/etc/grafana/boards:ro"),
    ("grafana", "compose", '      - "127.0.0.1:3000:3000"\n', '      - "127.0.0.1:3001:3000"\n'),
    ("grafana", "monitoring/grafana/provisioning/datasources/prometheus.yml", "url: http://prometheus:9090", "url: http://localhost:9090"),
    ("grafana", "monitoring/grafana/provisioning/datasources/prometheus.yml", "access: proxy", "access: direct"),
    ("grafana", "monitoring/grafana/provisioning/datasources/prometheus.yml", "timeInterval: 10s", "timeInterval: 30s"),
    ("grafana", "monitoring/grafana/provisioning/datasources/prometheus.yml", "apiVersion: 1", "apiVersion: 2"),
    ("grafana", "monitoring/grafana/provisioning/dashboards/lakehouse.yml", "path: /etc/grafana/dashboards", "path: /var/lib/grafana/dashboards"),
    ("dashboard", "monitoring/grafana/dashboards/lakehouse.json", '"panels": [', '"panels": [,'),
    ("dashboard", "monitoring/grafana/dashboards/lakehouse.json", '"uid": "lakehouse-prometheus"', '"uid": "prometheus"'),
    ("dashboard", "monitoring/grafana/dashboards/lakehouse.json", '"id": 3,', '"id": 2,'),
    ("dashboard", "monitoring/grafana/dashboards/lakehouse.json", "(rate(lakehouse_records_total", "(rate(lakehouse_records_total)"),
    ("dashboard-metrics", "monitoring/grafana/dashboards/lakehouse.json", "lakehouse_dead_letters_total", "lakehouse_dead_letter_total"),
    ("dashboard-metrics", "monitoring/grafana/dashboards/lakehouse.json", "rate(lakehouse_commit_duration_seconds_bucket", "rate(lakehouse_commit_duration_seconds"),
    ("dashboard-metrics", "monitoring/grafana/dashboards/lakehouse.json", "histogram_quantile(0.5, sum by (le, stage)", "histogram_quantile(0.5, sum by (stage)"),
    ("dashboard-metrics", "monitoring/grafana/dashboards/lakehouse.json", "process_resident_memory_bytes", "process_resident_memory"),
    ("dashboard-metrics", "monitoring/grafana/dashboards/lakehouse.json", "lakehouse_model_rows_written_total", "process_threads"),
    ("dashboard-scrape", "monitoring/grafana/dashboards/lakehouse.json", "sum by (table, outcome) (rate(lakehouse_records_total", "sum by (table, stage) (rate(lakehouse_records_total"),
    ("dashboard-scrape", "monitoring/grafana/dashboards/lakehouse.json", "lakehouse_freshness_seconds{table=~", "lakehouse_freshness_seconds{model=~"),
    ("dashboard-scrape", "metrics", "lakehouse_lost_ownership_total", None),
    ("dashboard-scrape", "metrics", "lakehouse_model_version_lag", None),
    ("status", "compose", "METRICS_URLS: http://consumer:9464/metrics,http://refiner:9464/metrics", "METRICS_URLS: http://consumer:9464/metrics"),
    ("status", "compose", "METRICS_URLS: http://consumer:9464/metrics,", "METRICS_URLS: http://consumer:9464/metric,"),
    ("status", "compose", "STATUS_ADDR: 0.0.0.0:8080", "STATUS_ADDR: 127.0.0.1:8080"),
    ("status", "compose", '      - "8080:8080"\n', ""),
    ("profiles", "compose", '    command: ["inspector", "serve"]\n', '    command: ["inspector", "serve"]\n    profiles: ["tools"]\n'),
    ("depends-on", "compose", "      minio-init:\n        condition: service_completed_successfully\n    environment:\n      <<: *lake-env\n      STATUS_ADDR",
     "    environment:\n      <<: *lake-env\n      STATUS_ADDR"),
]


def self_test(root: Path, bin_dir: Path, scrapes: list[Path] | None = None) -> int:
    base = Files.load(root, scrapes)
    report = Report()
    helps: dict[str, Help] = {}
    run_checks(base, root, bin_dir, report, helps)
    problems = []
    if report.failures:
        problems.append(f"the real files fail {len(report.failures)} checks (run without --self-test)")
        for name, detail in report.failures:
            print(f"FAIL {name}: {detail}")
    script_rel = "docker/minio-init.sh"
    caught = 0
    skipped = 0
    for expected, which, old, new in MUTATIONS:
        files = base.copy()
        files.scrapes = dict(base.scrapes)
        files.monitoring = dict(base.monitoring)
        if which == "metrics":
            # Take a metric out of the scrapes: a dashboard on it must fail.
            if not files.scrapes:
                skipped += 1
                continue
            if not any(old in text for text in files.scrapes.values()):
                problems.append(f"mutation {expected}: {old!r} is in none of the --metrics scrapes")
                continue
            files.scrapes = {k: "\n".join(line for line in text.splitlines() if old not in line) for k, text in files.scrapes.items()}
        elif expected == "dashboard-scrape" and not files.scrapes:
            skipped += 1
            continue
        elif which == "script":
            text = files.scripts.get(script_rel, "")
            if old not in text:
                problems.append(f"mutation {expected}: {old!r} not found in {script_rel}")
                continue
            files.scripts[script_rel] = text.replace(old, new, 1)
        elif which.startswith("monitoring/"):
            text = files.monitoring.get(which, "")
            if old not in text:
                problems.append(f"mutation {expected}: {old!r} not found in {which}")
                continue
            files.monitoring[which] = text.replace(old, new, 1)
        else:
            text = getattr(files, which)
            if old not in text:
                problems.append(f"mutation {expected}: {old!r} not found in {which}")
                continue
            setattr(files, which, text.replace(old, new, 1))
        rep = Report()
        run_checks(files, root, bin_dir, rep, helps)
        names = {n for n, _ in rep.failures}
        if expected in names:
            caught += 1
        else:
            problems.append(f"mutation {old!r} -> {new!r} in {which}: check {expected} did not fail (failed: {sorted(names) or 'none'})")
    for p in problems:
        print(f"FAIL self-test: {p}")
    note = f" ({skipped} on the scrapes skipped: no --metrics)" if skipped else ""
    print(f"self-test: {caught} of {len(MUTATIONS) - skipped} broken copies caught by the expected check{note}; {len(problems)} problems")
    return 1 if problems else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="the repository (default: two levels up)")
    default_bins = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release"
    ap.add_argument("--bin-dir", type=Path, default=default_bins, help="where producer, consumer, refiner, inspector are (default: $CARGO_TARGET_DIR/release)")
    ap.add_argument("--self-test", action="store_true", help="check that every check catches a broken copy")
    ap.add_argument("--print-service", metavar="NAME", help="print one service of docker-compose.yml, .env interpolated, as JSON")
    ap.add_argument("--metrics", metavar="FILE", type=Path, nargs="+", action="extend", default=[],
                    help="real /metrics scrapes (Prometheus text format) of the consumer and the refiner: every metric and label the dashboards use must be in them")
    ap.add_argument("-v", "--verbose", action="store_true", help="also list the checks that passed")
    a = ap.parse_args()
    root = a.root.resolve()
    for m in a.metrics:
        if not m.is_file():
            print(f"check_stack.py: --metrics {m}: no such file", file=sys.stderr)
            return 2
    if a.print_service:
        raw = yaml.safe_load((root / "docker-compose.yml").read_text())
        errors: list[str] = []
        c = interpolate(raw, parse_dotenv((root / ".env").read_text()), set(), errors)
        svc = (c.get("services") or {}).get(a.print_service)
        if svc is None or errors:
            print(f"check_stack.py: no service {a.print_service} ({'; '.join(errors)})", file=sys.stderr)
            return 2
        svc = dict(svc)
        svc["environment"] = as_mapping(svc.get("environment"))
        svc["argv"] = argv(svc.get("entrypoint")) + argv(svc.get("command"))
        print(json.dumps(svc, indent=2, sort_keys=True))
        return 0
    if a.self_test:
        return self_test(root, a.bin_dir, a.metrics)
    report = Report(a.verbose)
    run_checks(Files.load(root, a.metrics), root, a.bin_dir, report)
    for name, detail in report.failures:
        print(f"FAIL {name}: {detail}")
    for name, why in report.skipped:
        print(f"skip {name}: {why}")
    if a.verbose:
        counts: dict[str, int] = {}
        for n in report.passed:
            counts[n] = counts.get(n, 0) + 1
        for n, k in sorted(counts.items()):
            print(f"ok   {n}: {k} assertions")
    groups = {n for n in report.passed} | {n for n, _ in report.failures}
    failed_groups = {n for n, _ in report.failures}
    print(f"stack checks: {len(groups) - len(failed_groups)} of {len(groups)} groups clean, "
          f"{len(report.passed)} assertions held, {len(report.failures)} failed")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
