"""A stream's settings: filled in from the profiles and defaults, checked, and turned into
the transport's sender and receiver configurations.

Latency profiles (the values a profile gives; fields given explicitly win):

    profile    target            bounds             FEC block (5 ms packets)
    lan        60 ms fixed       Roc's tolerance    10 source + 6 repair (50 ms)
    wifi       adaptive, 120 ms  40 .. 500 ms       18 + 10 (90 ms)
    internet   adaptive, 300 ms  100 .. 2000 ms     20 + 10 (100 ms)
    (none)     200 ms fixed      Roc's tolerance    18 + 10, Roc's defaults

A FEC block must arrive within the latency for its repair packets to help, hence the
smaller block of `lan`. Errors name the body field (422).
"""

from __future__ import annotations

import msgspec

from rocd.net.roc import (
    L16_MONO,
    L16_STEREO,
    AdaptiveLatencyConfig,
    Encoding,
    EncodingMap,
    EndpointError,
    EndpointSet,
    FecScheme,
    LatencyConfig,
    LatencyProfile,
    ReceiverConfig,
    SenderConfig,
    check_block_size,
    default_latency_tolerance_ns,
    receiver_endpoints,
    sender_endpoints,
)

from ._audio_types import invalid
from ._stream_types import (
    EndSpec,
    ExternalEndpoints,
    FecName,
    FecSettings,
    LatencySettings,
    StreamSettings,
)

_MS = 1_000_000

#: profile -> (target ms, adaptive, min ms, max ms, FEC source packets, repair packets)
PROFILES: dict[str | None, tuple[float, bool, float | None, float | None, int, int]] = {
    "lan": (60.0, False, None, None, 10, 6),
    "wifi": (120.0, True, 40.0, 500.0, 18, 10),
    "internet": (300.0, True, 100.0, 2000.0, 20, 10),
    None: (200.0, False, None, None, 18, 10),
}

#: The payload type rocd uses between its own ends for an encoding Roc has no id for.
CUSTOM_PAYLOAD_TYPE = 100

_FEC_SCHEMES = {"rs8m": FecScheme.RS8M, "ldpc": FecScheme.LDPC_STAIRCASE, "none": None}


def fec_scheme(settings: StreamSettings) -> FecScheme | None:
    return _FEC_SCHEMES[settings.fec.scheme]


def _scheme_name(scheme: FecScheme | None) -> FecName:
    if scheme is None:
        return "none"
    return "rs8m" if scheme is FecScheme.RS8M else "ldpc"


def check_external(end: EndSpec, where: str, *, sender: bool) -> EndpointSet:
    """The endpoint set an external end names, or a 422 naming the field."""
    ext = end.external
    assert ext is not None
    make = sender_endpoints if sender else receiver_endpoints
    try:
        return make(ext.source, ext.repair, ext.control)
    except EndpointError as exc:
        raise invalid(f"{where}.external", str(exc)) from None


def resolve(settings: StreamSettings, external_fec: list[FecScheme | None]) -> StreamSettings:
    """`settings` with every value filled in and checked (422 naming the field).

    `external_fec`: the FEC schemes the external ends' URIs imply (they decide it)."""
    lat = settings.latency
    target, adaptive, low, high, k, r = PROFILES[lat.profile]
    adaptive = lat.adaptive if lat.adaptive is not None else adaptive
    target = lat.target_ms if lat.target_ms is not None else target
    low = lat.min_ms if lat.min_ms is not None else low
    high = lat.max_ms if lat.max_ms is not None else high
    if adaptive:
        try:
            bounds = AdaptiveLatencyConfig(
                start_ns=round(target * _MS),
                min_ns=None if low is None else round(low * _MS),
                max_ns=None if high is None else round(high * _MS),
            ).bounds
        except ValueError:
            raise invalid(
                "settings.latency", "an adaptive latency needs min_ms <= target_ms <= max_ms"
            ) from None
        low, high = bounds[0] / _MS, bounds[1] / _MS
    elif (low is not None and low >= target) or (high is not None and high <= target):
        raise invalid("settings.latency", "min_ms < target_ms < max_ms for a fixed target")
    latency = LatencySettings(
        profile=lat.profile,
        target_ms=target,
        min_ms=low,
        max_ms=high,
        adaptive=adaptive,
        tuning=lat.tuning,
    )
    scheme_name: FecName = settings.fec.scheme
    explicit = settings.fec != FecSettings()
    for scheme in external_fec:
        implied = _scheme_name(scheme)
        if explicit and settings.fec.scheme != implied:
            raise invalid(
                "settings.fec.scheme",
                f"{settings.fec.scheme} contradicts the external end's URIs ({implied})",
            )
        scheme_name = implied
    fec = FecSettings(
        scheme=scheme_name,
        source_packets=settings.fec.source_packets or k,
        repair_packets=settings.fec.repair_packets or r,
    )
    scheme = _FEC_SCHEMES[scheme_name]
    if scheme is not None:
        assert fec.source_packets is not None
        assert fec.repair_packets is not None
        try:
            check_block_size(scheme, fec.source_packets, fec.repair_packets)
        except ValueError as exc:
            raise invalid("settings.fec", str(exc)) from None
    resolved = msgspec.structs.replace(settings, latency=latency, fec=fec)
    if external_fec:
        enc = settings.encoding
        if enc.rate != 44100 or enc.channels > 2:
            raise invalid(
                "settings.encoding",
                "an external Roc end speaks Roc's built-in encodings: 44100 Hz, 1 or 2 channels",
            )
    return resolved


def encoding(settings: StreamSettings) -> Encoding:
    """The wire encoding: Roc's built-in one when it exists, else rocd's own payload type."""
    enc = settings.encoding
    for builtin in (L16_STEREO, L16_MONO):
        if (builtin.rate, builtin.channels) == (enc.rate, enc.channels):
            return builtin
    return Encoding(payload_type=CUSTOM_PAYLOAD_TYPE, rate=enc.rate, channels=enc.channels)


def encoding_map(settings: StreamSettings) -> EncodingMap:
    encodings = EncodingMap()
    enc = encoding(settings)
    if enc.payload_type not in encodings:
        encodings.register(enc)
    return encodings


def sender_config(settings: StreamSettings) -> SenderConfig:
    fec = settings.fec
    return SenderConfig(
        encoding=encoding(settings),
        packet_length_ns=round(settings.packet_ms * _MS),
        fec=fec_scheme(settings),
        fec_source_packets=fec.source_packets or 18,
        fec_repair_packets=fec.repair_packets or 10,
    )


def receiver_config(settings: StreamSettings, rate: int, channels: int) -> ReceiverConfig:
    """The receiver of a stream playing into a device of `rate` and `channels`."""
    lat = settings.latency
    assert lat.target_ms is not None
    target_ns = round(lat.target_ms * _MS)
    adaptive = None
    tolerance = None
    if lat.adaptive:
        adaptive = AdaptiveLatencyConfig(
            start_ns=target_ns,
            min_ns=None if lat.min_ms is None else round(lat.min_ms * _MS),
            max_ns=None if lat.max_ms is None else round(lat.max_ms * _MS),
        )
    else:
        bounds = fixed_bounds_ns(settings)
        if bounds is not None:
            # Roc's bounds are target +- tolerance: the wider side here; the sessions
            # then get the exact [min, max] (see `fixed_bounds_ns`).
            tolerance = max(target_ns - bounds[0], bounds[1] - target_ns)
    return ReceiverConfig(
        rate=rate,
        channels=channels,
        fec=fec_scheme(settings),
        latency=LatencyConfig(
            target_ns=target_ns, tolerance_ns=tolerance, profile=LatencyProfile(lat.tuning)
        ),
        adaptive=adaptive,
        drift_compensation=settings.drift_compensation,
    )


def fixed_bounds_ns(settings: StreamSettings) -> tuple[int, int] | None:
    """[min, max] of a fixed target given either bound (the other: Roc's tolerance)."""
    lat = settings.latency
    if lat.adaptive or (lat.min_ms is None and lat.max_ms is None):
        return None
    assert lat.target_ms is not None
    target = round(lat.target_ms * _MS)
    tol = default_latency_tolerance_ns(target)
    low = round(lat.min_ms * _MS) if lat.min_ms is not None else max(0, target - tol)
    high = round(lat.max_ms * _MS) if lat.max_ms is not None else target + tol
    return low, high


def local_endpoints(settings: StreamSettings, host: str) -> EndpointSet:
    """A receiver's slot on `host` with free ports (ports chosen when bound)."""
    scheme = fec_scheme(settings)
    if scheme is None:
        return receiver_endpoints(f"rtp://{_host(host)}:0", None, f"rtcp://{_host(host)}:0")
    return receiver_endpoints(
        f"rtp+{scheme.value}://{_host(host)}:0",
        f"{scheme.value}://{_host(host)}:0",
        f"rtcp://{_host(host)}:0",
    )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def bound_endpoints(endpoints: EndpointSet, ports: dict[str, int]) -> ExternalEndpoints:
    """The URIs of `endpoints` with the ports they were bound to (by interface name)."""

    def uri(e: object, name: str) -> str | None:
        if e is None:
            return None
        text = str(e)
        head = text.rsplit(":", 1)[0]
        return f"{head}:{ports[name]}"

    source = uri(endpoints.source, "source")
    assert source is not None
    return ExternalEndpoints(
        source=source,
        repair=uri(endpoints.repair, "repair"),
        control=uri(endpoints.control, "control"),
    )


def targets_on(bound: ExternalEndpoints, host: str) -> ExternalEndpoints:
    """Where a sender sends to reach receiver endpoints `bound` at `host`."""

    def on(uri: str | None) -> str | None:
        if uri is None:
            return None
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://{_host(host)}:{rest.rsplit(':', 1)[1]}"

    source = on(bound.source)
    assert source is not None
    return ExternalEndpoints(source=source, repair=on(bound.repair), control=on(bound.control))
