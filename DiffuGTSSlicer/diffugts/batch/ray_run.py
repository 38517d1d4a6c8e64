"""Run cases on a Ray cluster (``pip install "diffugts[ray]"``): one actor per worker keeps its models loaded,
a GPU each when the cluster has GPUs. The output folder must be on storage every node sees."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import DiffuGTSError
from .cases import BatchCase
from .worker import CaseOutcome, ModelSpec, segment_case


class CaseActor:
    """A Ray actor: loads the models once, then segments the cases it is given."""

    def __init__(self, spec: ModelSpec, out: str) -> None:
        self.segmenter = spec.load()
        self.out = out
        self.name = f"ray {spec.device}"

    def segment(self, case: BatchCase, request: dict) -> CaseOutcome:
        return segment_case(self.segmenter, case, request, self.out, worker=self.name)


def ray_outcomes(cases: Sequence[BatchCase], request: dict, out: str | Path, spec: ModelSpec, address: str,
                 workers: int | None = None) -> Iterator[CaseOutcome]:
    """One outcome per case, in finishing order. ``address``: 'local' starts a Ray instance on this machine, 'auto'
    joins the running cluster, 'ray://host:10001' a remote one. ``workers``: actors (default: one per GPU, else
    1); ``spec.device`` 'cpu' keeps them off the GPUs."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise DiffuGTSError("--ray needs Ray, which is not installed",
                            hint='Install it with: pip install "diffugts[ray]"') from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0)) if spec.device != "cpu" else 0
        actor = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1, max_restarts=1, max_task_retries=1)(CaseActor)
        device_spec = spec.with_device("cuda" if gpus else "cpu")
        pool = ActorPool([actor.remote(device_spec, str(Path(out).resolve())) for _ in range(workers or max(1, gpus))])
        yield from pool.map_unordered(lambda a, case: a.segment.remote(case, request), list(cases))
    except ray.exceptions.RayError as error:
        cause = getattr(error, "cause", None) or error
        raise DiffuGTSError(f"a Ray worker failed: {' '.join(str(cause).split())[:500]}",
                            hint="Finished cases are kept: run the batch again to resume.") from None
    finally:
        if started:
            ray.shutdown()
