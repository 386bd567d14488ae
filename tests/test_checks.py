"""Each checker accepts the reference, rejects a stub and a wrong answer, and says why."""

import math

import torch

from course.checks.core import diagnose
from course.checks.forward import check_cosine_alphas_cumprod, check_q_sample
from course.checks.tour import check_to_signed
from course.forward import q_sample
from course.images import from_uint8
from course.schedules import cosine_alphas_cumprod


def stub(*args):
    raise NotImplementedError


def ok(result):
    return result.passed and result.message.startswith("✅")


def test_q_sample_check(capsys):
    assert ok(check_q_sample(q_sample))
    assert "✅ q_sample: correct" in capsys.readouterr().out  # the message is printed, not only returned

    stubbed = check_q_sample(stub)
    assert not stubbed.passed and stubbed.not_implemented and "not implemented yet" in stubbed.message

    def off_by_one(x0, t, eps, abar):
        return q_sample(x0, t - 1, eps, abar)

    assert "off-by-one" in check_q_sample(off_by_one).message
    assert "sign" in check_q_sample(lambda x0, t, eps, abar: -q_sample(x0, t, eps, abar)).message

    def no_sqrt(x0, t, eps, abar):
        a = abar[t].view(-1, 1, 1, 1)
        return a * x0 + (1 - a) * eps

    assert "square roots are missing" in check_q_sample(no_sqrt).message

    def no_view(x0, t, eps, abar):
        return abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * eps

    message = check_q_sample(no_view).message
    assert message.startswith("❌") and "RuntimeError" in message and "(B, 1, 1, 1)" in message
    assert "wrong dtype" in check_q_sample(lambda *a: q_sample(*a).double()).message
    assert "wrong shape" in check_q_sample(lambda *a: q_sample(*a)[:, 0]).message
    assert "return" in check_q_sample(lambda *a: None).message


def test_cosine_check():
    assert ok(check_cosine_alphas_cumprod(cosine_alphas_cumprod))
    assert check_cosine_alphas_cumprod(stub).not_implemented

    def unnormalised(T, s):
        t = torch.arange(T + 1) / T
        return torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2

    assert "division by f(0)" in check_cosine_alphas_cumprod(unnormalised).message
    too_short = check_cosine_alphas_cumprod(lambda T, s: cosine_alphas_cumprod(T, s)[:-1])
    assert "wrong shape" in too_short.message and "T + 1" in too_short.message
    hard_coded = check_cosine_alphas_cumprod(lambda T, s: cosine_alphas_cumprod(1000, 0.008))
    assert not hard_coded.passed and "T=50" in hard_coded.message


def test_to_signed_check():
    assert ok(check_to_signed(from_uint8))
    assert check_to_signed(stub).not_implemented
    to_unit = lambda im: torch.from_numpy(im).permute(2, 0, 1).float() / 255  # noqa: E731
    assert "[0, 1], not [−1, 1]" in check_to_signed(to_unit).message
    channels_last = lambda im: torch.from_numpy(im).float() / 127.5 - 1  # noqa: E731
    assert "wrong shape" in check_to_signed(channels_last).message


def test_diagnose_names_the_problem():
    expected = torch.arange(6.0)
    assert diagnose("f", expected.clone(), expected) is None
    assert "expected a torch.Tensor" in diagnose("f", [0, 1, 2], expected).message
    assert "shifted one index later" in diagnose("f", torch.tensor([9.0, 0, 1, 2, 3, 4]), expected).message
    assert "shifted one index earlier" in diagnose("f", torch.tensor([1.0, 2, 3, 4, 5, 9]), expected).message
    wrong = expected.clone()
    wrong[4] = 7.5
    message = diagnose("f", wrong, expected).message
    assert "index [4]" in message and "got 7.5" in message and "1 of 6" in message
    nan = expected.clone()
    nan[2] = float("nan")
    assert "nan at index [2]" in diagnose("f", nan, expected).message
    assert "wrong device" in diagnose("f", torch.empty(6, device="meta"), expected).message


def test_exceptions_become_one_line():
    def broken(*args):
        return {}["missing"]

    result = check_q_sample(broken)
    assert not result.passed and "KeyError" in result.message and "\n" not in result.message
    assert "expected a function" in check_q_sample(42).message
