# N asyncio tasks each awaiting sleep(0.2), all at once: tasks_sleep.rhai's counterpart.
import asyncio, sys
from echo_burst import burst

async def one():
    await asyncio.sleep(0.2)
    return 1

async def main(n):
    await burst(one, n)

asyncio.run(main(int(sys.argv[1])))
