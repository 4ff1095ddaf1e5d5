import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rocd.net.roc import (
    Endpoint,
    EndpointError,
    FecScheme,
    Interface,
    Protocol,
    receiver_endpoints,
    sender_endpoints,
)

VALID = [
    ("rtp://127.0.0.1:10001", Protocol.RTP, "127.0.0.1", 10001),
    ("rtp+rs8m://192.168.1.20:10001", Protocol.RTP_RS8M, "192.168.1.20", 10001),
    ("rs8m://10.0.0.1:10002", Protocol.RS8M, "10.0.0.1", 10002),
    ("rtp+ldpc://host.example.org:1", Protocol.RTP_LDPC, "host.example.org", 1),
    ("ldpc://localhost:65535", Protocol.LDPC, "localhost", 65535),
    ("rtcp://[::1]:10003", Protocol.RTCP, "::1", 10003),
    ("rtp://[fe80::1:2]:5000", Protocol.RTP, "fe80::1:2", 5000),
    ("rtp://[::ffff:1.2.3.4]:5000", Protocol.RTP, "::ffff:1.2.3.4", 5000),
    ("rtcp://my_host-1:7", Protocol.RTCP, "my_host-1", 7),
    ("RTP+RS8M://Pi.local:4000", Protocol.RTP_RS8M, "Pi.local", 4000),
]


@pytest.mark.parametrize(("uri", "protocol", "host", "port"), VALID)
def test_valid_uris(uri: str, protocol: Protocol, host: str, port: int) -> None:
    endpoint = Endpoint.parse(uri)
    assert endpoint == Endpoint(protocol, host, port)
    assert endpoint.address == (host, port)
    assert Endpoint.parse(str(endpoint)) == endpoint
    if uri.islower():
        assert str(endpoint) == uri


def test_interface_and_fec_scheme_of_each_protocol() -> None:
    table = {
        "rtp": (Interface.SOURCE, None),
        "rtp+rs8m": (Interface.SOURCE, FecScheme.RS8M),
        "rtp+ldpc": (Interface.SOURCE, FecScheme.LDPC_STAIRCASE),
        "rs8m": (Interface.REPAIR, FecScheme.RS8M),
        "ldpc": (Interface.REPAIR, FecScheme.LDPC_STAIRCASE),
        "rtcp": (Interface.CONTROL, None),
    }
    for scheme, (interface, fec) in table.items():
        endpoint = Endpoint.parse(f"{scheme}://h:1")
        assert (endpoint.interface, endpoint.fec_scheme) == (interface, fec)


INVALID = [
    ("127.0.0.1:10001", "not an endpoint URI"),
    ("udp://127.0.0.1:10001", "unknown protocol 'udp'"),
    ("rtsp://host:554/stream", "rtsp:// endpoints are not supported"),
    ("rtp://127.0.0.1", "a port is required"),
    ("rtp://", "a port is required"),
    ("rtp://:5000", "the host is empty"),
    ("rtp://127.0.0.1:", "invalid port ''"),
    ("rtp://127.0.0.1:abc", "invalid port 'abc'"),
    ("rtp://127.0.0.1:-1", "invalid port '-1'"),
    ("rtp://127.0.0.1:65536", "port 65536 is outside"),
    ("rtp://127.0.0.1:0", "port 0 is only allowed where we bind"),
    ("rtp://127.0.0.1:5000/path", "take no path"),
    ("rtp://127.0.0.1:5000?x=1", "take no query"),
    ("rtp://127.0.0.1:5000#f", "take no fragment"),
    ("rtp://user@127.0.0.1:5000", "take no user info"),
    ("rtp://1.2.3.256:5000", "invalid IPv4 address '1.2.3.256'"),
    ("rtp://1.2.3:5000", "invalid IPv4 address"),
    ("rtp://::1:5000", "IPv6 addresses need brackets"),
    ("rtp://[::1:5000", "unclosed '['"),
    ("rtp://[::1]5000", "a port is required"),
    ("rtp://[::1]", "a port is required"),
    ("rtp://[]:5000", "invalid IPv6 address"),
    ("rtp://[1.2.3.4]:5000", "invalid IPv6 address"),
    ("rtp://[::g]:5000", "invalid IPv6 address '::g'"),
    ("rtp://[fe80::1%eth0]:5000", "zone ids are not supported"),
    ("rtp://bad..name:5000", "invalid host name"),
    ("rtp://-bad:5000", "invalid host name"),
    ("rtp://b√§d:5000", "invalid host name"),
    ("rtp://" + "a" * 64 + ":5000", "invalid host name"),
]


@pytest.mark.parametrize(("uri", "message"), INVALID)
def test_invalid_uris(uri: str, message: str) -> None:
    with pytest.raises(EndpointError, match=re.escape(message)):
        Endpoint.parse(uri)


def test_endpoint_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        Endpoint.parse("http://h:1")


def test_port_zero_only_when_binding() -> None:
    assert Endpoint.parse("rtp://0.0.0.0:0", bind=True).port == 0
    assert receiver_endpoints("rtp+rs8m://0.0.0.0:0", "rs8m://0.0.0.0:0").source.port == 0
    with pytest.raises(EndpointError, match="port 0"):
        sender_endpoints(Endpoint(Protocol.RTP, "h", 0))


def test_constructor_validates() -> None:
    with pytest.raises(EndpointError, match="port 70000"):
        Endpoint(Protocol.RTP, "h", 70000)
    with pytest.raises(EndpointError, match="invalid host name"):
        Endpoint(Protocol.RTP, "a b", 1)


# -- slot rules -------------------------------------------------------------------------


def test_sender_slots() -> None:
    slot = sender_endpoints(
        "rtp+rs8m://10.0.0.2:10001", "rs8m://10.0.0.2:10002", "rtcp://10.0.0.2:10003"
    )
    assert slot.fec_scheme is FecScheme.RS8M
    assert slot.endpoint(Interface.REPAIR) == Endpoint(Protocol.RS8M, "10.0.0.2", 10002)
    assert slot.endpoint(Interface.CONTROL) == Endpoint(Protocol.RTCP, "10.0.0.2", 10003)
    plain = sender_endpoints("rtp://h:1")
    assert plain.fec_scheme is None
    assert plain.repair is plain.control is None
    assert sender_endpoints("rtp+ldpc://h:1", "ldpc://h:2").fec_scheme is FecScheme.LDPC_STAIRCASE


@pytest.mark.parametrize(
    ("source", "repair", "control", "message"),
    [
        ("rtp+rs8m://h:1", None, None, "a sender needs a rs8m:// repair endpoint"),
        ("rtp+ldpc://h:1", None, "rtcp://h:3", "a sender needs a ldpc:// repair endpoint"),
        ("rtp+rs8m://h:1", "ldpc://h:2", None, "different FEC schemes"),
        ("rtp+ldpc://h:1", "rs8m://h:2", None, "different FEC schemes"),
        ("rtp://h:1", "rs8m://h:2", None, "takes no repair endpoint"),
        ("rs8m://h:1", None, None, "is a repair endpoint, given as the source endpoint"),
        ("rtp://h:1", "rtcp://h:2", None, "is a control endpoint, given as the repair endpoint"),
        ("rtp://h:1", None, "rtp://h:2", "is a source endpoint, given as the control endpoint"),
    ],
)
def test_sender_slot_rules(
    source: str, repair: str | None, control: str | None, message: str
) -> None:
    with pytest.raises(EndpointError, match=re.escape(message)):
        sender_endpoints(source, repair, control)


def test_receiver_may_omit_repair() -> None:
    slot = receiver_endpoints("rtp+rs8m://0.0.0.0:10001", control="rtcp://0.0.0.0:10003")
    assert slot.fec_scheme is FecScheme.RS8M
    assert slot.repair is None
    with pytest.raises(EndpointError, match="different FEC schemes"):
        receiver_endpoints("rtp+rs8m://0.0.0.0:1", "ldpc://0.0.0.0:2")
    with pytest.raises(EndpointError, match="takes no repair endpoint"):
        receiver_endpoints("rtp://0.0.0.0:1", "rs8m://0.0.0.0:2")


# -- round trip -------------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9_]([a-z0-9_-]{0,10}[a-z0-9_])?", fullmatch=True)
_names = (
    st.lists(_label, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda n: not all(c.isdigit() or c == "." for c in n))
)
_hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    _names,
)
endpoints = st.builds(Endpoint, st.sampled_from(Protocol), _hosts, st.integers(1, 65535))


@given(endpoints)
def test_round_trip(endpoint: Endpoint) -> None:
    uri = str(endpoint)
    assert Endpoint.parse(uri) == endpoint
    assert str(Endpoint.parse(uri)) == uri


@given(st.text(max_size=40))
def test_parse_raises_only_endpoint_error(text: str) -> None:
    try:
        endpoint = Endpoint.parse(text, bind=True)
    except EndpointError:
        return
    assert Endpoint.parse(str(endpoint), bind=True) == endpoint
