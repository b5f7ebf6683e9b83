# One TCP echo round trip per asyncio task, all started at once (driven by benches/tasks.sh):
# the plain-asyncio counterpart of tasks_echo.rhai. Prints "SECONDS OK".
import asyncio, sys, time

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
    started = time.perf_counter()
    tasks = [asyncio.create_task(round_trip(port)) for _ in range(n)]
    ok = 0
    for t in tasks:
        try:
            ok += bool(await t)
        except Exception:
            pass
    print("%f %d" % (time.perf_counter() - started, ok))

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
