"""``kafka-chatops sandbox fetch|up|status|kill-broker|fault|down``: the local Strimzi twin from a shell.

Output shapes are an interface (scripts and test fixtures parse ``--json``): keep them stable.
Every failure is one ``error: ...`` line (plus a log tail where it helps) and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import bot
from bot.sandbox import jars
from bot.sandbox.errors import SandboxError
from bot.sandbox.operator.faults import KINDS, MIRROR_TASK_FAIL, parse_rule
from bot.sandbox.operator.listeners import listener_lines, validate_listener_choice
from bot.sandbox.operator.names import OPERATOR_VERSION
from bot.sandbox.operator.versions import DEFAULT_KAFKA_VERSION, SUPPORTED_LINES, release_line
from bot.sandbox.processes import alive, kill_leftovers, stop_process_group, wait_until_true
from bot.sandbox.state import (
    LOG_FILE,
    PHASE_FAILED,
    PHASE_READY,
    PHASE_STOPPED,
    SandboxState,
    all_sandboxes,
    daemon_alive,
    describe_running,
    read_state,
    sandbox_dir,
    validate_name,
    write_state,
)

DEFAULT_NAME = "demo"
DEFAULT_NAMESPACE = "kafka"


def register(subparsers: Any) -> None:
    sandbox = subparsers.add_parser(
        "sandbox", help="a local twin of a Strimzi cluster: real Kafka brokers + a Kubernetes API emulator",
        description="Run a local twin of a Strimzi-managed Kafka cluster (real brokers, emulated Kubernetes API, "
                    "simulated Strimzi operator).")
    sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("fetch", help="download the jars of a Kafka version (Maven Central)")
    p.add_argument("--kafka-version", required=True, metavar="V")
    p.add_argument("--mirror-maker", action="store_true",
                   help="fetch the MirrorMaker 2 jars (Kafka Connect + the Mirror connectors) a sandbox of this "
                        "version runs KafkaMirrorMaker2 with (4.3.x's for 4.2.x: Central has no connect-mirror 4.2.2)")
    p.set_defaults(handler=_guarded(cmd_fetch))

    p = sub.add_parser("up", help="start a sandbox and wait until its Kafka resource is Ready")
    _name_arg(p)
    p.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    p.add_argument("--brokers", type=int, default=3, help="dual-role (broker+controller) nodes (default 3)")
    p.add_argument("--broker-only", type=int, default=None, metavar="M",
                   help="add the broker-only KafkaNodePool 'brokers' with M replicas (0 allowed): the pool a "
                        "static quorum can scale; its node ids follow the dual-role ones")
    p.add_argument("--racks", type=int, default=0, metavar="K",
                   help="spread the nodes over K zones (zone-0..zone-K-1, node id modulo K) through "
                        "spec.kafka.rack (topology.kubernetes.io/zone); default: no racks")
    p.add_argument("--cruise-control", action="store_true",
                   help="set spec.cruiseControl: the operator then handles KafkaRebalance resources")
    p.add_argument("--listeners", default="plain", metavar="L,...",
                   help="the Kafka's listeners, from: plain (9092, no TLS), tls (9093, TLS + SCRAM-SHA-512), "
                        "mtls (9094, TLS + client certificates); default plain. TLS ones need openssl")
    p.add_argument("--kafka-version", default=DEFAULT_KAFKA_VERSION, metavar="V")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Ready (default 300)")
    p.add_argument("--reconcile-interval", type=float, default=3.0,
                   help="seconds between periodic reconciliations (Strimzi: 120)")
    p.add_argument("--heap-mb", type=int, default=384, help="broker heap (default 384)")
    p.add_argument("--roll-attempts", type=int, default=10,
                   help="availability checks before a blocked roll fails the reconciliation (Strimzi: 10, "
                        "backing off from 250 ms, about 2 min in all)")
    p.set_defaults(handler=_guarded(cmd_up))

    p = sub.add_parser("status", help="per node: id, pod, pod uid, pid, version, ready")
    _name_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_guarded(cmd_status))

    p = sub.add_parser("kill-broker", help="SIGKILL a broker; its pod restarts after --down-for seconds")
    p.add_argument("node_id", type=int, metavar="ID")
    _name_arg(p)
    p.add_argument("--down-for", type=float, default=0.0, metavar="SECONDS",
                   help="hold the broker down this long (crash loop) before the restart (default 0)")
    p.set_defaults(handler=_guarded(cmd_kill_broker))

    p = sub.add_parser("fault", help="inject a fault (for tests): start-failure --when KEY=VALUE, "
                                     "mirror-task-fail --when CONNECTOR, or --clear",
                       description="start-failure: while a broker's config has KEY=VALUE, each start of it really "
                                   "fails (Kafka exits during start-up) and its pod crash-loops. mirror-task-fail: "
                                   "while in force, every start of the named MirrorMaker 2 connector's tasks really "
                                   "fails (FAILED with Kafka's stack trace in the KafkaMirrorMaker2's "
                                   "status.connectors); its tasks are restarted once so it takes effect. Clearing it "
                                   "restarts nothing: a restart annotation or autoRestart brings the tasks back.")
    p.add_argument("kind", choices=KINDS)
    _name_arg(p)
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--when", metavar="KEY=VALUE|CONNECTOR",
                        help="start-failure: the broker config that makes a start fail; mirror-task-fail: the "
                             "connector, e.g. 'east->west.MirrorSourceConnector'")
    action.add_argument("--clear", action="store_true", help="remove every fault of this kind")
    p.add_argument("--json", action="store_true", help="print the faults in force as one JSON object")
    p.set_defaults(handler=_guarded(cmd_fault))

    p = sub.add_parser("down", help="stop a sandbox (brokers, operator, emulator); idempotent")
    _name_arg(p)
    p.add_argument("--all", action="store_true", help="stop every sandbox")
    p.set_defaults(handler=_guarded(cmd_down))


def _name_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=DEFAULT_NAME, help=f"sandbox name (default {DEFAULT_NAME})")


def _guarded(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = handler(args)
            return code
        except SandboxError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return run


# -- fetch ---------------------------------------------------------------------------------------
def cmd_fetch(args: argparse.Namespace) -> int:
    print(jars.fetch_mirror(args.kafka_version) if args.mirror_maker else jars.fetch(args.kafka_version))
    return 0


# -- up ------------------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    validate_name(args.name)
    validate_name(args.namespace)
    jars.validate_version_string(args.kafka_version)
    if release_line(args.kafka_version) not in SUPPORTED_LINES:
        lines = ", ".join(line + ".x" for line in SUPPORTED_LINES)
        raise SandboxError(f"Kafka {args.kafka_version} is not supported: the sandbox plays Strimzi "
                           f"{OPERATOR_VERSION}, which supports {lines}")
    if not 1 <= args.brokers <= 9:
        raise SandboxError(f"--brokers must be between 1 and 9 (got {args.brokers})")
    if args.broker_only is not None and not 0 <= args.broker_only <= 6:
        raise SandboxError(f"--broker-only must be between 0 and 6 (got {args.broker_only})")
    if not 0 <= args.racks <= 9:
        raise SandboxError(f"--racks must be between 0 (no racks) and 9 (got {args.racks})")
    args.listeners = validate_listener_choice(args.listeners)
    directory = sandbox_dir(args.name)
    if daemon_alive(directory):
        state = read_state(directory)
        where = f" (API {state.api_url}, bootstrap {state.bootstrap_servers})" if state else ""
        raise SandboxError(f"sandbox {args.name!r} is already running{where}; stop it first with: "
                           f"kafka-chatops sandbox down --name {args.name}")
    jars.require_java()
    if not jars.is_fetched(args.kafka_version):
        print(f"fetching the Kafka {args.kafka_version} jars from Maven Central (once)...", file=sys.stderr)
        jars.fetch(args.kafka_version)
    shutil.rmtree(directory, ignore_errors=True)  # a fresh cluster each time: old data has another cluster id
    directory.mkdir(parents=True)
    directory = directory.resolve()  # processes are found again by this path in their command lines
    started = time.monotonic()
    proc = _spawn_daemon(args, directory)
    try:
        state = _wait_until_ready(proc, directory, started + args.timeout)
    except BaseException:
        stop_process_group(proc.pid, grace_s=20.0)
        raise
    elapsed = time.monotonic() - started
    info = _control(state, "GET", "/sandbox/status")
    result = {
        "name": state.name, "namespace": state.namespace, "cluster": state.cluster,
        "kubeconfig": state.kubeconfig, "api_url": state.api_url, "bootstrap_servers": state.bootstrap_servers,
        "kafka_version": state.kafka_version, "brokers": state.brokers, "broker_only": state.broker_only,
        "racks": state.racks, "cruise_control": state.cruise_control, "state_dir": state.state_dir,
        "daemon_pid": state.daemon_pid, "startup_seconds": round(elapsed, 1), "nodes": info.get("nodes", []),
        "listeners": state.listeners,
    }
    if args.json:
        print(json.dumps(result))
    else:
        extras = "".join([f" + {state.broker_only} broker-only" if args.broker_only is not None else "",
                          f", {state.racks} rack(s)" if state.racks else "",
                          ", Cruise Control" if state.cruise_control else ""])
        print(f"Sandbox {state.name} is ready: {state.brokers} broker(s){extras}, Kafka {state.kafka_version}, "
              f"{elapsed:.1f} s\n"
              f"  Kubernetes API   {state.api_url}\n"
              f"  kubeconfig       export KUBECONFIG={state.kubeconfig}\n"
              f"  Kafka resource   {state.namespace}/{state.cluster}\n"
              f"  bootstrap        {state.bootstrap_servers}\n"
              f"{listener_lines(state.listeners, state.cluster)}"
              f"  state dir        {state.state_dir} (daemon pid {state.daemon_pid})\n"
              f"Stop it with: kafka-chatops sandbox down --name {state.name}")
    return 0


def _spawn_daemon(args: argparse.Namespace, directory: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    project_root = str(Path(bot.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "bot.sandbox.daemon", "--name", args.name, "--namespace", args.namespace,
           "--brokers", str(args.brokers), "--kafka-version", args.kafka_version, "--state-dir", str(directory),
           "--reconcile-interval", str(args.reconcile_interval), "--heap-mb", str(args.heap_mb),
           "--ready-timeout", str(args.timeout), "--roll-attempts", str(args.roll_attempts),
           "--racks", str(args.racks), "--listeners", args.listeners]
    if args.broker_only is not None:
        cmd += ["--broker-only", str(args.broker_only)]
    if args.cruise_control:
        cmd.append("--cruise-control")
    with (directory / LOG_FILE).open("ab") as log:
        # Own session: the daemon outlives this command and a Ctrl-C in the user's terminal.
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, close_fds=True)


def _wait_until_ready(proc: subprocess.Popen[bytes], directory: Path, deadline: float) -> SandboxState:
    while True:
        state = read_state(directory)
        if state is not None and state.phase == PHASE_READY:
            return state
        rc = proc.poll()
        if state is not None and state.phase == PHASE_FAILED:
            raise SandboxError(f"the sandbox did not become ready: {state.error}\n(the daemon's log: "
                               f"{directory / LOG_FILE})")
        if rc is not None:
            raise SandboxError(f"the sandbox daemon exited (code {rc}) before the Kafka resource was Ready; "
                               f"the end of {directory / LOG_FILE}:\n{_log_tail(directory)}")
        if time.monotonic() > deadline:
            raise SandboxError(f"the Kafka resource was not Ready in time; the end of {directory / LOG_FILE}:\n"
                               f"{_log_tail(directory)}")
        time.sleep(0.3)


def _log_tail(directory: Path, lines: int = 15) -> str:
    try:
        text = (directory / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no daemon log)"
    return "\n".join("  | " + line[:200] for line in text.splitlines()[-lines:])


# -- status / kill-broker -----------------------------------------------------------------------
def _running(name: str) -> SandboxState:
    directory = sandbox_dir(name)
    state = read_state(directory)
    if state is None or not daemon_alive(directory) or not state.api_url:
        raise SandboxError(f"no running sandbox named {name!r}; {describe_running()}")
    return state


def _control(state: SandboxState, method: str, path: str, *, timeout: float = 15.0) -> dict[str, Any]:
    request = urllib.request.Request(f"{state.api_url}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: dict[str, Any] = json.loads(response.read() or b"{}")
            return body
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("error") or str(e)
        except ValueError:
            message = str(e)
        raise SandboxError(message) from e
    except (urllib.error.URLError, OSError) as e:
        raise SandboxError(f"sandbox {state.name!r} does not answer at {state.api_url}: {e}") from e


def cmd_status(args: argparse.Namespace) -> int:
    state = _running(args.name)
    info = _control(state, "GET", "/sandbox/status")
    conditions = info.get("kafka", {}).get("conditions", [])
    info["ready"] = any(c.get("type") == "Ready" for c in conditions)
    if args.json:
        print(json.dumps(info))
        return 0
    summary = ", ".join(c.get("type", "") + (f" ({c['reason']})" if c.get("reason") else "") for c in conditions)
    kafka = info.get("kafka", {})
    print(f"Sandbox {state.name}: Kafka {state.namespace}/{state.cluster} [{summary or 'no status yet'}], "
          f"Kafka {kafka.get('kafkaVersion')}, metadata {kafka.get('kafkaMetadataVersion')}")
    print(f"  API {state.api_url}   bootstrap {info.get('bootstrap_servers')}")
    for fault in info.get("faults") or []:
        when = fault.get("connector") or f"{fault.get('key')}={fault.get('value')}"
        print(f"  fault: {fault['kind']} when {when}")
    print(f"  {'ID':>3}  {'POD':<28} {'UID':<36}  {'PID':>7}  {'VERSION':<8} READY")
    for n in info.get("nodes", []):
        ready = "yes" if n.get("ready") else ("crash-loop" if n.get("crash_looping") else "no")
        print(f"  {n['id']:>3}  {n['pod']:<28} {n.get('uid') or '-':<36}  {n.get('pid') or '-':>7}  "
              f"{n.get('version', ''):<8} {ready}")
    for m in info.get("mirror_makers") or []:
        print(f"  KafkaMirrorMaker2 {m['namespace']}/{m['name']}: Connect worker pid {m.get('pid') or '-'}, "
              f"REST {m.get('url') or '-'}")
    return 0


def cmd_kill_broker(args: argparse.Namespace) -> int:
    if args.down_for < 0:
        raise SandboxError("--down-for must be >= 0")
    state = _running(args.name)
    result = _control(state, "POST", f"/sandbox/brokers/{args.node_id}/kill?down_for={args.down_for}")
    print(f"killed broker {result['killed']} (pod {result['pod']}, pid {result['pid']}); "
          + (f"it restarts in {args.down_for:g} s" if args.down_for else "it restarts now"))
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    if args.when is not None:
        parse_rule(args.kind, args.when)  # bad input is refused here, before the daemon is asked
    state = _running(args.name)
    if args.clear:
        result = _control(state, "DELETE", f"/sandbox/faults/{args.kind}")
        text = f"cleared {result['cleared']} {args.kind} fault(s)"
    else:
        query = urllib.parse.urlencode({"when": args.when})
        result = _control(state, "POST", f"/sandbox/faults/{args.kind}?{query}")
        added = result["added"]
        if args.kind == MIRROR_TASK_FAIL:
            text = (f"{args.kind}: the tasks of {added['connector']} now fail at each start (restarted once, so "
                    "it shows in the KafkaMirrorMaker2's status.connectors within seconds)")
        else:
            text = (f"{args.kind}: a broker whose config has {added['key']}={added['value']} now fails at each "
                    "start (it takes effect when the operator or the kubelet next starts it)")
    print(json.dumps({"faults": result["faults"]}) if args.json else text)
    return 0


# -- down ----------------------------------------------------------------------------------------
def cmd_down(args: argparse.Namespace) -> int:
    targets = [s.name for s in all_sandboxes()] if args.all else [args.name]
    if not args.all:
        validate_name(args.name)
    for name in targets:
        print(_stop_sandbox(name))
    return 0


def _stop_sandbox(name: str) -> str:
    directory = sandbox_dir(name)
    state = read_state(directory)
    if state is None and not directory.exists():
        return f"sandbox {name} does not exist (nothing to stop; {describe_running()})"
    was_running = daemon_alive(directory)
    if was_running and state is not None:
        with contextlib.suppress(SandboxError):  # hung or half-dead: the signals below
            _control(state, "POST", "/sandbox/shutdown", timeout=5.0)
        wait_until_true(lambda: not daemon_alive(directory), 60.0)
        if daemon_alive(directory) and state.daemon_pid:
            stop_process_group(state.daemon_pid, grace_s=10.0)
        if state.daemon_pid:  # the lock goes a moment before the interpreter has exited
            wait_until_true(lambda: not alive(state.daemon_pid or 0), 10.0)
    killed = kill_leftovers(directory)
    if state is not None:
        state.phase, state.broker_pids = PHASE_STOPPED, {}
        write_state(state)
    extra = f" (killed {killed} leftover process(es))" if killed else ""
    return f"sandbox {name} stopped{extra}" if was_running else f"sandbox {name} is not running{extra}"
