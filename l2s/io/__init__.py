"""Reading and writing media: video (PyAV), audio (soundfile), atomic writes."""
