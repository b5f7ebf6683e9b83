# One P2PD 3.1.9 measurement against the pipe bench's echo server (driven by benches/pipes.sh):
# prints messages per second. Set-up as in p2pd-baseline.md §4.5: no STUN, interface "lo",
# a route bound to 127.0.0.1, the client reading through SUB_ALL.
import asyncio, sys, time
from p2pd import *

WINDOW = 32

async def main(test, tcp_port, udp_port):
    shapes = {"tcp_pingpong": (2000, 64), "udp_pingpong": (2000, 64),
              "tcp_stream_1k": (20000, 1024), "tcp_stream_16k": (4000, 16384),
              "udp_window": (10000, 1024)}
    n, size = shapes[test]
    ip = "127.0.0.1"
    netifaces = await init_p2pd()
    nic = Interface("lo", netifaces=netifaces)
    nic.load_if_info()
    route = Route(IP4, [IPRange(ip)], [IPRange(ip)], nic, ext_check=0)
    await route.bind(ips=ip)
    tcp = test.startswith("tcp")
    pipe = await pipe_open(TCP if tcp else UDP, (ip, tcp_port if tcp else udp_port), route)
    m = b"m" * size
    started = time.perf_counter()
    if test.endswith("pingpong"):
        for _ in range(n):
            await pipe.send(m)
            got = 0
            while got < size:
                out = await pipe.recv(SUB_ALL, 2)
                got += len(out)
    elif tcp:
        want = n * size
        async def reader():
            got = 0
            while got < want:
                out = await pipe.recv(SUB_ALL, 2)
                got += len(out)
        task = asyncio.create_task(reader())
        for _ in range(n):
            await pipe.send(m)
        await task
    else:
        sent = done = inflight = 0
        while done < n:
            while inflight < WINDOW and sent < n:
                await pipe.send(m)
                sent += 1
                inflight += 1
            out = await pipe.recv(SUB_ALL, 1)
            if out is None:
                done += inflight
                inflight = 0
            else:
                done += 1
                inflight -= 1
    took = time.perf_counter() - started
    await pipe.close()
    print("%.1f" % (n / took))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
