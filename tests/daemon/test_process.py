"""`rocd serve` as a separate process: persistence across kill -9, signals, bad input."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from .process import LOOPBACK_CLUSTER, DaemonProcess, state_args


def start(spawn: list[DaemonProcess], *args: str) -> DaemonProcess:
    proc = DaemonProcess(args)
    spawn.append(proc)
    return proc


def test_uid_name_and_settings_survive_kill_9(tmp_path: Path, spawn: list[DaemonProcess]) -> None:
    first = start(spawn, *state_args(tmp_path))
    url = first.wait_serving()
    me = httpx.get(f"{url}/peers/self").json()
    r = httpx.put(f"{url}/peers/self", json={"name": "Attic"})
    assert r.status_code == 200
    first.proc.send_signal(signal.SIGKILL)  # no chance to flush anything
    first.wait_exit()
    second = start(spawn, *state_args(tmp_path))
    url = second.wait_serving()
    again = httpx.get(f"{url}/peers/self").json()
    assert again["uid"] == me["uid"]
    assert again["name"] == "Attic"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_it_cleanly_within_two_seconds(
    tmp_path: Path, spawn: list[DaemonProcess], sig: signal.Signals
) -> None:
    proc = start(spawn, *state_args(tmp_path))
    url = proc.wait_serving()
    assert httpx.get(f"{url}/health").status_code == 200
    t0 = time.monotonic()
    proc.proc.send_signal(sig)
    assert proc.wait_exit(timeout=5) == 0
    assert time.monotonic() - t0 < 2.0
    assert "stopped" in proc.text
    assert "Traceback" not in proc.text


def test_name_flag_sets_and_keeps_the_name(tmp_path: Path, spawn: list[DaemonProcess]) -> None:
    proc = start(spawn, *state_args(tmp_path, "--name", "Garage"))
    url = proc.wait_serving()
    assert httpx.get(f"{url}/peers/self").json()["name"] == "Garage"
    proc.proc.send_signal(signal.SIGTERM)
    proc.wait_exit()
    proc = start(spawn, *state_args(tmp_path))
    url = proc.wait_serving()
    assert httpx.get(f"{url}/peers/self").json()["name"] == "Garage"


def test_config_file_is_used(tmp_path: Path, spawn: list[DaemonProcess]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "rocd.toml"
    cfg.write_text(
        f'name = "From file"\nstate_dir = "{tmp_path / "state"}"\n[api]\nport = {port}\n'
        '[cluster]\nlisten = "127.0.0.1:0"\n'
    )
    proc = start(spawn, "--config", str(cfg))
    url = proc.wait_serving()
    assert url == f"http://127.0.0.1:{port}"
    assert httpx.get(f"{url}/peers/self").json()["name"] == "From file"
    assert (tmp_path / "state" / "state.db").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[api]\nport = "http"\n', "api.port: expected int, got str"),
        ("[api]\nport = 70000\n", "api.port: expected int <= 65535"),
        ('log_level = "loud"\n', "log_level: invalid enum value 'loud'"),
        ('colour = "red"\n', "unknown field colour"),
        ("name = \n", "rocd.toml"),
        ("a = " + "[" * 3000 + "]" * 3000 + "\n", "rocd.toml: nested too deeply"),
    ],
)
def test_a_bad_config_file_is_one_clear_line_and_exit_2(
    tmp_path: Path, spawn: list[DaemonProcess], content: str, message: str
) -> None:
    cfg = tmp_path / "rocd.toml"
    cfg.write_text(content)
    proc = start(spawn, "--config", str(cfg), "--state-dir", str(tmp_path))
    assert proc.wait_exit() == 2
    lines = proc.text.strip().splitlines()
    assert len(lines) == 1, proc.text
    assert message in lines[0]
    assert lines[0].startswith("rocd: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api", "localhost"], "--api: expected HOST:PORT"),
        (["--api", "127.0.0.1:99999"], "--api: port must be 0-65535"),
        (["--config", "/nonexistent/rocd.toml"], "cannot read config file"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_exit_2(
    tmp_path: Path, spawn: list[DaemonProcess], args: list[str], message: str
) -> None:
    proc = start(spawn, "--state-dir", str(tmp_path), *args)
    assert proc.wait_exit() == 2
    assert message in proc.text


def test_a_taken_port_is_a_clear_error(tmp_path: Path, spawn: list[DaemonProcess]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(
            spawn, "--state-dir", str(tmp_path), "--api", f"127.0.0.1:{port}", *LOOPBACK_CLUSTER
        )
        assert proc.wait_exit() == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in proc.text
    assert "Traceback" not in proc.text


def test_a_taken_cluster_port_is_a_clear_error(tmp_path: Path, spawn: list[DaemonProcess]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(
            spawn,
            "--state-dir",
            str(tmp_path),
            "--api",
            "127.0.0.1:0",
            "--cluster",
            f"127.0.0.1:{port}",
        )
        assert proc.wait_exit() == 1
    lines = proc.text.strip().splitlines()
    assert lines[-1] == (
        f"rocd: cannot listen on 127.0.0.1:{port} for the cluster: Address already in use"
    )
    assert "Traceback" not in proc.text


def test_an_unusable_state_file_is_a_clear_error(
    tmp_path: Path, spawn: list[DaemonProcess]
) -> None:
    (tmp_path / "state.db").write_bytes(b"garbage" * 1000)
    proc = start(spawn, *state_args(tmp_path))
    assert proc.wait_exit() == 1
    assert "state file unusable" in proc.text
    assert "Traceback" not in proc.text


def test_a_second_daemon_on_the_same_state_dir_exits_naming_the_first(
    tmp_path: Path, spawn: list[DaemonProcess]
) -> None:
    first = start(spawn, *state_args(tmp_path))
    url = first.wait_serving()
    second = start(spawn, *state_args(tmp_path))
    assert second.wait_exit() == 1
    assert second.text.strip().splitlines() == [
        f"rocd: state directory {tmp_path} is in use by another rocd (pid {first.proc.pid})"
    ]
    assert httpx.get(f"{url}/health").status_code == 200
    # Once the first is gone (even by SIGKILL), the directory is free again.
    first.proc.send_signal(signal.SIGKILL)
    first.wait_exit()
    third = start(spawn, *state_args(tmp_path))
    third.wait_serving()
