# The timing loop shared by the Python clients of benches/tasks.sh: starts n tasks at once,
# awaits them in order, prints "SECONDS OK" (OK = tasks that returned true).
import asyncio, time

async def burst(round_trip, n):
    started = time.perf_counter()
    tasks = [asyncio.create_task(round_trip()) for _ in range(n)]
    ok = 0
    for t in tasks:
        try:
            ok += bool(await t)
        except Exception:
            pass
    print("%f %d" % (time.perf_counter() - started, ok))
