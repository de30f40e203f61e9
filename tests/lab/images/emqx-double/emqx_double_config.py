"""emqx-double: start-up and configuration logic of the EMQX 4.4.4 test double.

This is NOT EMQX. It re-implements, in plain Python, the parts of the 4.4.4
Docker start-up that the mqttaction.emqx collection depends on:

* docker-entrypoint.sh: node name from EMQX_NAME/EMQX_HOST, EMQX_LOADED_PLUGINS,
  rpc.port_discovery forced to manual;
* bin/emqx foreground: short-name check, EMQX_LOG__TO=console, env overrides
  (EMQX_A__B=v -> a.b = v, empty deletes, override_env aliases win) and a
  cuttlefish-like validation of emqx.conf and of each plugin's .conf against
  the key table of 4.4.4 (config-keys.tsv);
* then it execs the Erlang node (see src/*.erl) with what it worked out.

Sub-commands: ``entrypoint CMD...``, ``foreground``, ``ctl ARGS...``.
Everything that decides something is a plain function so that
tests/unit/test_emqx_double_config.py can test it from the host.
"""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# The version the double reports (status line, API, `broker`, export files):
# the image's EMQX_DOUBLE_VERSION, so that a second lab image can stand in for
# another 4.4.x release (tests/lab/images/emqx-double-next).
DEFAULT_VERSION = "4.4.4"
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


def double_version(env: dict[str, str]) -> str:
    """EMQX_DOUBLE_VERSION (x.y.z), else 4.4.4."""
    value = env.get("EMQX_DOUBLE_VERSION", "").strip()
    if not value:
        return DEFAULT_VERSION
    if not VERSION_RE.match(value):
        raise ConfigError(f"EMQX_DOUBLE_VERSION={value!r} is not a version x.y.z")
    return value


def banner(version: str) -> str:
    return (
        f"emqx-double: THIS IS A TEST DOUBLE of EMQX {version} for the mqttaction.emqx lab, "
        "not EMQX"
    )


BANNER = banner(DEFAULT_VERSION)
HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = Path(os.environ.get("EMQX_DOUBLE_ROOT", "/opt/emqx"))
DEFAULT_TSV = HERE / "config-keys.tsv"
SHORT_NAME_RE = re.compile(r"^[0-9A-Za-z_\-]+$")
ENV_PREFIX = "EMQX_"

# Plugins bundled in the 4.4.4 CE image (what `plugins list` shows) with the
# description the double prints. Descriptions are the double's own wording.
PLUGINS: dict[str, str] = {
    "emqx_auth_http": "EMQ X Authentication/ACL with HTTP API",
    "emqx_auth_jwt": "EMQ X Authentication with JWT",
    "emqx_auth_ldap": "EMQ X Authentication/ACL with LDAP",
    "emqx_auth_mnesia": "EMQ X Authentication with Mnesia",
    "emqx_auth_mongo": "EMQ X Authentication/ACL with MongoDB",
    "emqx_auth_mysql": "EMQ X Authentication/ACL with MySQL",
    "emqx_auth_pgsql": "EMQ X Authentication/ACL with PostgreSQL",
    "emqx_auth_redis": "EMQ X Authentication/ACL with Redis",
    "emqx_bridge_mqtt": "EMQ X Bridge to MQTT Broker",
    "emqx_coap": "EMQ X CoAP Gateway",
    "emqx_dashboard": "EMQ X Web Dashboard",
    "emqx_exhook": "EMQ X Extension for Hook",
    "emqx_exproto": "EMQ X Extension for Protocol",
    "emqx_lwm2m": "EMQ X LwM2M Gateway",
    "emqx_management": "EMQ X Management API and CLI",
    "emqx_modules": "EMQ X Modules",
    "emqx_prometheus": "Prometheus for EMQ X",
    "emqx_psk_file": "EMQX PSK Plugin from File",
    "emqx_recon": "EMQ X Recon Plugin",
    "emqx_retainer": "EMQ X Retainer",
    "emqx_rule_engine": "EMQ X Rule Engine",
    "emqx_sn": "EMQ X MQTT-SN Plugin",
    "emqx_stomp": "EMQ X Stomp Protocol Plugin",
    "emqx_telemetry": "EMQ X Telemetry",
    "emqx_web_hook": "EMQ X WebHook Plugin",
}

# data/loaded_plugins written when the file is missing (FACTS §3, cloud profile).
DEFAULT_LOADED_PLUGINS = [
    ("emqx_management", True),
    ("emqx_dashboard", True),
    ("emqx_modules", False),
    ("emqx_recon", True),
    ("emqx_retainer", True),
    ("emqx_telemetry", True),
    ("emqx_rule_engine", True),
    ("emqx_bridge_mqtt", False),
]

# Defaults docker-entrypoint.sh 4.4.4 exports when unset.
ENTRYPOINT_DEFAULTS = {
    "EMQX_NODE__PROCESS_LIMIT": "2097152",
    "EMQX_NODE__MAX_PORTS": "1048576",
    "EMQX_NODE__MAX_ETS_TABLES": "2097152",
    "EMQX_LISTENER__TCP__EXTERNAL__ACCEPTORS": "64",
    "EMQX_LISTENER__TCP__EXTERNAL__MAX_CONNECTIONS": "1024000",
    "EMQX_LISTENER__SSL__EXTERNAL__ACCEPTORS": "32",
    "EMQX_LISTENER__SSL__EXTERNAL__MAX_CONNECTIONS": "102400",
    "EMQX_LISTENER__WS__EXTERNAL__ACCEPTORS": "16",
    "EMQX_LISTENER__WS__EXTERNAL__MAX_CONNECTIONS": "102400",
    "EMQX_LISTENER__WSS__EXTERNAL__ACCEPTORS": "16",
    "EMQX_LISTENER__WSS__EXTERNAL__MAX_CONNECTIONS": "102400",
}


class ConfigError(Exception):
    """A configuration problem that stops the node from starting."""


class NodeNameError(ConfigError):
    """The node name bin/emqx refuses (short name outside [0-9A-Za-z_-])."""


# --------------------------------------------------------------------------
# The key table (config-keys.tsv)


@dataclass(frozen=True)
class Mapping:
    key: str
    datatype: str
    default: str
    override_env: str
    schema_file: str

    @property
    def owner(self) -> str | None:
        """Plugin that owns the key, or None for emqx.schema (the broker)."""
        return schema_owner(self.schema_file)

    @property
    def segments(self) -> list[str]:
        return self.key.split(".")


def schema_owner(schema_file: str) -> str | None:
    m = re.match(r"^(?:apps|lib-ce|lib-ee)/([^/]+)/priv/", schema_file)
    return m.group(1) if m else None


def load_schema(path: Path | str = DEFAULT_TSV) -> list[Mapping]:
    rows = []
    for line in Path(path).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if cols[0] == "key":
            continue
        cols += [""] * (6 - len(cols))
        rows.append(Mapping(cols[0], cols[1], cols[2], cols[3], cols[5]))
    return rows


def rows_for(rows: list[Mapping], owner: str | None) -> list[Mapping]:
    return [r for r in rows if r.owner == owner]


def key_matches(key: str, pattern: str) -> bool:
    """cuttlefish matching: same number of segments, `$x` matches any one."""
    ks, ps = key.split("."), pattern.split(".")
    if len(ks) != len(ps):
        return False
    return all(p.startswith("$") or p == k for k, p in zip(ks, ps))


def find_mapping(key: str, rows: list[Mapping]) -> Mapping | None:
    exact = [r for r in rows if r.key == key]
    if exact:
        return exact[0]
    for r in rows:
        if key_matches(key, r.key):
            return r
    return None


# --------------------------------------------------------------------------
# Datatypes (cuttlefish_datatypes, as far as the double needs them)

DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:f|w|d|h|ms|m|s))+$")
BYTESIZE_RE = re.compile(r"^\d+(?:kb|mb|gb)?$", re.IGNORECASE)
INTEGER_RE = re.compile(r"^-?\d+$")
FLOAT_RE = re.compile(r"^-?\d+(?:\.\d+)?(?:e-?\d+)?$", re.IGNORECASE)
PERCENT_RE = re.compile(r"^\d+(?:\.\d+)?%$")


def split_datatypes(datatype: str) -> list[str]:
    """'[integer, ip]' -> ['integer', 'ip']; '{enum, [a, b]}' stays one."""
    dt = datatype.strip()
    if not (dt.startswith("[") and dt.endswith("]")):
        return [dt]
    inner, parts, depth, cur = dt[1:-1], [], 0, ""
    for ch in inner:
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def enum_values(datatype: str) -> list[str]:
    m = re.match(r"^\{\s*enum\s*,\s*\[(.*)\]\s*\}$", datatype.strip(), re.S)
    if not m:
        return []
    # Two enums in the schema carry Erlang comments: "value, %% comment next_value, ...".
    values = []
    for part in m.group(1).split(","):
        words = re.findall(r"[A-Za-z0-9_]+", part)
        if words:
            values.append(words[-1] if "%%" in part else words[0])
    return values


def valid_ip_port(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        return False
    host = host.strip("[]")
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    return False


def valid_for(value: str, datatype: str) -> bool:
    """True when `value` (the text after '=') is acceptable for `datatype`."""
    for dt in split_datatypes(datatype):
        if _valid_single(value, dt):
            return True
    return False


def _valid_single(value: str, dt: str) -> bool:
    dt = dt.strip()
    if dt in ("string", "file", "directory", "datatype", ""):
        return True
    if dt == "atom":
        return value != ""
    if dt == "integer":
        return bool(INTEGER_RE.match(value))
    if dt == "float":
        return bool(FLOAT_RE.match(value))
    if dt == "flag":
        return value in ("on", "off", "true", "false")
    if dt == "ip":
        return valid_ip_port(value)
    if dt == "bytesize":
        return bool(BYTESIZE_RE.match(value))
    if re.match(r"^\{\s*duration\s*,", dt):
        return bool(DURATION_RE.match(value))
    if re.match(r"^\{\s*percent\s*,", dt):
        return bool(PERCENT_RE.match(value))
    if re.match(r"^\{\s*enum\s*,", dt):
        return value in enum_values(dt)
    return True  # a datatype the double does not know: do not refuse


# --------------------------------------------------------------------------
# .conf files and environment overrides


def parse_conf(text: str, source: str = "emqx.conf") -> dict[str, str]:
    """key = value lines; '#' comments; the last setting of a key wins."""
    conf: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source}:{n}: syntax error: {raw!r}")
        conf[key.strip()] = value.strip()
    return conf


def env_key(var: str) -> str | None:
    """EMQX_A__B_C -> 'a.b_c' (cuttlefish generic mapping), else None."""
    if not var.startswith(ENV_PREFIX) or len(var) == len(ENV_PREFIX):
        return None
    return var[len(ENV_PREFIX) :].replace("__", ".").lower()


def env_overrides(env: dict[str, str], rows: list[Mapping]) -> dict[str, str]:
    """Overrides that apply to the keys in `rows`; "" means delete the key.

    Generic EMQX_A__B=v first; override_env aliases (EMQX_NODE_NAME, ...)
    then win, as cuttlefish's ukeymerge(Override, Default) does.
    """
    out: dict[str, str] = {}
    for var in sorted(env):
        key = env_key(var)
        # Variables matching no key of this schema are not for it (cuttlefish
        # only looks at the mappings of the schema it is generating).
        if key is not None and find_mapping(key, rows) is not None:
            out[key] = env[var]
    for r in rows:
        if r.override_env and ENV_PREFIX + r.override_env in env:
            out[r.key] = env[ENV_PREFIX + r.override_env]
    return out


def apply_overrides(conf: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    result = dict(conf)
    for key, value in overrides.items():
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    return result


def validate(conf: dict[str, str], rows: list[Mapping]) -> list[str]:
    """Error lines, cuttlefish style; empty when the conf is acceptable."""
    errors = []
    for key, value in conf.items():
        m = find_mapping(key, rows)
        if m is None:
            errors.append(f"Conf file attempted to set unknown variable: {key}")
        elif not valid_for(value, m.datatype):
            errors.append(
                f"Error converting value on key {key}: {value!r} is not a valid " f"{m.datatype}"
            )
    return errors


def effective(conf: dict[str, str], rows: list[Mapping], key: str) -> str | None:
    """Value of `key`: set in conf, else the schema default (unquoted)."""
    if key in conf:
        return conf[key]
    m = find_mapping(key, rows)
    if m is None or m.default in ("", "undefined"):
        return None
    return m.default.strip('"')


# --------------------------------------------------------------------------
# Node name, seeds, loaded_plugins


def short_name(node_name: str) -> str:
    return node_name.split("@", 1)[0]


def check_node_name(node_name: str) -> None:
    name = short_name(node_name)
    if "@" not in node_name or not SHORT_NAME_RE.match(name):
        raise NodeNameError(
            f"Invalid node name {node_name!r}: the part before '@' should match "
            "'^[0-9A-Za-z_\\-]+$'"
        )


def dist_port(node_name: str, base: int = 4370) -> int:
    """ekka_dist: base + integer matched by [0-9]+$ on the short name."""
    m = re.search(r"[0-9]+$", short_name(node_name))
    return base + (int(m.group(0)) % 60000 if m else 0)


def split_seeds(value: str | None) -> list[str]:
    """string:tokens(Seeds, ","): split on commas only, NO trimming."""
    if not value:
        return []
    return [s for s in value.split(",") if s]


def first_ipv4(hostname_i_output: str) -> str | None:
    for word in hostname_i_output.split():
        try:
            socket.inet_pton(socket.AF_INET, word)
            return word
        except OSError:
            continue
    return None


def local_ip() -> str:
    try:
        out = subprocess.run(["hostname", "-i"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return first_ipv4(out) or "127.0.0.1"


def entrypoint_env(env: dict[str, str], hostname: str, ip: str) -> dict[str, str]:
    """What docker-entrypoint.sh 4.4.4 exports (returns the new env)."""
    env = dict(env)
    env.setdefault("EMQX_NAME", hostname)
    env.setdefault("EMQX_HOST", ip)
    if not env.get("EMQX_NODE_NAME"):
        env["EMQX_NODE_NAME"] = f"{env['EMQX_NAME']}@{env['EMQX_HOST']}"
    for var, value in ENTRYPOINT_DEFAULTS.items():
        env.setdefault(var, value)
    if not env.get("EMQX_RPC__PORT_DISCOVERY"):
        env["EMQX_RPC__PORT_DISCOVERY"] = "manual"
    return env


LOADED_RE = re.compile(r"^\s*\{\s*([A-Za-z0-9_]+)\s*,\s*(true|false)\s*\}\s*\.\s*$")
BARE_RE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*\.\s*$")


def parse_loaded_plugins(text: str) -> list[tuple[str, bool]]:
    out = []
    for line in text.splitlines():
        m = LOADED_RE.match(line)
        if m:
            out.append((m.group(1), m.group(2) == "true"))
            continue
        m = BARE_RE.match(line)
        if m:
            out.append((m.group(1), True))
    return out


def format_loaded_plugins(entries: list[tuple[str, bool]]) -> str:
    return "".join(f"{{{n}, {'true' if on else 'false'}}}.\n" for n, on in entries)


def loaded_plugins_names(value: str | None) -> list[str]:
    return [n for n in re.split(r"[^A-Za-z0-9_]+", value or "") if n]


def fill_loaded_plugins(text: str | None, names: list[str]) -> str:
    """entrypoint fill_tuples: {x, false}. -> {x, true}. or append {x, true}."""
    lines = (text or "").splitlines(keepends=True)
    for name in names:
        pat = re.compile(r"^\s*\{\s*" + re.escape(name) + r"\s*,\s*false\s*\}\s*\.")
        hit = False
        for i, line in enumerate(lines):
            if pat.match(line):
                lines[i] = f"{{{name}, true}}.\n"
                hit = True
        if not hit and not any(
            re.match(r"^\s*\{\s*" + re.escape(name) + r"\s*,\s*true\s*\}", ln) for ln in lines
        ):
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.append(f"{{{name}, true}}.\n")
    return "".join(lines)


# --------------------------------------------------------------------------
# The whole boot decision


@dataclass
class PluginState:
    name: str
    enabled: bool
    active: bool
    error: str | None
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class BootPlan:
    node_name: str
    cookie: str
    conf: dict[str, str]
    seeds: list[str]
    plugins: list[PluginState]
    loaded_plugins_text: str
    warnings: list[str]


def plan_boot(
    env: dict[str, str],
    emqx_conf_text: str,
    plugin_conf_texts: dict[str, str],
    loaded_plugins_text: str | None,
    rows: list[Mapping],
) -> BootPlan:
    """Everything `emqx foreground` decides before the VM starts.

    Raises ConfigError for what stops 4.4.4 from starting (bad emqx.conf,
    bad node name). A bad plugin .conf only marks that plugin inactive.
    """
    core = rows_for(rows, None)
    conf = parse_conf(emqx_conf_text)
    conf = apply_overrides(conf, env_overrides(env, core))
    errors = validate(conf, core)
    if errors:
        raise ConfigError("\n".join(errors))
    node_name = effective(conf, core, "node.name") or "emqx@127.0.0.1"
    check_node_name(node_name)
    cookie = effective(conf, core, "node.cookie") or "emqxsecretcookie"
    seeds = split_seeds(conf.get("cluster.static.seeds"))

    warnings = []
    if loaded_plugins_text is None:
        loaded_plugins_text = format_loaded_plugins(DEFAULT_LOADED_PLUGINS)
    wanted = dict(parse_loaded_plugins(loaded_plugins_text))
    states = []
    for name in sorted(PLUGINS):
        prow = rows_for(rows, name)
        enabled = wanted.get(name, False)
        error = None
        try:
            pconf = parse_conf(plugin_conf_texts.get(name, ""), f"{name}.conf")
            pconf = apply_overrides(pconf, env_overrides(env, prow))
            perrs = validate(pconf, prow)
            if perrs:
                error = "; ".join(perrs)
        except ConfigError as exc:
            pconf, error = {}, str(exc)
        states.append(PluginState(name, enabled, enabled and error is None, error, pconf))
    for name in wanted:
        if name not in PLUGINS:
            warnings.append(f"Load plugin {name} error: plugin_not_found")
    return BootPlan(node_name, cookie, conf, seeds, states, loaded_plugins_text, warnings)


# --------------------------------------------------------------------------
# Erlang term output for the node


def erl_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def erl_atom(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def erl_kv(d: dict[str, str]) -> str:
    return "[" + ", ".join(f"{{{erl_string(k)}, {erl_string(v)}}}" for k, v in d.items()) + "]"


def listener_limits(conf: dict[str, str], rows: list[Mapping]) -> dict[str, str]:
    """acceptors and max_connections of every MQTT listener that is set
    (`listener.<proto>.<name> = ...`), from the conf or the schema default."""
    out = {}
    for key in conf:
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "listener" and parts[1] in ("tcp", "ssl", "ws", "wss"):
            for suffix in ("acceptors", "max_connections"):
                value = effective(conf, rows, f"{key}.{suffix}")
                if value is not None:
                    out[f"{key}.{suffix}"] = value
    return out


def render_terms(plan: BootPlan, rows: list[Mapping], version: str = DEFAULT_VERSION) -> str:
    core = rows_for(rows, None)
    # Defaults of the keys the Erlang side reads, resolved here from the table.
    needed = [
        "cluster.discovery",
        "cluster.name",
        "rpc.port_discovery",
        "rpc.tcp_server_port",
        "listener.tcp.external",
        "allow_anonymous",
        "zone.external.allow_anonymous",
        "log.to",
        "log.level",
        "log.dir",
        "log.file",
        "cluster.autoheal",
    ]
    conf = {k: v for k in needed if (v := effective(plan.conf, core, k)) is not None}
    conf.update(listener_limits(plan.conf, core))
    conf.update(plan.conf)
    out = [
        "%% Written by emqx-double at boot (a test double of EMQX 4.4.4, not EMQX).\n",
        f"{{node, {erl_atom(plan.node_name)}}}.\n",
        f"{{version, {erl_string(version)}}}.\n",
        f"{{conf, {erl_kv(conf)}}}.\n",
        f"{{seeds, [{', '.join(erl_atom(s) for s in plan.seeds)}]}}.\n",
    ]
    for p in plan.plugins:
        prow = rows_for(rows, p.name)
        pconf = dict(p.conf)
        for m in prow:
            if "$" not in m.key and m.key not in pconf:
                v = effective(pconf, prow, m.key)
                if v is not None:
                    pconf[m.key] = v
        err = erl_string(p.error) if p.error else "undefined"
        out.append(
            f"{{plugin, {p.name}, {erl_string(PLUGINS[p.name])}, "
            f"{'true' if p.enabled else 'false'}, {'true' if p.active else 'false'}, "
            f"{err}, {erl_kv(pconf)}}}.\n"
        )
    return "".join(out)


# --------------------------------------------------------------------------
# Commands


def log(msg: str) -> None:
    print(msg, flush=True)


def cmd_entrypoint(argv: list[str], root: Path = DEFAULT_ROOT) -> None:
    try:
        log(banner(double_version(dict(os.environ))))
    except ConfigError:
        log(BANNER)
    env = entrypoint_env(dict(os.environ), socket.gethostname(), local_ip())
    names = loaded_plugins_names(env.get("EMQX_LOADED_PLUGINS"))
    if names:
        lp = root / "data" / "loaded_plugins"
        old = lp.read_text() if lp.exists() else None
        lp.write_text(fill_loaded_plugins(old, names))
    env["EMQX_DOUBLE_BANNER_DONE"] = "1"
    os.environ.clear()
    os.environ.update(env)
    if not argv:
        argv = [str(root / "bin" / "emqx"), "foreground"]
    os.execvp(argv[0], argv)


def read_plugin_confs(etc_plugins: Path) -> dict[str, str]:
    out = {}
    if etc_plugins.is_dir():
        for f in sorted(etc_plugins.glob("*.conf")):
            out[f.stem] = f.read_text()
    return out


def cmd_foreground(root: Path = DEFAULT_ROOT, tsv: Path = DEFAULT_TSV) -> int:
    env = dict(os.environ)
    try:
        version = double_version(env)
    except ConfigError as exc:
        log(BANNER)
        log(f"emqx-double: [error] {exc}; the node does not start")
        return 1
    if not os.environ.get("EMQX_DOUBLE_BANNER_DONE"):
        log(banner(version))
    env.setdefault("EMQX_LOG__TO", "console")
    rows = load_schema(tsv)
    lp = root / "data" / "loaded_plugins"
    try:
        conf_text = (root / "etc" / "emqx.conf").read_text()
        plan = plan_boot(
            env,
            conf_text,
            read_plugin_confs(root / "etc" / "plugins"),
            lp.read_text() if lp.exists() else None,
            rows,
        )
    except (ConfigError, OSError) as exc:
        for line in str(exc).splitlines():
            log(f"emqx-double: [error] {line}")
        if isinstance(exc, NodeNameError):
            log("emqx-double: [error] the node does not start")
        else:
            log(
                "emqx-double: [error] Error generating config with cuttlefish; "
                "the node does not start"
            )
        return 1
    for w in plan.warnings:
        log(f"emqx-double: [warning] {w}")
    for p in plan.plugins:
        if p.enabled and not p.active:
            log(f"emqx-double: [error] Load plugin {p.name} error: {p.error}")
    if not lp.exists():
        lp.write_text(plan.loaded_plugins_text)
    configs = root / "data" / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "double.config").write_text(render_terms(plan, rows, version))
    args_file = configs / "vm.double.args"
    args_file.write_text(
        f"-name {plan.node_name}\n-setcookie {plan.cookie}\n"
        f"-kernel net_ticktime {net_ticktime(plan.conf)}\n"
    )
    args_file.chmod(0o600)
    mnesia_dir = root / "data" / "mnesia" / plan.node_name
    mnesia_dir.mkdir(parents=True, exist_ok=True)
    os.execvp("erl", erl_node_args(plan, env, root, mnesia_dir))
    return 0  # not reached


def erl_dist_args(node_name: str, env: dict[str, str], conf: dict[str, str]) -> list[str]:
    if env.get("WITH_EPMD"):
        lo = conf.get("node.dist_listen_min", "6369")
        hi = conf.get("node.dist_listen_max", lo)
        return ["-kernel", "inet_dist_listen_min", lo, "inet_dist_listen_max", hi]
    port = str(dist_port(node_name)) if not short_name(node_name).startswith("remsh") else "0"
    args = ["-start_epmd", "false", "-epmd_module", "emqx_double_epmd"]
    if port != "0":
        args += ["-kernel", "inet_dist_listen_min", port, "inet_dist_listen_max", port]
    return args


def net_ticktime(conf: dict[str, str]) -> str:
    """node.dist_net_ticktime (seconds), else vm.args' 120."""
    return conf.get("node.dist_net_ticktime", "120")


def erl_node_args(plan: BootPlan, env: dict[str, str], root: Path, mnesia_dir: Path) -> list[str]:
    return [
        "erl",
        "-noinput",
        "-name",
        plan.node_name,
        "-setcookie",
        plan.cookie,
        *erl_dist_args(plan.node_name, env, plan.conf),
        "-kernel",
        "net_ticktime",
        net_ticktime(plan.conf),
        # vm.args of 4.4.4: +P and +Q from node.process_limit / node.max_ports.
        "+P",
        plan.conf.get("node.process_limit", "2097152"),
        "+Q",
        plan.conf.get("node.max_ports", "1048576"),
        "-pa",
        str(HERE / "ebin"),
        "-mnesia",
        "dir",
        erl_string(str(mnesia_dir)),
        "-emqx_double_root",
        str(root),
        "-s",
        "emqx_double",
        "start",
    ]


def cli_target(env: dict[str, str], root: Path = DEFAULT_ROOT) -> tuple[str, str]:
    """Node name and cookie for `emqx_ctl`: what the running node wrote under
    data/configs (the truth), the container env when that is missing."""
    name = cookie = None
    args_file = root / "data" / "configs" / "vm.double.args"
    try:
        for line in args_file.read_text().splitlines():
            flag, _sep, value = line.partition(" ")
            if flag == "-name":
                name = value
            elif flag == "-setcookie":
                cookie = value
    except OSError:
        pass
    if name is None:
        e = entrypoint_env(env, socket.gethostname(), local_ip())
        name = e["EMQX_NODE_NAME"]
    cookie = env.get("EMQX_NODE_COOKIE") or cookie or "emqxsecretcookie"
    return name, cookie


def cli_ticktime(root: Path = DEFAULT_ROOT) -> str | None:
    """The node's net_ticktime as it wrote it, so that a long command (a
    join) keeps the connection under the same tick as the node expects."""
    try:
        for line in (root / "data" / "configs" / "vm.double.args").read_text().splitlines():
            words = line.split()
            if words[:2] == ["-kernel", "net_ticktime"] and len(words) == 3:
                return words[2]
    except OSError:
        pass
    return None


def cmd_ctl(argv: list[str], root: Path = DEFAULT_ROOT) -> int:
    node, cookie = cli_target(dict(os.environ), root)
    tick = cli_ticktime(root)
    me = f"remsh_maint_{random.randrange(10**6)}@127.0.0.1"
    no_epmd = (
        []
        if os.environ.get("WITH_EPMD")
        else ["-start_epmd", "false", "-epmd_module", "emqx_double_epmd"]
    )
    args = [
        "erl",
        "-noinput",
        "-hidden",
        "-name",
        me,
        "-setcookie",
        cookie,
        *no_epmd,
        *(["-kernel", "net_ticktime", tick] if tick else []),
        "-pa",
        str(HERE / "ebin"),
        "-s",
        "emqx_double_cli",
        "main",
        "-extra",
        node,
        *argv,
    ]
    os.execvp("erl", args)
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: emqx_double_config.py entrypoint|foreground|ctl ...", file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "entrypoint":
        cmd_entrypoint(rest)
    elif cmd == "foreground":
        return cmd_foreground()
    elif cmd == "ctl":
        return cmd_ctl(rest)
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
