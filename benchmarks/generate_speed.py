"""How long a learner waits for `python -m course generate "…" -o out.png`: cold and warm, quiet and busy.

    python benchmarks/generate_speed.py                  # writes benchmarks/results/generate_speed.json (4–8 min when loaded)
    python benchmarks/generate_speed.py --threads auto   # only the command's own thread choice (≈ 1 min)

- cold: a fresh process, as a learner types the command (imports, model loading, 25 DPM-Solver++ steps, saving);
- warm: the second generation in the same process (models cached), as in a notebook or the playground;
- quiet: nothing else started by this script; busy: a competing CPU-bound process runs all along, either a
  pure-Python busy loop or a torch matmul loop (another learner's notebook), each on one core, bounded in
  time (120 s) and stopped after its row;
- threads: "auto" lets the command choose (course.pipeline.threads_for: one thread for one image), "2"
  forces OMP_NUM_THREADS=2 (torch's default on this machine, the behaviour before the choice); the "2" rows
  are timed once (they are the slow ones), the "auto" rows ``--repeats`` times.

Other processes on the machine (not started here) are not controlled: the load average at the start of
each row is recorded beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "results" / "generate_speed.json"
PROMPT = "un grand cercle rouge en haut à gauche"

COMPETITORS = {
    "quiet": None,
    "busy loop (1 core)": "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n",
    "torch matmul (1 thread)": (
        "import time, torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nend = time.time() + {seconds}\n"
        "while time.time() < end:\n    a = (a @ a).tanh()\n"
    ),
}

WARM = """
import sys, time
from course.__main__ import main
times = []
for i in range(2):
    start = time.perf_counter()
    assert main(["generate", {prompt!r}, "-o", {out!r}]) == 0
    times.append(time.perf_counter() - start)
print("TIMES", *times)
"""


def environment(threads: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads != "auto":
        env["OMP_NUM_THREADS"] = threads
    return env


def cold(out: str, threads: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "course", "generate", PROMPT, "-o", out], cwd=ROOT, env=environment(threads), check=True,
                   capture_output=True, timeout=300)
    return time.perf_counter() - start


def warm(out: str, threads: str) -> tuple[float, float]:
    result = subprocess.run([sys.executable, "-c", WARM.format(prompt=PROMPT, out=out)], cwd=ROOT, env=environment(threads), check=True,
                            capture_output=True, text=True, timeout=300)
    first, second = (float(x) for x in result.stdout.split("TIMES")[1].split())
    return first, second


def row(condition: str, threads: str, repeats: int, out: str) -> dict:
    code = COMPETITORS[condition]
    load = os.getloadavg()[0]
    competitor = None
    if code is not None:
        competitor = subprocess.Popen([sys.executable, "-c", code.format(seconds=120)], env=environment("1"))
        time.sleep(1.0)  # let it start (torch import) before timing
    try:
        colds = [cold(out, threads) for _ in range(repeats)]
        first, second = warm(out, threads)
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    return {"condition": condition, "threads": threads, "cold_s": round(statistics.median(colds), 2), "cold_runs_s": [round(c, 2) for c in colds],
            "warm_s": round(second, 2), "first_call_in_process_s": round(first, 2), "load_average_at_start": round(load, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="cold runs per row (the median is reported)")
    parser.add_argument("--threads", nargs="+", default=["auto", "2"], choices=("auto", "2"),
                        help="thread settings to time (default both; the '2' rows take minutes on a loaded machine)")
    args = parser.parse_args(argv)
    import torch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.png")
        for condition in COMPETITORS:
            for threads in args.threads:
                rows.append(row(condition, threads, args.repeats if threads == "auto" else 1, out))
                r = rows[-1]
                print(f"{r['condition']:<26} threads {r['threads']:<4} cold {r['cold_s']:>6.2f} s   warm {r['warm_s']:>5.2f} s   (load {r['load_average_at_start']})", flush=True)
    print()
    print("| condition | threads | cold (fresh process) | warm (2nd call, same process) | load avg at start |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['condition']} | {r['threads']} | {r['cold_s']:.2f} s (runs {', '.join(f'{c:.2f}' for c in r['cold_runs_s'])}) | {r['warm_s']:.2f} s | {r['load_average_at_start']} |")
    from course.checkpoints import hardware

    result = {
        "command": f'python -m course generate "{PROMPT}" -o out.png (25 DPM-Solver++ steps, 1 image, w = 3)',
        "hardware": hardware(), "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": sys.version.split()[0],
        "threads_note": "auto: the command chooses (course.pipeline.threads_for: 1 thread for ≤ 2 images); 2: OMP_NUM_THREADS=2 forced",
        "load_note": "other processes on the machine were not controlled: load average recorded per row",
        "rows": rows, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"\nwrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
