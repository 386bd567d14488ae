"""A GenEval-style benchmark for our world: what the model gets right beyond one object phrased as in training.

GenEval (Ghosh et al. 2023) scores text-to-image models by detecting the objects of each image and
checking what the prompt asked: one object, two objects, counting, colours, position, colour attribution.
Ours asks the same of the shapes world, in French and in English, on held-out (shape, colour) pairs, and
reads each image with :mod:`course.scene_reader` (every object's shape, colour, size and cell):

    single       one object, as the training captions say it — shape, colour, size and cell all right
    colours      the same prompts: one object, of the asked shape and colour
    position     the same prompts: one object, of the asked shape, in the asked cell
    counting     "two yellow squares" (1–3): that many objects, all of the asked shape
    two_objects  "a red circle above a blue square": both objects drawn (shape and colour)
    relation     the same prompts: both drawn, the first above / below / left / right of the second
    binding      "a red circle and a blue square": both drawn, each colour on its own shape (not swapped)
    paraphrase   the `single` scenes said otherwise (« un gros cercle rouge au milieu »): scored as single

A category's score is the share of its prompts judged right, with a 95 % Wilson interval. Before it
judges a model the benchmark judges real renders of the same scenes (:func:`ceiling`): ≥ 98 % there
means an error in a generated image is the model's, not the reader's.

    python -m course.geneval                 # the shipped model, 128 prompts per (set, language)
    python -m course.geneval --renders       # the reader's ceiling on real renders
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from course import language
from course.captions import EN_POSITIONS, FR_POSITIONS, LANGS, caption, noun_phrase
from course.paraphrases import conjunction, paraphrase
from course.scenes import Obj, Scene, sample_scene

GENEVAL_SEED = 779  # the benchmark's prompts: never used to train or tune anything
SETS: tuple[str, ...] = ("single", "paraphrase", "counting", "pair", "binding")  # prompt sets (one image each)
CATEGORIES: tuple[str, ...] = ("single", "colours", "position", "counting", "two_objects", "relation", "binding", "paraphrase")
SET_OF = {"single": "single", "colours": "single", "position": "single", "counting": "counting", "two_objects": "pair", "relation": "pair",
          "binding": "binding", "paraphrase": "paraphrase"}
CEILING_TARGET = 0.98
TABLE_FILE = "geneval.json"  # in data/: the benchmark's recorded results (renders, the shipped model, with fixes)
# what a learner reads in a French edition; in English, the identifiers themselves
CATEGORY_NAMES_FR = {"single": "un objet", "colours": "couleur", "position": "position", "counting": "comptage",
                     "two_objects": "deux objets", "relation": "relation", "binding": "liaison des couleurs", "paraphrase": "paraphrase"}
SET_NAMES_FR = {"single": "un objet", "paraphrase": "paraphrase", "counting": "comptage", "pair": "relation", "binding": "liaison des couleurs"}
LANGUAGE_NAMES_FR = {"en": "anglais", "fr": "français", "both": "les deux"}
RESULT_NAMES_FR = {"renders": "rendus réels", "shipped": "modèle livré", "shipped+attend_excite": "modèle livré + Attend-and-Excite"}


def _in(lang: str | None) -> str:
    """``lang``, or the edition's language (:func:`course.language.current`) when None."""
    return lang or language.current()


def category_name(category: str, lang: str | None = None) -> str:
    """A category as a learner reads it: ``two_objects`` in English, « deux objets » in French."""
    return CATEGORY_NAMES_FR.get(category, category) if _in(lang) == "fr" else category


def set_name(prompt_set: str, lang: str | None = None) -> str:
    """A prompt set as a learner reads it: ``binding`` in English, « liaison des couleurs » in French."""
    return SET_NAMES_FR.get(prompt_set, prompt_set) if _in(lang) == "fr" else prompt_set


@dataclass(frozen=True)
class Task:
    """One benchmark prompt: its prompt set, the scene it describes, the prompt itself and its language."""

    set: str
    scene: Scene
    prompt: str
    lang: str


def _counting_scene(rng: np.random.Generator, n: int) -> Scene:
    if n == 1:
        return sample_scene(rng, "heldout", ("single",))
    while True:
        scene = sample_scene(rng, "heldout", ("count",))
        if scene.count == n:
            return scene


def _one(scene: Scene, lang: str) -> str:
    """A one-object caption without its size, as training says it: "a yellow square on the left"."""
    obj = scene.objects[0]
    where = (EN_POSITIONS if lang == "en" else FR_POSITIONS)[obj.position]
    return f"{noun_phrase(obj, lang, with_size=False)} {where}"


def _binding_scene(rng: np.random.Generator) -> Scene:
    while True:  # two objects that differ in shape and in colour: only then can colours be swapped
        scene = sample_scene(rng, "heldout", ("pair",))
        a, b = scene.objects
        if a.shape != b.shape and a.colour != b.colour:
            return scene


def tasks(n: int = 128, seed: int = GENEVAL_SEED, sets: Sequence[str] = SETS) -> list[Task]:
    """n prompts per (set, language), on held-out (shape, colour) pairs; the same n and seed give the same prompts."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1 prompt per set and language, got {n}")
    for s in sets:
        if s not in SETS:
            raise ValueError(f"unknown prompt set {s!r}: choose among {', '.join(SETS)}")
    out: list[Task] = []
    for lang in LANGS:
        rng = np.random.default_rng((seed, LANGS.index(lang)))
        singles = [sample_scene(rng, "heldout", ("single",)) for _ in range(n)]
        drawn = {
            "single": [(s, caption(s, lang)) for s in singles],
            "paraphrase": [(s, paraphrase(s, lang, rng)) for s in singles],
            "counting": [],
            "pair": [],
            "binding": [],
        }
        for i in range(n):
            count = 1 + i % 3
            scene = _counting_scene(rng, count)
            # 1: "a yellow square on the left" (no size); 2–3: "two small yellow squares"
            drawn["counting"].append((scene, _one(scene, lang) if count == 1 else caption(scene, lang)))
            pair = sample_scene(rng, "heldout", ("pair",))
            drawn["pair"].append((pair, caption(pair, lang)))
            b = _binding_scene(rng)
            drawn["binding"].append((b, conjunction(*b.objects, lang)))
        out += [Task(s, scene, prompt, lang) for s in sets for scene, prompt in drawn[s]]
    return out


# ----------------------------------------------------------------------------- scoring


def _matches(objects: Sequence[Obj], wanted: Obj) -> list[Obj]:
    return [o for o in objects if (o.shape, o.colour) == (wanted.shape, wanted.colour)]


def _holds(relation: str, a: Obj, b: Obj) -> bool:
    (ra, ca), (rb, cb) = a.cell, b.cell
    return {"above": ra < rb, "below": ra > rb, "left of": ca < cb, "right of": ca > cb}[relation]


def score(task: Task, seen: Sequence[Obj]) -> dict[str, bool]:
    """What the prompt got right, per category of its set, given the objects read in its image."""
    scene = task.scene
    if task.set in ("single", "paraphrase"):
        want = scene.objects[0]
        one = seen[0] if len(seen) == 1 else None
        right = one is not None and (one.shape, one.colour, one.size, one.cell) == (want.shape, want.colour, want.size, want.cell)
        if task.set == "paraphrase":
            return {"paraphrase": right}
        return {
            "single": right,
            "colours": one is not None and (one.shape, one.colour) == (want.shape, want.colour),
            "position": one is not None and one.shape == want.shape and one.cell == want.cell,
        }
    if task.set == "counting":
        return {"counting": len(seen) == scene.count and all(o.shape == scene.objects[0].shape for o in seen)}
    a, b = scene.objects
    found_a, found_b = _matches(seen, a), _matches(seen, b)
    both = bool(found_a) and bool(found_b)
    if task.set == "pair":
        return {"two_objects": both, "relation": both and any(_holds(scene.relation, x, y) for x in found_a for y in found_b)}
    return {"binding": both}


def verdict(task: Task, seen: Sequence[Obj]) -> bool:
    """Whether the image got everything its prompt asked right (every category of its set)."""
    return all(score(task, seen).values())


def swapped(task: Task, seen: Sequence[Obj]) -> bool:
    """A binding failure of the classic kind: both shapes drawn, each in the other's colour."""
    a, b = task.scene.objects
    return any((o.shape, o.colour) == (a.shape, b.colour) for o in seen) and any((o.shape, o.colour) == (b.shape, a.colour) for o in seen)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n (Wilson 1927)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def table(task_list: Sequence[Task], readings: Sequence[Sequence[Obj]]) -> dict:
    """Per category and language (and both): k right of n, the rate and its 95 % interval; the paraphrase gap; swaps."""
    if len(task_list) != len(readings):
        raise ValueError(f"got {len(task_list)} tasks but {len(readings)} readings")
    hits: dict[tuple[str, str], list[bool]] = {}
    swaps: dict[str, list[bool]] = {}
    for task, seen in zip(task_list, readings):
        for category, right in score(task, seen).items():
            for lang in (task.lang, "both"):
                hits.setdefault((category, lang), []).append(right)
        if task.set == "binding":
            for lang in (task.lang, "both"):
                swaps.setdefault(lang, []).append(swapped(task, seen))
    out: dict = {"categories": {}}
    for category in CATEGORIES:
        row = {}
        for lang in (*LANGS, "both"):
            v = hits.get((category, lang))
            if v:
                lo, hi = wilson(sum(v), len(v))
                row[lang] = {"right": sum(v), "n": len(v), "rate": round(sum(v) / len(v), 4), "ci95": [round(lo, 4), round(hi, 4)]}
        if row:
            out["categories"][category] = row
    cats = out["categories"]
    if "single" in cats and "paraphrase" in cats:
        out["paraphrase_gap_points"] = {lang: round(100 * (cats["single"][lang]["rate"] - cats["paraphrase"][lang]["rate"]), 1) for lang in cats["single"]}
    if swaps:
        out["binding_swapped"] = {lang: round(sum(v) / len(v), 4) for lang, v in swaps.items()}
    return out


# ----------------------------------------------------------------------------- running


def ceiling(n: int = 128, seed: int = GENEVAL_SEED, sets: Sequence[str] = SETS, reader=None) -> dict:
    """The benchmark on real renders of its scenes: what a perfect generator would score, as the reader sees it."""
    from course.data import render_scenes
    from course.scene_reader import read
    from course.shipped import IMAGE_SIZE

    task_list = tasks(n, seed, sets)
    images = render_scenes([t.scene for t in task_list], IMAGE_SIZE, seed=seed)
    return table(task_list, read(images, reader))


def run(
    generate: Callable[[list[str], int], torch.Tensor] | None = None, n: int = 128, seed: int = GENEVAL_SEED, sets: Sequence[str] = SETS,
    batch: int = 64, reader=None, progress: bool = True,
) -> dict:
    """The benchmark on a generator: ``generate(prompts, seed) → images (B, 3, H, W) in [−1, 1]`` (default: the shipped
    model, 50 DDIM steps at the shipped w). The batch starting at prompt i is seeded ``i``. Adds seconds per image."""
    from tqdm.auto import tqdm

    from course.scene_reader import read

    if generate is None:
        from course.evaluation import generate as shipped_generate

        def generate(prompts, s):
            return shipped_generate(prompts, seed=s)

    task_list = tasks(n, seed, sets)
    prompts = [t.prompt for t in task_list]
    images, start = [], time.perf_counter()
    for i in tqdm(range(0, len(prompts), batch), desc=language.tr(en="benchmark", fr="banc d'essai"), disable=not progress):
        images.append(generate(prompts[i : i + batch], i))
    seconds = time.perf_counter() - start
    result = table(task_list, read(torch.cat(images), reader))
    result["seconds_per_image"] = round(seconds / len(prompts), 4)
    result["n_per_set_and_language"] = n
    return result


def _cell(row: dict | None) -> str:
    return f"{100 * row['rate']:.1f} % [{100 * row['ci95'][0]:.0f}–{100 * row['ci95'][1]:.0f}]" if row else "–"


def format_table(result: dict, lang: str | None = None) -> str:
    """The result as a Markdown table: one row per category, rate and 95 % interval per language.

    Its words are in ``lang`` ("en" or "fr"; default: the edition's language, :func:`course.language.current`)."""
    fr = _in(lang) == "fr"
    langs = [l for l in (*LANGS, "both") if any(l in row for row in result["categories"].values())]
    heads = [LANGUAGE_NAMES_FR[l] if fr else l for l in langs]
    lines = [f"| {'catégorie' if fr else 'category'} | " + " | ".join(heads) + " |", "|---|" + "---|" * len(langs)]
    for category, row in result["categories"].items():
        lines.append(f"| {category_name(category, lang)} | " + " | ".join(_cell(row.get(l)) for l in langs) + " |")
    if "paraphrase_gap_points" in result:
        gap = "écart de paraphrase (points)" if fr else "paraphrase gap (points)"
        lines.append(f"| {gap} | " + " | ".join(str(result["paraphrase_gap_points"].get(l, "–")) for l in langs) + " |")
    return "\n".join(lines)


def format_comparison(results: dict[str, dict], columns: Sequence[tuple[str, str]], lang: str | None = None) -> str:
    """A Markdown table of several results: one row per category, one column per (result name, language).

    Its words are in ``lang`` ("en" or "fr"; default: the edition's language); in French the recorded entries'
    names (``shipped``…) are translated too."""
    fr = _in(lang) == "fr"
    heads = [f"{RESULT_NAMES_FR.get(name, name)} ({LANGUAGE_NAMES_FR[l]})" if fr else f"{name} ({l})" for name, l in columns]
    lines = [f"| {'catégorie' if fr else 'category'} | " + " | ".join(heads) + " |", "|---|" + "---|" * len(columns)]
    for category in CATEGORIES:
        cells = [_cell(results[name]["categories"].get(category, {}).get(l)) for name, l in columns]
        lines.append(f"| {category_name(category, lang)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


README_MARKERS = ("<!-- geneval:start -->", "<!-- geneval:end -->")


def readme_table(results: dict[str, dict]) -> str:
    """The README's table: the ceiling, the shipped model per language, and each other recorded entry (both languages)."""
    columns = [("renders", "both"), ("shipped", "en"), ("shipped", "fr"), ("shipped", "both")]
    columns += [(name, "both") for name in results if name not in ("renders", "shipped")]
    return format_comparison(results, [c for c in columns if c[0] in results], lang="en")  # the README is in English


def write_readme(readme: Path, results: dict[str, dict]) -> bool:
    """Put :func:`readme_table` between the README's geneval markers; True if the file changed."""
    text = readme.read_text()
    start, end = README_MARKERS
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} … {end} block to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{readme_table(results)}\n{end}{tail}"
    if new != text:
        readme.write_text(new)
    return new != text


def recorded() -> dict[str, dict]:
    """The benchmark results recorded in data/geneval.json (name → result, with the command and the machine)."""
    from course.paths import data_dir

    path = data_dir() / TABLE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run python -m course.geneval --record shipped")
    return json.loads(path.read_text())


def record(name: str, result: dict, command: str) -> Path:
    """Add (or replace) entry ``name`` of data/geneval.json: the result, the command that measured it, the machine."""
    from course.checkpoints import hardware
    from course.paths import data_dir

    path = data_dir() / TABLE_FILE
    table_ = json.loads(path.read_text()) if path.exists() else {}
    table_[name] = {"command": command, "hardware": hardware(), "threads": torch.get_num_threads(), **result}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(table_, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.geneval", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="prompts per (set, language) (default 128)")
    parser.add_argument("--renders", action="store_true", help="judge real renders of the scenes (the reader's ceiling), not a model")
    parser.add_argument("--sets", nargs="+", default=list(SETS), help=f"prompt sets (default: all of {', '.join(SETS)})")
    parser.add_argument("--attend-excite", action="store_true", help="generate with Attend-and-Excite (course.attend_excite)")
    parser.add_argument("--step-size", type=float, default=20.0, help="Attend-and-Excite's step size α (default 20, the paper's)")
    parser.add_argument("--seed", type=int, default=GENEVAL_SEED, help=f"prompt seed (default {GENEVAL_SEED}, the benchmark's; another one to tune on)")
    parser.add_argument("--readme", action="store_true", help="only rewrite the README's table from data/geneval.json")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--record", metavar="NAME", help=f"also record the result as entry NAME of data/{TABLE_FILE} (with its command and machine)")
    args = parser.parse_args(argv)
    if args.readme:
        from course.paths import data_dir, repo_root

        changed = write_readme(repo_root() / "README.md", json.loads((data_dir() / TABLE_FILE).read_text()))
        print("README.md table " + ("rewritten" if changed else "already up to date"))
        return 0
    generate = None
    if args.attend_excite:
        from course import attend_excite

        def generate(prompts, s):
            return attend_excite.generate(prompts, s, step_size=args.step_size)

    try:
        result = ceiling(args.n, args.seed, args.sets) if args.renders else run(generate, args.n, args.seed, args.sets)
    except (ValueError, OSError) as err:
        sys.exit(f"error: {err}")
    print(format_table(result))
    if args.record:
        command = "python -m course.geneval " + " ".join(argv if argv is not None else sys.argv[1:])
        path = record(args.record, result, command)
        print(f"recorded as {args.record!r} in {path}; update the README's table with: python -m course.geneval --readme")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
