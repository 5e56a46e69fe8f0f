"""llmops daemon: a local OpenAI-compatible LLMOps gateway."""

import os

# The daemon's numpy work is small (a few vectors against a 384x384 map) and runs beside the event
# loop and llama.cpp's threads: OpenBLAS's own threads only fight them (a 10-candidate rescoring
# took 2.7 ms with two on a busy 2-core machine, 0.15 ms with one). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
