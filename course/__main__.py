"""``python -m course``: the environment check and the lesson list (offline, nothing to download)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

MAX_IMAGES = 64  # -n: one grid per command (≈ 13 s, 0.8 GB peak on 2 cores); more: run again with another --seed
MAX_SCALE = 16  # --scale: a 64×64 image saved at most 1024×1024
SUFFIXES = (".png", ".jpg", ".jpeg")
CLI_NAMES = {"guidance_scale": "--guidance", "num_inference_steps": "--steps", "sampler": "--sampler", "num_images_per_prompt": "-n"}


class UsageError(ValueError):
    """A bad argument: one line for the learner (what is wrong, what to type instead), exit code 2."""


def lesson_list(lang: str = "en") -> str:
    from course.lessons import LESSONS

    lines = []
    for lesson in LESSONS:
        mark = "  " if lesson.available else "… "
        lines.append(f"{mark}{lesson.number:02d}  {lesson.title[lang]:<34} {lesson.builds[lang]}")
    return "\n".join(lines)


def check_output(path: str, flag: str) -> Path:
    """``path`` as a writable image file, checked before anything is generated (nothing is left behind)."""
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{flag} {path!r} is a folder: give a file name, e.g. {flag} {out / 'out.png'}")
    if out.suffix.lower() not in SUFFIXES:
        raise UsageError(f"{flag} must end in .png or .jpg, got {path!r}")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {path!r}: folder {str(out.parent)!r} does not exist (create it, or choose another {flag})")
    existed = out.exists()
    try:
        with open(out, "ab"):
            pass
    except OSError as err:
        raise UsageError(f"cannot write {path!r} ({err.strerror.lower() if err.strerror else err}): choose a file in a folder you can write, e.g. {flag} out.png") from None
    if not existed:
        out.unlink(missing_ok=True)
    return out


def check_counts(args, example: str) -> None:
    """-n, --scale and a non-empty prompt, shared by every image command (``example``: the command line to suggest)."""
    if not 1 <= args.n <= MAX_IMAGES:
        raise UsageError(f"-n must be between 1 and {MAX_IMAGES} (one grid per command), got {args.n}: for more images, run again with another --seed")
    if not 1 <= args.scale <= MAX_SCALE:
        raise UsageError(f"--scale must be between 1 and {MAX_SCALE} (the saved image is 64·scale pixels wide), got {args.scale}")
    if not args.prompt.strip():
        raise UsageError(f"the prompt is empty: give a text, e.g. python -m course {example}")


def check_arguments(args) -> None:
    """Everything that can be checked without a model: counts, sizes, files (instant, no torch), then the profile."""
    check_counts(args, "generate \"un cercle rouge en haut à gauche\"")
    check_output(args.output, "-o")
    check_control(args)
    if args.strip:
        check_output(args.strip, "--strip")
    from course.profiles import current_profile

    try:
        current_profile()  # read now, not at the first save: a wrong COURSE_PROFILE is one line listing the names
    except ValueError as err:
        raise UsageError(str(err)) from None


CONTROL_KINDS = ("canny", "scribble", "mask")  # course.conditions.KINDS (not imported here: no torch before the checks)


def check_control(args) -> None:
    """--control FILE, --control-kind, --control-scale: a readable file, a known kind, a scale ≥ 0 (lesson 08)."""
    if args.control is None:
        if args.control_kind != "canny" or args.control_scale != 1.0:
            raise UsageError("--control-kind and --control-scale need --control FILE (the condition image, e.g. edges.png)")
        return
    if args.control_kind not in CONTROL_KINDS:
        raise UsageError(f"unknown --control-kind {args.control_kind!r}: choose one of {', '.join(CONTROL_KINDS)}")
    if not args.control_scale >= 0 or args.control_scale == float("inf"):
        raise UsageError(f"--control-scale must be a number ≥ 0 (0: no control, 1: as trained), got {args.control_scale}")
    if not Path(args.control).is_file():
        raise UsageError(f"--control {args.control!r}: no such file (give an edge map, a scribble or a mask as .png or .jpg)")


def generate(args) -> int:
    """``python -m course generate "un cercle rouge en haut à gauche" -o out.png``"""
    check_arguments(args)
    with warnings.catch_warnings():  # each warning on one line, "warning: …", and put back as it was afterwards
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, *_, **__: print(f"warning: {message}", file=sys.stderr)
        return _generate(args)


def _generate(args) -> int:
    import torch

    from course import pipeline
    from course.paths import data_dir
    from course.shipped import AUTOENCODER, CLIP_CHECKPOINT, GUIDANCE, UNET_CHECKPOINT

    if args.guidance is None:
        args.guidance = GUIDANCE
    try:
        pipeline.check_request(args.prompt, args.steps, args.guidance, args.sampler, args.n, args.negative, names=CLI_NAMES)
        pipeline.as_generator(args.seed)
    except ValueError as err:
        raise UsageError(str(err)) from None
    warnings.simplefilter("ignore", pipeline.GuidanceWarning)  # said once above, with the command's names
    missing = [name for name in (AUTOENCODER, CLIP_CHECKPOINT, UNET_CHECKPOINT) if not (data_dir() / name).exists()]
    if missing:
        raise UsageError(
            f"the text-to-image model is not shipped yet (missing data/{', data/'.join(missing)}): "
            "train and ship it with `python -m course.ae_train train --ship` then `python -m course.ldm train --ship` (lesson 05)"
        )
    if "OMP_NUM_THREADS" not in os.environ:  # the user's choice wins; else what the batch needs (one thread for a few images)
        torch.set_num_threads(pipeline.threads_for(args.n))
    control = None
    if args.control is not None:
        from course.conditions import read_control
        from course.shipped import IMAGE_SIZE

        if not (data_dir() / f"controlnet_{args.control_kind}.safetensors").exists():
            raise UsageError(f"no {args.control_kind} ControlNet is shipped (data/controlnet_{args.control_kind}.safetensors): train it with "
                             f"`python -m course.controlnet_train train --kind {args.control_kind} --ship`, or use --control-kind canny")
        notes: list[str] = []
        try:
            control = read_control(args.control, args.control_kind, IMAGE_SIZE, notes)
        except ValueError as err:
            raise UsageError(str(err)) from None
        for note in notes:  # an empty map is a warning: the ControlNet then has nothing to follow
            print(f"{'warning' if note.startswith(f'the {args.control_kind} map is empty') else 'note'}: {note}", file=sys.stderr)
    concept = concept_path(args.concept) if args.concept is not None else None
    try:
        pipe = pipeline.TextToImagePipeline()
        if concept is not None:
            load_concept(pipe, concept)
        if control is not None:
            pipe.check_control(control, args.control_kind, args.control_scale, args.n)
    except (ValueError, OSError) as err:  # a damaged or mismatched file in data/ (checksum, config)
        print(f"error: the shipped model could not be loaded: {err}", file=sys.stderr)
        return 1
    result = pipe(args.prompt, num_inference_steps=args.steps, guidance_scale=args.guidance, generator=args.seed,
                  negative_prompt=args.negative, sampler=args.sampler, num_images_per_prompt=args.n, keep_x0_hat=bool(args.strip),
                  control=control, control_kind=args.control_kind, control_scale=args.control_scale)
    out = Path(args.output)
    pipeline.upscale(pipeline.grid(result.images, columns=min(args.n, 4)), args.scale).save(out)
    controlled = f", {args.control_kind} control ×{args.control_scale:g}" if control is not None else ""
    print(f"saved {out} ({args.n} image{'s' if args.n > 1 else ''}, {args.sampler}, {args.steps} steps, guidance {args.guidance:g}, seed {args.seed}{controlled})")
    if args.strip:
        pipeline.upscale(pipeline.strip_image(result.x0_hats), args.scale).save(args.strip)
        print(f"saved the denoising strip (x̂_0 along the steps) to {args.strip}")
    return 0


def concept_path(concept: str) -> Path:
    """The file of ``--concept ti|lora|FILE`` (lesson 11): the shipped learned word, the shipped LoRA, or a file of either kind."""
    from course.paths import data_dir

    shipped = {"ti": data_dir() / "concept_ti.safetensors", "lora": data_dir() / "concept_lora.safetensors"}
    path = shipped.get(concept, Path(concept))
    if not path.is_file():
        raise UsageError(f"--concept {concept}: {path} not found (choose ti, lora, or a file made by `python -m course.concept_train train`)")
    return path


def load_concept(pipe, path: Path) -> str | None:
    from safetensors import safe_open

    from course import lora

    with safe_open(str(path), framework="pt") as f:
        is_lora = lora.METADATA_KEY in (f.metadata() or {})
    token = pipe.load_lora_weights(path) if is_lora else pipe.load_textual_inversion(path)
    print(f"note: {'LoRA' if is_lora else 'learned word'} {path.name} loaded" + (f"; write {token} in the prompt" if token else ""), file=sys.stderr)
    return token


def edit_command(args) -> int:
    """``python -m course img2img in.png "…" --strength 0.6``, ``inpaint in.png mask.png "…"`` and ``edit in.png "…"`` (lesson 09)."""
    example = "rends le cercle bleu" if args.command == "edit" else "un carré bleu en haut à gauche"
    check_counts(args, f"{args.command} in.png{' mask.png' if args.command == 'inpaint' else ''} \"{example}\"")
    if args.command != "edit" and not (0 < args.strength <= 1):
        raise UsageError(f"--strength must be in (0, 1] (0.3: a light touch, 0.6: a new drawing on the same layout, 1: from pure noise), got {args.strength:g}")
    if args.command == "edit":
        for flag, value in (("--guidance", args.guidance), ("--image-guidance", args.image_guidance)):
            if value is not None and not 0 <= value <= 50:
                raise UsageError(f"{flag} must be in [0, 50] (1: no guidance), got {value:g}")
    files = [("input image", args.input)] + ([("mask", args.mask)] if args.command == "inpaint" else [])
    for what, path in files:
        if not Path(path).is_file():
            raise UsageError(f"{what} {path!r}: no such file (give a .png or .jpg)")
    if args.command == "inpaint" and args.feather < 0:
        raise UsageError(f"--feather must be ≥ 0 pixels (0: a hard edge), got {args.feather}")
    check_output(args.output, "-o")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, *_, **__: print(f"warning: {message}", file=sys.stderr)
        return _edit(args)


def _edit(args) -> int:
    import torch

    from course import pipeline
    from course.img2img import img2img_grid
    from course.images import read_image
    from course.inpaint import as_mask
    from course.noise_schedule import NoiseSchedule
    from course.samplers import grid_for
    from course.shipped import GUIDANCE, IMAGE_SIZE

    if args.command == "edit":
        return _instruct(args)
    if args.guidance is None:
        args.guidance = GUIDANCE
    try:
        pipeline.check_request(args.prompt, args.steps, args.guidance, args.sampler, args.n, args.negative, names=CLI_NAMES)
        pipeline.as_generator(args.seed)
        tail = img2img_grid(grid_for(args.sampler, NoiseSchedule.from_betas(pipeline.betas()), args.steps), args.strength)
        notes: list[str] = []
        image = read_image(args.input, IMAGE_SIZE, notes, "input image")
        mask = None
        if args.command == "inpaint":
            from PIL import Image

            try:
                mask = as_mask(Image.open(args.mask), IMAGE_SIZE, notes)
            except OSError as err:
                raise ValueError(f"cannot read the mask {args.mask!r}: {err}") from None
    except ValueError as err:
        raise UsageError(str(err)) from None
    warnings.simplefilter("ignore", pipeline.GuidanceWarning)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(pipeline.threads_for(args.n))
    try:
        pipe = pipeline.TextToImagePipeline()
    except (ValueError, OSError) as err:
        print(f"error: the shipped model could not be loaded: {err}", file=sys.stderr)
        return 1
    common = dict(strength=args.strength, num_inference_steps=args.steps, guidance_scale=args.guidance, generator=args.seed,
                  negative_prompt=args.negative, sampler=args.sampler, num_images_per_prompt=args.n)
    with warnings.catch_warnings():
        from course.inpaint import MaskWarning

        warnings.simplefilter("ignore", MaskWarning)  # said above, when the mask was read
        if args.command == "img2img":
            result = pipe.img2img(image, args.prompt, **common)
        else:
            result = pipe.inpaint(image, mask, args.prompt, feather=args.feather, paste=not args.no_paste, **common)
    out = Path(args.output)
    pipeline.upscale(pipeline.grid(result.images, columns=min(args.n, 4)), args.scale).save(out)
    t0 = float(tail[0])
    print(f"saved {out} ({args.command}, strength {args.strength:g}: {len(tail) - 1} of {args.steps} {args.sampler} steps, from t = {t0:g} of 1000; "
          f"guidance {args.guidance:g}, seed {args.seed}{'; outside the mask: the input pasted back' if mask is not None and not args.no_paste else ''})")
    return 0


def _instruct(args) -> int:
    """``python -m course edit in.png "rends le cercle bleu" -o out.png [--image-guidance 1.5 --guidance 3]`` (InstructPix2Pix)."""
    import torch

    from course import instruct, pipeline
    from course.images import read_image
    from course.paths import data_dir
    from course.shipped import IMAGE_SIZE

    chosen_T, chosen_I = instruct.default_scales()
    s_T = chosen_T if args.guidance is None else args.guidance
    s_I = chosen_I if args.image_guidance is None else args.image_guidance
    try:
        pipeline.check_request(args.prompt, args.steps, 1.0, args.sampler, args.n, names=CLI_NAMES)
        pipeline.as_generator(args.seed)
        notes: list[str] = []
        image = read_image(args.input, IMAGE_SIZE, notes, "input image")
    except ValueError as err:
        raise UsageError(str(err)) from None
    if not (data_dir() / instruct.CHECKPOINT).exists():
        raise UsageError(f"the editing model is not shipped (data/{instruct.CHECKPOINT}): train it with `python -m course.instruct_train train --ship`")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(pipeline.threads_for(args.n))
    try:
        pipe = pipeline.TextToImagePipeline()
        result = pipe.edit(image, args.prompt, s_T, s_I, args.steps, args.seed, args.sampler, args.n)
    except (OSError, ValueError) as err:  # a damaged or mismatched file in data/
        print(f"error: the shipped model could not be loaded: {err}", file=sys.stderr)
        return 1
    out = Path(args.output)
    pipeline.upscale(pipeline.grid(result.images, columns=min(args.n, 4)), args.scale).save(out)
    print(f"saved {out} (edit « {args.prompt} », text guidance s_T {s_T:g}, image guidance s_I {s_I:g}, {args.steps} {args.sampler} steps, seed {args.seed})")
    return 0


def export_diffusers(args: argparse.Namespace) -> int:
    """Write the shipped models as a standard diffusers folder (StableDiffusionPipeline loads it, no custom code)."""
    from course import export

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{args.out!r} is a file: give a folder name, e.g. mini-sd/")
    if out.exists() and any(out.iterdir()) and not args.force:
        raise UsageError(f"{args.out!r} exists and is not empty: choose another folder, or add --force to replace it")
    if not out.parent.exists():
        raise UsageError(f"cannot write {args.out!r}: folder {str(out.parent)!r} does not exist")
    try:
        export.export_shipped(out, force=args.force)
    except (ValueError, FileExistsError) as err:  # FormatError, CheckpointError: a missing or mismatched shipped model
        raise UsageError(str(err)) from None
    print(f"saved a diffusers folder to {out}/ (unet, vae, text_encoder, tokenizer, scheduler = DPM-Solver++)")
    print(f"  from diffusers import StableDiffusionPipeline; pipe = StableDiffusionPipeline.from_pretrained({str(out)!r}, local_files_only=True)")
    return 0


def sampling_options(g: argparse.ArgumentParser) -> None:
    """The options every image command shares: steps, sampler, guidance, seed, negative prompt, count, output, scale."""
    g.add_argument("--steps", type=int, default=25, help="denoising steps, 1 to 1000 (default 25)")
    g.add_argument("--sampler", default="dpmpp", help="dpmpp (default), ddim, ddpm, pndm, euler_a … (a wrong name lists them all)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale w in [0, 50] (default: the w chosen on validation prompts; useful range 2–5)")
    g.add_argument("--seed", type=int, default=0, help="same seed and arguments → same image")
    g.add_argument("--negative", default=None, help="a negative prompt, used in place of the empty prompt ∅")
    g.add_argument("-n", type=int, default=1, help=f"number of images, 1 to {MAX_IMAGES} (a grid)")
    g.add_argument("-o", "--output", default="out.png", help="output image (.png or .jpg)")
    g.add_argument("--scale", type=int, default=4, help=f"enlargement factor of the saved 64×64 images, 1 to {MAX_SCALE} (default 4)")


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
    sampling_options(g)
    g.add_argument("--strip", default=None, help="also save the denoising strip (x̂_0 along the steps) to this file")
    g.add_argument("--concept", default=None, help="a learned new word (lesson 11): ti (the shipped textual inversion), lora (the shipped LoRA), or a file; then write <lune> in the prompt")
    g.add_argument("--control", default=None, help="a condition image for the ControlNet (lesson 08): an edge map, white on black; a picture is turned into one")
    g.add_argument("--control-kind", default="canny", help=f"what --control shows: {', '.join(CONTROL_KINDS)} (default canny)")
    g.add_argument("--control-scale", type=float, default=1.0, help="how strongly the ControlNet steers, ≥ 0 (0: not at all, 1: as trained; default 1)")
    i = sub.add_parser("img2img", help="redraw an image after a prompt, keeping its layout (SDEdit, lesson 09)")
    i.add_argument("input", help="the image to start from (.png or .jpg; another size is resized to 64×64)")
    i.add_argument("prompt", help="what the result should show, e.g. \"un grand carré bleu en haut à gauche\"")
    i.add_argument("--strength", type=float, default=0.6, help="how far up the noise goes, in (0, 1]: 0.3 a light touch, 1 from pure noise (default 0.6)")
    sampling_options(i)
    p = sub.add_parser("inpaint", help="repaint the white region of a mask after a prompt, keep the rest exactly (lesson 09)")
    p.add_argument("input", help="the image (.png or .jpg)")
    p.add_argument("mask", help="the mask: white = repaint, black = keep (same size as the image, or resized)")
    p.add_argument("prompt", help="what the whole image should show, e.g. \"un petit triangle vert en haut à gauche\"")
    p.add_argument("--strength", type=float, default=1.0, help="in (0, 1]: 1 repaints the masked region from pure noise (default), less keeps its layout")
    p.add_argument("--feather", type=int, default=3, help="width in pixels of the blend inside the mask's edge (default 3; 0: a hard edge)")
    p.add_argument("--no-paste", action="store_true", help="keep the decoder's pixels outside the mask too (diffusers' default; shows the seam)")
    sampling_options(p)
    d = sub.add_parser("edit", help="edit an image as an instruction says, « rends le cercle bleu » (InstructPix2Pix, lesson 09)")
    d.add_argument("input", help="the image to edit (.png or .jpg; another size is resized to 64×64)")
    d.add_argument("prompt", help="the instruction, e.g. \"make the star bigger\" or « ajoute un carré rouge en bas à droite »")
    d.add_argument("--image-guidance", type=float, default=None, help="s_I: how closely to keep the input, in [0, 50] (default: the shipped choice)")
    sampling_options(d)
    d.set_defaults(negative=None)
    e = sub.add_parser("export-diffusers", help="write the shipped models as a standard diffusers folder (StableDiffusionPipeline loads it)")
    e.add_argument("out", help="the folder to create, e.g. mini-sd/")
    e.add_argument("--force", action="store_true", help="replace the folder if it exists and is not empty")
    args = parser.parse_args(argv)
    if args.command in ("generate", "export-diffusers", "img2img", "inpaint", "edit"):
        try:
            commands = {"generate": generate, "export-diffusers": export_diffusers, "img2img": edit_command, "inpaint": edit_command,
                        "edit": edit_command}
            return commands[args.command](args)
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except OSError as err:  # e.g. the disk filled up while saving
            print(f"error: {err}", file=sys.stderr)
            return 1
    from course import env

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
