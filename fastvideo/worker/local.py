"""LocalExecutor: one GPU (or the CPU), the pipeline in this process."""

from __future__ import annotations

from fastvideo.worker.runner import PipelineRunner


class LocalExecutor:
    def __init__(self, info, config):
        self.runner = PipelineRunner(info, config)

    def generate(self, sp, callback=None, cancel_event=None):
        return self.runner.generate(sp, callback=callback, cancel_event=cancel_event)

    def shutdown(self) -> None:
        self.runner = None
