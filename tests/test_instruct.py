"""Instruction editing (course.instructions, course.instruct): the triplets are exact, the new words extend the vocabulary
without moving a known id, the widened U-Net starts as the base model, and the exported model in diffusers'
``StableDiffusionInstructPix2PixPipeline`` gives the course's edit (tests fail, not skip, without diffusers)."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline

from course import instruct
from course.autoencoder import AEConfig, Autoencoder
from course.instructions import EDITS, NEW_WORDS, render_edit, sample_edit
from course.shipped import IMAGE_SIZE, UNET, make_clip
from course.tokenizer import backend
from course.unet import UNet
from tests.test_diffusers_parity import randomise


def test_the_instructions_need_no_word_beyond_the_new_ones():
    rng = np.random.default_rng(0)
    kinds, unknown = collections.Counter(), collections.Counter()
    for i in range(1500):
        edit = sample_edit(rng, "train" if i % 2 else "heldout")
        kinds[edit.kind] += 1
        for lang in ("en", "fr"):
            for text in edit.instructions[lang]:
                unknown.update(instruct.unknown_words(text))
    assert set(kinds) == set(EDITS) and not unknown
    base = backend().get_vocab()
    ids = instruct.instruction_tokenizer().get_vocab()
    assert all(ids[w] == i for w, i in base.items())  # every known word keeps its id: CLIP's table rows still mean the same
    assert [ids[w] for w in NEW_WORDS] == list(range(len(base), len(base) + len(NEW_WORDS)))
    assert instruct.encode(["rends l'étoile bleue"])[0, :7].tolist() == [2, ids["rends"], ids["l"], ids["'"], ids["étoile"], ids["bleue"], 3]


@pytest.mark.parametrize("kind", EDITS)
def test_a_triplet_draws_what_the_edit_keeps_pixel_for_pixel(kind):
    rng = np.random.default_rng(3)
    edit = next(e for e in (sample_edit(rng, "train", kind) for _ in range(50)) if len(e.source.objects) + len(e.target.objects) >= 3)
    source, target = render_edit(edit)
    kept = set(edit.source.objects) & set(edit.target.objects)
    assert kept  # a second object that the edit leaves alone
    changed = np.abs(source.astype(int) - target.astype(int)).max(-1) > 0
    for obj in kept:  # the kept object's cell is identical in both renders (up to what the edited object reaches into it)
        r, c = obj.cell
        cell = (slice(round(r * 64 / 3) + 3, round((r + 1) * 64 / 3) - 3), slice(round(c * 64 / 3) + 3, round((c + 1) * 64 / 3) - 3))
        assert not changed[cell].any(), (kind, obj)
    assert changed.any()


def test_held_out_triplets_edit_into_held_out_pairs_and_training_ones_never_see_them():
    from course.scenes import HELD_OUT

    rng = np.random.default_rng(5)
    for _ in range(300):
        train = sample_edit(rng, "train")
        assert not any((o.shape, o.colour) in HELD_OUT for o in train.source.objects + train.target.objects)
    for kind in ("colour", "shape", "add"):
        test = sample_edit(rng, "heldout", kind)
        new = set(test.target.objects) - set(test.source.objects)
        assert all((o.shape, o.colour) in HELD_OUT for o in new)


def test_the_widened_unet_starts_as_the_base_model():
    base = randomise(UNet(UNET), seed=2).eval()
    wide = instruct.widen_conv_in(base).eval()
    g = torch.Generator().manual_seed(0)
    z, c_image, context = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 32, 128, generator=g)
    t = torch.tensor([10, 900])
    with torch.no_grad():
        assert torch.equal(wide(torch.cat([z, c_image], 1), t, context), base(z, t, context))
    assert wide.config.in_channels == 8 and wide.config.out_channels == 4


def test_dual_guidance_is_the_papers_formula():
    g = torch.Generator().manual_seed(1)
    both, image, none = (torch.randn(3, 4, generator=g) for _ in range(3))
    out = instruct.dual_guidance(both, image, none, 7.5, 1.5)
    assert torch.allclose(out, none + 1.5 * (image - none) + 7.5 * (both - image))
    assert torch.allclose(instruct.dual_guidance(both, image, none, 1.0, 1.0), both)  # s_T = s_I = 1: the plain conditional model


@pytest.mark.parametrize("prompt, s_T, s_I", [("rends le cercle bleu", 3.0, 1.5), ("remove the heart", 7.5, 1.2)])
def test_stock_instruct_pix2pix_pipeline_gives_the_course_latents(tmp_path, prompt, s_T, s_I):
    """Random weights: the same z_0 (relative 1e-5). Their x̂_0 = (z − σε)/α is far from the images' range, where the
    decoder's rounding is amplified: the image itself is compared on the shipped model (the next test)."""
    torch.manual_seed(0)
    unet, ae, clip = randomise(UNet(UNET), seed=7).eval(), Autoencoder(AEConfig()).eval(), make_clip().eval()
    with torch.no_grad():
        unet.conv_out.weight.mul_(0.1)
    model = instruct.InstructPix2Pix.from_base(unet, clip.text)
    with torch.no_grad():
        model.unet.conv_in.weight[:, 4:].normal_(0, 0.1, generator=torch.Generator().manual_seed(3))  # the image channels matter
    model.eval()
    folder = instruct.export_instruct(tmp_path / "ip2p", model, ae, 0.9, IMAGE_SIZE)
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    x = torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(4)) * 2 - 1
    theirs = pipe(prompt, image=(x + 1) / 2, num_inference_steps=8, guidance_scale=s_T, image_guidance_scale=s_I,
                  generator=torch.Generator().manual_seed(5), output_type="latent").images
    with torch.no_grad():
        c_image = ae.encode(x)[0]
        z = instruct.edit_latents(model, c_image, [prompt], s_T, s_I, steps=8, generator=5)
        other = instruct.edit_latents(model, -c_image, [prompt], s_T, s_I, steps=8, generator=5)
    scale = z.abs().max().item()
    assert (theirs - z).abs().max().item() <= 1e-5 * max(1.0, scale)
    assert (z - other).abs().max().item() > 1e-2 * scale  # the input image changed the edit: a pipeline ignoring it would fail


@pytest.mark.parametrize("prompt", ["rends le cercle bleu", "remove the heart"])
def test_the_shipped_editing_model_exported_gives_the_course_images(tmp_path, prompt):
    from course.pipeline import TextToImagePipeline
    from course.render import render
    from course.scenes import single
    from course.shipped import load_autoencoder

    pipe = TextToImagePipeline(device="cpu")
    ae, scaling = load_autoencoder()
    folder = instruct.export_instruct(tmp_path / "ip2p", instruct.load_instruct(), ae, scaling, IMAGE_SIZE)
    stock = StableDiffusionInstructPix2PixPipeline.from_pretrained(folder, local_files_only=True)
    stock.set_progress_bar_config(disable=True)
    x = torch.from_numpy(render(single("circle", "red", "top left", "large"), IMAGE_SIZE).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    theirs = stock(prompt, image=(x + 1) / 2, num_inference_steps=10, guidance_scale=3.0, image_guidance_scale=1.5,
                   generator=torch.Generator().manual_seed(2), output_type="pt").images
    ours = pipe.edit(x, prompt, guidance_scale=3.0, image_guidance_scale=1.5, num_inference_steps=10, generator=2).tensors
    assert (2 * theirs - 1 - ours).abs().max().item() <= 1e-3


def test_bad_scales_are_one_sentence():
    with pytest.raises(ValueError, match=r"the image guidance \(s_I\) must be a number in \[0, 50\]"):
        instruct.check_scales(3.0, float("nan"))
    with pytest.raises(ValueError, match=r"the guidance \(s_T\) must be a number in \[0, 50\]"):
        instruct.check_scales(-1.0, 1.5)


def test_the_judge_reads_the_ideal_edit_as_made_and_kept_and_the_input_as_not_made():
    """The measure can fail: the unedited input is never an edit made, and the ideal edit always is (exact renders)."""
    from course.instruct_eval import judge, render_edits, test_edits
    from course.scene_reader import read

    edits = test_edits(6, seed=1)
    inputs, ideals = render_edits(edits)
    assert all(judge(e, r) == (True, True) for e, r in zip(edits, read(ideals)))
    assert not any(judge(e, r)[0] for e, r in zip(edits, read(inputs)))
