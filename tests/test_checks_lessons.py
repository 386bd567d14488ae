"""Every exercise checker of lessons 00–10, on what learners actually write.

For each checker: (a) an unfinished exercise (the stub ``raise NotImplementedError``, or a body that
returns nothing) gets the "not implemented yet" feedback, never a crash; (b) typical mistakes, written
the way a learner would write them, each get a message naming the mistake; (c) the lessons' solutions
(and the ``course`` functions) pass. Checkers speak English; the keywords asserted are from their messages.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cosine_mistakes
from course.checks.clip import check_contrastive_loss, check_similarity
from course.checks.composition import check_excite_loss, check_relative_distance, check_wilson
from course.checks.core import CheckResult, call, diagnose, failed, passed, report, run
from course.checks.ddpm import check_epsilon_loss, check_p_sample_step
from course.checks.forward import check_cosine_alphas_cumprod, check_q_sample
from course.checks.guidance import check_guidance
from course.checks.latent import check_kl_divergence
from course.checks.samplers import check_ddim_step, check_euler_step
from course.checks.tour import check_to_signed
from course.checks.unet import check_cross_attention, check_resblock
from course.ddpm import p_sample_step, posterior_variance
from course.forward import q_sample


def stub(*args):
    raise NotImplementedError


def ok(result):
    return isinstance(result, CheckResult) and result.passed and result.message.startswith("✅")


def wrong(result, *keywords):
    """The check failed with a one-line ❌ message containing every keyword."""
    assert isinstance(result, CheckResult) and not result.passed, result
    assert result.message.startswith("❌") and "\n" not in result.message, result.message
    for keyword in keywords:
        assert keyword in result.message, f"{keyword!r} not in {result.message!r}"
    return True


def _all_checkers() -> list:
    """Every exercise checker: each ``check_*`` function of the modules of course.checks (found, not listed)."""
    import importlib
    import inspect
    import pkgutil

    import course.checks

    found = []
    for info in pkgutil.iter_modules(course.checks.__path__):
        module = importlib.import_module(f"course.checks.{info.name}")
        found += [f for name, f in inspect.getmembers(module, inspect.isfunction)
                  if name.startswith("check_") and f.__module__ == module.__name__]
    return sorted(found, key=lambda f: f.__name__)


ALL_CHECKERS = _all_checkers()


def test_every_checker_is_found():
    assert len(ALL_CHECKERS) >= 25 and check_ddim_step in ALL_CHECKERS and check_excite_loss in ALL_CHECKERS


# ----------------------------------------------------------------------------- (a) unfinished exercises


@pytest.mark.parametrize("checker", ALL_CHECKERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "unfinished", [stub, lambda *a: None, lambda *a: ...], ids=["raise NotImplementedError", "returns None", "returns ..."]
)
def test_an_unfinished_exercise_is_not_implemented_yet(checker, unfinished, capsys):
    result = checker(unfinished)
    assert not result.passed and result.not_implemented and result.message.startswith("⏳")
    assert "not implemented yet" in result.message or "not finished yet" in result.message
    assert capsys.readouterr().out.strip() == result.message  # printed once, so it shows in the notebook


@pytest.mark.parametrize("checker", ALL_CHECKERS, ids=lambda c: c.__name__)
def test_not_a_function_and_a_crash_are_one_line(checker):
    wrong(checker(42), "expected a function, got int")
    wrong(checker(lambda *a: 1 / 0), "ZeroDivisionError")


# ----------------------------------------------------------------------------- lesson 00


def to_signed(image):  # the lesson's solution
    x = torch.from_numpy(image).permute(2, 0, 1).float()  # (C, H, W)
    return x / 127.5 - 1


def test_to_signed():
    assert ok(check_to_signed(to_signed))
    chw = lambda im: torch.from_numpy(im).permute(2, 0, 1).float()  # noqa: E731
    assert wrong(check_to_signed(lambda im: chw(im) / 255), "[0, 1], not [−1, 1]")
    assert wrong(check_to_signed(lambda im: chw(im) / 255 - 0.5), "[−0.5, 0.5]", "127.5")
    assert wrong(check_to_signed(lambda im: chw(im) / 127.5), "[0, 2]", "subtract 1")
    assert wrong(check_to_signed(lambda im: torch.from_numpy(im).float() / 127.5 - 1), "wrong shape", ".permute(2, 0, 1)")
    assert wrong(check_to_signed(lambda im: torch.from_numpy(im).reshape(3, 5, 7).float() / 127.5 - 1), "reshape/view", "permute")
    assert wrong(check_to_signed(lambda im: torch.from_numpy(im / 127.5 - 1).permute(2, 0, 1)), "wrong dtype", "float32")
    overflow = lambda im: (torch.from_numpy(im).permute(2, 0, 1) * 2).float() / 255 - 1  # noqa: E731
    assert wrong(check_to_signed(overflow), "overflowed", ".float() first")


# ----------------------------------------------------------------------------- lesson 01


def my_q_sample(x0, t, eps, alphas_cumprod):  # the lesson's solution
    abar_t = alphas_cumprod[t].view(-1, 1, 1, 1)  # (B, 1, 1, 1)
    return abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * eps


def test_q_sample():
    assert ok(check_q_sample(my_q_sample)) and ok(check_q_sample(q_sample))

    def formula_of(formula):
        return lambda x0, t, eps, abar: formula(abar[t].view(-1, 1, 1, 1), x0, eps)

    assert wrong(check_q_sample(lambda x0, t, eps, abar: my_q_sample(x0, t - 1, eps, abar)), "off-by-one")
    assert wrong(check_q_sample(formula_of(lambda a, x0, eps: a * x0 + (1 - a) * eps)), "square roots are missing")
    assert wrong(check_q_sample(formula_of(lambda a, x0, eps: a.sqrt() * x0 + (1 - a) * eps)), "square root on 1 − ᾱ_t")
    assert wrong(check_q_sample(formula_of(lambda a, x0, eps: (1 - a).sqrt() * x0 + a.sqrt() * eps)), "swapped")
    assert wrong(check_q_sample(formula_of(lambda a, x0, eps: a.sqrt() * x0 + (1 - a.sqrt()) * eps)), "covers the whole 1 − ᾱ_t")
    assert wrong(check_q_sample(formula_of(lambda a, x0, eps: a.sqrt() * x0 - (1 - a).sqrt() * eps)))  # ε's sign: a wrong value
    no_view = lambda x0, t, eps, abar: abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * eps  # noqa: E731
    assert wrong(check_q_sample(no_view), "RuntimeError", "(B, 1, 1, 1)")
    scalar_math = lambda x0, t, eps, abar: math.sqrt(abar[t]) * x0  # noqa: E731
    assert wrong(check_q_sample(scalar_math), "tensor versions")
    assert wrong(check_q_sample(lambda *a: my_q_sample(*a).double()), "wrong dtype", ".to(x0)")


def my_cosine_alphas_cumprod(T, s=0.008):  # the lesson's solution
    u = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return f / f[0]


def test_cosine_alphas_cumprod():
    assert ok(check_cosine_alphas_cumprod(my_cosine_alphas_cumprod))
    assert ok(check_cosine_alphas_cumprod(lambda T, s: my_cosine_alphas_cumprod(T, s).float()))  # float32 is fine

    for fn, english, _ in cosine_mistakes.MISTAKES:
        assert wrong(check_cosine_alphas_cumprod(fn), *english)
    assert wrong(check_cosine_alphas_cumprod(lambda T, s: my_cosine_alphas_cumprod(1000, s)), "hard-coded")
    scalar_math = lambda T, s: math.cos(torch.arange(T + 1) / T)  # noqa: E731
    assert wrong(check_cosine_alphas_cumprod(scalar_math), "tensor versions")


# ----------------------------------------------------------------------------- lesson 02


def my_epsilon_loss(model, x0, t, eps, alphas_cumprod):  # the lesson's solution
    x_t = q_sample(x0, t, eps, alphas_cumprod)
    return (eps - model(x_t, t)).square().mean()


def test_epsilon_loss():
    assert ok(check_epsilon_loss(my_epsilon_loss))
    assert ok(check_epsilon_loss(lambda m, x0, t, eps, a: F.mse_loss(m(q_sample(x0, t, eps, a), t), eps)))
    x_t = lambda x0, t, eps, a: q_sample(x0, t, eps, a)  # noqa: E731
    assert wrong(check_epsilon_loss(lambda m, x0, t, eps, a: m(x_t(x0, t, eps, a), t).square().mean()), "without the target ε")
    assert wrong(check_epsilon_loss(lambda m, x0, t, eps, a: (eps - m(x0, t)).square().mean()), "x_0 instead of the noised x_t")
    assert wrong(check_epsilon_loss(lambda m, x0, t, eps, a: (eps - m(x_t(x0, t, eps, a), t)).square().sum()), "a sum instead of a mean")
    assert wrong(check_epsilon_loss(lambda m, x0, t, eps, a: (eps + m(x_t(x0, t, eps, a), t)).square().mean()), "ε + ε_θ")
    rms = lambda m, x0, t, eps, a: (eps - m(x_t(x0, t, eps, a), t)).square().mean().sqrt()  # noqa: E731
    assert wrong(check_epsilon_loss(rms), "square root of the mean")
    off_by_one = lambda m, x0, t, eps, a: (eps - m(x_t(x0, t - 1, eps, a), t)).square().mean()  # noqa: E731
    assert wrong(check_epsilon_loss(off_by_one), "t − 1")
    no_mean = lambda m, x0, t, eps, a: (eps - m(x_t(x0, t, eps, a), t)).square()  # noqa: E731
    assert wrong(check_epsilon_loss(no_mean), "expected one number", "take the mean")


def my_p_sample_step(x_t, t, eps_pred, z, betas, alphas_cumprod):  # the lesson's solution
    shape = (-1,) + (1,) * (x_t.dim() - 1)  # (B, 1, …, 1)
    b, a = betas[t].view(shape).to(x_t), alphas_cumprod[t].view(shape).to(x_t)
    mean = (x_t - b / (1 - a).sqrt() * eps_pred) / (1 - b).sqrt()
    return mean + (t > 1).view(shape).to(x_t) * b.sqrt() * z


def _step(mean_fn=None, noise_fn=None):
    """A p_sample_step with one part replaced: ``mean_fn(x_t, b, a, eps)``, ``noise_fn(b, t, z, betas, abar)``."""

    def fn(x_t, t, eps_pred, z, betas, abar):
        b, a = betas[t].view(-1, 1, 1, 1), abar[t].view(-1, 1, 1, 1)
        mean = (mean_fn or (lambda x, b, a, e: (x - b / (1 - a).sqrt() * e) / (1 - b).sqrt()))(x_t, b, a, eps_pred)
        noise = (noise_fn or (lambda b, t, z, betas, abar: (t > 1).view(-1, 1, 1, 1) * b.sqrt() * z))(b, t, z, betas, abar)
        return mean + noise

    return fn


def test_p_sample_step():
    assert ok(check_p_sample_step(my_p_sample_step)) and ok(check_p_sample_step(p_sample_step))
    assert ok(check_p_sample_step(_step()))
    assert wrong(check_p_sample_step(_step(noise_fn=lambda b, t, z, *_: b.sqrt() * z)), "noise was added at the last step")
    assert wrong(check_p_sample_step(_step(noise_fn=lambda b, t, z, *_: 0 * z)), "σ_t·z is missing")
    assert wrong(check_p_sample_step(_step(mean_fn=lambda x, b, a, e: (x - b / (1 - a).sqrt() * e) / a.sqrt())), "√ᾱ_t instead of √α_t")
    assert wrong(check_p_sample_step(_step(mean_fn=lambda x, b, a, e: (x - b / (1 - a) * e) / (1 - b).sqrt())), "lacks its square root")
    assert wrong(check_p_sample_step(_step(mean_fn=lambda x, b, a, e: (x + b / (1 - a).sqrt() * e) / (1 - b).sqrt())), "added instead of subtracted")
    tilde = lambda b, t, z, betas, abar: (t > 1).view(-1, 1, 1, 1) * posterior_variance(t, betas, abar).sqrt().view(-1, 1, 1, 1) * z  # noqa: E731
    assert wrong(check_p_sample_step(_step(noise_fn=tilde)), "√β̃_t")
    assert wrong(check_p_sample_step(_step(noise_fn=lambda b, t, z, *_: (t > 1).view(-1, 1, 1, 1) * b * z)), "noise scale is √β_t")

    def no_view(x_t, t, eps_pred, z, betas, abar):
        return (x_t - betas[t] / (1 - abar[t]).sqrt() * eps_pred) / (1 - betas[t]).sqrt()

    assert wrong(check_p_sample_step(no_view), "RuntimeError", "shape (B,)")


# ----------------------------------------------------------------------------- lesson 03


def my_similarity(image_features, text_features, logit_scale):  # the lesson's solution
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    return logit_scale.exp() * image_features @ text_features.T


def test_similarity():
    assert ok(check_similarity(my_similarity))
    n = F.normalize
    assert wrong(check_similarity(lambda i, t, s: s.exp() * i @ t.T), "not normalised")
    assert wrong(check_similarity(lambda i, t, s: s * n(i, dim=-1) @ n(t, dim=-1).T), "factor is exp(logit_scale)")
    assert wrong(check_similarity(lambda i, t, s: n(i, dim=-1) @ n(t, dim=-1).T), "temperature factor exp(logit_scale) is missing")
    assert wrong(check_similarity(lambda i, t, s: s.exp() * n(i, dim=0) @ n(t, dim=0).T), "dim=0")
    transposed = lambda i, t, s: my_similarity(t, i, s)  # texts × images  # noqa: E731
    assert wrong(check_similarity(transposed), "wrong shape", "(5, 6)", "transpose the texts")
    assert wrong(check_similarity(lambda i, t, s: s.exp() * n(i, dim=-1) @ n(t, dim=-1)), "RuntimeError")  # no .T


def my_contrastive_loss(logits):  # the lesson's solution
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def test_contrastive_loss():
    assert ok(check_contrastive_loss(my_contrastive_loss))
    targets = lambda logits: torch.arange(logits.shape[0])  # noqa: E731
    assert wrong(check_contrastive_loss(lambda lg: F.cross_entropy(lg, targets(lg))), "only the image→text direction")
    assert wrong(check_contrastive_loss(lambda lg: F.cross_entropy(lg.T, targets(lg))), "only the text→image direction")
    both = lambda lg: F.cross_entropy(lg, targets(lg)) + F.cross_entropy(lg.T, targets(lg))  # noqa: E731
    assert wrong(check_contrastive_loss(both), "summed, not averaged")
    per_pair = lambda lg: (F.cross_entropy(lg, targets(lg), reduction="none") + F.cross_entropy(lg.T, targets(lg), reduction="none")) / 2  # noqa: E731
    assert wrong(check_contrastive_loss(per_pair), "expected one number")
    assert wrong(check_contrastive_loss(lambda lg: F.cross_entropy(lg, torch.zeros(6, dtype=torch.long))), "wrong value")


# ----------------------------------------------------------------------------- lesson 04


def my_resblock(block, x, emb):  # the lesson's solution
    h = block.conv1(F.silu(block.norm1(x)))
    h = h + block.time_emb_proj(F.silu(emb))[:, :, None, None]
    h = block.conv2(F.silu(block.norm2(h)))
    return h + block.conv_shortcut(x)


def test_resblock():
    assert ok(check_resblock(my_resblock))
    assert ok(check_resblock(lambda block, x, emb: block(x, emb)))

    def resblock(skip=True, emb_silu=True, emb_on=True, first=True):
        def fn(block, x, emb):
            h = block.conv1(F.silu(block.norm1(x))) if first else block.conv1(x)
            if emb_on:
                h = h + block.time_emb_proj(F.silu(emb) if emb_silu else emb)[:, :, None, None]
            h = block.conv2(F.silu(block.norm2(h)))
            return h + block.conv_shortcut(x) if skip else h

        return fn

    assert wrong(check_resblock(resblock(skip=False)), "skip connection is missing")
    assert wrong(check_resblock(resblock(emb_on=False)), "time embedding is missing")
    assert wrong(check_resblock(resblock(emb_silu=False)), "SiLU was not applied")
    assert wrong(check_resblock(resblock(first=False)), "first normalisation/activation is missing")

    def no_broadcast(block, x, emb):
        return block.conv1(F.silu(block.norm1(x))) + block.time_emb_proj(F.silu(emb))

    assert wrong(check_resblock(no_broadcast), "RuntimeError", "[:, :, None, None]")


def my_cross_attention(q, k, v, key_mask):  # the lesson's solution
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, N, L)
    scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
    return scores.softmax(dim=-1) @ v  # (B, N, d)


def test_cross_attention():
    assert ok(check_cross_attention(my_cross_attention))

    def attn(scale=True, mask_value=float("-inf"), dim=-1, use_mask=True):
        def fn(q, k, v, key_mask):
            scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1)
            if use_mask:
                scores = scores.masked_fill(~key_mask[:, None, :], mask_value)
            return torch.nan_to_num(scores.softmax(dim=dim)) @ v

        return fn

    assert wrong(check_cross_attention(attn(use_mask=False)), "padding mask is ignored")
    assert wrong(check_cross_attention(attn(scale=False)), "not divided by √d")
    assert wrong(check_cross_attention(attn(dim=1)), "softmax runs over the queries")
    assert wrong(check_cross_attention(attn(dim=-2)), "softmax runs over the queries")
    assert wrong(check_cross_attention(attn(mask_value=0.0)), "set to 0 instead of −∞")
    no_transpose = lambda q, k, v, m: (q @ k / math.sqrt(q.shape[-1])).softmax(-1) @ v  # noqa: E731
    assert wrong(check_cross_attention(no_transpose), "RuntimeError")
    inverted = lambda q, k, v, m: my_cross_attention(q, k, v, ~m)  # the mask's meaning reversed  # noqa: E731
    assert wrong(check_cross_attention(inverted))
    assert wrong(check_cross_attention(lambda q, k, v, m: attn()(q, k, v, m).transpose(1, 2)), "wrong shape", "(B, N, d)")


# ----------------------------------------------------------------------------- lesson 05


def my_kl(mean, logvar):  # the lesson's solution
    per_value = 0.5 * (mean.square() + logvar.exp() - 1 - logvar)
    return per_value.flatten(1).sum(1).mean()


def test_kl_divergence():
    assert ok(check_kl_divergence(my_kl))
    per_value = lambda m, lv: 0.5 * (m.square() + lv.exp() - 1 - lv)  # noqa: E731
    assert wrong(check_kl_divergence(lambda m, lv: per_value(m, lv).mean()), "a mean over every value")
    assert wrong(check_kl_divergence(lambda m, lv: per_value(m, lv).sum()), "a sum over the batch as well")
    assert wrong(check_kl_divergence(lambda m, lv: (m.square() + lv.exp() - 1 - lv).flatten(1).sum(1).mean()), "factor ½ is missing")
    assert wrong(check_kl_divergence(lambda m, lv: (0.5 * (m.square() + lv - 1 - lv)).flatten(1).sum(1).mean()), "σ² = exp(logvar)")
    assert wrong(check_kl_divergence(lambda m, lv: (0.5 * (m.square() + lv.exp() - 1 + lv)).flatten(1).sum(1).mean()), "wrong sign")
    assert wrong(check_kl_divergence(lambda m, lv: -my_kl(m, lv)), "sign is flipped")
    assert wrong(check_kl_divergence(lambda m, lv: per_value(m, lv).flatten(1).sum(1)), "expected one number")


# ----------------------------------------------------------------------------- lesson 06


def my_ddim_step(x_t, eps, abar_t, abar_prev):  # the lesson's solution
    x0_hat = (x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
    return abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps


def test_ddim_step():
    assert ok(check_ddim_step(my_ddim_step))
    assert wrong(check_ddim_step(lambda x, e, a, ap: my_ddim_step(x, e, ap, a)), "swapped")
    x0 = lambda x, e, a: (x - (1 - a).sqrt() * e) / a.sqrt()  # noqa: E731
    assert wrong(check_ddim_step(lambda x, e, a, ap: ap.sqrt() * x0(x, e, a)), "ε term is missing")
    assert wrong(check_ddim_step(lambda x, e, a, ap: ap * ((x - (1 - a) * e) / a) + (1 - ap) * e), "square roots are missing")
    assert wrong(check_ddim_step(lambda x, e, a, ap: ap * x0(x, e, a) + (1 - ap).sqrt() * e), "multiplied by ᾱ_prev")
    assert wrong(check_ddim_step(lambda x, e, a, ap: x0(x, e, a)), "jumps straight to t = 0")  # returned x̂_0 itself


def test_euler_step():
    assert ok(check_euler_step(lambda y, eps, s, s_next: y + (s_next - s) * eps))  # the lesson's solution
    assert wrong(check_euler_step(lambda y, eps, s, s_next: y + (s - s_next) * eps), "wrong way")
    assert wrong(check_euler_step(lambda y, eps, s, s_next: y - eps), "step size is missing")
    assert wrong(check_euler_step(lambda y, eps, s, s_next: y + (s_next - s) * (y - s * eps)), "x̂_0 instead of ε")


# ----------------------------------------------------------------------------- lesson 07


def test_guidance():
    assert ok(check_guidance(lambda c, u, w: w * c + (1 - w) * u))  # the lesson's solution
    assert ok(check_guidance(lambda c, u, w: u + w * (c - u)))  # the other common form
    assert wrong(check_guidance(lambda c, u, w: w * u + (1 - w) * c), "swapped")
    assert wrong(check_guidance(lambda c, u, w: w * c), "(1 − w)·ε(∅) term is missing")
    assert wrong(check_guidance(lambda c, u, w: w * c - (1 - w) * u), "sign of the (1 − w)·ε(∅) term is flipped")
    assert wrong(check_guidance(lambda c, u, w: 7.5 * c + (1 - 7.5) * u), "(w = 3.0)")  # w hard-coded


# ----------------------------------------------------------------------------- lesson 10


def my_wilson(k, n, z=1.96):  # the lesson's solution
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def test_wilson():
    assert ok(check_wilson(my_wilson))
    normal = lambda k, n: (k / n - 1.96 * math.sqrt(k / n * (1 - k / n) / n), k / n + 1.96 * math.sqrt(k / n * (1 - k / n) / n))  # noqa: E731
    assert wrong(check_wilson(normal), "normal approximation")
    assert wrong(check_wilson(lambda k, n: (max(0, normal(k, n)[0]), min(1, normal(k, n)[1]))), "normal approximation")
    assert wrong(check_wilson(lambda k, n: my_wilson(k, n)[::-1]), "swapped")
    assert wrong(check_wilson(lambda k, n: k / n), "expected two numbers")
    assert wrong(check_wilson(lambda k, n: my_wilson(k, n, z=1.0)), "k = 7, n = 20")


def test_relative_distance():
    def mine(s, s2, where):  # the lesson's solution
        where = where.to(s.dtype)
        return ((s - s2).square().sum(-1) * where).sum() / (s.square().sum(-1) * where).sum()

    assert ok(check_relative_distance(mine))
    assert wrong(check_relative_distance(lambda s, s2, w: ((s - s2) ** 2).sum() / (s**2).sum()), "`where` is 0 were counted")
    assert wrong(check_relative_distance(lambda s, s2, w: (((s - s2) ** 2).sum(-1) * w).sum() / (s**2).sum()), "denominator")
    assert wrong(check_relative_distance(lambda s, s2, w: (((s - s2) ** 2).sum(-1) * w)), "one number")
    assert wrong(check_relative_distance(lambda s, s2, w: ((s - s2).norm(dim=-1) * w).sum() / (s.norm(dim=-1) * w).sum()), "squared norms")


def test_excite_loss():
    assert ok(check_excite_loss(lambda st, counts: torch.stack([(1 - st[b, :n]).amax() for b, n in enumerate(counts)])))
    assert wrong(check_excite_loss(lambda st, counts: torch.stack([(1 - st[b, :n]).mean() for b, n in enumerate(counts)])), "mean")
    assert wrong(check_excite_loss(lambda st, counts: torch.stack([(1 - st[b, :n]).amin() for b, n in enumerate(counts)])), "weakest")
    assert wrong(check_excite_loss(lambda st, counts: (1 - st).amax(1)), "unused columns")
    assert wrong(check_excite_loss(lambda st, counts: (1 - st).amax()), "wrong shape")


# ----------------------------------------------------------------------------- core


def test_core_call_and_run():
    assert passed("f").passed and bool(passed("f")) and not bool(failed("f", "why"))
    assert str(failed("f", "why")) == "❌ f: why" and passed("f", "detail").message == "✅ f: correct — detail"

    def body():
        call("f", lambda: {}["key"], error_hints={"key": "a hint"})

    result = run("f", body)
    assert wrong(result, "KeyError", "a hint", "line")
    assert run("f", lambda: call("f", lambda: None)).not_implemented
    assert call("f", lambda x: x + 1, 1) == 2


def test_report_prints_once(capsys):
    result = report(passed("f"))
    assert capsys.readouterr().out == "✅ f: correct\n" and result._ipython_display_() is None


def test_diagnose_shape_and_dtype_hints():
    expected = torch.zeros(2, 3, 4)
    assert "another order: a permute" in diagnose("f", torch.zeros(4, 3, 2), expected).message
    assert "same number of values: a reshape" in diagnose("f", torch.zeros(6, 4), expected).message
    assert "one element too many or too few" in diagnose("f", torch.zeros(5), torch.zeros(6)).message
    assert diagnose("f", torch.zeros(2), torch.zeros(3), shape_hint="a hint").message.endswith(". a hint")
    assert "expected torch.float32. use float" in diagnose("f", torch.zeros(2, dtype=torch.float64), torch.zeros(2), dtype_hint="use float").message
    assert "expected a floating-point tensor" in diagnose("f", torch.zeros(2, dtype=torch.long), torch.zeros(2), check_dtype=False).message
    assert diagnose("f", 2.0, torch.tensor(2.0)) is None  # a Python number is accepted for a 0-d answer
    inf = torch.tensor([0.0, float("inf")])
    assert "contains inf at index [1]" in diagnose("f", inf, torch.zeros(2)).message
    assert "looks like the sign is flipped" in diagnose("f", -torch.arange(1.0, 4.0), torch.arange(1.0, 4.0)).message
    mistakes = {"the named mistake": torch.ones(3)}
    assert "looks like the named mistake" in diagnose("f", torch.ones(3), torch.zeros(3), mistakes=mistakes).message


def test_checks_do_not_change_the_global_random_state():
    """A check in the middle of a notebook must not shift the learner's later random draws."""
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    np_before = np.random.get_state()[1].copy()
    for checker, answer in [(check_q_sample, my_q_sample), (check_cross_attention, my_cross_attention), (check_kl_divergence, my_kl)]:
        checker(answer)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert (np.random.get_state()[1] == np_before).all()
