"""The PulseAudio (or pipewire-pulse) server as rocd sees it: its devices, names, quoting.

Listing and control go through libpulse (`_pulse_link`, pulsectl on a thread); `pactl` is
kept for the readiness probe, which needs no connection of our own. This module is pure:
it turns server entries into rocd devices and quotes text for module arguments.

Device ids are `pulse:sink:<name>` and `pulse:source:<name>`; server indices are not used
because they change when the server restarts, names do not.
"""

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
    """The parts of a server's sink or source entry rocd uses."""

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


def proplist_value(text: str) -> str:
    """`text` as a single-quoted property list value (pa_proplist_from_string), any
    character kept: backslashes and single quotes escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def module_arg_quoted(text: str) -> str:
    """`text` (a property list) as a double-quoted module argument value. PulseAudio's
    module-argument parser skips over backslash escapes but keeps them in the value (the
    property-list parser unescapes afterwards), so only double quotes are escaped here.
    Together with `proplist_value`, any description round-trips: quotes, backslashes,
    non-ASCII text."""
    return '"' + text.replace('"', '\\"') + '"'


_HARDWARE = 0x0004  # PA_SINK_HARDWARE == PA_SOURCE_HARDWARE


def pa_device(entry: Any, kind: str) -> PaDevice:
    """A sink or source entry of _pulse_link.RocdPulse (on the link's thread) as a PaDevice."""
    # `rate` as copied by _pulse_link.RocdPulse (pulsectl's sample_spec may be stale).
    if kind == "sink":
        monitor = entry.monitor_source_name or ""
    else:
        monitor = entry.monitor_of_sink_name or "" if entry.monitor_of_sink != _NONE else ""
    return PaDevice(
        index=entry.index,
        name=entry.name,
        description=entry.description or "",
        # pulsectl's EnumValue keeps its name in `_value` ("idle"); its str() is a repr.
        state=str(getattr(entry.state, "_value", entry.state)).upper(),
        sample_specification=f"{entry.channel_count}ch {entry.rate}Hz",
        mute=bool(entry.mute),
        volume={
            str(i): _PaVolume(round(v * VOLUME_NORM)) for i, v in enumerate(entry.volume.values)
        },
        flags=["HARDWARE"] if entry.flags & _HARDWARE else [],
        properties={str(k): str(v) for k, v in dict(entry.proplist).items()},
        owner_module=None if entry.owner_module == _NONE else entry.owner_module,
        monitor_source=monitor,
    )


_NONE = 0xFFFFFFFF  # PA_INVALID_INDEX


def snapshot(sinks: list[PaDevice], sources: list[PaDevice]) -> dict[str, PulseDevice]:
    """Every device rocd shows, by id (feed sinks of microphones and their monitors left
    out)."""
    feeds = {device_id("sink", s.name) for s in sinks if s.properties.get("rocd.role") == ROLE_FEED}
    devices = to_devices("sink", sinks) + hide_feed_monitors(to_devices("source", sources), feeds)
    return {d.info.id: d for d in devices}


def feed_of(sinks: list[PaDevice], mic_name: str) -> PaDevice | None:
    """The hidden sink that feeds virtual microphone `mic_name`, if any."""
    for s in sinks:
        if (
            s.properties.get("rocd.role") == ROLE_FEED
            and s.properties.get("rocd.feed_of") == mic_name
        ):
            return s
    return None


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


def error_from(stderr: str, args: tuple[str, ...]) -> AudioError:
    """The AudioError for a failed pactl command (stderr is its message)."""
    if any(marker in stderr for marker in _DOWN_MARKERS):
        return DriverUnavailable(stderr or "sound server unreachable")
    if "No such entity" in stderr:
        return DeviceNotFound(f"pactl {' '.join(args)}: {stderr}")
    return AudioError(f"pactl {' '.join(args)}: {stderr}")
