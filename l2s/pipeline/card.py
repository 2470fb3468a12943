"""The model card of a pipeline directory: ``README.md`` with the Hugging Face Hub's YAML metadata.

``l2s pipeline build`` writes one into every pipeline it assembles, ``l2s pipeline card`` (re)writes it
for an existing directory, and :meth:`~l2s.pipeline.Lip2Speech.save_pretrained` keeps it. The metadata
(licence, ``library_name: l2s``, tags, training data and a ``model-index`` of results) is rendered by
``huggingface_hub``'s :class:`~huggingface_hub.ModelCardData`, so the Hub reads it as it reads any card;
the body says what the pipeline is, how to run it, what it was trained on and, for each result, the
command that measured it.

Results come from ``l2s evaluate`` reports (``report.json``, which records its command) or from a YAML
file (a recipe's ``card.yaml``)::

    summary: one paragraph about the model
    training: how it was trained (data, budget)
    limitations: what it cannot do
    results:
      - {metric: wer, name: voiced WER (Whisper tiny.en), value: 57.2, unit: "%", dataset: SynthGRID,
         split: test-unseen, command: "bash recipes/synthgrid/ablation.sh ..."}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from l2s.errors import InputError
from l2s.io.atomic import atomic_write_text
from l2s.pipeline.spec import PipelineSpec

CARD_FILE = "README.md"
LICENSE = "apache-2.0"
LIBRARY_NAME = "l2s"
TASK = "lip-to-speech"
TAGS = ("lip-to-speech", "video-to-speech", "speech-synthesis", "diffusion", "l2s")
#: report.json columns shown as percentages
PERCENT_COLUMNS = ("wer", "cer", "vuv_error", "gpe")
CARD_KEYS = ("summary", "training", "limitations", "results")
#: pipeline.yaml keys the card states elsewhere (or that say nothing to a reader)
_NOT_SETTINGS = ("format_version", "kind", "name", "components", "provenance")


@dataclass(frozen=True)
class CardResult:
    """One measured figure of the card.

    Attributes:
        metric: the metric id (``wer``, ``stoi``, ``rtf``...): the Hub's ``metrics[].type``.
        value: the figure, in ``unit``.
        name: what it is in words (``voiced WER (Whisper tiny.en)``).
        dataset: the data it was measured on (``SynthGRID``).
        split: the split (``test-unseen``), or ''.
        command: the command that measured it.
        unit: ``%`` or '' (shown after the value).
    """

    metric: str
    value: float
    name: str
    dataset: str
    split: str = ""
    command: str = ""
    unit: str = ""


@dataclass(frozen=True)
class CardText:
    """What a card says beyond what the pipeline directory itself tells: prose and results."""

    summary: str = ""
    training: str = ""
    limitations: str = ""
    results: Tuple[CardResult, ...] = field(default_factory=tuple)

    def with_results(self, more: Sequence[CardResult]) -> "CardText":
        return CardText(self.summary, self.training, self.limitations, self.results + tuple(more))


def load_card_text(path: Union[str, Path]) -> CardText:
    """Read a card YAML (keys :data:`CARD_KEYS`).

    Raises:
        InputError: unreadable, not a mapping, unknown keys, or a result without its fields.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: unreadable card file ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a card file is a YAML mapping")
    unknown = sorted(set(data) - set(CARD_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(unknown)} (expected {', '.join(CARD_KEYS)})")
    results = []
    for i, row in enumerate(data.get("results") or []):
        try:
            results.append(CardResult(**{**row, "value": float(row["value"])}))
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(f"{path}: results[{i}]: needs metric, value, name, dataset ({exc})") from None
    return CardText(summary=str(data.get("summary") or "").strip(), training=str(data.get("training") or "").strip(),
                    limitations=str(data.get("limitations") or "").strip(), results=tuple(results))


def results_from_report(path: Union[str, Path]) -> List[CardResult]:
    """The system row of an ``l2s evaluate`` ``report.json`` (or its folder) as card results.

    Raises:
        InputError: not a readable evaluation report.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        aggregates: Mapping[str, Any] = report["aggregates"]
        options: Mapping[str, Any] = report.get("options") or {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not an l2s evaluate report ({type(exc).__name__}: {exc})") from None
    dataset = options.get("protocol") or "unnamed set"
    n = report.get("num_utterances")
    split = f"{n} utterances" if n else ""
    command = str(report.get("command") or "l2s evaluate (command not recorded)")
    asr = options.get("asr") or ""
    out = []
    for column, agg in aggregates.items():
        value = (agg or {}).get("value")
        if value is None:
            continue
        percent = column in PERCENT_COLUMNS
        name = column + (f" ({asr})" if column in ("wer", "cer") and asr else "")
        out.append(CardResult(metric=column, value=round(100 * value if percent else value, 4), name=name,
                              dataset=dataset, split=split, command=command, unit="%" if percent else ""))
    return out


def _metadata(spec: PipelineSpec, text: CardText) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    results = [EvalResult(task_type=TASK, task_name="Lip-to-speech", dataset_type=r.dataset.lower().replace(" ", "-"),
                          dataset_name=r.dataset, dataset_split=r.split or None, metric_type=r.metric,
                          metric_value=r.value, metric_name=r.name) for r in text.results]
    data = ModelCardData(license=LICENSE, library_name=LIBRARY_NAME, tags=list(TAGS),
                         datasets=[spec.trained_on] if spec.trained_on else None,
                         model_name=spec.name, eval_results=results or None)
    return data.to_yaml()


def _sizes(directory: Path, spec: PipelineSpec) -> Dict[str, str]:
    out = {}
    for component, sub in spec.components.items():
        path = directory / sub
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else None
        out[component] = f"{sub}/ ({size / 1e6:.1f} MB)" if size is not None else f"{sub} (registered, no weights)"
    return out


def _value(result: CardResult) -> str:
    """``57.2 %``, ``12.0 %``, ``0.732``: up to four decimals, at least one."""
    text = f"{result.value:.4f}".rstrip("0")
    text += "0" if text.endswith(".") else ""
    return f"{text} {result.unit}" if result.unit else text


def render_card(directory: Union[str, Path], spec: PipelineSpec, text: CardText = CardText()) -> str:
    """The ``README.md`` text of the pipeline ``spec`` stored in ``directory``."""
    directory = Path(directory)
    lines = ["---", _metadata(spec, text).rstrip(), "---", "", f"# {spec.name}", ""]
    lines += [text.summary or "An [l2s](https://github.com/l2s-project/l2s) lip-to-speech pipeline: a silent "
              "talking-face video in, speech out.", ""]
    lines += ["## Use", "", "With [l2s](https://github.com/l2s-project/l2s) installed:", "", "```bash",
              "l2s synthesize clip.mp4 -o voiced.mp4 --model MODEL   # MODEL: this folder or its hub repo id",
              "```", "", "```python", "from l2s.pipeline import Lip2Speech", "",
              'pipe = Lip2Speech.from_pretrained("MODEL")   # a folder, a bundled name or a hub repo id',
              'result = pipe("clip.mp4", seed=0)           # result.wav at result.sample_rate (16 kHz)',
              "```", ""]
    lines += ["## Components", "", "| stage | directory |", "|---|---|"]
    lines += [f"| {component} | {where} |" for component, where in _sizes(directory, spec).items()]
    settings = {k: v for k, v in spec.to_dict().items() if k not in _NOT_SETTINGS}
    lines += ["", "Settings (from `pipeline.yaml`; the generator's sampler settings and the guidance weights can be "
              "overridden per call):", "", "```yaml",
              yaml.safe_dump(settings, sort_keys=False).rstrip(), "```", ""]
    trained = f"Trained on {spec.trained_on}." if spec.trained_on else "Not stated."
    lines += ["## Training data", "", text.training or trained, ""]
    lines += ["## Results", ""]
    if text.results:
        lines += ["| result | value | data | command |", "|---|---|---|---|"]
        for r in text.results:
            data = r.dataset + (f", {r.split}" if r.split else "")
            lines.append(f"| {r.name} | {_value(r)} | {data} | `{r.command}` |" if r.command
                         else f"| {r.name} | {_value(r)} | {data} | |")
    else:
        lines.append("No results recorded (`l2s pipeline card DIR --eval-report report.json` adds them).")
    lines += ["", "## Limitations", "", text.limitations or (
        f"Trained on synthetic faces ({spec.trained_on}): on real-world video expect unintelligible speech."
        if spec.trained_on == "synthgrid" else "Not stated."), ""]
    lines += ["## Licence", "", "Apache-2.0, as l2s.", ""]
    return "\n".join(lines)


def write_card(directory: Union[str, Path], spec: PipelineSpec, text: CardText = CardText()) -> Path:
    """Write ``directory/README.md`` atomically (replacing an earlier card)."""
    path = Path(directory) / CARD_FILE
    atomic_write_text(path, render_card(directory, spec, text))
    return path


def card_text_from(card_file: Optional[Union[str, Path]] = None,
                   eval_reports: Sequence[Union[str, Path]] = ()) -> CardText:
    """A card YAML's text (or none) plus the results of ``l2s evaluate`` reports."""
    text = load_card_text(card_file) if card_file else CardText()
    for report in eval_reports:
        text = text.with_results(results_from_report(report))
    return text
