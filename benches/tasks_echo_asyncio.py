# One TCP echo round trip per asyncio task, all started at once (driven by benches/tasks.sh):
# the plain-asyncio counterpart of tasks_echo.rhai. Prints "SECONDS OK".
import asyncio, sys
from echo_burst import burst

MSG = b"m" * 64

async def round_trip(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(MSG)
        await writer.drain()
        got = await asyncio.wait_for(reader.readexactly(len(MSG)), 10)
        return got == MSG
    finally:
        writer.close()
        await writer.wait_closed()

async def main(port, n):
    await burst(lambda: round_trip(port), n)

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
