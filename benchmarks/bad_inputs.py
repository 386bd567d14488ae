"""What a learner sees on bad input: each case run as they would run it, behaviour recorded in a table.

    python benchmarks/bad_inputs.py        # ≈ 1–2 min; prints a markdown table, writes benchmarks/results/bad_inputs.json

Command-line cases run in a fresh process with a timeout, in a temporary folder; the API cases in one
process that loads the pipeline once. Recorded: exit code (or the exception), the first line of stderr,
whether a file was written, the time, and a verdict: "ok" when the input is refused with one line
(``error: …``, exit 2, no traceback, nothing written) or, for an allowed-but-odd input, when the image
comes with a one-line warning. Training and build commands run on copies (``COURSE_DATA_DIR`` pointed at
a copy of data/, a ``git clone`` of the repository): the real data/ and notebooks/ are never touched, and
data/autoencoder.safetensors' sha256 is checked before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "results" / "bad_inputs.json"
PROMPT = "un cercle rouge en haut à gauche"
TIMEOUT = 60

# (case, extra arguments, environment overrides, expectation: "refuse" or "warn")
CLI_CASES = [
    ("guidance nan", ["--guidance", "nan"], {}, "refuse"),
    ("guidance inf", ["--guidance", "inf"], {}, "refuse"),
    ("guidance 1e6", ["--guidance", "1e6"], {}, "refuse"),
    ("guidance -1", ["--guidance", "-1"], {}, "refuse"),
    ("guidance 20 (above the useful range)", ["--guidance", "20"], {}, "warn"),
    ("-n 0", ["-n", "0"], {}, "refuse"),
    ("-n 10000", ["-n", "10000"], {}, "refuse"),
    ("steps 0", ["--steps", "0"], {}, "refuse"),
    ("steps 5000", ["--steps", "5000"], {}, "refuse"),
    ("-o into a directory", ["-o", "{tmp}"], {}, "refuse"),
    ("-o /proc/x.png (unwritable)", ["-o", "/proc/x.png"], {}, "refuse"),
    ("-o x.gif", ["-o", "{tmp}/x.gif"], {}, "refuse"),
    ("--strip into a missing folder", ["--strip", "{tmp}/missing/strip.png"], {}, "refuse"),
    ("--scale 0", ["--scale", "0"], {}, "refuse"),
    ("empty prompt", ["--prompt-override", ""], {}, "refuse"),
    ("unknown sampler", ["--sampler", "karras"], {}, "refuse"),
    ("seed -1", ["--seed", "-1"], {}, "refuse"),
    ("bogus COURSE_PROFILE", [], {"COURSE_PROFILE": "tiny"}, "refuse"),
    ("unknown word (licorne)", ["--prompt-override", "une licorne rouge"], {}, "warn"),
]

API = r"""
import json, math, sys, time, warnings
t0 = time.perf_counter()
from course.pipeline import TextToImagePipeline
pipe = TextToImagePipeline("cpu")
cases = [
    ("guidance_scale=nan", {"guidance_scale": math.nan}), ("guidance_scale=inf", {"guidance_scale": math.inf}),
    ("guidance_scale=1e6", {"guidance_scale": 1e6}), ("guidance_scale=-1", {"guidance_scale": -1}),
    ("guidance_scale=20", {"guidance_scale": 20}),
    ("num_images_per_prompt=0", {"num_images_per_prompt": 0}), ("num_images_per_prompt=10000", {"num_images_per_prompt": 10000}),
    ("num_inference_steps=0", {"num_inference_steps": 0}), ("num_inference_steps=5000", {"num_inference_steps": 5000}),
    ("prompt=''", {"prompt": ""}), ("sampler='karras'", {"sampler": "karras"}), ("generator=-1", {"generator": -1}),
]
rows = []
for name, kw in cases:
    args = {"prompt": "un cercle rouge", "num_inference_steps": 2, **kw}
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pipe(**args)
            outcome, message = "returned images", "; ".join(str(w.message) for w in caught) or "(no warning)"
        except Exception as err:
            outcome, message = type(err).__name__, str(err).splitlines()[0]
    rows.append({"case": name, "outcome": outcome, "message": message, "seconds": round(time.perf_counter() - start, 3)})
import os
os.environ["COURSE_PROFILE"] = "tiny"
from course.profiles import current_profile
try:
    current_profile()
    rows.append({"case": "current_profile() with COURSE_PROFILE=tiny", "outcome": "returned", "message": "", "seconds": 0})
except Exception as err:
    rows.append({"case": "current_profile() with COURSE_PROFILE=tiny", "outcome": type(err).__name__, "message": str(err), "seconds": 0})
print("ROWS" + json.dumps(rows))
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def images_in(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif")}


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = TIMEOUT) -> dict:
    start = time.perf_counter()
    full_env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
    try:
        result = subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
        rc, stderr, stdout = result.returncode, result.stderr, result.stdout
    except subprocess.TimeoutExpired as err:
        rc, stderr, stdout = f"timeout {timeout} s", (err.stderr or b"").decode() if isinstance(err.stderr, bytes) else (err.stderr or ""), ""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return {"exit": rc, "stderr_first_line": lines[0][:160] if lines else "", "stderr_last_line": lines[-1][:160] if lines else "",
            "stderr_lines": len(lines), "traceback": "Traceback" in stderr,
            "stdout_first_line": (stdout.strip().splitlines() or [""])[0][:160], "seconds": round(time.perf_counter() - start, 2)}


def verdict(r: dict, expect: str) -> str:
    if expect == "refuse":
        good = r["exit"] == 2 and r["stderr_lines"] == 1 and r["stderr_first_line"].startswith("error: ") and not r["traceback"] and not r["file_written"]
    else:
        good = r["exit"] == 0 and r["file_written"] and r["stderr_first_line"].startswith("warning: ") and not r["traceback"]
    return "ok" if good else "NOT OK"


def cli_cases(tmp: Path) -> list[dict]:
    rows = []
    for case, extra, env, expect in CLI_CASES:
        work = tmp / f"case{len(rows)}"
        work.mkdir()
        prompt = PROMPT
        if extra[:1] == ["--prompt-override"]:
            prompt, extra = extra[1], extra[2:]
        args = [a.format(tmp=work) for a in extra]
        if "-o" not in args:
            args = ["-o", str(work / "out.png"), *args]
        before = images_in(work)
        r = run([sys.executable, "-m", "course", "generate", prompt, "--steps", "5", *args], cwd=work, env=env)
        r["file_written"] = bool(images_in(work) - before) or (Path("/proc/x.png").exists() if "/proc/x.png" in args else False)
        rows.append({"kind": "cli", "case": case, "command": " ".join(["python -m course generate", repr(prompt), "--steps 5", *args])
                     + "".join(f"  [{k}={v}]" for k, v in env.items()), **r, "expect": expect})
        rows[-1]["verdict"] = verdict(rows[-1], expect)
    return rows


def api_cases() -> list[dict]:
    result = subprocess.run([sys.executable, "-c", API], cwd=ROOT, capture_output=True, text=True, timeout=180,
                            env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    if "ROWS" not in result.stdout:
        return [{"kind": "api", "case": "(API run failed)", "outcome": "error", "message": result.stderr.strip().splitlines()[-1:], "verdict": "NOT OK"}]
    rows = json.loads(result.stdout.split("ROWS", 1)[1])
    for r in rows:
        allowed = r["case"] == "guidance_scale=20"
        r["kind"] = "api"
        r["verdict"] = "ok" if (r["outcome"] == "ValueError") != allowed and (not allowed or "far above" in r["message"]) else "NOT OK"
    return rows


def ae_train(tmp: Path, case: str, extra: list[str], env: dict[str, str]) -> dict:
    """``python -m course.ae_train train …`` on a copy of data/ and a temporary run folder; data/ must not change."""
    real = ROOT / "data" / "autoencoder.safetensors"
    before = sha256(real)
    work = tmp / f"ae{abs(hash(case))}"
    copy = work / "data"
    shutil.copytree(ROOT / "data", copy)
    r = run([sys.executable, "-m", "course.ae_train", "train", *extra, "--run-dir", str(work / "runs")], cwd=ROOT,
            env={"COURSE_DATA_DIR": str(copy), **env}, timeout=120)
    after, copy_after = sha256(real), sha256(copy / "autoencoder.safetensors")
    r["file_written"] = copy_after != before or after != before
    r["data_unchanged"] = after == before and copy_after == before
    good = r["exit"] not in (0,) and r["stderr_lines"] == 1 and not r["traceback"] and r["data_unchanged"]
    return {"kind": "cli", "case": case, "command": " ".join([*(f"{k}={v}" for k, v in env.items()), "COURSE_DATA_DIR=<copy of data/>",
            "python -m course.ae_train train", *extra]), **r, "expect": "refuse with one line, data/ untouched", "verdict": "ok" if good else "NOT OK"}


def build_over_edited_notebook(tmp: Path) -> dict:
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    notebooks = sorted((clone / "notebooks").glob("*/01_*.ipynb"))
    if not notebooks:
        return {"kind": "cli", "case": "build --lesson 1 over an edited notebook", "verdict": "skipped (no lesson-01 notebook in the clone)"}
    target = notebooks[0]
    nb = json.loads(target.read_text())
    nb["cells"][-1]["source"] = "".join(nb["cells"][-1]["source"]) + "\n# my own note, typed in Jupyter"
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    edited = sha256(target)
    r = run([sys.executable, "-m", "course.build", "--lesson", "1"], cwd=clone, timeout=150)
    r["file_written"] = sha256(target) != edited
    r["edit_kept"] = not r["file_written"]
    good = r["edit_kept"] and not r["traceback"] and r["exit"] != "timeout 150 s"
    return {"kind": "cli", "case": "build --lesson 1 over an edited notebook", "command": f"(in a git clone, {target.relative_to(clone)} edited) python -m course.build --lesson 1",
            **r, "expect": "edited notebook kept, one-line explanation", "verdict": "ok" if good else "NOT OK"}


def main() -> int:
    start = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        rows += cli_cases(tmp)
        rows += api_cases()
        if "train" in subprocess.run([sys.executable, "-m", "course.ae_train", "--help"], cwd=ROOT, capture_output=True, text=True).stdout:
            rows.append(ae_train(tmp, "ae_train train --steps 0", ["--steps", "0"], {}))
            rows.append(ae_train(tmp, "ae_train train, bogus COURSE_PROFILE", ["--steps", "2", "--pool", "64"], {"COURSE_PROFILE": "tiny"}))
        rows.append(build_over_edited_notebook(tmp))
    print("| kind | case | exit / outcome | first line of stderr (or message) | file written | s | verdict |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        outcome = r.get("exit", r.get("outcome", ""))
        first = r.get("stderr_first_line", r.get("message", ""))
        if r.get("traceback"):
            first = f"{first[:50]} … (traceback) … {r['stderr_last_line'][:60]}"
        print(f"| {r['kind']} | {r['case']} | {outcome} | {str(first)[:110]} | {'yes' if r.get('file_written') else 'no'} | {r.get('seconds', '')} | {r['verdict']} |")
    total = round(time.perf_counter() - start, 1)
    print(f"\n{sum(r['verdict'] == 'ok' for r in rows)}/{len(rows)} ok, {total} s")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps({"rows": rows, "total_seconds": total, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
