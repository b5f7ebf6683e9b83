# N asyncio tasks each awaiting sleep(0.2), all at once: tasks_sleep.rhai's counterpart.
import asyncio, sys, time

async def one():
    await asyncio.sleep(0.2)
    return 1

async def main(n):
    started = time.perf_counter()
    tasks = [asyncio.create_task(one()) for _ in range(n)]
    ok = 0
    for t in tasks:
        ok += await t
    print("%f %d" % (time.perf_counter() - started, ok))

asyncio.run(main(int(sys.argv[1])))
