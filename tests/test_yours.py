"""course.yours: the learner's checked functions run inside the course; stubs and wrong answers do not."""

from __future__ import annotations

import math

import pytest
import torch

from course import yours
from course.checks.guidance import check_guidance
from course.ddpm import training_loss
from course.forward import q_sample
from course.guidance import guidance_combination, guided
from course.noise_schedule import NoiseSchedule
from course.samplers import ddim, spaced
from course.schedules import alphas_cumprod, linear_betas
from course.unet import UNet, UNetConfig
from course.yours import choose, pick, use


@pytest.fixture(autouse=True)
def _nothing_in_use(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "en")
    yours._yours.clear()
    yield
    yours._yours.clear()


def counting(fn):
    """``fn``, counting its calls in ``.calls``."""

    def wrapper(*args):
        wrapper.calls += 1
        return fn(*args)

    wrapper.calls = 0
    return wrapper


def my_ddim_step(x_t, eps, abar_t, abar_prev):
    x0_hat = (x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
    return abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps


def my_cross_attention(q, k, v, key_mask):
    scores = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~key_mask[:, None, :], float("-inf"))
    return scores.softmax(-1) @ v


def stub(*args):
    raise NotImplementedError


def test_a_stub_is_not_used_and_says_so_in_one_line(capsys):
    use(ddim_step=stub)
    out = capsys.readouterr().out
    assert pick("ddim_step") is None
    assert out == "↩ your ddim_step is not written yet: the cells below run the course's version\n"


def test_a_wrong_answer_is_refused_with_the_checkers_diagnosis(capsys):
    use(guidance=lambda c, u, w: c + w * (c - u))  # (1 + w)·ε(c) − w·ε(∅) with the slide's w: not the slide's formula
    out = capsys.readouterr().out
    assert pick("guidance") is None and out.startswith("↩ your guidance is not ready (")


def test_the_message_follows_the_language(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_LANG", "fr")
    use(ddim_step=stub)
    use(ddim_step=my_ddim_step)
    out = capsys.readouterr().out
    assert "votre fonction ddim_step n'est pas encore écrite : les cellules suivantes utilisent la version du cours" in out
    assert "▶ votre fonction ddim_step tourne désormais dans chaque pas de l'échantillonneur DDIM" in out


def test_your_ddim_step_runs_every_step_of_the_sampler():
    schedule = NoiseSchedule.from_betas(linear_betas(1000))
    model = lambda x, t: 0.1 * x + 1e-4 * t[:, None, None, None]  # noqa: E731
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    grid = spaced(1000, 10)
    course_x0 = ddim(model, x_T, grid, schedule)
    mine = counting(my_ddim_step)
    use(ddim_step=mine)
    assert pick("ddim_step") is mine
    mine.calls = 0  # the checker's own call does not count
    assert torch.allclose(ddim(model, x_T, grid, schedule), course_x0, atol=1e-5)
    assert mine.calls == 10
    use()
    mine.calls = 0
    ddim(model, x_T, grid, schedule)
    assert mine.calls == 0 and pick("ddim_step") is None


def test_your_guidance_runs_in_guided_and_checkers_still_use_the_reference(capsys):
    mine = counting(guidance_combination)
    use(guidance=mine)
    mine.calls = 0
    model = lambda x, t, c, m: x * c.mean(dim=(1, 2))[:, None]  # noqa: E731  ε(c) = x, ε(∅) = 0
    context, null = torch.ones(2, 3, 4), torch.zeros(1, 3, 4)
    mask = torch.ones(2, 3, dtype=torch.bool)
    eps = guided(model, context, mask, null, mask[:1], 3.0)(torch.ones(2, 1), torch.tensor([5, 5]))
    assert mine.calls == 1 and torch.allclose(eps, torch.full((2, 1), 3.0))
    assert not check_guidance(lambda c, u, w: c + w * (c - u))  # a wrong answer still fails: not checked against yours


def test_your_attention_runs_in_every_attention_layer_of_the_unet():
    torch.manual_seed(0)
    unet = UNet(UNetConfig(channels=(16, 32), attention=(True, True), heads=2, context_dim=16, groups=4)).eval()
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([10, 500])
    context, context_mask = torch.randn(2, 5, 16), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        expected = unet(x, t, context, context_mask)
        mine = counting(my_cross_attention)
        use(cross_attention=mine)
        mine.calls = 0
        actual = unet(x, t, context, context_mask)
    layers = sum(1 for m in unet.modules() if type(m).__name__ == "Attention")
    assert mine.calls == layers > 0
    assert torch.allclose(actual, expected, atol=1e-5)


def test_your_loss_and_noising_run_in_training_loss():
    abar = alphas_cumprod(linear_betas(1000))
    model = lambda x, t, cond=None: 0.5 * x  # noqa: E731
    x0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    expected = training_loss(model, x0, abar, generator=torch.Generator().manual_seed(1))
    noising = counting(q_sample)
    use(q_sample=noising)
    noising.calls = 0
    assert torch.allclose(training_loss(model, x0, abar, generator=torch.Generator().manual_seed(1)), expected)
    assert noising.calls == 1

    def my_epsilon_loss(model, x0, t, eps, alphas_cumprod):
        return (eps - model(q_sample(x0, t, eps, alphas_cumprod), t)).square().mean()

    loss = counting(my_epsilon_loss)
    use(epsilon_loss=loss)
    loss.calls = 0
    assert torch.allclose(training_loss(model, x0, abar, generator=torch.Generator().manual_seed(1)), expected)
    assert loss.calls == 1


def test_use_refuses_what_it_cannot_place():
    with pytest.raises(ValueError, match="use\\(\\) has no place for 'ddim'"):
        use(ddim=my_ddim_step)
    with pytest.raises(TypeError, match="needs a function, got int"):
        use(ddim_step=3)


def test_use_with_nothing_restores_the_course_and_names_what_it_undid(capsys):
    use(ddim_step=my_ddim_step, guidance=guidance_combination)
    assert set(yours.in_use()) == {"ddim_step", "guidance"}
    capsys.readouterr()
    use()
    assert yours.in_use() == {} and "instead of your ddim_step, guidance" in capsys.readouterr().out


def test_choose_takes_yours_when_checked_and_the_course_otherwise(capsys):
    from course.checks.samplers import check_ddim_step

    assert choose("ddim_step", my_ddim_step, check_ddim_step, stub) is my_ddim_step
    assert capsys.readouterr().out == "▶ the cells below run your ddim_step\n"
    assert choose("ddim_step", stub, check_ddim_step, my_ddim_step) is my_ddim_step
    out = capsys.readouterr().out
    assert out == "↩ your ddim_step is not written yet: the cells below run the course's version\n"


def test_a_loop_waiting_for_an_unfinished_step_says_which(capsys):
    from course.checks.samplers import check_ddim_sampler
    from course.samplers import SOLVERS

    def my_ddim_sampler(model, x, grid, schedule):
        for t, t_prev in zip(grid[:-1], grid[1:]):
            x = stub(x, model(x, t), schedule.abar(t), schedule.abar(t_prev))
        return x

    assert choose("ddim_sampler", my_ddim_sampler, check_ddim_sampler, SOLVERS["ddim"]) is SOLVERS["ddim"]
    assert capsys.readouterr().out == ("↩ your ddim_sampler waits for another exercise (stub is not written yet): "
                                       "the cells below run the course's version\n")


def test_your_editing_functions_run_in_img2img_inpainting_and_instruction_editing():
    from course.img2img import img2img_grid
    from course.inpaint import blend
    from course.instruct import dual_guidance, dual_guided

    start = counting(lambda steps, strength: steps - min(int(steps * strength), steps))
    mix = counting(lambda z, z0, eps, m, abar: m * z + (1 - m) * (abar.sqrt() * z0 + (1 - abar).sqrt() * eps))
    mine = counting(dual_guidance)
    use(start_index=start, inpaint_blend=mix, dual_guidance=mine)
    start.calls = mix.calls = mine.calls = 0
    grid = spaced(1000, 10)
    assert torch.equal(img2img_grid(grid, 0.6), grid[4:]) and start.calls == 1
    schedule = NoiseSchedule.from_betas(linear_betas(1000))
    m = torch.zeros(1, 1, 2, 2)
    m[..., 0, 0] = 1
    z, z0, eps = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    out = blend(m, z0, eps, schedule)(0, z)
    assert mix.calls == 1 and torch.equal(out, m.expand_as(z))

    class Model(torch.nn.Module):
        def forward(self, z, t, context, mask, image):
            return z + image + context.mean(dim=(1, 2))[:, None, None, None]

    eps_fn = dual_guided(Model(), torch.ones(1, 3, 4), torch.zeros(1, 3, 4), torch.ones(1, 4, 2, 2), 2.0, 1.5)
    eps_fn(torch.zeros(1, 4, 2, 2), torch.tensor([10]))
    assert mine.calls == 1


def test_your_lora_forward_runs_in_every_lora_layer():
    from course import lora

    layer = torch.nn.Linear(6, 5, bias=False)
    wrapped = lora.LoRALinear(layer, 2, 4.0)
    torch.nn.init.normal_(wrapped.lora_B.weight)
    x = torch.randn(3, 6)
    expected = wrapped(x)
    mine = counting(lambda x, W, b, A, B, scale: x @ W.T + b + scale * (x @ A.T) @ B.T)
    use(lora_forward=mine)
    try:
        mine.calls = 0
        assert torch.allclose(wrapped(x), expected, atol=1e-6) and mine.calls == 1
        wrapped.merge()
        assert torch.allclose(wrapped(x), expected, atol=1e-5) and mine.calls == 1  # merged: the base layer holds ΔW
    finally:
        use()
