"""The networks of the pipeline, one package per stage: :mod:`~l2s.models.vsr`, :mod:`~l2s.models.prior`,
:mod:`~l2s.models.generator`, :mod:`~l2s.models.guide` (the vocoders are :mod:`l2s.vocoder`), and LipVoicer's
networks (:mod:`~l2s.models.lipvoicer`), which the generator and guide tables point to."""
