"""A tiny TCP load balancer for the compose e2e test: what a Kubernetes Service in front of
the two queriers does, on the Python standard library only (no image can be pulled here).

Every 200 ms it resolves the backend name (a Docker network alias that both queriers carry,
so DNS returns one address per querier) and asks every address for /-/ready. A new client
connection goes to the next ready address, round robin; when the connect fails (a querier that
has just stopped listening) it tries the next ready one. Once a connection is made the bytes
are copied as they are: a request that reached a querier is never retried here, so a query
that a querier drops during a restart reaches the client as a failure.

Usage: lb.py LISTEN_PORT BACKEND_HOST BACKEND_PORT
"""

import asyncio
import socket
import sys

CHECK_INTERVAL = 0.2
CHECK_TIMEOUT = 1.0
CONNECT_TIMEOUT = 2.0


class Backends:
    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.ready = []
        self.next = 0

    async def is_ready(self, address):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, self.port), CHECK_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            writer.write(b"GET /-/ready HTTP/1.0\r\nHost: lb\r\n\r\n")
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), CHECK_TIMEOUT)
            return status.split()[1:2] == [b"200"]
        except (OSError, asyncio.TimeoutError, IndexError):
            return False
        finally:
            writer.close()

    async def check_forever(self):
        loop = asyncio.get_running_loop()
        while True:
            try:
                infos = await loop.getaddrinfo(
                    self.host, self.port, family=socket.AF_INET, type=socket.SOCK_STREAM
                )
                addresses = sorted({info[4][0] for info in infos})
            except OSError:
                addresses = []
            states = await asyncio.gather(*(self.is_ready(a) for a in addresses))
            ready = [a for a, ok in zip(addresses, states) if ok]
            if ready != self.ready:
                print(f"ready backends: {ready} of {addresses}", flush=True)
            self.ready = ready
            await asyncio.sleep(CHECK_INTERVAL)

    def order(self):
        ready = list(self.ready)
        if not ready:
            return []
        self.next = (self.next + 1) % len(ready)
        return ready[self.next :] + ready[: self.next]


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass


async def handle(backends, client_reader, client_writer):
    for address in backends.order():
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, backends.port), CONNECT_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError):
            continue
        await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))
        writer.close()
        break
    client_writer.close()


async def main():
    listen_port, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    backends = Backends(host, port)
    checker = asyncio.create_task(backends.check_forever())
    # Python 3.11's start_server keeps no reference to the task it makes of the callback, and
    # asyncio holds tasks weakly: a connection's task waiting on its sockets could be garbage
    # collected mid-request ("Task was destroyed but it is pending!"), dropping the client's
    # query. Every connection's task is held here until it ends.
    tasks = set()

    def on_connect(reader, writer):
        task = asyncio.ensure_future(handle(backends, reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_connect, "0.0.0.0", listen_port)
    print(f"listening on :{listen_port} for {host}:{port}", flush=True)
    async with server:
        await asyncio.gather(server.serve_forever(), checker)


if __name__ == "__main__":
    asyncio.run(main())
