"""``visionlake analyse``: re-run a collection's analysers over catalog images (see
:mod:`visionlake.analysers.rerun`, where the runner lives so that the face area can use it too)."""

from visionlake.analysers.rerun import AnalyseOutcome, AnalyseWorker, analyse, resolve_analysers, unfinished_run

__all__ = ["AnalyseOutcome", "AnalyseWorker", "analyse", "resolve_analysers", "unfinished_run"]
