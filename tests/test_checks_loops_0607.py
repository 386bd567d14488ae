"""Lessons 06–07: the DDIM step's named mistakes, the DDIM loop over a grid, the guided text-to-image loop, the
Ho & Salimans guidance convention; one test per row, in both languages where the message is new."""

from __future__ import annotations

import pytest
import torch

from course.checks.guidance import check_guidance, check_guided_sampling
from course.checks.samplers import check_ddim_sampler, check_ddim_step
from course.grids import spaced
from course.noise_schedule import NoiseSchedule
from course.samplers import ddim, ddim_step, ddim_update, sample
from course.schedules import get_betas


@pytest.fixture(autouse=True)
def english(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "en")


def says(result, fragment):
    return not result.passed and fragment in result.message and "\n" not in result.message


def x0(x, e, a):
    return (x - (1 - a).sqrt() * e) / a.sqrt()


def step(x, e, a, ap):
    return ap.sqrt() * x0(x, e, a) + (1 - ap).sqrt() * e


DDIM_STEP_ROWS = {
    "a sign error in x̂_0": lambda x, e, a, ap: ap.sqrt() * ((x + (1 - a).sqrt() * e) / a.sqrt()) + (1 - ap).sqrt() * e,
    "x̂_0 is not divided by √ᾱ_t": lambda x, e, a, ap: ap.sqrt() * (x - (1 - a).sqrt() * e) + (1 - ap).sqrt() * e,
    "uses the noise level of t": lambda x, e, a, ap: ap.sqrt() * x0(x, e, a) + (1 - a).sqrt() * e,
    "jumps straight to t = 0": lambda x, e, a, ap: x0(x, e, a),
}


@pytest.mark.parametrize("fragment", list(DDIM_STEP_ROWS))
def test_ddim_step_names_the_mistake(fragment):
    assert says(check_ddim_step(DDIM_STEP_ROWS[fragment]), fragment)


def test_ddim_step_mistakes_in_french(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert says(check_ddim_step(DDIM_STEP_ROWS["a sign error in x̂_0"]), "erreur de signe dans x̂_0")
    assert says(check_ddim_step(DDIM_STEP_ROWS["jumps straight to t = 0"]), "on saute directement à t = 0")


def test_guidance_recognises_ho_and_salimans_convention(monkeypatch):
    theirs = lambda c, u, w: (1 + w) * c - w * u  # noqa: E731
    assert says(check_guidance(theirs), "Ho & Salimans' (2022) convention") and "one less" in check_guidance(theirs).message
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert says(check_guidance(theirs), "la convention de Ho & Salimans (2022)")


# ----------------------------------------------------------------------------- the DDIM loop (lesson 06)


def loop(model, x, pairs, schedule, at=lambda t, s: t, update=step):
    for t, s in pairs:
        x = update(x, model(x, at(t, s)), schedule.abar(t), schedule.abar(s))
    return x


def right_sampler(model, x, grid, schedule):
    return loop(model, x, zip(grid[:-1], grid[1:]), schedule)


SAMPLER_ROWS = {
    "asked at t_prev": lambda m, x, g, s: loop(m, x, zip(g[:-1], g[1:]), s, at=lambda t, t_prev: t_prev),
    "stops one step early": lambda m, x, g, s: loop(m, x, zip(g[:-2], g[1:-1]), s),
    "x is never updated": lambda m, x, g, s: [loop(m, x, zip(g[:-1], g[1:]), s), x][1],
    "the step number i": lambda m, x, g, s: _by_index(m, x, g, s),
    "swapped in the step": lambda m, x, g, s: loop(m, x, zip(g[:-1], g[1:]), s, update=lambda x_, e, a, ap: step(x_, e, ap, a)),
    "time runs forward": lambda m, x, g, s: right_sampler(m, x, g.flip(0), s),
}


def _by_index(model, x, grid, schedule):
    for i in range(len(grid) - 1):
        x = step(x, model(x, i), schedule.abar(grid[i]), schedule.abar(grid[i + 1]))
    return x


def test_ddim_sampler_accepts_the_loop_and_refuses_a_stub():
    assert check_ddim_sampler(right_sampler).passed

    def stub(model, x, grid, schedule):
        raise NotImplementedError

    assert check_ddim_sampler(stub).not_implemented


@pytest.mark.parametrize("fragment", list(SAMPLER_ROWS))
def test_ddim_sampler_names_the_mistake(fragment):
    assert says(check_ddim_sampler(SAMPLER_ROWS[fragment]), fragment)


def test_ddim_sampler_in_french(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert check_ddim_sampler(right_sampler).message.startswith("✅ ddim_sampler : correct")
    assert says(check_ddim_sampler(SAMPLER_ROWS["stops one step early"]), "la boucle s'arrête un pas trop tôt")


def test_a_hand_written_solver_runs_through_sample_and_equals_the_course_ddim():
    schedule = NoiseSchedule.from_betas(get_betas("scaled_linear", 1000))
    model = lambda x, t: 0.1 * x + 1e-4 * t.to(x.dtype)[:, None]  # noqa: E731  t arrives as one instant per sample
    x_T = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    ours = sample(right_sampler, model, x_T, schedule, 10)
    assert torch.allclose(ours, sample("ddim", model, x_T, schedule, 10), atol=1e-5)
    assert torch.allclose(ours, ddim(model, x_T, spaced(1000, 10), schedule), atol=1e-5)


def test_ddim_update_is_the_course_ddim_step():
    abar = NoiseSchedule.from_betas(get_betas("scaled_linear", 1000)).alphas_cumprod
    x, e = torch.randn(2, 3), torch.randn(2, 3)
    assert torch.allclose(ddim_update(x, e, abar[700], abar[300]), ddim_step(x, 700, 300, e, abar)[0], atol=1e-6)


# ----------------------------------------------------------------------------- the guided loop (lesson 07)


def guided_loop(unet, c, m, n, nm, z, grid, schedule, w, pairs=None, at=lambda t, s: t, mix=lambda ec, eu, w: eu + w * (ec - eu),
                masks=True):
    pairs = list(zip(grid[:-1], grid[1:])) if pairs is None else pairs
    for t, s in pairs:
        ec, eu = unet(z, at(t, s), c, m if masks else None), unet(z, at(t, s), n, nm if masks else None)
        z = ddim_update(z, mix(ec, eu, w), schedule.abar(t), schedule.abar(s))
    return z


LOOP_ROWS = {
    "the guided ε̃ equals ε(c)": lambda u, c, m, n, nm, z, g, s, w: guided_loop(u, c, m, c, m, z, g, s, w),
    "swapped in the guidance": lambda *a: guided_loop(*a, mix=lambda ec, eu, w: ec + w * (eu - ec)),
    "masks are not passed": lambda *a: guided_loop(*a, masks=False),
    "asked at t_prev": lambda *a: guided_loop(*a, at=lambda t, s: s),
    "got the prompt's mask": lambda u, c, m, n, nm, z, g, s, w: guided_loop(u, c, m, n, m, z, g, s, w),
    "stops one step early": lambda u, c, m, n, nm, z, g, s, w: guided_loop(u, c, m, n, nm, z, g, s, w, pairs=list(zip(g[:-2], g[1:-1]))),
}


def test_guided_sampling_accepts_the_loop_and_refuses_a_stub():
    assert check_guided_sampling(guided_loop).passed

    def stub(*args):
        raise NotImplementedError

    assert check_guided_sampling(stub).not_implemented


@pytest.mark.parametrize("fragment", list(LOOP_ROWS))
def test_guided_sampling_names_the_mistake(fragment):
    assert says(check_guided_sampling(LOOP_ROWS[fragment]), fragment)


def test_guided_sampling_in_french(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert says(check_guided_sampling(LOOP_ROWS["masks are not passed"]), "les masques ne sont pas transmis au U-Net")


def test_an_error_inside_torch_is_reported_at_the_learners_line():
    from course.checks.unet import check_cross_attention

    def mine(q, k, v, key_mask):
        weights = torch.nn.functional.softmax(q @ k.transpose(-2, -1), dim=3)  # no axis 3: raised inside torch
        return weights @ v

    message = check_cross_attention(mine).message
    assert "your code raised IndexError" in message and "functional.py" not in message
    assert "`weights = torch.nn.functional.softmax(q @ k.transpose(-2, -1), dim=3)" in message, message


def test_the_real_unets_keyword_passes_and_instants_for_abar_are_named():
    def by_keyword(unet, c, m, n, nm, z, grid, schedule, w):
        for t, t_prev in zip(grid[:-1], grid[1:]):
            eps_c, eps_u = unet(z, t, c, context_mask=m), unet(z, t, n, context_mask=nm)
            z = ddim_update(z, eps_u + w * (eps_c - eps_u), schedule.abar(t), schedule.abar(t_prev))
        return z

    assert check_guided_sampling(by_keyword).passed

    def instants(unet, c, m, n, nm, z, grid, schedule, w):
        for t, t_prev in zip(grid[:-1], grid[1:]):
            eps_c, eps_u = unet(z, t, c, m), unet(z, t, n, nm)
            z = ddim_update(z, eps_u + w * (eps_c - eps_u), t, t_prev)
        return z

    assert says(check_guided_sampling(instants), "not the instants")


def test_calling_a_module_list_and_an_unfinished_step_are_named(monkeypatch):
    from course.checks.unet import check_down_level

    def calls_the_list(level, h, emb, context, mask):
        for resnet in level.resnets:
            h = resnet(h, emb)
        return level.downsamplers(h), [h]

    assert says(check_down_level(calls_the_list), "a list of modules (nn.ModuleList)")

    def my_ddim_step(*args):
        raise NotImplementedError

    def waits(model, x, grid, schedule):
        return my_ddim_step(x, model(x, grid[0]), schedule.abar(grid[0]), schedule.abar(grid[1]))

    result = check_ddim_sampler(waits)
    assert result.not_implemented and result.waiting_for == "my_ddim_step" and "calls my_ddim_step, which is not written yet" in result.message
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert "votre code appelle my_ddim_step, qui n'est pas encore écrit" in check_ddim_sampler(waits).message
