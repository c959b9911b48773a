#!/usr/bin/env python3
"""resp_record.py — a loopback TCP relay that records what clients send.

    resp_record.py --upstream-port P --out PREFIX

Listens on 127.0.0.1 (a free port, printed on stdout as the first line),
relays every connection to 127.0.0.1:P both ways, and writes the bytes each
client sent to PREFIX.<n> (n = 1, 2, ... in the order connections were
accepted). Used by bench/replay.sh to capture the exact RESP stream funneld
sends to Redis, so that it can be replayed into a scratch redis-server with
`redis-cli --pipe`. On SIGTERM or SIGINT it stops accepting, lets every
relay run to the end of its input (the client has exited; at most 10 s),
and closes every file.
"""
import argparse
import asyncio
import signal


async def relay(reader, writer, sink=None):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            if sink is not None:
                sink.write(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, asyncio.CancelledError):
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream-port", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    files, tasks, count = [], set(), 0

    async def on_client(creader, cwriter):
        nonlocal count
        count += 1
        f = open(f"{args.out}.{count}", "wb")
        files.append(f)
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", args.upstream_port)
        for t in (relay(creader, uwriter, f), relay(ureader, cwriter)):
            task = asyncio.ensure_future(t)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # funneld has exited: its sockets are closed, so every relay reaches EOF
    # after writing what was in flight; cancel only what is left after 10 s
    server.close()
    if tasks:
        await asyncio.wait(set(tasks), timeout=10)
    for t in list(tasks):
        t.cancel()
    for f in files:
        f.close()


if __name__ == "__main__":
    asyncio.run(main())
