"""The generation cost ``l2s evaluate`` reads from ``l2s synthesize`` sidecars."""

from pathlib import Path

from l2s.evaluation.inputs import Utterance
from l2s.evaluation.runner import generation_cost


def _hyp(uid: str, **meta) -> Utterance:
    return Utterance(id=uid, wav=Path(f"{uid}.wav"), meta=meta)


def test_network_evals_and_rtf_are_totals_over_audio_seconds():
    hyps = [_hyp("a", network_evals=30, duration_s=2.0, timings_s={"total": 0.5}),
            _hyp("b", network_evals=60, duration_s=4.0, timings_s={"total": 1.3})]
    assert generation_cost(hyps) == {"network_evals_per_audio_second": 15.0, "rtf_total": 0.3}


def test_no_cost_unless_every_hypothesis_has_a_sidecar():
    assert generation_cost([_hyp("a", network_evals=30, duration_s=2.0), _hyp("b")]) == {}
    assert generation_cost([]) == {}
    assert generation_cost([_hyp("a", network_evals=30, duration_s=2.0)]) == {"network_evals_per_audio_second": 15.0}
