"""Scoring generated speech against references: inputs, the runner, reports and plots.

``l2s evaluate`` (:mod:`l2s.cli.evaluate`) is the command line; :func:`run_evaluation` the API.
"""

from l2s.evaluation.inputs import Utterance, load_set, match_sets
from l2s.evaluation.runner import EvalOptions, EvalReport, run_evaluation

__all__ = ["EvalOptions", "EvalReport", "Utterance", "load_set", "match_sets", "run_evaluation"]
