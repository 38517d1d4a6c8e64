"""Run cases on this machine: in this process, or in worker processes (one per GPU when several are visible)."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .cases import BatchCase
from .worker import CaseOutcome, ModelSpec, segment_case

_state: dict[str, object] = {}  # in a worker process: its device, threads and (once loaded) Segmenter


def local_outcomes(cases: Sequence[BatchCase], request: dict, out: str | Path, spec: ModelSpec,
                   devices: Sequence[str], threads: int | None = None) -> Iterator[CaseOutcome]:
    """One outcome per case, in finishing order; one worker per entry of ``devices`` ('cpu', 'cuda:1', ...)."""
    if len(devices) == 1:
        _init_worker(devices[0], threads)  # this process is the worker
        for case in cases:
            yield _run_case(spec, case, request, str(out))
        return
    context = multiprocessing.get_context("spawn")  # fresh interpreters: safe with torch threads and CUDA
    pending = deque(cases)
    while pending:
        yield from _pool_run(pending, request, str(out), spec, devices, threads, context)


def _pool_run(pending: deque, request: dict, out: str, spec: ModelSpec, devices: Sequence[str], threads: int | None,
              context) -> Iterator[CaseOutcome]:
    """Feed ``pending`` to one pool (a few cases ahead per worker); if a worker dies, fail its cases and return."""
    running: dict[Future, BatchCase] = {}
    pool = ProcessPoolExecutor(len(devices), mp_context=context, initializer=_init_pool_worker,
                               initargs=(_queue_of(devices, context), threads))
    try:
        while pending or running:
            while pending and len(running) < 2 * len(devices):
                case = pending.popleft()
                running[pool.submit(_run_case, spec, case, request, out)] = case
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                case = running.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    for lost in [case, *running.values()]:
                        yield CaseOutcome(lost, "failed", error="a worker process died while this case was in "
                                          "flight (out of memory?); run the batch again to retry it")
                    return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # cases not started are dropped: a resume does them


def _queue_of(devices: Sequence[str], context):
    queue = context.Queue()
    for device in devices:
        queue.put(device)
    return queue


def _init_pool_worker(devices, threads: int | None) -> None:
    """A pool worker takes the next device off the queue: one process per GPU."""
    _init_worker(devices.get(), threads)


def _init_worker(device: str, threads: int | None) -> None:
    """This process runs cases on ``device``; models load on its first case (a loading error stops the batch)."""
    import torch

    _state.clear()
    _state["device"] = device
    if threads:
        torch.set_num_threads(threads)


def _run_case(spec: ModelSpec, case: BatchCase, request: dict, out: str) -> CaseOutcome:
    if "segmenter" not in _state:
        _state["segmenter"] = spec.with_device(str(_state["device"])).load()
    return segment_case(_state["segmenter"], case, request, out, worker=f"{_state['device']} pid {os.getpid()}")
