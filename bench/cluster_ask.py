"""Remote asks between rocd instances over CURVE: round trip (p50/p99) and throughput.

    python -m bench.cluster_ask [--asks 2000] [--seconds 3] [--concurrency 16]

1. The signalling link alone, in this process: a Listener (ZAP, CURVE) and a dialled
   Connection over TCP on 127.0.0.1, an echo handler; sequential asks, then many at once.
2. Two `rocd serve` processes, paired: the same device change made on B directly
   (HTTP to B) and through A (HTTP to A, a remote ask over the link to B's device actor,
   and back); their difference is what the hop through the cluster costs. Reads of B's
   devices through A are answered from A's mirror.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import zmq

from bench._daemons import Daemon, load_average
from rocd.net.signalling import (
    ActorAddress,
    Admit,
    Ask,
    Closed,
    Connection,
    Hello,
    KeyPair,
    Listener,
    LocalInfo,
    Session,
    Subscribe,
    ZapAnswer,
    encode_value,
    serve_zap,
)


def keypair() -> KeyPair:
    public, secret = zmq.curve_keypair()
    return KeyPair(public.decode(), secret.decode())


class Echo:
    listener: Listener | None = None

    def hello(self, session: Session, hello: Hello) -> Admit:
        return Admit("operator")

    def ask(self, session: Session, ask: Ask) -> None:
        assert self.listener is not None
        self.listener.reply(session, ask.id, ask.body)

    def subscribe(self, session: Session, subscribe: Subscribe) -> None:
        pass

    def closed(self, session: Session, closed: Closed) -> None:
        pass


def quantiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49] * 1e3:6.3f} ms  p99 {q[98] * 1e3:6.3f} ms  (n={len(samples)})"


async def link_bench(asks: int, seconds: float, concurrency: int) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    server, client = keypair(), keypair()
    handler = Echo()
    listener = Listener(
        ctx,
        server,
        bind="tcp://127.0.0.1:0",
        local=LocalInfo("5e7e", "server", "bench"),
        handler=handler,
    )
    handler.listener = listener
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_zap, ctx, lambda r: ZapAnswer(r.key == client.public))
            endpoint = await nursery.start(listener.run)
            conn = Connection(
                ctx,
                client,
                address=endpoint,
                server_key=server.public,
                local=LocalInfo("c11e", "client", "bench"),
            )
            await nursery.start(conn.run)
            address = ActorAddress("device", "tone:sine")
            body = encode_value({"update": {"volume": 0.5}})
            rtts = []
            for _ in range(asks):
                t0 = time.perf_counter()
                await conn.ask(address, "UpdateDevice", body, 5.0)
                rtts.append(time.perf_counter() - t0)
            print(f"link, sequential asks over CURVE:   {quantiles(rtts)}")
            done = 0
            deadline = trio.current_time() + seconds

            async def asker() -> None:
                nonlocal done
                while trio.current_time() < deadline:
                    await conn.ask(address, "UpdateDevice", body, 5.0)
                    done += 1

            async with trio.open_nursery() as askers:
                for _ in range(concurrency):
                    askers.start_soon(asker)
            print(f"link, {concurrency} askers at once:       {done / seconds:8.0f} asks/s")
            await conn.aclose("done")
            nursery.cancel_scope.cancel()
    finally:
        ctx.destroy(linger=0)


async def timed(http: httpx.AsyncClient, method: str, url: str, n: int, body: Any) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        if method == "PUT":
            r = await http.put(url, json={"mute": bool(i % 2)})
        else:
            r = await http.get(url)
        out.append(time.perf_counter() - t0)
        r.raise_for_status()
    return out


async def daemon_bench(a: Daemon, b: Daemon, n: int) -> None:
    device = "/devices/tone:sine"
    async with httpx.AsyncClient(timeout=10) as http:
        local_put = await timed(http, "PUT", f"{b.url}/peers/self{device}", n, None)
        remote_put = await timed(http, "PUT", f"{a.url}/peers/{b.uid}{device}", n, None)
        local_get = await timed(http, "GET", f"{b.url}/peers/self{device}", n, None)
        mirror_get = await timed(http, "GET", f"{a.url}/peers/{b.uid}{device}", n, None)
    print(f"PUT device on B, HTTP to B:          {quantiles(local_put)}")
    print(f"PUT device on B, HTTP to A -> B:     {quantiles(remote_put)}")
    extra = statistics.median(remote_put) - statistics.median(local_put)
    print(f"  the remote ask adds (p50):         {extra * 1e3:6.3f} ms")
    print(f"GET device of B, HTTP to B:          {quantiles(local_get)}")
    print(f"GET device of B, from A's mirror:    {quantiles(mirror_get)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(f"load average before: {load_average()}")
    trio.run(link_bench, args.asks, args.seconds, args.concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Daemon("a", Path(tmp)), Daemon("b", Path(tmp))
        try:
            for d in (a, b):
                d.launch()
            for d in (a, b):
                d.ready()
            for one, other in ((a, b), (b, a)):
                r = httpx.post(
                    f"{one.url}/peers", json={"address": other.address, "key": other.key}
                )
                r.raise_for_status()
            deadline = time.monotonic() + 20
            while httpx.get(f"{a.url}/peers/{b.uid}").json().get("state") != "online":
                if time.monotonic() > deadline:
                    raise SystemExit("the two daemons did not pair")
                time.sleep(0.05)
            trio.run(daemon_bench, a, b, max(200, args.asks // 4))
        finally:
            a.stop()
            b.stop()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
