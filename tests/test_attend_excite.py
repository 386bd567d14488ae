"""Word maps and Attend-and-Excite: the maps are attention weights, A&E without updates is plain DDIM, an update lowers its loss."""

import pytest
import torch

from course import attend_excite as ae
from course.attention_maps import cross_attentions, recording, subject_positions, token_maps, tokens
from course.pipeline import generate_latents
from course.shipped import load_clip, load_unet, text_states


def test_subjects_are_the_shape_nouns_in_both_languages():
    assert subject_positions("a red circle above a blue square") == [3, 7]
    assert tokens("une étoile jaune")[0] == "<bos>" and subject_positions("une étoile jaune et un cœur vert") == [2, 6]
    assert subject_positions("trois carrés jaunes") == [2]


def test_token_maps_are_each_pixels_weights_over_the_tokens():
    unet = load_unet()
    context, mask = text_states(["a red circle above a blue square", "deux étoiles"])
    with recording(unet) as layers:
        unet(torch.randn(2, 4, 8, 8), torch.tensor([500, 500]), context, mask)
        maps = token_maps(layers)
    assert maps.shape == (2, 32, 8, 8)
    assert torch.allclose(maps.sum(1), torch.ones(2, 8, 8), atol=1e-5)  # softmax rows, averaged: still sum to 1
    assert not any(m.record or m.keep_graph for m in cross_attentions(unet))  # flags restored
    with pytest.raises(ValueError, match="no attention was recorded"):
        token_maps([])


def test_blur_and_strengths_on_known_maps():
    flat = torch.full((1, 2, 8, 8), 0.3)
    assert torch.allclose(ae.gaussian_blur(flat), flat, atol=1e-6)
    maps = torch.zeros(1, 6, 4, 4)  # tokens: <bos> w1 w2 w3 <eos> pad
    maps[0, 2] = 0.01
    maps[0, 2, 1, 1] = 0.9  # word 2 dominates one pixel
    maps[0, 1] = 0.05
    s = ae.subject_strengths(maps, word_ends=[4], subjects=[[2, 3]], sigma=0.01)
    assert s[0, 0] > 0.99 and s[0, 1] < 0.5
    assert ae.excite_loss(s, [2]).item() == pytest.approx(1 - s[0, 1].item())
    assert ae.excite_loss(s, [0]).item() == 0


def test_without_updates_it_is_the_course_ddim_and_an_update_lowers_the_loss():
    unet, clip = load_unet(), load_clip()
    prompts = ["a red circle above a blue square", "un carré vert et une étoile rose"]
    plain = generate_latents(unet, clip, prompts, "ddim", 6, 2.5, torch.Generator().manual_seed(1))
    same, info = ae.generate_latents(unet, clip, prompts, 6, 2.5, torch.Generator().manual_seed(1), excite_steps=0)
    assert torch.equal(plain, same) and info["updates"] == 0
    excited, info = ae.generate_latents(unet, clip, prompts, 6, 2.5, torch.Generator().manual_seed(1), excite_steps=2, refine_at={})
    assert info["updates"] == 2 and not torch.equal(excited, plain)
    # one small step down the gradient lowers L(z) (what the update is for)
    context, mask = text_states(prompts, clip)
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    ends, subjects = [len(tokens(p)) - 1 for p in prompts], [subject_positions(p) for p in prompts]

    def loss(z):
        with recording(unet, keep_graph=True) as layers:
            unet(z, torch.tensor([900, 900]), context, mask)
            return ae.excite_loss(ae.subject_strengths(token_maps(layers), ends, subjects), [2, 2]).sum()

    before = loss(z)
    (grad,) = torch.autograd.grad(before, z)
    assert loss((z - 0.5 * grad).detach()).item() < before.item()
    with pytest.raises(ValueError, match="are not words of"):
        ae.generate_latents(unet, clip, prompts[:1], 4, subjects=[[0]])
