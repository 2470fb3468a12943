"""Reading what older versions of l2s wrote: the one place that knows the old names.

Format 1 (model directories and ``pipeline.yaml`` before the stages were renamed) named the stages
``f0_ddsp`` (now ``prior``), ``melgen`` (``generator``) and ``guide_asr`` (``guide``; its recipes said
``asr_guide``), kept a vocoder's or a LipVoicer network's ``arch`` inside ``config`` (and none for l2s's own
networks), and gave ``pipeline.yaml`` one ``sampler:`` section with the schedule, the solver settings and the
guidance weights. These functions turn what such a file holds into the current form, in memory; the files
themselves are never rewritten (the bundled ``synthgrid-small`` is in format 1 and loads through here).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from l2s.errors import ModelError

#: Format-1 names of stages (components, model kinds, recipe stages) -> the current ones.
OLD_STAGE_NAMES = {"f0_ddsp": "prior", "melgen": "generator", "guide_asr": "guide", "asr_guide": "guide"}
#: The architecture of a format-1 model directory that stored none (l2s's own networks).
FORMAT1_ARCHS = {"vsr": "auto-avsr", "aligner": "viterbi", "prior": "ddsp", "generator": "denoiser", "guide": "ctc"}
#: The guidance weights that format 1 kept among the sampler settings.
GUIDANCE_KEYS = ("w_video", "w_asr")


def stage_name(name: Any) -> Any:
    """The current name of a stage given by its current or its format-1 name (anything else unchanged)."""
    return OLD_STAGE_NAMES.get(name, name) if isinstance(name, str) else name


def upgrade_model_meta(meta: Mapping[str, Any], where: str) -> Dict[str, Any]:
    """A format-1 ``config.yaml`` (kind, config with an optional ``arch``) in the current form.

    Raises:
        ModelError: a setting the current code no longer has, with a value that changes the network.
    """
    kind = stage_name(meta.get("kind"))
    config = dict(meta.get("config") or {})
    arch = config.pop("arch", None) or FORMAT1_ARCHS.get(kind)
    if (kind, arch) == ("generator", "denoiser"):
        # the null condition of classifier-free guidance always replaces the prior with the video now
        drop = config.pop("drop_prior_with_video", True)
        if drop is not True:
            raise ModelError(f"{where}: a denoiser with drop_prior_with_video {drop!r}; this l2s only has the "
                             "behaviour of True (the prior is dropped with the video)")
    return {**dict(meta), "kind": kind, "arch": arch, "config": config}


def upgrade_pipeline(data: Mapping[str, Any], where: str) -> Dict[str, Any]:
    """A format-1 ``pipeline.yaml`` in the current form: components renamed, ``sampler:`` split into the
    generator's settings and the guidance weights.

    The old ``sampler.schedule`` was LipVoicer's linear 400-step schedule in every pipeline l2s wrote (a
    network's own schedule now travels in its ``config.yaml``); any other value is refused rather than ignored.

    Raises:
        ModelError: a ``sampler.schedule`` other than LipVoicer's.
    """
    from l2s.diffusion.schedules import NoiseScheduleConfig

    out = {k: v for k, v in data.items() if k != "sampler"}
    out["components"] = {stage_name(k): v for k, v in dict(data.get("components") or {}).items()}
    sampler = dict(data.get("sampler") or {})
    schedule = dict(sampler.pop("schedule", None) or {})
    default = NoiseScheduleConfig()
    if any(value != getattr(default, key, None) for key, value in schedule.items()):
        raise ModelError(f"{where}: sampler.schedule {schedule} is not LipVoicer's; a generator's schedule is now "
                         "stored in its own config.yaml: set it there")
    out["guidance"] = {k: sampler.pop(k) for k in GUIDANCE_KEYS if k in sampler}
    out["generator"] = sampler
    return out
