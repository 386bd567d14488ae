"""Your code, running the model: after an exercise passes its check, the course runs the learner's function
where it runs its own.

    from course.yours import use
    use(ddim_step=my_ddim_step)   # checked again quietly; from here on every DDIM step (η = 0) is yours
    use()                         # the course's own functions again

A function that is not finished (or fails its check) is not used: the course keeps its own version and says
so in one line, so the cells below still run. :data:`SLOTS` lists what can be replaced and where it runs;
the course's code asks :func:`pick` at those places. Checkers compare with the course's reference
functions directly, never through :func:`pick`, so a learner's function is never checked against itself.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from dataclasses import dataclass
from typing import Callable

from course.language import current, tr


@dataclass(frozen=True)
class Slot:
    """A function a learner may hand to the course: the checker that must accept it, and where it then runs."""

    checker: str  # "module:function"
    where_en: str
    where_fr: str

    def where(self) -> str:
        return tr(en=self.where_en, fr=self.where_fr)


SLOTS: dict[str, Slot] = {
    "q_sample": Slot("course.checks.forward:check_q_sample",
                     "the noising of every training step (course.ddpm.training_loss)",
                     "le bruitage de chaque pas d'entraînement (course.ddpm.training_loss)"),
    "epsilon_loss": Slot("course.checks.ddpm:check_epsilon_loss",
                         "the loss of every training step (course.ddpm.training_loss)",
                         "la perte de chaque pas d'entraînement (course.ddpm.training_loss)"),
    "cross_attention": Slot("course.checks.unet:check_cross_attention",
                            "every attention layer of the U-Net (course.unet), self- and cross-attention",
                            "chaque couche d'attention du U-Net (course.unet), self-attention comme cross-attention"),
    "ddim_step": Slot("course.checks.samplers:check_ddim_step",
                      "every step of the DDIM sampler with η = 0 (course.samplers.ddim)",
                      "chaque pas de l'échantillonneur DDIM avec η = 0 (course.samplers.ddim)"),
    "guidance": Slot("course.checks.guidance:check_guidance",
                     "the classifier-free guidance of every generation (course.guidance.guided, the pipeline)",
                     "la guidance sans classifieur de chaque génération (course.guidance.guided, le pipeline)"),
    "controlnet_residuals": Slot("course.checks.controlnet:check_controlnet_residuals",
                                 "every call of a ControlNet (course.controlnet.ControlNet), in the pipeline and the figures",
                                 "chaque appel d'un ControlNet (course.controlnet.ControlNet), dans le pipeline et les figures"),
    "start_index": Slot("course.checks.editing:check_start_index",
                        "the first instant of every img2img and inpainting (course.img2img.img2img_grid, the pipeline)",
                        "le premier instant de chaque img2img et de chaque inpainting (course.img2img.img2img_grid, le pipeline)"),
    "dual_guidance": Slot("course.checks.editing:check_dual_guidance",
                          "the guidance of every instruction edit (course.instruct.dual_guided, the pipeline's edit)",
                          "la guidance de chaque édition par instruction (course.instruct.dual_guided, edit du pipeline)"),
    "lora_forward": Slot("course.checks.concept:check_lora_forward",
                         "every LoRA layer of the U-Net (course.lora.LoRALinear, unmerged), in training and in generation",
                         "chaque couche LoRA du U-Net (course.lora.LoRALinear, non fusionnée), à l'entraînement comme à la génération"),
    "inpaint_blend": Slot("course.checks.editing:check_inpaint_blend",
                          "the blend after every step of inpainting (course.inpaint.blend, the pipeline)",
                          "le mélange après chaque pas de l'inpainting (course.inpaint.blend, le pipeline)"),
}

_yours: dict[str, Callable] = {}


def _ready(name: str, fn: Callable, checker: Callable) -> bool:
    """Quietly check ``fn``; print the one line that says whether the cells below run it."""
    with contextlib.redirect_stdout(io.StringIO()):
        result = checker(fn)
    if result:
        return True
    if getattr(result, "waiting_for", None):
        print(tr(en=f"↩ your {name} waits for another exercise ({result.waiting_for} is not written yet): the cells below run the course's version",
                 fr=f"↩ votre fonction {name} attend un autre exercice ({result.waiting_for} n'est pas encore écrite) : "
                    "les cellules suivantes utilisent la version du cours"))
        return False
    if result.not_implemented:
        print(tr(en=f"↩ your {name} is not written yet: the cells below run the course's version",
                 fr=f"↩ votre fonction {name} n'est pas encore écrite : les cellules suivantes utilisent la version du cours"))
        return False
    why = result.message.split(" : " if current() == "fr" else ": ", 1)[-1].strip().rstrip(".")  # the diagnosis, without the name
    print(tr(en=f"↩ your {name} is not ready ({why}): the cells below run the course's version",
             fr=f"↩ votre fonction {name} n'est pas prête ({why}) : les cellules suivantes utilisent la version du cours"))
    return False


def choose(name: str, mine: Callable, checker: Callable, course: Callable) -> Callable:
    """``mine`` if ``checker`` accepts it (said in one line), else the course's ``course`` (said too): for the cells
    of a lesson that run the learner's loop or assembly, e.g. ``sample = choose("ddim_sample", my_ddim_sample, check_ddim_sample, ddim)``."""
    if _ready(name, mine, checker):
        print(tr(en=f"▶ the cells below run your {name}", fr=f"▶ les cellules suivantes font tourner votre fonction {name}"))
        return mine
    return course


def use(**functions: Callable) -> None:
    """Run the learner's functions in the course from here on, each checked first; ``use()`` undoes it all."""
    if not functions:
        names = ", ".join(sorted(_yours))
        print(tr(en="↩ the course's own functions run everywhere again" + (f" (instead of your {names})" if names else ""),
                 fr="↩ les fonctions du cours sont de nouveau utilisées partout"
                    + (f" (au lieu de {'votre fonction' if len(_yours) == 1 else 'vos fonctions'} {names})" if names else "")))
        _yours.clear()
        return
    for name, fn in functions.items():
        if name not in SLOTS:
            raise ValueError(tr(en=f"use() has no place for {name!r}: choose one of {', '.join(SLOTS)}",
                                fr=f"use() n'a pas de place pour {name!r} : choisissez parmi {', '.join(SLOTS)}"))
        if not callable(fn):
            raise TypeError(tr(en=f"use({name}=…) needs a function, got {type(fn).__name__}",
                               fr=f"use({name}=…) attend une fonction, reçu {type(fn).__name__}"))
        module, function = SLOTS[name].checker.split(":")
        if _ready(name, fn, getattr(importlib.import_module(module), function)):
            _yours[name] = fn
            print(tr(en=f"▶ your {name} now runs {SLOTS[name].where()}",
                     fr=f"▶ votre fonction {name} tourne désormais dans {SLOTS[name].where()}"))
        else:
            _yours.pop(name, None)


def pick(name: str) -> Callable | None:
    """The learner's function for slot ``name`` if :func:`use` accepted one, else None (the course's own runs)."""
    return _yours.get(name)


def in_use() -> dict[str, Callable]:
    """Which slots run the learner's code now (a copy)."""
    return dict(_yours)
