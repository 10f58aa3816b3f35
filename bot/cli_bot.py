"""The bot's own subcommands: ``console`` and ``demo`` (``run`` for Slack arrives with the Slack issue)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bot.app import build_runtime
from bot.config.settings import ConfigError, Settings
from bot.console.console import Console
from bot.startup import check_settings, load_settings, refuse


def register(commands: Any) -> None:
    console = commands.add_parser("console", help="the bot in a terminal: type /kafka commands, approve steps")
    console.add_argument("--user", default=None, help="who you are to the approval rules (default console:$USER)")
    console.add_argument("--json", action="store_true", help="one JSON object per line, for scripts")
    console.set_defaults(handler=cmd_console)

    demo = commands.add_parser("demo", help="sandbox + local Redis + the console, ready to try")
    demo.add_argument("--name", default="demo", help="the sandbox (and cluster) name")
    demo.add_argument("--brokers", type=int, default=3)
    demo.add_argument("--kafka-version", default="4.3.1")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=cmd_demo)


def console_user(explicit: str | None) -> str:
    return explicit or f"console:{os.environ.get('USER') or getpass.getuser()}"


async def _console(settings: Settings, user: str, json_mode: bool) -> None:
    runtime = await build_runtime(settings)
    console = Console(runtime, user=user, json_mode=json_mode)
    try:
        await runtime.start()
        await console.run()
    finally:
        await runtime.close()


def cmd_console(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        check_settings(settings)
        asyncio.run(_console(settings, console_user(args.user), args.json))
    except ConfigError as exc:
        return refuse("console", exc)
    except KeyboardInterrupt:
        return 130
    return 0


def demo_config(name: str, namespace: str, kafka: str, user: str) -> str:
    """The demo's clusters file: one cluster, the console user approves, no second person needed."""
    return (
        f"clusters:\n  {name}:\n    namespace: {namespace}\n    kafka: {kafka}\n"
        f"    approvers: [{json.dumps(user)}]\n    four_eyes: false\n    approval_timeout: 30m\n"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.localredis import LocalRedis, LocalRedisError
    from bot.sandbox.errors import SandboxError
    from bot.sandbox.state import daemon_alive, read_state, sandbox_dir

    try:
        load_settings()  # the environment's settings, before a sandbox is started for nothing
        directory = sandbox_dir(args.name)
    except (ConfigError, SandboxError) as exc:
        return refuse("demo", exc)
    if not daemon_alive(directory):
        print(f"Starting sandbox {args.name} ({args.brokers} brokers, Kafka {args.kafka_version})...", file=sys.stderr)
        up = subprocess.run(
            [sys.executable, "-m", "bot", "sandbox", "up", "--name", args.name, "--brokers", str(args.brokers),
             "--kafka-version", args.kafka_version, "--json"],
            capture_output=True, text=True,
        )
        if up.returncode != 0:
            print(up.stderr.strip() or up.stdout.strip(), file=sys.stderr)
            return up.returncode
    state = read_state(directory)
    if state is None or not state.kubeconfig:
        return refuse("demo", ConfigError(f"sandbox {args.name} has no state in {directory}: stop it with "
                                          f"`kafka-chatops sandbox down --name {args.name}` and try again"))
    _ensure_demo_topic(state.kubeconfig, state.namespace, state.cluster)
    user = console_user(None)
    workdir = Path(tempfile.mkdtemp(prefix="kafka-chatops-demo-"))
    config = workdir / "clusters.yaml"
    config.write_text(demo_config(args.name, state.namespace, state.cluster, user))
    redis = LocalRedis(workdir / "redis")
    try:
        redis.start()
    except LocalRedisError as exc:
        return refuse("demo", exc)
    print(f"Sandbox {args.name}: Kafka {state.kafka_version} at {state.bootstrap_servers}, "
          f"kubeconfig {state.kubeconfig}. Redis at {redis.url}.", file=sys.stderr)
    print(f"You are {user}. Try: help · status {args.name} · restart {args.name} --dry-run · "
          f"restart {args.name} · approve <run> · runs. Ctrl-D leaves; "
          f"`kafka-chatops sandbox down --name {args.name}` stops the sandbox.", file=sys.stderr)
    try:
        settings = load_settings(redis_url=redis.url, kubeconfig=state.kubeconfig, kafka_chatops_config=str(config))
        asyncio.run(_console(settings, user, args.json))
    except ConfigError as exc:
        return refuse("demo", exc)
    except KeyboardInterrupt:
        pass
    finally:
        redis.stop()
    return 0


def _ensure_demo_topic(kubeconfig: str, namespace: str, cluster: str) -> None:
    """A replicated topic, so the demo's health checks and restarts have partitions to look after."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from bot.kube.gateway import load_api_client

    topic = {
        "apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic",
        "metadata": {"name": "demo-orders", "labels": {"strimzi.io/cluster": cluster}},
        "spec": {"partitions": 6, "replicas": 3, "config": {"min.insync.replicas": "2"}},
    }
    try:
        api = client.CustomObjectsApi(load_api_client(kubeconfig))
        api.create_namespaced_custom_object("kafka.strimzi.io", "v1", namespace, "kafkatopics", topic)
    except ApiException as exc:
        if exc.status != 409:  # 409: it is there from an earlier demo
            print(f"kafka-chatops demo: could not create the demo topic: {exc.reason}", file=sys.stderr)
    except Exception as exc:  # the sandbox's API server is not answering: the console will say more
        print(f"kafka-chatops demo: could not create the demo topic ({type(exc).__name__})", file=sys.stderr)
