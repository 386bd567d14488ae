"""`python -m course generate`: bad input is one line (what is wrong, what to type), exit code 2, checked before
any model loads, and nothing is written."""

import subprocess
import sys

import pytest

from course import __main__ as cli
from course.paths import data_dir
from course.shipped import UNET_CHECKPOINT

shipped = pytest.mark.skipif(not (data_dir() / UNET_CHECKPOINT).exists(), reason="the latent U-Net is not shipped")


@pytest.fixture
def no_models(monkeypatch):
    """Loading a model fails the test: bad input must be refused before."""
    from course import pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(pipeline.TextToImagePipeline, "__init__", refuse)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--guidance", "nan"], "--guidance must be a finite number"),
        (["--guidance", "inf"], "--guidance must be a finite number"),
        (["--guidance", "1e6"], r"--guidance must be in [0, 50]"),
        (["--guidance", "-1"], r"--guidance must be in [0, 50]"),
        (["-n", "0"], "-n must be between 1 and 64"),
        (["-n", "10000"], "-n must be between 1 and 64"),
        (["--steps", "0"], r"--steps must be an integer in [1, 1000]"),
        (["--steps", "5000"], r"--steps must be an integer in [1, 1000]"),
        (["--scale", "0"], "--scale must be between 1 and 16"),
        (["--sampler", "karras"], "unknown --sampler 'karras': choose one of ddpm, ddim"),
        (["--seed", "-1"], "the seed must be an integer"),
        (["-o", "{tmp}"], "is a folder: give a file name"),
        (["-o", "{tmp}/x.gif"], "-o must end in .png or .jpg"),
        (["-o", "/proc/x.png"], "cannot write '/proc/x.png'"),
        (["-o", "{tmp}/missing/x.png"], "folder '{tmp}/missing' does not exist"),
        (["--strip", "{tmp}/missing/s.png"], "folder '{tmp}/missing' does not exist"),
        (["--concept", "{tmp}/no-such.safetensors"], "--concept {tmp}/no-such.safetensors: {tmp}/no-such.safetensors not found (choose ti, lora"),
    ],
)
def test_bad_arguments_are_one_line_before_any_model(tmp_path, capsys, no_models, extra, message):
    extra = [e.format(tmp=tmp_path) for e in extra]
    args = ["generate", "un cercle rouge", "-o", str(tmp_path / "out.png"), *extra]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message.format(tmp=tmp_path) in err, err
    assert not (tmp_path / "out.png").exists() and not list(tmp_path.rglob("*.png"))


def test_empty_prompt_and_bogus_profile(tmp_path, capsys, no_models, monkeypatch):
    assert cli.main(["generate", "  ", "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.startswith("error: the prompt is empty")
    monkeypatch.setenv("COURSE_PROFILE", "tiny")
    assert cli.main(["generate", "un cercle rouge", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown profile 'tiny': choose one of smoke, cpu, gpu" in err


def test_checking_a_path_leaves_nothing_behind(tmp_path):
    kept = tmp_path / "old.png"
    kept.write_bytes(b"old")
    assert cli.check_output(str(kept), "-o") == kept and kept.read_bytes() == b"old"
    assert cli.check_output(str(tmp_path / "new.png"), "-o") and not (tmp_path / "new.png").exists()


@shipped
def test_the_command_writes_images_and_warns_on_one_line(tmp_path):
    out, strip = tmp_path / "out.png", tmp_path / "strip.png"
    result = subprocess.run([sys.executable, "-m", "course", "generate", "un cercle rouge licorne", "--steps", "3", "--guidance", "20", "-n", "2",
                             "-o", str(out), "--strip", str(strip)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.exists() and strip.exists() and "saved" in result.stdout
    lines = result.stderr.splitlines()
    assert any(line.startswith("warning: --guidance 20 is far above") for line in lines)
    assert any(line.startswith("warning: words the model never saw") and "licorne" in line for line in lines)
    assert len([line for line in lines if "far above" in line]) == 1 and "Traceback" not in result.stderr


def test_a_learned_word_is_drawn_from_the_command_line(tmp_path):
    out = tmp_path / "lune.png"
    result = subprocess.run([sys.executable, "-m", "course", "generate", "une grande <lune> jaune au centre", "--concept", "lora", "--steps", "3",
                             "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.exists() and "LoRA concept_lora.safetensors loaded; write <lune> in the prompt" in result.stderr
    assert "never saw" not in result.stderr


def test_a_real_bad_call_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "course", "generate", "un cercle rouge", "--guidance", "nan", "-o", str(tmp_path / "x.png")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: --guidance must be a finite number") and "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- export-diffusers


def test_export_refuses_a_non_empty_folder_and_a_file(tmp_path, capsys, monkeypatch):
    from course import export

    monkeypatch.setattr(export, "export_shipped", lambda *a, **k: pytest.fail("exported despite bad input"))
    (tmp_path / "mine.txt").write_text("keep me")
    assert cli.main(["export-diffusers", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err and "--force" in err
    assert cli.main(["export-diffusers", str(tmp_path / "mine.txt")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert cli.main(["export-diffusers", str(tmp_path / "no" / "such" / "dir")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@shipped
def test_export_writes_a_diffusers_folder_of_the_shipped_models(tmp_path, capsys):
    out = tmp_path / "mini-sd"
    assert cli.main(["export-diffusers", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler"}
    assert "StableDiffusionPipeline.from_pretrained" in capsys.readouterr().out
    assert cli.main(["export-diffusers", str(out)]) == 2  # a second export does not overwrite silently
    assert cli.main(["export-diffusers", str(out), "--force"]) == 0


# ----------------------------------------------------------------------------- img2img and inpaint (lesson 09)


@pytest.fixture
def pictures(tmp_path):
    import numpy as np
    from PIL import Image

    from course.render import render
    from course.scenes import single

    Image.fromarray(render(single("circle", "red", "top left", "large"), size=64)).resize((128, 128)).save(tmp_path / "in.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[:32, :32] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.new("L", (64, 64), 0).save(tmp_path / "empty.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    return tmp_path


@pytest.mark.parametrize(
    "command, message",
    [
        (["img2img", "{tmp}/in.png", "un carré", "--strength", "0"], "--strength must be in (0, 1]"),
        (["img2img", "{tmp}/in.png", "un carré", "--strength", "1.5"], "--strength must be in (0, 1]"),
        (["img2img", "{tmp}/in.png", "un carré", "--strength", "nan"], "--strength must be in (0, 1]"),
        (["img2img", "{tmp}/in.png", "un carré", "--strength", "0.1", "--steps", "5"], "runs ⌊5·0.1⌋ = 0 steps: raise the strength, or use at least 10 steps"),
        (["img2img", "{tmp}/nothere.png", "un carré"], "input image '{tmp}/nothere.png': no such file"),
        (["img2img", "{tmp}/broken.png", "un carré"], "cannot read the input image '{tmp}/broken.png'"),
        (["img2img", "{tmp}/in.png", " "], "the prompt is empty"),
        (["img2img", "{tmp}/in.png", "un carré", "--sampler", "karras"], "unknown --sampler 'karras'"),
        (["inpaint", "{tmp}/in.png", "{tmp}/empty.png", "un carré"], "the mask is empty (all black): there is nothing to repaint"),
        (["inpaint", "{tmp}/in.png", "{tmp}/nothere.png", "un carré"], "mask '{tmp}/nothere.png': no such file"),
        (["inpaint", "{tmp}/in.png", "{tmp}/broken.png", "un carré"], "cannot read the mask"),
        (["inpaint", "{tmp}/in.png", "{tmp}/mask.png", "un carré", "--feather", "-1"], "--feather must be ≥ 0 pixels"),
        (["edit", "{tmp}/in.png", "rends le cercle bleu", "--image-guidance", "-1"], "--image-guidance must be in [0, 50]"),
        (["edit", "{tmp}/in.png", "rends le cercle bleu", "--guidance", "100"], "--guidance must be in [0, 50]"),
        (["edit", "{tmp}/nothere.png", "rends le cercle bleu"], "input image '{tmp}/nothere.png': no such file"),
        (["edit", "{tmp}/in.png", "  "], "the prompt is empty"),
        (["edit", "{tmp}/in.png", "rends le cercle bleu", "--steps", "0"], "--steps must be an integer in [1, 1000]"),
    ],
)
def test_bad_edit_arguments_are_one_line_before_any_model(pictures, capsys, no_models, command, message):
    args = [c.format(tmp=pictures) for c in command] + ["-o", str(pictures / "out.png")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: ") and message.format(tmp=pictures) in err, err
    assert not (pictures / "out.png").exists()


@shipped
def test_img2img_and_inpaint_write_images_and_say_which_steps_ran(pictures, capsys):
    import numpy as np
    from PIL import Image

    out = pictures / "out.png"
    assert cli.main(["img2img", str(pictures / "in.png"), "un grand carré bleu en haut à gauche", "--steps", "10", "-o", str(out), "--scale", "1"]) == 0
    captured = capsys.readouterr()
    assert "strength 0.6: 6 of 10 dpmpp steps, from t = 600 of 1000" in captured.out and out.exists()
    assert "note: input image resized from 128×128 to 64×64" in captured.err
    assert cli.main(["inpaint", str(pictures / "in.png"), str(pictures / "mask.png"), "un grand triangle vert en haut à gauche", "--steps", "8",
                     "-o", str(out), "--scale", "1"]) == 0
    assert "outside the mask: the input pasted back" in capsys.readouterr().out
    result = np.asarray(Image.open(out)).astype(int)
    original = np.asarray(Image.open(pictures / "in.png").resize((64, 64), Image.BILINEAR)).astype(int)
    keep = np.asarray(Image.open(pictures / "mask.png")) == 0
    assert np.abs(result - original)[keep].max() <= 3  # the input's pixels (up to the resize's own rounding)


@shipped
def test_edit_writes_the_edited_image_and_names_unknown_words(pictures, capsys):
    out = pictures / "out.png"
    assert cli.main(["edit", str(pictures / "in.png"), "rends le cercle bleu zorglub", "--steps", "6", "-o", str(out), "--scale", "1"]) == 0
    captured = capsys.readouterr()
    assert "edit « rends le cercle bleu zorglub », text guidance s_T" in captured.out and out.exists()
    assert "words the editing model never saw (read as <unk>): zorglub" in captured.err
