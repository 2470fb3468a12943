"""Training: one SpeechBrain ``Brain`` per stage, started by ``l2s train HPARAMS``."""
