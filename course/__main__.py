"""``python -m course``: the environment check and the lesson list (offline, nothing to download)."""

from __future__ import annotations

import argparse
import os
import sys

from course import env
from course.lessons import LESSONS


def lesson_list(lang: str = "en") -> str:
    lines = []
    for lesson in LESSONS:
        mark = "  " if lesson.available else "… "
        lines.append(f"{mark}{lesson.number:02d}  {lesson.title[lang]:<34} {lesson.builds[lang]}")
    return "\n".join(lines)


def generate(args) -> int:
    """``python -m course generate "un cercle rouge en haut à gauche" -o out.png``"""
    from pathlib import Path

    from course import ae_train, ldm
    from course.paths import data_dir

    missing = [name for name in (ae_train.CHECKPOINT, ldm.CHECKPOINT) if not (data_dir() / name).exists()]
    if missing:
        raise SystemExit(
            f"error: the text-to-image model is not shipped yet (missing data/{', data/'.join(missing)}). "
            "Train it with `python -m course.ae_train train` then `python -m course.ldm train` (lesson 05)."
        )
    from course.pipeline import TextToImagePipeline, grid, strip_image, upscale

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise SystemExit(f"error: the output must end in .png or .jpg, got {args.output!r}")
    if not out.parent.exists() or not os.access(out.parent, os.W_OK):
        raise SystemExit(f"error: cannot write {args.output!r}: folder {str(out.parent)!r} does not exist or is read-only")
    pipe = TextToImagePipeline()
    if args.guidance is None:
        args.guidance = ldm.GUIDANCE
    try:
        result = pipe(args.prompt, num_inference_steps=args.steps, guidance_scale=args.guidance, generator=args.seed,
                      negative_prompt=args.negative, sampler=args.sampler, num_images_per_prompt=args.n, keep_x0_hat=bool(args.strip))
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    upscale(grid(result.images, columns=min(args.n, 4)), args.scale).save(out)
    print(f"saved {out} ({args.n} image{'s' if args.n > 1 else ''}, {args.sampler}, {args.steps} steps, guidance {args.guidance}, seed {args.seed})")
    if args.strip:
        upscale(strip_image(result.x0_hats), args.scale).save(args.strip)
        print(f"saved the denoising strip (x̂_0 along the steps) to {args.strip}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course",
        description="La Théorie de la Diffusion Stable — built from scratch. "
        "Without a command: check the environment and list the lessons.",
    )
    parser.add_argument("--lang", choices=("fr", "en"), default="en", help="language of the lesson list")
    sub = parser.add_subparsers(dest="command")
    g = sub.add_parser("generate", help="turn a French or English prompt into an image (offline, shipped models)")
    g.add_argument("prompt", help="e.g. \"un cercle rouge en haut à gauche\" or \"two small grey stars\"")
    g.add_argument("--steps", type=int, default=25, help="denoising steps (default 25)")
    g.add_argument("--sampler", default="dpmpp", help="ddpm, ddim, pndm, euler_a or dpmpp (default)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale w (default: ldm.GUIDANCE, the w chosen on validation prompts)")
    g.add_argument("--seed", type=int, default=0, help="same seed and arguments → same image")
    g.add_argument("--negative", default=None, help="a negative prompt, used in place of the empty prompt ∅")
    g.add_argument("-n", type=int, default=1, help="number of images (a grid)")
    g.add_argument("-o", "--output", default="out.png", help="output image (.png or .jpg)")
    g.add_argument("--strip", default=None, help="also save the denoising strip (x̂_0 along the steps) to this file")
    g.add_argument("--scale", type=int, default=4, help="enlargement factor of the saved 64×64 images (default 4)")
    args = parser.parse_args(argv)
    if args.command == "generate":
        return generate(args)

    print("Environment / Environnement")
    ok = env.report()
    print()
    print("Lessons / Leçons  (… = coming later / à venir)")
    print(lesson_list(args.lang))
    print()
    print("Open the exercises: jupyter lab notebooks/" + args.lang + "/   (solutions: solutions/" + args.lang + "/)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
