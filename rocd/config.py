"""The daemon's configuration: an optional TOML file, then command-line flags on top.

Everything has a working default, so `rocd serve` needs no file at all. The file is
validated by msgspec against `Config`; any problem becomes one `ConfigError` line that
names the field (`api.port: expected int, got str`), which the CLI prints before exiting
with status 2.

Example file:

    name = "living-room"
    state_dir = "/var/lib/rocd"
    log_level = "info"

    [api]
    host = "0.0.0.0"
    port = 4610
    allowed_origins = ["http://localhost:3000"]   # web pages that may use the API
    allowed_hosts = ["rocd.lan"]                   # names it is reached by

    [audio]
    pulse = "auto"          # auto | system | off
    files_dir = "/srv/audio"
    portaudio = false
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import platformdirs

#: The port the HTTP API listens on by default (on 127.0.0.1).
DEFAULT_API_PORT = 4610

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
LogLevel = Literal["debug", "info", "warning", "error"]
PulseMode = Literal["auto", "system", "off"]


class ConfigError(Exception):
    """A configuration value is wrong; the message names the field."""


#: A web page's origin as browsers send it: scheme://host[:port], no path.
Origin = Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s]+$")]
HostName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")]


class ApiConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: Port = DEFAULT_API_PORT
    #: Web pages (other than a UI rocd serves itself) that may change state and subscribe
    #: to events: "http://localhost:3000". Everything else from a browser is refused.
    allowed_origins: tuple[Origin, ...] = ()
    #: Host names the API is reached by, besides its addresses, localhost and this
    #: machine's name (a guard against DNS rebinding): "rocd.lan".
    allowed_hosts: tuple[HostName, ...] = ()


class AudioConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    #: The sound server (PulseAudio, or PipeWire through pipewire-pulse). "system": the
    #: user's server only (reported down while it is not running); "auto": the user's
    #: server if it answers at start, else a private headless PulseAudio run by rocd;
    #: "off": no sound server.
    pulse: PulseMode = "auto"
    #: Where the server listens (PULSE_SERVER syntax: "unix:/path", "tcp:host:port");
    #: None: libpulse's usual lookup (environment, then the user's runtime directory).
    pulse_server: str | None = None
    #: Directory whose audio files are devices; None means <state_dir>/files.
    files_dir: str | None = None
    #: Sound cards through PortAudio (for machines without a sound server).
    portaudio: bool = False


class Config(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    #: Display name of this instance; None keeps the stored one (the host name at first).
    name: str | None = None
    #: Where the state database lives; None means the user's data directory.
    state_dir: str | None = None
    log_level: LogLevel = "info"
    api: ApiConfig = ApiConfig()
    audio: AudioConfig = AudioConfig()

    @property
    def state_path(self) -> Path:
        base = self.state_dir if self.state_dir else platformdirs.user_data_dir("rocd")
        return Path(base).expanduser()

    @property
    def files_path(self) -> Path:
        """The file driver's directory."""
        if self.audio.files_dir:
            return Path(self.audio.files_dir).expanduser()
        return self.state_path / "files"


def _explain(exc: msgspec.ValidationError | msgspec.DecodeError) -> str:
    """'Expected `int`, got `str` - at `$.api.port`' -> 'api.port: expected int, got str'."""
    text = str(exc)
    match = re.match(r"(.*) - at `\$\.?(.*)`$", text)
    if match is None:
        return text.replace("`", "")
    message, path = match.groups()
    message = message.replace("`", "")
    message = message[:1].lower() + message[1:]
    return f"{path}: {message}" if path else message


def load_config(path: Path | None) -> Config:
    """The configuration from `path` (TOML), or the defaults when `path` is None."""
    if path is None:
        return Config()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return msgspec.toml.decode(data, type=Config)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{path}: {_explain(exc)}") from None


def parse_host_port(text: str, *, what: str = "--api") -> tuple[str, int]:
    """'HOST:PORT', ':PORT' or '[v6]:PORT' -> (host, port); ConfigError when malformed."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ConfigError(f"{what}: expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port must be 0-65535, got {port}")
    host = host.strip("[]") or "127.0.0.1"
    return host, port


def with_overrides(
    config: Config,
    *,
    api: str | None = None,
    state_dir: str | None = None,
    name: str | None = None,
    log_level: LogLevel | None = None,
) -> Config:
    """`config` with the given command-line values replacing the file's."""
    changes: dict[str, object] = {}
    if api is not None:
        host, port = parse_host_port(api)
        changes["api"] = msgspec.structs.replace(config.api, host=host, port=port)
    if state_dir is not None:
        changes["state_dir"] = state_dir
    if name is not None:
        changes["name"] = name
    if log_level is not None:
        changes["log_level"] = log_level
    return msgspec.structs.replace(config, **changes)
