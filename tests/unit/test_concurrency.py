import asyncio

import pytest

from tests.support.waiting import until
from thumbservice.domain.concurrency import RenderAdmission, SingleFlight
from thumbservice.domain.errors import Overloaded


async def test_single_flight_shares_the_result_and_the_error() -> None:
    flights: SingleFlight[int] = SingleFlight()
    runs = 0
    gate = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await gate.wait()
        raise ValueError("bad frame")

    tasks = [asyncio.create_task(flights.run("k", work)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert runs == 1
    assert all(isinstance(r, ValueError) for r in results)
    assert len(flights) == 0


async def test_a_caller_going_away_does_not_cancel_the_work() -> None:
    flights: SingleFlight[str] = SingleFlight()
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    first = asyncio.create_task(flights.run("k", work))
    second = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == "done"


async def test_after_landing_a_new_flight_starts() -> None:
    flights: SingleFlight[int] = SingleFlight()
    counter = iter(range(10))

    async def work() -> int:
        return next(counter)

    assert await flights.run("k", work) == 0
    assert await flights.run("k", work) == 1


async def test_admission_refuses_beyond_workers_plus_queue() -> None:
    admission = RenderAdmission(workers=1, queue_depth=1)
    async with admission.admit(), admission.admit():
        assert admission.admitted == 2
        with pytest.raises(Overloaded):
            async with admission.admit():
                pass
    assert admission.admitted == 0


async def test_render_slots_bound_parallel_renders() -> None:
    admission = RenderAdmission(workers=2, queue_depth=10)
    peak = 0

    async def job() -> None:
        nonlocal peak
        async with admission.admit(), admission.render_slot():
            peak = max(peak, admission.rendering)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(job() for _ in range(6)))
    assert peak == 2 and admission.rendering == 0


async def test_waiting_counts_jobs_waiting_for_a_worker_admitted_or_not() -> None:
    """Deep-zoom views take render slots without the thumbnails' admission: the gauge of jobs
    waiting counts what waits for a worker, never a negative number."""
    admission = RenderAdmission(2, 4)
    release = asyncio.Event()
    inside = 0

    async def view() -> None:
        nonlocal inside
        async with admission.render_slot():
            inside += 1
            await release.wait()

    views = [asyncio.ensure_future(view()) for _ in range(3)]
    await until(lambda: inside == 2 and admission.waiting == 1)
    assert admission.rendering == 2
    release.set()
    await asyncio.gather(*views)
    assert (admission.rendering, admission.waiting) == (0, 0)
