"""Run every benchmark in turn with its defaults; exit non-zero if any missed its target.

.venv/bin/python benchmarks/run_all.py            # ~6 min (+1.5 min once to build the 1M-trace DB)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["gateway.py", "local_model.py", "traces_query.py"]


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n===== {name} =====", flush=True)
        started = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / name)], cwd=HERE.parent).returncode
        print(
            f"===== {name}: {'ok' if code == 0 else f'exit {code}'} in {time.perf_counter() - started:.0f} s"
        )
        if code:
            failed.append(name)
    print("\nall targets met" if not failed else f"\ntargets missed in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
