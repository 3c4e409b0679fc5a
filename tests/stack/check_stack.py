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
* the Makefile's service names, image name and URLs against the Compose file.

Usage:
  check_stack.py [--bin-dir DIR] [-v]        every check; one line per failure
  check_stack.py --self-test [--bin-dir DIR] each check must catch a broken copy
  check_stack.py --print-service NAME        the service, interpolated, as JSON

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

    @staticmethod
    def load(root: Path) -> "Files":
        def read(rel: str) -> str:
            p = root / rel
            return p.read_text() if p.exists() else ""

        scripts = {str(p.relative_to(root)): p.read_text() for p in sorted((root / "docker").glob("*")) if p.is_file()}
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
        )


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

    @property
    def by_binary(self) -> dict[str, str]:
        return {b: n for n, b in self.app_binaries.items() if b}

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
    return Stack(dotenv, c, raw.get("services") or {}, services, minio, broker, minio_init, topic_init, app_image, app_services, app_binaries)


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
    for n in (st.minio, st.broker):
        if n:
            r.check("healthcheck", healthy(st.services[n]), f"service {n} has no healthcheck")
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
    for n in (st.minio, st.broker, st.minio_init, st.topic_init, *(by_binary.get(b) for b in LONG_RUNNING)):
        if n:
            r.check("profiles", not services[n].get("profiles"), f"service {n} is in a profile, so `docker compose up` would not start it")


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
]


def self_test(root: Path, bin_dir: Path) -> int:
    base = Files.load(root)
    report = Report()
    helps: dict[str, Help] = {}
    run_checks(base, root, bin_dir, report, helps)
    problems = []
    if report.failures:
        problems.append(f"the real files fail {len(report.failures)} checks (run without --self-test)")
    script_rel = "docker/minio-init.sh"
    caught = 0
    for expected, which, old, new in MUTATIONS:
        files = Files(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in base.__dict__.items()})
        if which == "script":
            text = files.scripts.get(script_rel, "")
            if old not in text:
                problems.append(f"mutation {expected}: {old!r} not found in {script_rel}")
                continue
            files.scripts[script_rel] = text.replace(old, new, 1)
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
    print(f"self-test: {caught} of {len(MUTATIONS)} broken copies caught by the expected check; {len(problems)} problems")
    return 1 if problems else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="the repository (default: two levels up)")
    default_bins = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release"
    ap.add_argument("--bin-dir", type=Path, default=default_bins, help="where producer, consumer, refiner, inspector are (default: $CARGO_TARGET_DIR/release)")
    ap.add_argument("--self-test", action="store_true", help="check that every check catches a broken copy")
    ap.add_argument("--print-service", metavar="NAME", help="print one service of docker-compose.yml, .env interpolated, as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="also list the checks that passed")
    a = ap.parse_args()
    root = a.root.resolve()
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
        return self_test(root, a.bin_dir)
    report = Report(a.verbose)
    run_checks(Files.load(root), root, a.bin_dir, report)
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
