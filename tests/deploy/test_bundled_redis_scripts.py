"""The bundled Redis's start scripts, with real redis-server processes and no Kubernetes: three
"pods" form one master, two replicas and three agreeing Sentinels; a killed master is replaced by a
promoted replica; and the killed pod, started again, rejoins as a replica of the new master instead
of coming back as a second master."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.app import connect_redis
from tests.deploy.bundled_redis_pods import MASTER_NAME, POD_HOST, SCRIPTS, Pod
from tests.fixtures.redis_server import HOST
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[list[Pod]]:
    started = [Pod(tmp_path / f"pod-{i}", i) for i in range(3)]
    try:
        yield started
    finally:
        for pod in started:
            pod.cleanup()


def _answer(call: Callable[[], Any]) -> Any:
    """The reply, or None from a server that is down or refuses (a process killed or still starting)."""
    try:
        return call()
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        return None


def _role(pod: Pod) -> dict[str, Any] | None:
    with pod.redis() as client:
        info: dict[str, Any] | None = _answer(lambda: client.info("replication"))
    return info


def _ask_sentinel(pod: Pod, *command: str) -> Any:
    with pod.sentinel() as client:
        return _answer(lambda: client.execute_command("SENTINEL", *command, MASTER_NAME))


def _masters_seen(pods: list[Pod]) -> set[tuple[str, str] | None]:
    """The master address each live Sentinel gives (None for one that does not answer)."""
    seen: set[tuple[str, str] | None] = set()
    for pod in pods:
        if "sentinel" in pod.processes:
            address = _ask_sentinel(pod, "GET-MASTER-ADDR-BY-NAME")
            seen.add((str(address[0]), str(address[1])) if address else None)
    return seen


def _settled(pods: list[Pod]) -> Pod | None:
    """The master, once every Sentinel names the same one, knows the two other Sentinels, and the master
    has the two other pods as replicas in sync. Which pod is checked by the caller: on a loaded machine
    the Sentinels may fail over once more than the test asked for, which is theirs to decide."""
    seen = _masters_seen(pods)
    if len(seen) != 1 or None in seen:
        return None
    (address,) = seen
    master = next((p for p in pods if (POD_HOST, str(p.redis_port)) == address), None)
    if master is None:
        return None
    for pod in pods:
        others = _ask_sentinel(pod, "SENTINELS")
        if not others or len(others) != len(pods) - 1:
            return None
    info = _role(master)
    if not info or info.get("role") != "master" or int(str(info.get("connected_slaves", 0))) != len(pods) - 1:
        return None
    replicas = [_role(p) for p in pods if p is not master]
    in_sync = all(r and r.get("role") == "slave" and r.get("master_link_status") == "up"
                  and int(str(r.get("master_port"))) == master.redis_port for r in replicas)
    return master if in_sync else None


def _wait_settled(pods: list[Pod], what: str) -> Pod:
    try:
        master = wait_until(lambda: _settled(pods), timeout=45, interval=0.2, message=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(p.logs() for p in pods)) from exc
    assert master is not None
    return master


def _wait_for_master_other_than(pods: list[Pod], old: Pod, what: str) -> None:
    """Every live Sentinel names one master, not `old`."""
    gone = (POD_HOST, str(old.redis_port))

    def agreed() -> bool:
        seen = _masters_seen(pods)
        return len(seen) == 1 and None not in seen and gone not in seen
    try:
        wait_until(agreed, timeout=30, interval=0.2, message=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(p.logs() for p in pods)) from exc


def _assert_configured(pod: Pod) -> None:
    """What docs/redis.md says the bot relies on, as the running servers report it; both need the password."""
    with pod.redis() as client:
        config = client.config_get("*")
    assert (config["appendonly"], config["appendfsync"]) == ("yes", "always")
    assert config["min-replicas-to-write"] == "1"
    sentinel_conf = (pod.directory / "conf-sentinel" / "sentinel.conf").read_text()
    for line in ("sentinel resolve-hostnames yes", "sentinel announce-hostnames yes",
                 f"sentinel monitor {MASTER_NAME} {POD_HOST} {pod.redis_port} 2"):
        assert line in sentinel_conf, line
    for port in (pod.redis_port, pod.sentinel_port):
        with redis.Redis(host=HOST, port=port, socket_timeout=2) as anonymous, pytest.raises(redis.AuthenticationError):
            anonymous.ping()


def _start_all(pods: list[Pod]) -> None:
    for pod in pods:
        pod.start("sentinel", pods)
        pod.start("redis", pods)
    master = _wait_settled(pods, "a master with the two other pods in sync, and three Sentinels agreeing")
    assert master is pods[0]


def test_three_pods_form_a_master_two_replicas_and_survive_losing_the_master(pods: list[Pod]) -> None:
    """Pod 0 the first master; a promoted replica in its place when its Redis dies; its Sentinel and
    its Redis, started again, follow the new master (a replica, never a second master)."""
    # All six scripts at once, as a StatefulSet with Parallel pod management starts them: no Sentinel
    # knows a master yet, so pod 0 is the master, and every Sentinel monitors it.
    _start_all(pods)
    _assert_configured(pods[0])
    with pods[0].redis() as client:
        client.set("before", "failover")
        assert client.wait(2, 2000) == 2  # replicated to both

    # The master's Redis dies (its Sentinel stays): the other Sentinels promote a replica.
    pods[0].kill("redis")
    _wait_for_master_other_than(pods, pods[0], "the Sentinels to agree on a promoted replica")

    # The killed pod's Sentinel restarts too: its script finds the new master through the others and
    # monitors it, not pod 0 (which is down).
    pods[0].kill("sentinel")
    pods[0].start("sentinel", pods)
    _wait_for_master_other_than(pods, pods[0], "pod 0's restarted Sentinel to monitor the new master")
    starts = [line for line in (pods[0].directory / "sentinel.log").read_text().splitlines()
              if "knows a master" in line or "know the master" in line]  # the script's line at each start
    assert "no Sentinel knows a master" in starts[0] and "the Sentinels know the master" in starts[-1], starts

    # The killed pod's container restarts: its script asks the Sentinels and starts as a replica of the
    # new master. Every answer it gives from its first PING on says replica, never master.
    pods[0].start("redis", pods)
    roles: list[object] = []

    def rejoined() -> bool:
        info = _role(pods[0])
        if info is None:
            return False
        roles.append(info.get("role"))
        return info.get("master_link_status") == "up"
    wait_until(rejoined, timeout=30, interval=0.05, message="pod 0 to come back as a replica in sync")
    assert set(roles) == {"slave"}, roles
    assert "replicaof" in (pods[0].directory / "conf-redis" / "redis.conf").read_text()
    assert _wait_settled(pods, "a master with both other pods as replicas, three Sentinels agreeing") is not pods[0]
    with pods[0].redis() as client:
        assert client.get("before") == "failover"  # the data survived the switch


def test_a_stopping_master_hands_over_to_a_replica_and_a_stopping_replica_does_not(pods: list[Pod]) -> None:
    """prestop.sh (the redis container's preStop): on the master it has the Sentinels fail over and
    returns once they name another master, well before down-after-milliseconds would have passed
    after a plain stop; the old master, still running, is made a replica. On a replica it returns at
    once and the master stays."""
    _start_all(pods)

    def prestop(pod: Pod) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(SCRIPTS / "prestop.sh")], env=pod.env(pods, "redis"), capture_output=True,
                              text=True, timeout=30, check=False)
    replica = prestop(pods[1])
    assert replica.returncode == 0 and not replica.stderr
    assert _masters_seen(pods) == {(POD_HOST, str(pods[0].redis_port))}

    master = prestop(pods[0])
    assert master.returncode == 0 and "handed over to" in master.stderr, master.stderr
    _wait_for_master_other_than(pods, pods[0], "every Sentinel to name the new master")

    def demoted() -> bool:
        seen = _masters_seen(pods)
        address = next(iter(seen)) if len(seen) == 1 else None
        info = _role(pods[0]) or {}
        return address is not None and info.get("role") == "slave" and str(info.get("master_port")) == address[1]
    try:
        wait_until(demoted, timeout=45, interval=0.2, message="the old master to be a replica of the new one")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: Sentinels say {_masters_seen(pods)}, pod 0 says {_role(pods[0])}") from exc


@pytest.mark.timeout(20)
@pytest.mark.parametrize("password", ['with"quote', "with\\backslash", ""])
@pytest.mark.parametrize("container", ["redis", "sentinel"])
def test_a_password_the_config_cannot_hold_stops_the_script_saying_why(
        tmp_path: Path, password: str, container: str) -> None:
    """Redis would read \\ and " in the quoted password as escapes and run with another password: the
    script refuses, names the file, and writes no config."""
    pod = Pod(tmp_path, 0)
    env = pod.env([pod], container)
    Path(env["REDIS_PASSWORD_FILE"]).write_text(password + "\n")
    result = subprocess.run(["sh", str(SCRIPTS / f"{container}.sh")], env=env, capture_output=True, text=True,
                            timeout=10, check=False)
    assert result.returncode == 2
    assert f"the password in {env['REDIS_PASSWORD_FILE']} is empty or has" in result.stderr
    assert not list(Path(env["CONF_DIR"]).iterdir())


def test_the_bot_reaches_the_master_through_the_pods_sentinels_with_one_password_file(pods: list[Pod]) -> None:
    """As the chart configures it: REDIS_URL naming every pod's Sentinel, and the one password file as
    both REDIS_PASSWORD_FILE and REDIS_SENTINEL_PASSWORD_FILE. The bot's own connect finds the master
    and its write reaches a replica (WAIT 1, as REDIS_WAIT_REPLICAS=1 asks)."""
    _start_all(pods)
    password_file = pods[0].env(pods, "redis")["REDIS_PASSWORD_FILE"]
    url = f"redis+sentinel://{','.join(f'{POD_HOST}:{p.sentinel_port}' for p in pods)}/{MASTER_NAME}/0"

    async def write() -> int:
        client = await connect_redis(url, password_file=password_file, sentinel_password_file=password_file)
        try:
            await client.set("written-by", "the bot")
            return int(await client.wait(1, 2000))
        finally:
            await client.aclose()
    assert asyncio.run(write()) >= 1
    with pods[0].redis() as master:
        assert master.get("written-by") == "the bot"
