"""A Redis primary, its replicas and three Sentinels as real processes on free loopback ports, for failover tests
and the durability benchmark. Sentinels are Debian's `redis-server` started with `--sentinel` and a config file of
their own (Sentinel rewrites it: https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from tests.fakes.server import free_port, wait_for


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class RedisNode:
    """One redis-server (no persistence unless `extra` asks for it), optionally a replica of `replica_of`."""

    def __init__(self, workdir: Path, replica_of: int | None = None, extra: tuple[str, ...] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is needed (apt-get install redis-server)")
        self.port = free_port()
        self.workdir = workdir / f"node-{self.port}"
        self.workdir.mkdir(parents=True)
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir), "--save", ""]
        argv += ["--appendonly", "no", "--maxmemory-policy", "noeviction", *extra]
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.argv = argv
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisNode:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with self.client() as client:
            wait_for(lambda: _answers(client), timeout=10, what=f"redis-server on {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write, the crash a failover is for."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class SentinelGroup:
    """A primary, `replicas` replicas and three Sentinels (quorum 2) monitoring them as `master_name`.

    `down_after_ms` is how long the primary must be silent before a Sentinel calls it down (production: a few
    seconds; tests: short so a failover takes about two seconds)."""

    def __init__(
        self,
        workdir: Path,
        replicas: int = 1,
        master_name: str = "loopera",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
    ) -> None:
        self.workdir = workdir
        self.master_name = master_name
        self.primary = RedisNode(workdir)
        self.replicas = [RedisNode(workdir, replica_of=self.primary.port) for _ in range(replicas)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def sentinels_setting(self) -> str:
        """REDIS_SENTINELS for the services."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def env(self) -> dict[str, str]:
        # REDIS_URL's host and port are not used behind Sentinel: a port nothing listens on proves it.
        return {
            "REDIS_SENTINELS": self.sentinels_setting,
            "REDIS_SENTINEL_MASTER": self.master_name,
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        }

    def start(self) -> SentinelGroup:
        self.primary.start()
        for replica in self.replicas:
            replica.start()
        with self.primary.client() as client:
            wait_for(lambda: self._online_replicas(client) == len(self.replicas), timeout=20, what="replicas in sync")
        binary = shutil.which("redis-server")
        assert binary is not None
        for port in self.sentinel_ports:
            config = self.workdir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {self.master_name} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.master_name} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.master_name} 1\nlogfile {self.workdir}/sentinel-{port}.log\n"
            )
            argv = [binary, str(config), "--sentinel"]
            self.sentinels.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # Sentinels find each other and the replicas through the primary (hello messages every 2 s); a failover
        # needs a majority of them to know each other.
        wait_for(self._sentinels_ready, timeout=30, what="three Sentinels that know each other and the replicas")
        return self

    @staticmethod
    def _online_replicas(client: redis.Redis) -> int:
        try:
            info = client.info("replication")
        except redis.RedisError:
            return -1
        return sum(1 for key, value in info.items() if key.startswith("slave") and value.get("state") == "online")

    def _sentinel_state(self, port: int) -> dict[str, object] | None:
        client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
        try:
            masters = client.sentinel_masters()
            return masters.get(self.master_name)  # type: ignore[no-any-return]
        except redis.RedisError:
            return None
        finally:
            client.close()

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            state = self._sentinel_state(port)
            if state is None or int(str(state["num-other-sentinels"])) < 2:
                return False
            if int(str(state["num-slaves"])) < len(self.replicas):
                return False
        return True

    def primary_port(self) -> int | None:
        """The port every answering Sentinel names as primary, if they agree and it is not seen as down."""
        ports = set()
        for port in self.sentinel_ports:
            state = self._sentinel_state(port)
            if state is None or "s_down" in str(state["flags"]) or "o_down" in str(state["flags"]):
                return None
            ports.add(int(str(state["port"])))
        return ports.pop() if len(ports) == 1 else None

    def kill_primary(self) -> int:
        """SIGKILL the current primary; returns its port."""
        old = self.primary
        old.kill()
        return old.port

    def wait_for_promotion(self, old_port: int, timeout: float = 60) -> RedisNode:
        """Until the Sentinels agree on a new primary; returns that node (one of the replicas)."""
        port = wait_for(
            lambda: (p := self.primary_port()) is not None and p != old_port and p, timeout=timeout, what="a failover"
        )
        promoted = next(r for r in self.replicas if r.port == port)
        self.replicas.remove(promoted)
        self.replicas.append(self.primary)  # the dead one, stopped; kept so stop() covers every node
        self.primary = promoted
        return promoted

    def revive(self, port: int, timeout: float = 60) -> None:
        """Start the killed node again, as its container's restart policy would; the Sentinels turn it into a
        replica of the new primary. Until then the new primary has no replica to confirm a WAIT."""
        node = next(r for r in self.replicas if r.port == port)
        node.start()
        with self.primary.client() as client:
            wait_for(
                lambda: self._online_replicas(client) == len(self.replicas),
                timeout=timeout,
                what="the old primary to come back as a replica",
            )

    def stop(self) -> None:
        for sentinel in self.sentinels:
            if sentinel.poll() is None:
                sentinel.terminate()
                sentinel.wait(timeout=10)
        for node in [self.primary, *self.replicas]:
            node.stop()
