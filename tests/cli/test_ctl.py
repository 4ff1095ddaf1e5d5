"""`rocd ctl` as people and scripts run it: a process against real daemons (one open on
loopback, one that asks for a token), tables for people, the API's JSON for scripts,
one-line errors in the API's words and exit statuses that say what failed."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rocd.actors import Event, PeerInfo, Stream, StreamMetrics, Vad
from rocd.cli import _ctl_views, main
from rocd.cli._ctl_exit import (
    EXIT_CONFLICT,
    EXIT_DENIED,
    EXIT_NOT_FOUND,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from tests.cluster.instances import Instance, free_port, start_all, wait_for
from tests.console.daemons import NO_PULSE, Guarded, create_token, pair_by_invite

pytestmark = pytest.mark.slow


def ctl_process(
    *args: str, api: str, token: str = "", timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """`rocd ctl ARGS` as a process, `api` and `token` from the environment (ROCD_API,
    ROCD_TOKEN) as a user's shell would give them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROCD_")}
    env["ROCD_API"] = api
    if token:
        env["ROCD_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "rocd.cli", "ctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def ctl(*args: str, api: str, token: str = "") -> subprocess.CompletedProcess[str]:
    """The same in this process (`rocd.cli.main`, what the `rocd` script runs): the same
    code and answers without an interpreter's start-up each time (~0.5 s here)."""
    argv = ["ctl", *args, "--api", api] + (["--token", token] if token else [])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            status = int(exc.code or 0)
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" or "Traceback" not in done.stderr
    return done.stdout


def failed(done: subprocess.CompletedProcess[str], status: int, words: str) -> str:
    """The one line a failure prints, checked: its status and the words it carries."""
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rocd: "), lines
    assert words in lines[0], lines
    return lines[0]


def as_json(done: subprocess.CompletedProcess[str], model: Any) -> Any:
    """A --json answer, decoded with the API's own model (so it is the API's shape)."""
    return msgspec.json.decode(ok(done), type=model)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Guarded]]:
    """`a` open on loopback and `b` asking for a token, not paired yet."""
    root = tmp_path_factory.mktemp("ctl")
    a, b = Instance("a", root, NO_PULSE), Guarded("b", root, NO_PULSE)
    start_all([a, b])
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture(scope="module")
def paired(cluster: tuple[Instance, Guarded]) -> tuple[Instance, Guarded]:
    a, b = cluster
    if a.state_of(b) != "online":
        pair_by_invite(a, b)
    return a, b


def test_pairing_with_an_invite(cluster: tuple[Instance, Guarded]) -> None:
    a, b = cluster
    invite = ctl_process("peers", "invite", api=a.url)
    token = ok(invite).strip()
    assert token.startswith("rocd1-")
    assert "\n" not in token  # stdout holds the token alone, for $(...)
    assert "rocd ctl peers join" in invite.stderr
    # b's API asks for a token: none, then one whose role is too low.
    failed(ctl_process("peers", "join", token, api=b.url), EXIT_DENIED, "needs a bearer token")
    viewer = create_token(b.state_dir, "viewer")
    failed(ctl("peers", "join", token, api=b.url, token=viewer), EXIT_DENIED, "admin")
    joining = ("--json", "peers", "join", token)
    joined = as_json(ctl_process(*joining, api=b.url, token=b.token), PeerInfo)
    assert (joined.uid, joined.state) == (a.uid, "online")
    a.wait_state(b, "online")
    # People get a table, scripts the API's JSON; a peer may be named by its name.
    table = ok(ctl("peers", "list", api=a.url)).splitlines()
    assert table[0].split() == [
        "UID", "NAME", "STATE", "ROLE", "RTT", "ROUTE", "ADDRESS", "FINGERPRINT", "SEEN"
    ]  # fmt: skip
    assert table[1].split()[:3] == [a.uid, "a", "self"]
    assert table[2].split()[:4] == [b.uid, "b", "online", "operator"]
    listed = as_json(ctl("peers", "list", "--json", api=a.url), list[PeerInfo])
    assert [p.uid for p in listed] == [p["uid"] for p in a.get("/peers").json()]
    assert as_json(ctl("peers", "get", "b", "--json", api=a.url), PeerInfo).uid == b.uid
    failed(ctl("peers", "get", "nobody", api=a.url), EXIT_NOT_FOUND, "no peer named 'nobody'")


def test_virtual_devices_and_devices_of_another_instance(
    paired: tuple[Instance, Guarded],
) -> None:
    a, b = paired
    made = ctl(
        *("vads", "create", "--peer", "b", "--name", "Küche 'A'", "--kind", "speaker"),
        *("--driver", "tone", "--json"),
        api=a.url,
    )
    vad = as_json(made, Vad)
    assert (vad.peer, vad.name, vad.state) == (b.uid, "Küche 'A'", "ready")
    assert b.get(f"/peers/self/vads/{vad.uid}").json()["name"] == "Küche 'A'"  # made on b
    rows = ok(ctl("vads", "list", "--peer", b.uid, api=a.url)).splitlines()
    assert rows[0].split() == ["UID", "KIND", "DRIVER", "RATE/CH", "STATE", "DEVICE", "NAME"]
    assert any(r.startswith(vad.uid) and r.endswith("Küche 'A'") for r in rows[1:])

    renaming = ("vads", "set", vad.uid, "--peer", "b", "--name", "Den", "--json")
    renamed = as_json(ctl(*renaming, api=a.url), Vad)
    assert renamed.name == "Den"
    assert vad.device is not None
    device = ctl(
        *("devices", "set", vad.device, "--peer", "b", "--volume", "0.5", "--mute", "--json"),
        api=a.url,
    )
    shown = json.loads(ok(device))
    assert (shown["name"], shown["config"]) == ("Den", {"volume": 0.5, "mute": True})
    on_b = b.get(f"/peers/self/devices/{vad.device}").json()
    assert (on_b["volume"], on_b["mute"]) == (0.5, True)
    reset = ctl("devices", "set", vad.device, "--peer", "b", "--reset", "mute", api=a.url)
    assert b.get(f"/peers/self/devices/{vad.device}").json()["config"] == {"volume": 0.5}, reset
    listing = ok(ctl("devices", "list", "--peer", "b", api=a.url)).splitlines()
    assert listing[0] == "drivers: file up, tone up"
    assert [r.split()[:5] for r in listing if r.startswith(vad.device)] == [
        [vad.device, "sink", "idle", "50%", "muted"]  # reset: rocd no longer imposes it
    ]
    shown = ok(ctl("devices", "get", vad.device, "--peer", "b", api=a.url))
    assert f"id:              {vad.device}" in shown.splitlines()

    ok(ctl("vads", "delete", vad.uid, "--peer", "b", api=a.url))
    failed(ctl("vads", "get", vad.uid, "--peer", "b", api=a.url), EXIT_NOT_FOUND, "no VAD")


def test_a_stream_made_watched_changed_and_deleted(paired: tuple[Instance, Guarded]) -> None:
    a, b = paired
    made = ctl_process(
        *("streams", "create", "-s", "tone:sine", "-d", "tone:null", "--destination-peer", "b"),
        *("--profile", "lan", "--json"),
        api=a.url,
    )
    stream = as_json(made, Stream)
    assert {(e.role, e.peer) for e in stream.ends} == {("sender", a.uid), ("receiver", b.uid)}
    assert stream.settings.latency.target_ms == 60.0
    wait_for(
        "the stream to play",
        lambda: a.get(f"/streams/{stream.uid}").json()["state"],
        lambda state: state == "active",
    )
    # Live metrics, as JSON lines: the receiver's packet count moves.
    watched = ctl(
        *("events", "--kind", "stream.metrics", "--count", "6", "--within", "15", "--json"),
        api=a.url,
    )
    events = [msgspec.json.decode(line, type=Event) for line in ok(watched).splitlines()]
    assert len(events) == 6
    received = [
        end["receiver"]["packetsReceived"]
        for e in events
        for end in e.data["ends"]
        if e.subject == stream.uid and end["role"] == "receiver"
    ]
    assert len(received) >= 2, events
    assert received == sorted(received)
    assert received[-1] > received[0]
    metrics = as_json(ctl("streams", "metrics", stream.uid, "--json", api=a.url), StreamMetrics)
    [receiver] = [e.receiver for e in metrics.ends if e.role == "receiver"]
    assert receiver is not None
    assert receiver.packetsReceived > 0
    table = ok(ctl("streams", "metrics", stream.uid, api=a.url)).splitlines()
    assert table[0] == f"{stream.uid}  active"
    assert table[1].split()[:4] == ["ROLE", "PEER", "STATE", "LATENCY/TARGET"]

    rows = ok(ctl("streams", "list", api=a.url)).splitlines()
    assert rows[1].split() == [stream.uid, "active", f"{a.uid}:tone:sine", f"{b.uid}:tone:null"]
    changing = ("streams", "set", stream.uid, "--volume", "0.5", "--json")
    changed = as_json(ctl(*changing, api=a.url), Stream)
    assert changed.settings.volume == 0.5
    ok(ctl("streams", "delete", stream.uid, api=a.url))
    failed(ctl("streams", "get", stream.uid, api=a.url), EXIT_NOT_FOUND, "no stream")
    assert b.get("/streams").json() == []


def test_exit_statuses_say_what_failed(cluster: tuple[Instance, Guarded]) -> None:
    a, b = cluster
    nobody = f"http://127.0.0.1:{free_port()}"
    failed(ctl_process("peers", "list", api=nobody), EXIT_UNREACHABLE, "cannot reach the API")
    failed(ctl("events", api=nobody), EXIT_UNREACHABLE, "cannot reach the API")
    usage = ctl_process("peers", "list", "--bogus", api=a.url)
    assert usage.returncode == EXIT_USAGE
    assert "unrecognized arguments: --bogus" in usage.stderr
    failed(ctl("peers", "list", api="nonsense"), EXIT_USAGE, "give the API's URL")
    # A value the API's model refuses: its words, and nothing is sent.
    failed(
        ctl("devices", "set", "tone:null", "--volume", "2", api=a.url),
        EXIT_USAGE,
        "invalid body: volume: Expected float <= 1.5",
    )
    assert a.get("/peers/self/devices/tone:null").json()["config"] == {}
    failed(
        ctl("vads", "create", "--name", " ", "--kind", "speaker", api=a.url),
        EXIT_USAGE,
        "invalid body: name: Expected printable text, not only white space",
    )
    failed(
        ctl("devices", "get", "tone:nothing", api=a.url),
        EXIT_NOT_FOUND,
        "no device 'tone:nothing' (404 not_found)",
    )
    failed(
        ctl(
            "vads", "create", "--name", "Mic", "--kind", "microphone", "--driver", "tone", api=a.url
        ),
        EXIT_CONFLICT,
        "the tone driver makes no virtual microphone (409 unsupported)",
    )
    failed(
        ctl("streams", "create", "-s", "tone:sine", "--destination-vad", "x", "-d", "y", api=a.url),
        EXIT_USAGE,
        "give the destination",
    )
    # The API's answers about tokens, over HTTP and over the event WebSocket.
    failed(ctl_process("peers", "list", api=b.url), EXIT_DENIED, "needs a bearer token")
    failed(ctl("peers", "list", api=b.url, token="rocd_nope"), EXIT_DENIED, "unknown or revoked")
    failed(ctl("events", api=b.url), EXIT_DENIED, "needs a bearer token")
    viewer = create_token(b.state_dir, "viewer")
    assert ok(ctl("peers", "list", "--token", viewer, api=b.url)).startswith("UID")
    failed(
        ctl(
            "vads",
            "create",
            "--name",
            "x",
            "--kind",
            "speaker",
            "--driver",
            "tone",
            api=b.url,
            token=viewer,
        ),
        EXIT_DENIED,
        "operator",
    )
    failed(ctl("events", "--kind", "nope.", api=a.url), EXIT_USAGE, "no event family 'nope.'")
    failed(
        ctl("events", "--kind", "store.recovered", "--within", "0.5", api=a.url),
        EXIT_TIMEOUT,
        "0 of 1 events within 0.5 s",
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--timeout", "-1", "peers", "list"), "--timeout: give seconds above 0, not '-1'"),
        (("--timeout", "nan", "peers", "list"), "--timeout: give seconds above 0, not 'nan'"),
        (("--timeout", "inf", "peers", "list"), "--timeout: give seconds above 0, not 'inf'"),
        (("--timeout", "0", "peers", "list"), "--timeout: give seconds above 0, not '0'"),
        (("events", "--count", "0"), "--count: 0 is not a positive whole number"),
        (("events", "--count", "-1"), "--count: -1 is not a positive whole number"),
        (("events", "--within", "-1"), "--within: give seconds above 0, not '-1'"),
    ],
)
def test_durations_and_counts_out_of_range_are_bad_usage(args: tuple[str, ...], words: str) -> None:
    # Refused before any request: no daemon is needed (none listens there).
    done = ctl_process(*args, api=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "Traceback" not in done.stderr
    assert words in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "settings",
    ["[" * 5000 + "]" * 5000, '{"latency": ' + "[" * 900 + "]" * 900 + "}"],
    ids=["array", "field"],
)
def test_settings_nested_too_deeply_are_bad_usage(settings: str) -> None:
    # Refused before any request: no daemon is needed (none listens there).
    done = ctl_process(
        "streams", "create", "-s", "tone:sine", "-d", "tone:null", "--settings", settings,
        api=f"http://127.0.0.1:{free_port()}",
    )  # fmt: skip
    failed(done, EXIT_USAGE, "--settings: JSON nested too deeply")


@pytest.mark.parametrize("api", ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://:4610"])
@pytest.mark.parametrize("verb", [("peers", "list"), ("events",)])
def test_an_api_url_without_a_usable_host_and_port_is_bad_usage(
    api: str, verb: tuple[str, ...]
) -> None:
    failed(ctl_process(*verb, api=api), EXIT_USAGE, f"--api {api!r}: give the API's URL")


def test_a_change_for_an_instance_that_is_gone_is_a_5xx(tmp_path: Path) -> None:
    a, c = Instance("a", tmp_path, NO_PULSE), Instance("c", tmp_path, NO_PULSE)
    start_all([a, c])
    try:
        pair_by_invite(a, c)
        c.stop()
        a.wait_state(c, "offline")
        line = failed(
            ctl_process(
                *("vads", "create", "--peer", c.uid, "--name", "x", "--kind", "speaker"), api=a.url
            ),
            EXIT_UNAVAILABLE,
            c.uid,
        )
        assert "(503 " in line
    finally:
        a.stop()
        c.stop()


def test_events_follow_prints_live_and_ends_cleanly(cluster: tuple[Instance, Guarded]) -> None:
    a, _ = cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROCD_")}
    command = [sys.executable, "-m", "rocd.cli", "ctl", "--api", a.url, "events", "-f"]
    subscribers = a.get("/health").json()["event_subscribers"]

    def follow(*extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        wait_for(
            "the follower to subscribe",
            lambda: a.get("/health").json()["event_subscribers"],
            lambda n: n > subscribers,
            timeout=15,
        )
        return proc

    def make_vad(name: str) -> str:
        r = a.post("/peers/self/vads", {"name": name, "kind": "speaker", "driver": "tone"})
        assert r.status_code == 201, r.text
        return str(r.json()["uid"])

    # Until SIGINT (or SIGTERM), each event on one line, as it comes; the signal ends it
    # quietly with the shell's status for it (128 + the signal's number).
    proc = follow("--kind", "vad.")
    assert proc.stdout is not None
    try:
        uid = make_vad("Followed")
        line = proc.stdout.readline()
        assert line.split()[1:4] == [a.uid, "vad.created", uid], line
        assert '"name":"Followed"' in line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        assert proc.stderr is not None
        assert proc.stderr.read() == ""
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    proc = follow("--kind", "vad.")
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.communicate(timeout=10) == ("", "")
        assert proc.returncode == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    # A reader that goes away (| head -1): done, quietly.
    proc = follow("--kind", "vad.", "--json")
    assert proc.stdout is not None
    try:
        made = make_vad("Headed")
        first = json.loads(proc.stdout.readline())
        assert (first["kind"], first["subject"]) == ("vad.created", made)
        proc.stdout.close()
        assert a.delete(f"/peers/self/vads/{made}").status_code == 204
        assert a.delete(f"/peers/self/vads/{uid}").status_code == 204
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        assert proc.stderr.read() == ""
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@contextlib.contextmanager
def silent_api() -> Iterator[tuple[socket.socket, str]]:
    """An "API" that takes connections and never answers: the listening socket, its URL."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(15)
        yield silent, f"http://127.0.0.1:{silent.getsockname()[1]}"


def interrupted_quietly(argv: list[str], running: Callable[[], object]) -> None:
    """Run `argv`, wait for `running()`, Ctrl-C it: 130, and nothing printed."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        running()
        proc.send_signal(signal.SIGINT)
        assert proc.communicate(timeout=10) == ("", ""), argv
        assert proc.returncode == 130, argv
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_c_on_a_request_that_hangs_is_130_quietly() -> None:
    """An API that accepts the connection and never answers: Ctrl-C ends the wait with
    the shell's status for SIGINT, no traceback."""
    with silent_api() as (silent, url), contextlib.ExitStack() as held:
        for args in (("peers", "list"), ("events", "--follow")):
            argv = [sys.executable, "-m", "rocd.cli", "ctl", "--api", url, *args]
            # Once it is connected (and held open), the request waits for its answer.
            interrupted_quietly(argv, lambda: held.enter_context(silent.accept()[0]))


def test_ctrl_c_while_rocd_starts_is_130_quietly() -> None:
    """The first half second of any `rocd ...` is spent importing the project: a Ctrl-C
    there ends it too with 130 and no traceback (the installed command, as people run it,
    against an API that never answers, so that it is still running when the signal
    comes)."""
    rocd = Path(sys.executable).with_name("rocd")
    with silent_api() as (_, url):
        for delay in (0.05, 0.1, 0.2, 0.4):  # (Python's own start-up takes ~0.02 s)
            argv = [str(rocd), "ctl", "--api", url, "events", "--follow"]
            interrupted_quietly(argv, functools.partial(time.sleep, delay))


def test_a_resource_shows_its_unix_times_as_dates() -> None:
    class Thing(msgspec.Struct):
        name: str
        created: float
        last_seen: float | None = None
        started: float = 0.0

    created = time.time() - 30
    shown = _ctl_views.fields(Thing("x", created)).splitlines()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
    assert shown[0] == "name:      x"
    assert re.fullmatch(rf"created:   {re.escape(stamp)} \((30|31) s ago\)", shown[1]), shown
    assert shown[2:] == ["last_seen: -", "started:   -"]  # unknown, and 0: never
