# One TCP echo round trip per task through P2PD 3.1.9's pipes, all started at once (driven
# by benches/tasks.sh): the P2PD counterpart of tasks_echo.rhai. Prints "SECONDS OK".
# Set-up as in p2pd_client.py: no STUN, interface "lo", a route bound to 127.0.0.1.
import asyncio, sys
from echo_burst import burst
from p2pd import *

MSG = b"m" * 64

async def round_trip(route, port):
    pipe = await pipe_open(TCP, ("127.0.0.1", port), route)
    try:
        await pipe.send(MSG)
        got = await pipe.recv(SUB_ALL, 10)
        return got == MSG
    finally:
        await pipe.close()

async def main(port, n):
    netifaces = await init_p2pd()
    nic = Interface("lo", netifaces=netifaces)
    nic.load_if_info()
    route = Route(IP4, [IPRange("127.0.0.1")], [IPRange("127.0.0.1")], nic, ext_check=0)
    await route.bind(ips="127.0.0.1")
    await burst(lambda: round_trip(route, port), n)

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
