#!/usr/bin/env python3
"""A TCP proxy that adds a fixed delay to every round trip: for kernels without netem.

    scripts/delay-proxy.py LISTEN_HOST:PORT UPSTREAM_HOST:PORT DELAY_MS [--lifetime SECS]

Every byte read from either side is written to the other DELAY_MS/2 later (so a request and its
answer take DELAY_MS longer, as `tc qdisc ... netem delay` on the path would make them), in
order, without holding back what follows it: bytes in flight overlap as on a slow link, the
bandwidth is not reduced. A half-close is passed on after the same delay. Used by
scripts/bench-grid.sh --lab (LATENCY=50ms) on the orchestrator's path to the Grid hub when the
kernel has no netem; binds only where it is told (the lab's orchestrator namespace, its
loopback) and connects only to UPSTREAM. It exits after --lifetime seconds (default 3 h) at the
latest, so a forgotten one does not stay; SIGTERM ends it at once.
"""

import asyncio
import signal
import sys


def split(hostport):
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"delay-proxy: {hostport!r} is not HOST:PORT")
    return host, int(port)


async def pump(reader, writer, half_delay):
    """Copies reader to writer, each chunk half_delay seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + half_delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def handle(client_reader, client_writer, upstream, half_delay):
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(pump(client_reader, up_writer, half_delay), pump(up_reader, client_writer, half_delay))
    except asyncio.CancelledError:
        pass  # the proxy is exiting
    finally:
        for w in (up_writer, client_writer):
            w.close()


async def main():
    args = sys.argv[1:]
    lifetime = 3 * 3600.0
    if "--lifetime" in args:
        i = args.index("--lifetime")
        lifetime = float(args[i + 1])
        del args[i : i + 2]
    if len(args) != 3 or not args[2].isdigit():
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    listen, upstream, delay_ms = split(args[0]), split(args[1]), int(args[2])
    half = delay_ms / 2000.0
    server = await asyncio.start_server(lambda r, w: handle(r, w, upstream, half), *listen)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    loop.add_signal_handler(signal.SIGINT, lambda: stop.done() or stop.set_result(None))
    print(f"delay-proxy: {args[0]} -> {args[1]}, +{delay_ms} ms per round trip", flush=True)
    try:
        await asyncio.wait_for(stop, lifetime)
    except asyncio.TimeoutError:
        pass
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
