"""Neural networks of the pipeline: VSR, F0, DDSP prior, denoiser, guide ASR."""
