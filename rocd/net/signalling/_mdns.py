"""LAN discovery over mDNS (python-zeroconf), as a Trio shell.

python-zeroconf runs its own threads (an asyncio loop, the browser); nothing of it runs
on the Trio thread. The browser's callbacks only hand the service name and what happened
to Trio (`run_sync_soon` into a bounded channel: overflow is dropped and counted), and
one task resolves names one at a time in a worker thread, parses the TXT record
(`parse_announcement`: hostile input) and reports the instances found and lost. Our own
service is registered in a worker thread too (it blocks ~1.6 s while it announces).

Which interfaces: the ones of the listener's address when it listens on one address,
every IPv4 interface when it listens on all (zeroconf's "default" choice needs a default
route, which a host or namespace may not have).

What is announced is asked for again every `REFRESH_S` seconds (`properties` is a
callable), and the announcement updated when it changed (a rename).

On cancellation the service is withdrawn (goodbye packets) and zeroconf closed, in a
worker thread given at most `CLOSE_GRACE` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import trio
from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange
from zeroconf import Zeroconf as _Zeroconf

from ._announce import SERVICE_TYPE, Announcement, parse_announcement
from ._errors import MalformedMessage

log = logging.getLogger("rocd.cluster")

#: Seconds the withdrawal and shutdown of zeroconf may take.
CLOSE_GRACE = 1.0
#: Milliseconds a service's record may take to resolve.
RESOLVE_MS = 3000
#: Service names waiting to be resolved; more are dropped (they come again).
PENDING = 256
#: Seconds between two looks at what this instance announces.
REFRESH_S = 30.0


class MdnsDiscovery:
    """Announce this instance and report the others; see the module docstring."""

    def __init__(
        self,
        *,
        uid: str,
        port: int,
        addresses: list[str],
        properties: Callable[[], dict[str, str]],
        found: Callable[[Announcement], None],
        lost: Callable[[str], None],
        interfaces: list[str] | None = None,
    ) -> None:
        self.uid = uid
        self._port = port
        self._addresses = addresses
        self._properties = properties
        self._found = found
        self._lost = lost
        self._interfaces = interfaces
        self._uids: dict[str, str] = {}  # service name -> uid announced there
        self.dropped = 0  # browser callbacks that did not fit
        self.malformed = 0  # announcements that did not parse
        self.registered = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Register and browse until cancelled."""
        interfaces: Any = self._interfaces or InterfaceChoice.All
        zc = await trio.to_thread.run_sync(open_zeroconf, interfaces)
        token = trio.lowlevel.current_trio_token()
        send, receive = trio.open_memory_channel[tuple[str, ServiceStateChange]](PENDING)

        def offer(item: tuple[str, ServiceStateChange]) -> None:
            try:
                send.send_nowait(item)
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                self.dropped += 1

        def on_change(
            zeroconf: _Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(offer, (name, state_change))

        browser: ServiceBrowser | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._register, zc)
                browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[on_change])
                task_status.started()
                async for name, change in receive:
                    await self._handle(zc, name, change)
        finally:
            send.close()
            with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_GRACE):
                await trio.to_thread.run_sync(_close, zc, browser, abandon_on_cancel=True)

    def _info(self, properties: dict[str, str]) -> ServiceInfo:
        return ServiceInfo(
            SERVICE_TYPE,
            f"rocd-{self.uid}.{SERVICE_TYPE}",
            port=self._port,
            properties=properties,
            server=f"rocd-{self.uid}.local.",
            addresses=[socket.inet_aton(a) for a in self._addresses],
        )

    async def _register(self, zc: _Zeroconf) -> None:
        announced = self._properties()
        info = self._info(announced)
        try:
            # Abandoned on cancellation: a stop during the announcement (probing takes a
            # second or two) does not wait for it; closing zeroconf (see `run`) ends it.
            await trio.to_thread.run_sync(
                lambda: zc.register_service(info, allow_name_change=True),
                abandon_on_cancel=True,
            )
        except Exception as exc:  # zeroconf's own errors: no announcement, browsing goes on
            log.warning("cannot announce this instance on the LAN: %s", exc)
            return
        self.registered.set()
        log.info("announced on the LAN as %s", info.name)
        while True:
            await trio.sleep(REFRESH_S)
            now = self._properties()
            if now != announced:
                info, announced = self._info(now), now
                await trio.to_thread.run_sync(zc.update_service, info)

    async def _handle(self, zc: _Zeroconf, name: str, change: ServiceStateChange) -> None:
        if change is ServiceStateChange.Removed:
            uid = self._uids.pop(name, None)
            if uid is not None:
                self._lost(uid)
            return
        info = await trio.to_thread.run_sync(
            lambda: zc.get_service_info(SERVICE_TYPE, name, RESOLVE_MS)
        )
        if info is None:
            return
        try:
            announcement = parse_announcement(
                dict(info.properties), info.parsed_addresses(), info.port or 0
            )
        except MalformedMessage as exc:
            self.malformed += 1
            log.debug("mDNS: %s ignored: %s", name[:80], exc)
            return
        if announcement.uid == self.uid:
            return
        known = self._uids.get(name)
        if known is not None and known != announcement.uid:
            self._lost(known)
        self._uids[name] = announcement.uid
        self._found(announcement)


def open_zeroconf(interfaces: Any) -> _Zeroconf:
    """Zeroconf on `interfaces`, IPv4, whose asyncio loop logs its errors in one line.

    Blocking. Why the handler: a shutdown under load can abandon zeroconf's close (see
    `CLOSE_GRACE`); its loop thread then meets closed sockets and asyncio's default handler
    would print a traceback into the daemon's log on the way out."""
    zc = _Zeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
    loop = zc.loop
    if loop is not None:  # zeroconf starts its loop thread in the constructor
        loop.call_soon_threadsafe(loop.set_exception_handler, _log_loop_error)
    return zc


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    log.debug("mDNS: %s%s", context.get("message", "error"), f" ({exc!r})" if exc else "")


def _close(zc: _Zeroconf, browser: ServiceBrowser | None) -> None:
    if browser is not None:
        browser.cancel()
    zc.close()  # withdraws our service (goodbye packets) first
