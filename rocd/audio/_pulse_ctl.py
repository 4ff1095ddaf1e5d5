"""Talking to a PulseAudio (or pipewire-pulse) server through `pactl`.

Control goes through `pactl` child processes (`-f json` listings, pactl 16+), run with
`trio.run_process`. A listing costs about 8 ms; the control plane is not on the audio
path, and this keeps rocd free of a libpulse binding (no ABI declarations, no libpulse
thread in the daemon, and the server address and cookie are per driver through the
child's environment instead of process-global). The parsing half of this module is pure.

Device ids are `pulse:sink:<name>` and `pulse:source:<name>`; server indices are not used
because they change when the server restarts, names do not.
"""

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import msgspec
import trio

from ._driver import DeviceInfo
from ._errors import AudioError, DeviceNotFound, DriverUnavailable

VOLUME_NORM = 65536  # PA_VOLUME_NORM: 100 %, 0 dB
DRIVER = "pulse"
ROLE_FEED = "feed"  # rocd.role of the hidden sink that feeds a virtual microphone

_DOWN_MARKERS = ("Connection failure", "Connection refused", "Connection terminated", "timeout")


class _PaVolume(msgspec.Struct):
    value: int


class PaDevice(msgspec.Struct):
    """The parts of a `pactl -f json list sinks|sources` entry rocd uses."""

    index: int
    name: str
    description: str = ""
    state: str = "UNKNOWN"
    sample_specification: str = ""
    mute: bool = False
    volume: dict[str, _PaVolume] = {}
    flags: list[str] = []
    properties: dict[str, str] = {}
    owner_module: int | None = None
    monitor_source: str = ""  # of a sink: its monitor; of a source: the sink it monitors


class PulseDevice(msgspec.Struct, frozen=True):
    """A device as rocd shows it, with the server facts needed to act on it."""

    info: DeviceInfo
    kind: str  # "sink" or "source"
    pa_name: str
    module: int | None
    properties: dict[str, str]


_SPEC = re.compile(r"(\d+)ch (\d+)Hz")
_EVENT = re.compile(rb"Event '(\w+)' on ([\w-]+) #(\d+)")


def parse_spec(text: str) -> tuple[int, int]:
    """(rate, channels) of a pactl sample spec such as "s16le 2ch 44100Hz"."""
    m = _SPEC.search(text)
    return (int(m.group(2)), int(m.group(1))) if m else (0, 0)


def device_id(kind: str, pa_name: str) -> str:
    return f"pulse:{kind}:{pa_name}"


def split_id(device_id: str) -> tuple[str, str]:
    """(kind, server name) of a pulse device id; DeviceNotFound for another driver's id."""
    parts = device_id.split(":", 2)
    if len(parts) != 3 or parts[0] != DRIVER or parts[1] not in ("sink", "source"):
        raise DeviceNotFound(device_id)
    return parts[1], parts[2]


def to_devices(kind: str, entries: list[PaDevice]) -> list[PulseDevice]:
    """rocd devices from pactl entries of one kind (feed sinks of microphones left out)."""
    out = []
    for e in entries:
        if e.properties.get("rocd.role") == ROLE_FEED:
            continue
        rate, channels = parse_spec(e.sample_specification)
        volumes = [v.value for v in e.volume.values()]
        monitor_of = None
        if kind == "source" and e.monitor_source:
            monitor_of = device_id("sink", e.monitor_source)
        info = DeviceInfo(
            id=device_id(kind, e.name),
            name=e.name,
            description=e.description,
            direction="sink" if kind == "sink" else "source",
            driver=DRIVER,
            virtual="HARDWARE" not in e.flags,
            rate=rate,
            channels=channels,
            volume=sum(volumes) / len(volumes) / VOLUME_NORM if volumes else 1.0,
            mute=e.mute,
            state=e.state.lower(),
            clocked=True,
            monitor_of=monitor_of,
        )
        out.append(PulseDevice(info, kind, e.name, e.owner_module, dict(e.properties)))
    return out


def hide_feed_monitors(devices: list[PulseDevice], feed_sinks: set[str]) -> list[PulseDevice]:
    return [d for d in devices if not (d.info.monitor_of and d.info.monitor_of in feed_sinks)]


def parse_event(line: bytes) -> tuple[str, str, int] | None:
    """(event, facility, index) of a `pactl subscribe` line, None for anything else."""
    m = _EVENT.search(line)
    if m is None:
        return None
    return m.group(1).decode(), m.group(2).decode(), int(m.group(3))


def module_arg_value(text: str) -> str:
    """`text` made safe inside a quoted module argument (quotes and backslashes dropped)."""
    return "".join(c for c in text if c not in "'\"\\").strip()


_CLIENT_CONF = b"""# Written by rocd for its pactl / parec / pacat children.
# No shared memory with the server: PulseAudio 16 aborted (memblock.c, "n_imported > 0")
# when a client holding shared blocks went away, as a killed stream's child does.
enable-shm = no
enable-memfd = no
autospawn = no
"""


def client_config() -> Path:
    """A libpulse client.conf for rocd's children (written once, atomically)."""
    path = Path(tempfile.gettempdir()) / f"rocd-pulse-client-{os.getuid()}.conf"
    try:
        if path.read_bytes() == _CLIENT_CONF:
            return path
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rocd-pulse-client-")
    with os.fdopen(fd, "wb") as f:
        f.write(_CLIENT_CONF)
    os.replace(tmp, path)
    return path


class Pactl:
    """Runs pactl against one server; errors come back as AudioError subclasses."""

    def __init__(
        self, env: Mapping[str, str] | None = None, timeout: float = 5.0, program: str = "pactl"
    ) -> None:
        self.env = {**os.environ, **(env or {}), "LC_ALL": "C"}
        self.env.setdefault("PULSE_CLIENTCONFIG", str(client_config()))
        self.timeout = timeout
        self.program = program

    async def run(self, *args: str) -> bytes:
        """pactl's stdout. Raises DriverUnavailable, DeviceNotFound or AudioError."""
        try:
            with trio.fail_after(self.timeout):
                done = await trio.run_process(
                    [self.program, *args],
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                )
        except trio.TooSlowError:
            raise DriverUnavailable(f"pactl {args[0]} timed out") from None
        except OSError as exc:
            raise DriverUnavailable(f"cannot run {self.program}: {exc}") from exc
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            raise error_from("; ".join(line.strip() for line in lines if line.strip()), args)
        return done.stdout

    async def list(self, kind: str) -> list[PaDevice]:
        raw = await self.run("-f", "json", "list", f"{kind}s")
        try:
            return msgspec.json.decode(raw, type=list[PaDevice])
        except msgspec.DecodeError as exc:
            raise AudioError(f"unexpected pactl output: {exc}") from exc

    async def snapshot(self) -> dict[str, PulseDevice]:
        """Every visible device now, by id."""
        sinks = await self.list("sink")
        sources = await self.list("source")
        feeds = {
            device_id("sink", s.name) for s in sinks if s.properties.get("rocd.role") == ROLE_FEED
        }
        devices = to_devices("sink", sinks) + hide_feed_monitors(
            to_devices("source", sources), feeds
        )
        return {d.info.id: d for d in devices}

    async def feed_of(self, mic_name: str) -> PaDevice | None:
        """The hidden sink that feeds virtual microphone `mic_name`, if any."""
        for s in await self.list("sink"):
            if (
                s.properties.get("rocd.role") == ROLE_FEED
                and s.properties.get("rocd.feed_of") == mic_name
            ):
                return s
        return None


def error_from(stderr: str, args: tuple[str, ...]) -> AudioError:
    """The AudioError for a failed pactl command (stderr is its message)."""
    if any(marker in stderr for marker in _DOWN_MARKERS):
        return DriverUnavailable(stderr or "sound server unreachable")
    if "No such entity" in stderr:
        return DeviceNotFound(f"pactl {' '.join(args)}: {stderr}")
    return AudioError(f"pactl {' '.join(args)}: {stderr}")
