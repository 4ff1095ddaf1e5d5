"""Everything a scenario runs on: its nodes (daemons as processes, each with its own state
directory and sound server), the namespaces and NAT routers they live in, the impaired
links between them, and the processes steps start. `Testbed.close` takes all of it
down (processes, namespaces, sound servers, iptables rules go with their namespaces;
the run directory unless kept), whatever happened before, and may be called again.

Addresses (a run's tag t = pid % 250): the LAN is 10.86.t.0/24 (nodes at .10 + i, NAT
routers' outside legs at .100 + i), node i behind a NAT lives in 10.87.t.8i/29, and
the runner reaches each API over a management leg 10.90.t.x/30 of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from rocd.audio import private_pulse_root
from rocd.audio._pulse_ctl import client_config

from ._daemon import DaemonProcess, DaemonStartError, free_ports, serve_command, toml_text
from ._model import LinkSpec, NodeSpec, Scenario
from ._netns import NetnsError, Topology, check_netns, sh
from ._signals import parse_signal, read_signal_file

__all__ = ["Node", "SetupError", "Testbed"]

_QUEUE_BASE: Final = 100  # netfilter queue numbers of the links: 100 + link index
_EVENT_BUFFER: Final = 8192


class SetupError(RuntimeError):
    """The scenario cannot run here (not root for namespaces, a daemon did not start)."""


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Node:
    """One rocd instance of the scenario and what the runner knows of it."""

    name: str
    spec: NodeSpec
    root: Path
    index: int
    netns: str | None = None
    host: str = "127.0.0.1"  # its cluster listener (and the address peers dial)
    public: str = "127.0.0.1"  # where its packets come from on the LAN
    api_host: str = "127.0.0.1"
    api_port: int = 0
    cluster_port: int = 0
    daemon: DaemonProcess | None = None
    me: dict[str, Any] = field(default_factory=dict)
    pulse_server: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    cursor: int = 0  # events before it were matched by an event step
    up: trio.Event = field(default_factory=trio.Event)
    subscribed: trio.Event = field(default_factory=trio.Event)

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    @property
    def url(self) -> str:
        return self.daemon.url if self.daemon is not None else ""

    @property
    def running(self) -> bool:
        return self.daemon is not None and self.daemon.running

    def properties(self) -> dict[str, Any]:
        """What `${name.x}` names."""
        props = {
            "name": self.name,
            "host": self.host,
            "api": self.url,
            "files": str(self.files_dir),
            "pulse_server": self.pulse_server,
            "uid": self.me.get("uid", ""),
            "key": self.me.get("key", ""),
            "address": self.me.get("address", ""),
        }
        return {f"{self.name}.{k}": v for k, v in props.items()}

    def config(self) -> dict[str, Any]:
        base: dict[str, Any] = {
            "api": {"auth": "none"},
            "audio": {
                "pulse": "auto" if self.spec.sound else "off",
                "files_dir": str(self.files_dir),
            },
            "cluster": {"discovery": False},
        }
        return _merge(base, self.spec.config)

    def sound_env(self) -> dict[str, str]:
        """The environment of a sound client (paplay, parec) of this node's server."""
        return {
            **os.environ,
            "PULSE_SERVER": self.pulse_server,
            "PULSE_CLIENTCONFIG": str(client_config()),
        }

    def inside(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv


class Testbed:
    """Builds and takes down a scenario's world; see the module docstring."""

    def __init__(self, scenario: Scenario, file: Path, run_dir: Path, *, log: Any = None) -> None:
        self.scenario = scenario
        self.file = file
        self.run_dir = run_dir
        self.nodes: dict[str, Node] = {}
        self.topology: Topology | None = None
        self.switch = ""
        self.processes: list[tuple[str, trio.Process]] = []  # (what, process)
        self.pids: list[tuple[str, int]] = []  # every process started, daemons included
        self.link_stats: dict[str, Path] = {}
        self.cuts: set[tuple[str, str]] = set()
        self.nursery: trio.Nursery | None = None
        self.hurry = False  # a second Ctrl-C: no grace for anyone
        self._log = log or (lambda text: None)
        for index, (name, spec) in enumerate(scenario.nodes.items()):
            self.nodes[name] = Node(name, spec, run_dir / name, index)

    # -- setting up -------------------------------------------------------------------

    async def open(self, nursery: trio.Nursery) -> None:
        """Make the network, write the files, start the nodes that start at once. On
        failure SetupError (or whatever a step of it raised); `close` still cleans up."""
        self.nursery = nursery
        if any(n.spec.netns for n in self.nodes.values()):
            try:
                check_netns()
            except NetnsError as exc:
                raise SetupError(str(exc)) from None
            await trio.to_thread.run_sync(self._build_network)
        for node in self.nodes.values():
            await trio.to_thread.run_sync(self._prepare, node)
        for i, link in enumerate(self.scenario.links):
            await self._impair(i, link)
        errors: list[SetupError] = []

        async def start(node: Node) -> None:
            try:
                await self.start(node)
            except SetupError as exc:
                errors.append(exc)
            except (httpx.HTTPError, OSError, ValueError) as exc:  # it died as it started
                errors.append(SetupError(f"node {node.name}: {type(exc).__name__}: {exc}"))

        async with trio.open_nursery() as starting:
            for node in self.nodes.values():
                if node.spec.start:
                    starting.start_soon(start, node)
        if errors:
            raise errors[0]

    def _build_network(self) -> None:
        net = self.topology = Topology()
        o = net.octet
        try:
            self.switch = net.ns("Sw")
            net.bridge(self.switch)
            for node in self.nodes.values():
                if node.spec.netns is None:
                    continue
                i = node.index
                node.netns = net.ns(f"N{i}")
                if node.spec.netns == "lan":
                    node.host = node.public = f"10.86.{o}.{10 + i}"
                    net.plug(self.switch, node.netns, f"{node.host}/24")
                else:  # behind a NAT router of its own
                    router = net.ns(f"R{i}")
                    node.public = f"10.86.{o}.{100 + i}"
                    outside = net.plug(self.switch, router, f"{node.public}/24")
                    inner = f"10.87.{o}.{8 * i}"
                    node.host = f"10.87.{o}.{8 * i + 2}"
                    _, inside = net.link(
                        node.netns, f"{node.host}/29", router, f"10.87.{o}.{8 * i + 1}/29"
                    )
                    net.run(
                        node.netns, "ip", "route", "add", "default", "via", f"10.87.{o}.{8 * i + 1}"
                    )
                    net.nat(router, inside, outside)
                    self._log(f"{node.name}: behind a NAT ({inner}/29 -> {node.public})")
                node.api_host = net.manage(node.netns, i + 1)
        except NetnsError as exc:
            raise SetupError(f"cannot build the network: {exc}") from None

    def _prepare(self, node: Node) -> None:
        node.root.mkdir(parents=True, exist_ok=True)
        node.state_dir.mkdir(exist_ok=True)
        node.files_dir.mkdir(exist_ok=True)
        node.cluster_port, node.api_port = free_ports(2)
        (node.root / "rocd.toml").write_text(toml_text(node.config()))
        for name, text in node.spec.files.items():
            write_signal(text, self.file.parent, node.files_dir / name, 44100, 2)

    async def start(self, node: Node) -> None:
        """Start (or start again) `node`'s daemon and wait until it serves, its sound
        server answers and its events are subscribed. SetupError when it does not."""
        if node.running:
            return
        node.up = trio.Event()
        node.subscribed = trio.Event()
        argv = serve_command(
            node.root / "rocd.toml",
            node.state_dir,
            f"{node.api_host}:{node.api_port}",
            f"{node.host}:{node.cluster_port}",
            node.name,
            node.netns,
        )
        # No sound server answers at this address: the daemon runs a private one.
        env = {**os.environ, "PULSE_SERVER": f"unix:{self.run_dir}/no-sound-server"}
        node.daemon = DaemonProcess(argv, node.root / "rocd.log", env)
        try:
            await node.daemon.start()
        except DaemonStartError as exc:
            self._started(f"node {node.name}", node.daemon)
            raise SetupError(f"node {node.name} did not start: {exc}") from None
        self._started(f"node {node.name}", node.daemon)
        async with httpx.AsyncClient(timeout=10) as http:
            node.me = (await http.get(f"{node.url}/peers/self")).json()
            if node.spec.sound:
                with trio.move_on_after(15):
                    while True:
                        health = (await http.get(f"{node.url}/health")).json()
                        pulse = [d for d in health["drivers"] if d["driver"] == "pulse"]
                        if pulse and pulse[0]["up"] and health.get("pulse_server"):
                            node.pulse_server = health["pulse_server"]
                            break
                        await trio.sleep(0.1)
                if not node.pulse_server:
                    raise SetupError(f"node {node.name}: its sound server did not come up")
        node.up.set()
        assert self.nursery is not None
        self.nursery.start_soon(self._follow_events, node, node.daemon)
        with trio.move_on_after(10):
            await node.subscribed.wait()
        if not node.subscribed.is_set():
            raise SetupError(f"node {node.name}: no event subscription within 10 s")

    async def _follow_events(self, node: Node, daemon: DaemonProcess) -> None:
        """Keep node's events (of the whole cluster, as it sees them) while this run of
        its daemon lasts."""
        url = node.url.replace("http://", "ws://", 1) + f"/events?buffer={_EVENT_BUFFER}"
        while node.daemon is daemon and daemon.running:
            try:
                async with open_websocket_url(url) as ws:
                    node.subscribed.set()
                    while True:
                        event = json.loads(await ws.get_message())
                        event["at"] = trio.current_time()
                        node.events.append(event)
            except (ConnectionClosed, HandshakeError, OSError, ValueError):
                await trio.sleep(0.2)

    async def _impair(self, index: int, link: LinkSpec) -> None:
        src, dst = self.nodes[link.from_], self.nodes[link.to]
        assert dst.netns is not None
        assert self.topology is not None
        values = link.values()
        queue = _QUEUE_BASE + index
        rule = [
            "-p",
            "udp",
            "-s",
            src.public,
            "-j",
            "NFQUEUE",
            "--queue-num",
            str(queue),
            "--queue-bypass",
        ]
        try:
            await trio.to_thread.run_sync(
                sh, "ip", "netns", "exec", dst.netns, "iptables", "-A", "INPUT", *rule
            )
        except NetnsError as exc:
            raise SetupError(f"link {link.from_} -> {link.to}: {exc}") from None
        flags = ["--seed", str(link.seed)]
        if "loss" in values:
            flags += ["--loss", str(values["loss"])]
        if "burst" in values:
            flags += ["--burst", str(values["burst"])]
        for key, flag in (
            ("delay_ms", "--delay"),
            ("jitter_ms", "--jitter"),
            ("reorder_ms", "--reorder-delay"),
        ):
            if key in values:
                flags += [flag, f"{values[key]}ms"]
        if "reorder" in values:
            flags += ["--reorder", str(values["reorder"])]
            if "reorder_ms" not in values:
                flags += ["--reorder-delay", "20ms"]
        if "rate_kbps" in values:
            flags += ["--rate", str(round(values["rate_kbps"] * 1000))]
        stats = self.run_dir / f"link-{link.from_}-{link.to}.jsonl"
        argv = dst.inside(
            [sys.executable, "-m", "rocd.cli", "relay", "--nfqueue", str(queue), *flags, "--stats"]
        )
        proc = await self.spawn(f"link {link.from_} -> {link.to}", argv, stdout=stats)
        with trio.move_on_after(10):
            while "bound" not in stats.read_text(errors="replace"):
                if proc.poll() is not None:
                    break
                await trio.sleep(0.05)
        if "bound" not in stats.read_text(errors="replace"):
            raise SetupError(f"link {link.from_} -> {link.to}: the impairment did not start")
        self.link_stats[f"{link.from_}->{link.to}"] = stats

    async def spawn(
        self,
        what: str,
        argv: list[str],
        *,
        stdout: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> trio.Process:
        """A process the testbed owns (stopped at `close`), in a session of its own."""
        out = stdout.open("ab") if stdout is not None else subprocess.DEVNULL
        try:
            proc = await trio.lowlevel.open_process(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if stdout is not None else subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            if stdout is not None:
                out.close()  # type: ignore[union-attr]
        self.processes.append((what, proc))
        self.pids.append((what, proc.pid))
        return proc

    def _started(self, what: str, daemon: DaemonProcess) -> None:
        if daemon.proc is not None:
            self.pids.append((what, daemon.proc.pid))

    def link_counters(self) -> dict[str, Any]:
        """The last counters each impaired link printed."""
        out: dict[str, Any] = {}
        for name, path in self.link_stats.items():
            lines = [
                line
                for line in path.read_text(errors="replace").splitlines()
                if line.startswith("{")
            ]
            if lines:
                out[name] = json.loads(lines[-1])
        return out

    # -- faults ------------------------------------------------------------------------

    async def cut(self, a: str, b: str, *, heal: bool = False) -> None:
        """Drop every packet between nodes a and b (in both namespaces), or stop doing so."""
        assert self.topology is not None
        for one, other in ((self.nodes[a], self.nodes[b]), (self.nodes[b], self.nodes[a])):
            assert one.netns is not None
            rule = ["INPUT", "-s", other.public, "-j", "DROP"]
            op = ["-D", *rule] if heal else ["-I", *rule[:1], "1", *rule[1:]]
            await trio.to_thread.run_sync(sh, "ip", "netns", "exec", one.netns, "iptables", *op)
        key = (min(a, b), max(a, b))
        if heal:
            self.cuts.discard(key)
        else:
            self.cuts.add(key)

    def stop_sound(self, node: Node) -> int:
        """Kill the node's sound server (as a crash would); its pid."""
        pid_file = private_pulse_root(node.state_dir) / "server.pid"
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"node {node.name}: no sound server to stop ({exc})") from None
        return pid

    # -- taking down -------------------------------------------------------------------

    async def close(self, keep: bool = False) -> list[str]:
        """Stop everything; what could not be cleaned (empty when all went). Shielded:
        a cancellation does not cut it short; `hurry` turns graces into SIGKILL."""
        problems: list[str] = []
        with trio.CancelScope(shield=True):
            for what, proc in reversed(self.processes):
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGTERM if not self.hurry else signal.SIGKILL)
                    with trio.move_on_after(0 if self.hurry else 3):
                        await proc.wait()
                    if proc.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(proc.pid, signal.SIGKILL)
                        with trio.move_on_after(5):
                            await proc.wait()
                    if proc.returncode is None:
                        problems.append(f"{what} (pid {proc.pid}) did not stop")
            async with trio.open_nursery() as stopping:
                for node in self.nodes.values():
                    stopping.start_soon(self._stop_node, node)
            for node in self.nodes.values():
                if node.daemon is not None and node.daemon.running:
                    problems.append(f"node {node.name} (pid {node.daemon.proc.pid}) did not stop")  # type: ignore[union-attr]
                left = private_pulse_root(node.state_dir)
                if left.exists():
                    await trio.to_thread.run_sync(_remove_sound_server, left)
                    if left.exists():
                        problems.append(f"{left} is left")
            if self.topology is not None:
                made = list(self.topology.namespaces)
                await trio.to_thread.run_sync(self.topology.close)
                left_ns = _namespaces_left(made)
                if left_ns:
                    problems.append(f"namespaces left: {', '.join(left_ns)}")
            if not keep:
                await trio.to_thread.run_sync(
                    lambda: shutil.rmtree(self.run_dir, ignore_errors=True)
                )
        return problems

    async def _stop_node(self, node: Node) -> None:
        if node.daemon is None:
            return
        if self.hurry:
            await node.daemon.kill()
        else:
            await node.daemon.stop()


def _remove_sound_server(root: Path) -> None:
    """What a killed daemon's private sound server left (the server itself too)."""
    try:
        pid = int((root / "server.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass
    shutil.rmtree(root, ignore_errors=True)


def _namespaces_left(made: list[str]) -> list[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    return [n for n in made if n in listed]


def write_signal(text: str, base: Path, target: Path, rate: int, channels: int) -> Path:
    """Write signal `text` ("chirp:2", or a file relative to `base`) as a WAV at `target`."""
    import soundfile as sf

    signal_ = parse_signal(text)
    if signal_.kind == "file":
        source = (base / signal_.path).resolve()
        frames, file_rate = read_signal_file(source)
        sf.write(target, frames, file_rate, subtype="FLOAT")
        return target
    sf.write(target, signal_.render(rate, channels), rate, subtype="PCM_16")
    return target
