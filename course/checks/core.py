"""What every checker shares: running the learner's code safely and diagnosing a wrong tensor.

A diagnosis names the first problem found, in this order: not implemented yet, an exception,
not a tensor, wrong shape, wrong dtype, wrong device, NaN/inf, then wrong values — where a
list of known mistakes (sign error, off-by-one, a missing square root, …) is tried before
reporting the first wrong index.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from course.language import tr

OK, FAIL, TODO = "✅", "❌", "⏳"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check. Truthy when passed; the message is what the learner reads."""

    passed: bool
    message: str
    not_implemented: bool = False
    waiting_for: str | None = None  # the learner's other, unfinished function this one calls

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """Show nothing: :func:`report` already printed the message (avoids printing it twice)."""


def report(result: CheckResult) -> CheckResult:
    """Print the message (so it shows even when the call is not a cell's last line) and return it."""
    print(result.message)
    return result


def passed(name: str, detail: str = "") -> CheckResult:
    return CheckResult(True, f"{OK} {name}" + tr(en=": correct", fr=" : correct") + (f" — {detail}" if detail else ""))


def failed(name: str, why: str) -> CheckResult:
    return CheckResult(False, f"{FAIL} {name}" + tr(en=": ", fr=" : ") + why)


def not_implemented(name: str) -> CheckResult:
    return CheckResult(
        False,
        f"{TODO} {name}" + tr(
            en=": not implemented yet — replace `raise NotImplementedError` with your code, then run the cell again.",
            fr=" : pas encore écrit — remplacez `raise NotImplementedError` par votre code, puis relancez la cellule.",
        ),
        not_implemented=True,
    )


def unfinished_inside(name: str, inner: str) -> CheckResult:
    """The exercise calls another of the learner's functions that is still a stub: say which one to finish first."""
    return CheckResult(False, f"{TODO} {name}" + tr(
        en=f": your code calls {inner}, which is not written yet — finish that exercise first, then run this cell again.",
        fr=f" : votre code appelle {inner}, qui n'est pas encore écrit — terminez d'abord cet exercice, puis relancez cette cellule."),
        not_implemented=True, waiting_for=inner)


class _Raised(Exception):
    """Carries a finished CheckResult out of :func:`call` when the learner's code raised."""

    def __init__(self, result: CheckResult):
        self.result = result


def _library_dirs() -> tuple[str, ...]:
    """Where library code lives: torch, the course package, the standard library, the installed packages."""
    paths = sysconfig.get_paths()
    dirs = {Path(torch.__file__).parent, Path(__file__).resolve().parents[1], Path(paths["stdlib"]), Path(paths["purelib"]), Path(paths["platlib"])}
    return tuple(str(d.resolve()) + os.sep for d in dirs)


def _learner_frame(frames: list[traceback.FrameSummary]) -> traceback.FrameSummary | None:
    """The deepest frame of the learner's own code (a notebook cell, their file), not torch's or the course's."""
    libraries = _library_dirs()
    for frame in reversed(frames):
        if not os.path.abspath(frame.filename).startswith(libraries):
            return frame
    return None


def call(name: str, fn: Callable[..., Any], *args: Any, error_hints: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """Call the learner's function; turn a stub or an exception into a one-line CheckResult.

    ``error_hints`` maps a fragment of an error message to advice appended when it appears.
    """
    if not callable(fn):
        raise _Raised(failed(name, tr(en=f"expected a function, got {type(fn).__name__}", fr=f"une fonction était attendue, reçu {type(fn).__name__}")))
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError as err:
        frames = traceback.extract_tb(err.__traceback__)[1:]  # [0] is this call
        while len(frames) > 1 and _learner_frame(frames[:1]) is None:  # a checker's own wrapper around the learner's function
            frames = frames[1:]
        if len(frames) <= 1:  # raised in the function's own body: the exercise is still a stub
            raise _Raised(not_implemented(name)) from None
        if _learner_frame(frames[-1:]) is not None:  # raised in another of the learner's functions, still a stub
            raise _Raised(unfinished_inside(name, frames[-1].name)) from None
        if frames[-1].name == "_forward_unimplemented":  # torch: calling a module that has no forward, e.g. an nn.ModuleList
            where = _learner_frame(frames)
            code = f" `{where.line.strip()}`" if where is not None and where.line else ""
            raise _Raised(failed(name, tr(
                en=f"your code calls a list of modules (nn.ModuleList){code}: call one of its elements, e.g. level.downsamplers[0](h)",
                fr=f"votre code appelle une liste de modules (nn.ModuleList){code} : appelez un de ses éléments, par exemple "
                   "level.downsamplers[0](h)"))) from None
        return _report_exception(name, err, error_hints)
    except Exception as err:  # the learner's bug: one line, with where it happened
        return _report_exception(name, err, error_hints)
    if out is None or out is Ellipsis:
        raise _Raised(
            CheckResult(False, f"{TODO} {name}" + tr(en=f": returned {out!r} — not finished yet, or a `return` is missing.",
                                                      fr=f" : a renvoyé {out!r} — pas encore fini, ou il manque un `return`."), True)
        )
    return out


def _report_exception(name: str, err: Exception, error_hints: dict[str, str] | None):
    """Raise the one-line CheckResult of an exception in the learner's code, at the learner's line."""
    frame = _learner_frame(traceback.extract_tb(err.__traceback__)[1:])  # [0] is the call in call()
    where = ""
    if frame is not None:
        code = (frame.line or "").strip()
        where = tr(en=f" (line {frame.lineno}", fr=f" (ligne {frame.lineno}") + (tr(en=": ", fr=" : ") + f"`{code}`)" if code else ")")
    advice = "".join(f" — {hint}" for fragment, hint in (error_hints or {}).items() if fragment in str(err))
    raise _Raised(failed(name, tr(en="your code raised", fr="votre code a levé") + f" {type(err).__name__}: {err}{where}{advice}")) from None


def run(name: str, body: Callable[[], CheckResult]) -> CheckResult:
    """Run a check body, turning a stub or an exception raised through :func:`call` into its result."""
    try:
        return report(body())
    except _Raised as raised:
        return report(raised.result)


def _fmt_index(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def diagnose(
    name: str,
    actual: Any,
    expected: torch.Tensor,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    mistakes: dict[str, torch.Tensor] | None = None,
    check_dtype: bool = True,
    shape_hint: str = "",
    dtype_hint: str = "",
) -> CheckResult | None:
    """Compare the learner's tensor with the reference; ``None`` when they agree.

    ``mistakes`` maps a description ("used ᾱ at t − 1: an off-by-one") to the tensor that mistake
    produces; a match is reported by name. A sign error is always tried.
    """
    if not isinstance(actual, torch.Tensor):
        if isinstance(actual, (int, float)) and expected.dim() == 0:
            actual = torch.tensor(actual, dtype=expected.dtype)
        else:
            return failed(name, tr(en=f"expected a torch.Tensor, got {type(actual).__name__}", fr=f"un torch.Tensor était attendu, reçu {type(actual).__name__}"))
    if actual.shape != expected.shape:
        why = tr(en=f"wrong shape: got {tuple(actual.shape)}, expected {tuple(expected.shape)}",
                 fr=f"mauvaise forme : reçu {tuple(actual.shape)}, attendu {tuple(expected.shape)}")
        if sorted(actual.shape) == sorted(expected.shape):
            why += tr(en=" (the same dimensions in another order: a permute is wrong or missing)",
                      fr=" (les mêmes dimensions dans un autre ordre : un permute est faux ou manquant)")
        elif actual.numel() == expected.numel():
            why += tr(en=" (same number of values: a reshape/view is wrong or missing)",
                      fr=" (le même nombre de valeurs : un reshape/view est faux ou manquant)")
        elif actual.dim() == expected.dim() == 1 and abs(actual.numel() - expected.numel()) == 1:
            why += tr(en=" (one element too many or too few: an off-by-one in a range?)",
                      fr=" (un élément de trop ou de moins : un décalage de un dans un range ?)")
        return failed(name, why + (f". {shape_hint}" if shape_hint else ""))
    if check_dtype and actual.dtype != expected.dtype:
        return failed(
            name,
            tr(en=f"wrong dtype: got {actual.dtype}, expected {expected.dtype}", fr=f"mauvais dtype : reçu {actual.dtype}, attendu {expected.dtype}")
            + (f". {dtype_hint}" if dtype_hint else ""),
        )
    if not check_dtype and not actual.is_floating_point() and expected.is_floating_point():
        return failed(name, tr(en=f"wrong dtype: got {actual.dtype}, expected a floating-point tensor",
                               fr=f"mauvais dtype : reçu {actual.dtype}, un tenseur à virgule flottante était attendu"))
    if actual.device != expected.device:
        return failed(name, tr(en=f"wrong device: got {actual.device}, expected {expected.device} (use .to(x.device))",
                               fr=f"mauvais device : reçu {actual.device}, attendu {expected.device} (utilisez .to(x.device))"))
    actual = actual.detach().to(expected.dtype)
    finite = torch.isfinite(actual)
    if not bool(finite.all()) and bool(torch.isfinite(expected).all()):
        index = tuple(int(i) for i in (~finite).nonzero()[0])
        return failed(name, tr(en=f"contains {actual[index].item()} at index {_fmt_index(index)} (a division by zero or a log/sqrt of a negative?)",
                               fr=f"contient {actual[index].item()} à l'indice {_fmt_index(index)} (une division par zéro, ou le log ou la racine d'un nombre négatif ?)"))
    close = torch.isclose(actual, expected, atol=atol, rtol=rtol)
    if bool(close.all()):
        return None
    sign = tr(en="the sign is flipped (a minus sign too many or missing)", fr="le signe est inversé (un signe moins en trop ou manquant)")
    candidates = {sign: -expected, **(mistakes or {})}
    for description, wrong in candidates.items():
        if wrong.shape == expected.shape and bool(torch.isclose(actual, wrong.to(actual.dtype), atol=atol, rtol=rtol).all()):
            return failed(name, tr(en="looks like ", fr="erreur typique — ") + description)
    if expected.dim() == 1 and expected.numel() > 2:
        if bool(torch.isclose(actual[1:], expected[:-1], atol=atol, rtol=rtol).all()):
            return failed(name, tr(en="looks like an off-by-one: your values are shifted one index later (index t holds the value of t − 1)",
                                   fr="on dirait un décalage de un : vos valeurs sont décalées d'un indice vers la fin (l'indice t contient la valeur de t − 1)"))
        if bool(torch.isclose(actual[:-1], expected[1:], atol=atol, rtol=rtol).all()):
            return failed(name, tr(en="looks like an off-by-one: your values are shifted one index earlier (index t holds the value of t + 1)",
                                   fr="on dirait un décalage de un : vos valeurs sont décalées d'un indice vers le début (l'indice t contient la valeur de t + 1)"))
    index = tuple(int(i) for i in (~close).nonzero()[0])
    n_wrong, n = int((~close).sum()), close.numel()
    err = (actual - expected).abs().max().item()
    return failed(
        name,
        tr(en=f"wrong value at index {_fmt_index(index)}: got {actual[index].item():.6g}, expected "
              f"{expected[index].item():.6g} ({n_wrong} of {n} values wrong, max abs error {err:.3g})",
           fr=f"valeur fausse à l'indice {_fmt_index(index)} : reçu {actual[index].item():.6g}, attendu "
              f"{expected[index].item():.6g} ({n_wrong} valeurs fausses sur {n}, erreur absolue max {err:.3g})"),
    )
