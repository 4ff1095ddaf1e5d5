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

    [cluster]
    listen = "0.0.0.0:4611"
    peers = [{address = "10.0.0.2:4611", key = "<its public key>", role = "operator"}]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import platformdirs

from rocd.net.signalling import MalformedMessage, check_public_key, decode_invite

#: The port the HTTP API listens on by default (on 127.0.0.1).
DEFAULT_API_PORT = 4610
#: The port the cluster listener (ZeroMQ, CURVE) listens on by default (on every address).
DEFAULT_CLUSTER_PORT = 4611

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
LogLevel = Literal["debug", "info", "warning", "error"]
PulseMode = Literal["auto", "system", "off"]
RoleName = Literal["viewer", "operator", "admin"]
AuthMode = Literal["auto", "token", "none"]
Seconds = Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)]


class ConfigError(Exception):
    """A configuration value is wrong; the message names the field."""


#: A web page's origin as browsers send it: scheme://host[:port], no path.
Origin = Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s]+$")]
HostName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")]


class ApiConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: Port = DEFAULT_API_PORT
    #: "auto": a bearer token is required unless the API listens on a loopback address;
    #: "token": always required; "none": never (anyone who reaches the port is admin).
    auth: AuthMode = "auto"
    #: Web pages (other than a UI rocd serves itself) that may change state and subscribe
    #: to events: "http://localhost:3000". Everything else from a browser is refused.
    allowed_origins: tuple[Origin, ...] = ()
    #: Host names the API is reached by, besides its addresses, localhost and this
    #: machine's name (a guard against DNS rebinding): "rocd.lan".
    allowed_hosts: tuple[HostName, ...] = ()


class StaticPeer(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A peer this instance trusts and dials from its configuration."""

    address: str  # its cluster listener: "host:port" or "tcp://host:port"
    key: str  # its public key (Z85, the "key" of its GET /peers/self)
    role: RoleName = "operator"  # what it may do here


class ClusterConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    #: false: no cluster listener, no peers (this instance stays alone).
    enabled: bool = True
    #: Where the cluster listener (ZeroMQ ROUTER, CURVE) listens: "host:port".
    listen: str = f"0.0.0.0:{DEFAULT_CLUSTER_PORT}"
    #: "host[:port]" peers should dial; None: the listen address, or this machine's
    #: primary address when listening on every address.
    advertise: str | None = None
    #: Peers trusted and dialled from the configuration.
    peers: list[StaticPeer] = []
    #: A one-time join token from another instance's POST /cluster/invites.
    join: str | None = None
    #: Seconds between heartbeats, and of silence after which a peer is offline.
    heartbeat_s: Seconds = 1.0
    dead_after_s: Seconds = 3.0
    #: Announce this instance and list the others on the LAN (DNS-SD over mDNS). Off by
    #: itself while the listener is on a loopback address (no one else could dial it).
    discovery: bool = True
    #: Relay for trusted peers that cannot reach each other, and answer UDP probes (the
    #: address a peer's datagrams are seen from) on `probe_port`.
    rendezvous: bool = False
    #: The UDP port of a rendezvous's probe echo; None: the listener's port number.
    probe_port: Port | None = None
    #: Relay the audio of streams between peers that cannot reach each other (a media
    #: hub); None: on when `rendezvous` is.
    hub: bool | None = None
    #: UDP ports a hub's relays bind, "first-last" (four per relay); "": ephemeral.
    hub_ports: str = ""
    #: Relays a hub runs at once, and the byte rate of each (kilobits per second).
    hub_max_relays: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 32
    hub_rate_kbps: Annotated[int, msgspec.Meta(ge=64, le=1_000_000)] = 8000

    @property
    def hub_on(self) -> bool:
        return self.rendezvous if self.hub is None else self.hub


def parse_port_range(text: str, *, what: str = "cluster.hub_ports") -> tuple[int, int]:
    """ "first-last" -> (first, last); "" -> (0, 0) (ephemeral); ConfigError otherwise."""
    if not text.strip():
        return 0, 0
    first, sep, last = text.strip().partition("-")
    if not sep or not first.isdigit() or not last.isdigit():
        raise ConfigError(f'{what}: expected "first-last", got {text!r}')
    lo, hi = int(first), int(last)
    if not 0 < lo <= hi <= 65535 or hi - lo < 3:
        raise ConfigError(f"{what}: a range of at least 4 ports within 1-65535, got {text!r}")
    return lo, hi


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
    cluster: ClusterConfig = ClusterConfig()

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
        config = msgspec.toml.decode(data, type=Config)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{path}: {_explain(exc)}") from None
    except RecursionError:  # arrays or tables hundreds deep; no setting nests so
        raise ConfigError(f"{path}: nested too deeply") from None
    try:
        return check_cluster(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def check_cluster(config: Config) -> Config:
    """`config` if its [cluster] values make sense (keys, addresses, join token), else
    ConfigError naming the field."""
    cluster = config.cluster
    parse_host_port(cluster.listen, what="cluster.listen")
    parse_port_range(cluster.hub_ports)
    for i, peer in enumerate(cluster.peers):
        try:
            check_public_key(peer.key)
        except ValueError as exc:
            raise ConfigError(f"cluster.peers[{i}].key: {exc}") from None
        parse_host_port(peer.address.removeprefix("tcp://"), what=f"cluster.peers[{i}].address")
    if cluster.join is not None:
        try:
            decode_invite(cluster.join)
        except MalformedMessage as exc:
            raise ConfigError(f"--join: {exc}") from None
    return config


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
    cluster: str | None = None,
    join: str | None = None,
) -> Config:
    """`config` with the given command-line values replacing the file's."""
    changes: dict[str, object] = {}
    if api is not None:
        host, port = parse_host_port(api)
        changes["api"] = msgspec.structs.replace(config.api, host=host, port=port)
    if cluster is not None or join is not None:
        section = config.cluster
        if cluster is not None:
            host, port = parse_host_port(cluster, what="--cluster")
            section = msgspec.structs.replace(section, listen=f"{host}:{port}")
        if join is not None:
            section = msgspec.structs.replace(section, join=join)
        changes["cluster"] = section
    if state_dir is not None:
        changes["state_dir"] = state_dir
    if name is not None:
        changes["name"] = name
    if log_level is not None:
        changes["log_level"] = log_level
    return check_cluster(msgspec.structs.replace(config, **changes))
