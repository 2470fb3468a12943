"""Names the library and the command line share, in a module that imports nothing heavy.

``l2s --help`` and an argument error import every command's module, and a command's option
defaults are read when its module loads; they come from here (and from
:mod:`l2s.diffusion.options`), so that no command needs torch before it runs. Each name is
re-exported where it belongs (``l2s.hub.DEFAULT_PIPELINE``, ``l2s.vocoder.registry.FALLBACK_VOCODER``,
``l2s.pipeline.demo.DEFAULT_ASR``).
"""

#: the pipeline bundled inside the package: the default of every command that takes --model
DEFAULT_PIPELINE = "synthgrid-small"
#: the vocoder used when none is named and no default pipeline is bundled (training-free)
FALLBACK_VOCODER = "griffinlim"
#: the ASR ``l2s demo`` transcribes the voiced audio with, and the value that skips it
DEFAULT_ASR = "whisper:tiny.en"
NO_ASR = "none"
