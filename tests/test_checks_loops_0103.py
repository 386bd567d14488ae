"""The loop and assembly exercises of lessons 00–03: the strip of noised images (00), the t noising steps (01), the DDPM
sampling loop (02) and one CLIP training step (03). Each checker accepts the lesson's solution, rejects a stub, and names
every typical mistake it lists, in English and in French; the sampler check's reference is the course's sampler, draw
for draw.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from course.checks.clip import check_clip_step, check_contrastive_loss, clip_step
from course.checks.ddpm import _quiet_progress, _reference_sampler, _toy_model, check_ddpm_sample
from course.checks.forward import check_q_sample_iterated
from course.checks.tour import check_noise_strip, noise_strip
from course.ddpm import ddpm_sample, p_sample_step
from course.forward import q_sample, q_sample_iterated, q_step
from course.schedules import alphas_cumprod, linear_betas
from test_checks_french import english_words, ok_fr, wrong_fr


@pytest.fixture(autouse=True)
def english(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "en")


def stub(*args):
    raise NotImplementedError


def ok(result):
    return result.passed and result.message.startswith("✅")


def wrong(result, *keywords):
    """The check failed with a one-line ❌ message holding every keyword."""
    assert not result.passed and result.message.startswith("❌") and "\n" not in result.message, result.message
    for keyword in keywords:
        assert keyword in result.message, f"{keyword!r} not in {result.message!r}"
    return True


def wrong_fr_raised(result, *fragments):
    """Failed in French on a crash: PyTorch's own message, quoted, stays in English; the advice after it is French."""
    assert not result.passed and result.message.startswith("❌") and "\n" not in result.message, result.message
    assert "votre code a levé" in result.message and " — " in result.message, result.message
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"
    advice = result.message.split(" — ", 1)[1]
    assert not english_words(advice), (english_words(advice), result.message)
    return True


CHECKERS = [check_noise_strip, check_q_sample_iterated, check_ddpm_sample, check_clip_step]


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("unfinished", [stub, lambda *a: None, lambda *a: ...], ids=["raise NotImplementedError", "returns None", "returns ..."])
def test_an_unfinished_exercise_is_not_implemented_yet(checker, unfinished, capsys):
    result = checker(unfinished)
    assert not result.passed and result.not_implemented and result.message.startswith("⏳")
    assert capsys.readouterr().out.strip() == result.message


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_not_a_function_and_a_crash_are_one_line(checker):
    assert wrong(checker(42), "expected a function, got int")
    assert wrong(checker(lambda *a: 1 / 0), "ZeroDivisionError")


# ----------------------------------------------------------------------------- lesson 00: a strip of noised images


def my_noise_strip(image, eps, mixes):  # the lesson's solution
    strip = []
    for m in mixes:
        strip.append((1 - m**2) ** 0.5 * image + m * eps)
    return strip


STRIP_MISTAKES = [  # (the mistake, English words, French words)
    (lambda im, e, ms: [(1 - m) * im + m * e for m in ms], ("weights are 1 − m and m",), ("les poids valent 1 − m et m",)),
    (lambda im, e, ms: [(1 - m) ** 0.5 * im + m**0.5 * e for m in ms], ("m was used as a variance",), ("m a été pris comme une variance",)),
    (lambda im, e, ms: [im + m * e for m in ms], ("the image is not shrunk",), ("l'image n'est pas atténuée",)),
    (lambda im, e, ms: [m * im + (1 - m**2) ** 0.5 * e for m in ms], ("weights are swapped",), ("poids sont intervertis",)),
    (lambda im, e, ms: [(1 - m**2) ** 0.5 * im - m * e for m in ms], ("the noise is subtracted",), ("le bruit est retranché",)),
    (lambda im, e, ms: [(1 - ms[-1] ** 2) ** 0.5 * im + ms[-1] * e for _ in ms], ("every image uses the last level",),
     ("toutes les images prennent le dernier niveau",)),
    (lambda im, e, ms: (1 - ms[-1] ** 2) ** 0.5 * im + ms[-1] * e, ("a single image came back", "return a list"), ("une seule image est revenue",)),
    (lambda im, e, ms: my_noise_strip(im, e, ms[1:]), ("one image per level, 5 in all, got 4",), ("une image par niveau était attendue",)),
    (lambda im, e, ms: my_noise_strip(im, torch.randn_like(im), ms), ("a new noise was drawn", "use the noise `eps` provided"),
     ("un nouveau bruit a été tiré", "utilisez le bruit `eps` fourni")),
    (lambda im, e, ms: [(1 - m**2) ** 0.5 * im + m * torch.randn_like(im) for m in ms], ("a new noise was drawn",),
     ("un nouveau bruit a été tiré",)),
]


def test_noise_strip_accepts_a_list_a_tuple_and_a_stacked_tensor():
    assert ok(check_noise_strip(my_noise_strip))
    assert ok(check_noise_strip(noise_strip))
    assert ok(check_noise_strip(lambda im, e, ms: tuple(my_noise_strip(im, e, ms))))
    assert ok(check_noise_strip(lambda im, e, ms: torch.stack(my_noise_strip(im, e, ms))))


@pytest.mark.parametrize("mistake, english_words, french_words", STRIP_MISTAKES, ids=[m[1][0] for m in STRIP_MISTAKES])
def test_noise_strip_names_each_mistake(mistake, english_words, french_words, monkeypatch):
    assert wrong(check_noise_strip(mistake), *english_words)
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert wrong_fr(check_noise_strip(mistake), *french_words)


def test_noise_strip_explains_torch_sqrt_of_a_python_number(monkeypatch):
    def with_torch_sqrt(image, eps, mixes):
        return [torch.sqrt(1 - m**2) * image + m * eps for m in mixes]

    assert wrong(check_noise_strip(with_torch_sqrt), "TypeError", "m is a Python number: write (1 - m**2) ** 0.5 or math.sqrt(1 - m**2)")
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert wrong_fr_raised(check_noise_strip(with_torch_sqrt), "m est un nombre Python : écrivez (1 - m**2) ** 0.5 ou math.sqrt(1 - m**2)")


def test_noise_strip_french_wording(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert wrong_fr(check_noise_strip(STRIP_MISTAKES[0][0]), "la somme des variances ne vaut alors plus 1")
    assert wrong_fr(check_noise_strip(STRIP_MISTAKES[6][0]), "(avec append, dans la boucle)")


# ----------------------------------------------------------------------------- lesson 01: t noising steps


def my_q_sample_iterated(x0, t, betas, generator):  # the lesson's solution
    x = x0
    for k in range(1, t + 1):
        x = q_step(x, k, torch.randn(x0.shape, generator=generator, dtype=x0.dtype), betas)
    return x


def iterated(*, steps=lambda t: range(1, t + 1), noise="fresh", dtype=True, update=True, generator=True, beta_index=lambda k: k,
             root=lambda v: v.sqrt(), noise_root=lambda v: v.sqrt()):
    """The lesson's loop, with the step written out, and one mistake (the keyword that differs from its default)."""

    def fn(x0, t, betas, gen):
        x = x0
        eps_once = torch.randn(x0.shape, generator=gen, dtype=x0.dtype) if noise == "once" else None
        for k in steps(t):
            if noise == "once":
                eps = eps_once
            else:
                eps = torch.randn(x0.shape, generator=gen if generator else None, dtype=x0.dtype if dtype else None).to(x0.dtype)
            b = betas[beta_index(k)]
            x = root(1 - b) * (x if update else x0) + noise_root(b) * eps
        return x

    return fn


ITERATED_MISTAKES = [  # (the mistake, English words, French words)
    (iterated(steps=lambda t: range(1, t)), ("only t − 1 = 6 steps",), ("seulement t − 1 = 6 étapes",)),
    (iterated(steps=lambda t: range(0, t)), ("step k used β_{k−1}",), ("l'étape k a pris β_{k−1}",)),
    (iterated(beta_index=lambda k: k - 1), ("step k used β_{k−1}", "betas[k]"), ("l'étape k a pris β_{k−1}",)),
    (iterated(steps=lambda t: range(0, t + 1)), ("the loop runs k = 0 … t", "used up a draw"), ("la boucle parcourt k = 0 … t",)),
    (iterated(steps=lambda t: range(t, 0, -1)), ("time runs backwards",), ("le temps recule",)),
    (iterated(noise="once"), ("the same ε is reused",), ("le même ε sert à chaque étape",)),
    (iterated(dtype=False), ("drawn in float32", "dtype=x0.dtype"), ("tiré en float32",)),
    (iterated(update=False), ("x is never updated",), ("x n'est jamais mis à jour",)),
    (iterated(generator=False), ("two runs with the same seed differ",), ("deux exécutions avec la même graine diffèrent",)),
    (iterated(steps=lambda t: range(1, 8)), ("the loop ignores t", "7 steps where t = 3"), ("la boucle ignore t",)),
    (lambda x0, t, b, g: q_sample(x0, t, torch.randn(x0.shape, generator=g, dtype=x0.dtype), alphas_cumprod(b)),
     ("this is the closed form",), ("c'est la forme close",)),
    (iterated(root=lambda v: v), ("a square root is missing in the step, on 1 − β_k", "√(1 − β_k)·x + √β_k·ε_k"),
     ("une racine carrée manque dans l'étape, sur 1 − β_k : √(1 − β_k)·x + √β_k·ε_k",)),
    (iterated(noise_root=lambda v: v), ("a square root is missing in the step, on β_k",), ("une racine carrée manque dans l'étape, sur β_k",)),
    (iterated(root=lambda v: v, noise_root=lambda v: v), ("the square roots are missing in the step",),
     ("les racines carrées manquent dans l'étape",)),
]


def test_q_sample_iterated_accepts_the_lessons_loop_the_formula_and_the_course():
    assert ok(check_q_sample_iterated(my_q_sample_iterated))
    assert ok(check_q_sample_iterated(iterated()))
    assert ok(check_q_sample_iterated(lambda x0, t, betas, gen: q_sample_iterated(x0, t, betas, generator=gen)))


@pytest.mark.parametrize("mistake, english_words, french_words", ITERATED_MISTAKES, ids=[m[1][0] for m in ITERATED_MISTAKES])
def test_q_sample_iterated_names_each_mistake(mistake, english_words, french_words, monkeypatch):
    assert wrong(check_q_sample_iterated(mistake), *english_words)
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert wrong_fr(check_q_sample_iterated(mistake), *french_words)


def test_q_sample_iterated_says_there_is_no_step_0(monkeypatch):
    def from_step_0(x0, t, betas, gen):
        x = x0
        for k in range(0, t):
            x = q_step(x, k, torch.randn(x0.shape, generator=gen, dtype=x0.dtype), betas)
        return x

    assert wrong(check_q_sample_iterated(from_step_0), "ValueError", "t must be in [1, 50] (T = 50 steps), got 0", "there is no step 0")
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert wrong_fr_raised(check_q_sample_iterated(from_step_0), "t doit être dans [1, 50] (T = 50 étapes), reçu 0",
                           "il n'y a pas d'étape 0")


def test_the_forward_process_errors_speak_french(monkeypatch):
    x = torch.zeros(2, 3, 4, 4)
    betas = linear_betas(50)
    with pytest.raises(ValueError, match=r"^t must be in \[1, 50\] \(T = 50 steps\), got 0$"):
        q_step(x, 0, x, betas)
    monkeypatch.setenv("COURSE_LANG", "fr")
    with pytest.raises(ValueError, match=r"^t doit être dans \[1, 50\] \(T = 50 étapes\), reçu 0$"):
        q_step(x, 0, x, betas)
    with pytest.raises(ValueError, match=r"^t doit être dans \[0, 50\] \(T = 50 étapes\), reçu 51$"):
        q_sample(x, 51, x, alphas_cumprod(betas))
    with pytest.raises(ValueError, match=r"^t doit contenir des entiers de \[0, 50\], reçu le dtype torch.float32$"):
        q_sample(x, torch.tensor(1.0), x, alphas_cumprod(betas))
    with pytest.raises(ValueError, match=r"^t doit être un int ou un tenseur de forme \(2,\) \(un t par élément du lot\), reçu la forme \(3,\)$"):
        q_sample(x, torch.tensor([1, 2, 3]), x, alphas_cumprod(betas))
    with pytest.raises(ValueError, match=r"^eps doit avoir la forme de x0 : reçu \(2, 3\) et \(2, 3, 4, 4\)$"):
        q_sample(x, 1, torch.zeros(2, 3), alphas_cumprod(betas))
    with pytest.raises(ValueError, match=r"^x0 doit être un tenseur à virgule flottante"):
        q_sample(x.long(), 1, x, alphas_cumprod(betas))
    with pytest.raises(ValueError, match=r"^t doit être un int de \[0, 50\], reçu 51$"):
        q_sample_iterated(x, 51, betas)


# ----------------------------------------------------------------------------- lesson 02: the sampling loop


def my_p_sample_step(x_t, t, eps_pred, z, betas, alphas_cumprod):  # the lesson's solution
    shape = (-1,) + (1,) * (x_t.dim() - 1)
    b, a = betas[t].view(shape).to(x_t), alphas_cumprod[t].view(shape).to(x_t)
    mean = (x_t - b / (1 - a).sqrt() * eps_pred) / (1 - b).sqrt()
    return mean + (t > 1).view(shape).to(x_t) * b.sqrt() * z


def my_ddpm_sample(model, shape, betas, generator):  # the lesson's solution
    abar = alphas_cumprod(betas)
    x = torch.randn(shape, generator=generator)
    for step in tqdm(range(len(betas) - 1, 0, -1), leave=False):
        t = torch.full((shape[0],), step)
        z = torch.randn(shape, generator=generator)
        x = my_p_sample_step(x, t, model(x, t), z, betas, abar)
    return x


def sampler(*, instants=lambda T: range(T, 0, -1), start="noise", noise="fresh", as_t=lambda step, B: torch.full((B,), step),
            update=True, generator=True):
    """The lesson's loop with one mistake (the keyword that differs from its default)."""

    def fn(model, shape, betas, gen):
        abar = alphas_cumprod(betas)
        x = torch.randn(shape, generator=gen if generator else None) if start == "noise" else torch.zeros(shape)
        z_once = torch.randn(shape, generator=gen) if noise == "once" else None
        for step in instants(len(betas) - 1):
            t = as_t(step, shape[0])
            z = torch.randn(shape, generator=gen) if noise == "fresh" else z_once if noise == "once" else torch.zeros(shape)
            x_next = my_p_sample_step(x, t, model(x, t), z, betas, abar)
            if update:
                x = x_next
        return x

    return fn


SAMPLER_MISTAKES = [  # (the mistake, English words, French words)
    (sampler(instants=lambda T: range(T - 1, 0, -1)), ("starts at t = T − 1", "off-by-one"), ("commence en t = T − 1", "décalage de un")),
    (sampler(instants=lambda T: range(T, -1, -1)), ("goes down to t = 0", "range(T, 0, -1)"), ("descend jusqu'à t = 0",)),
    (sampler(instants=lambda T: range(T - 1, -1, -1)), ("T − 1 down to 0, as in diffusers",), ("de T − 1 à 0, comme dans diffusers",)),
    (sampler(instants=lambda T: range(T, 1, -1)), ("stops at t = 2", "t = 1, is missing"), ("s'arrête en t = 2",)),
    (sampler(instants=lambda T: range(1, T + 1)), ("time runs forward",), ("le temps avance",)),
    (sampler(noise="once"), ("the same z is reused at every step",), ("le même z sert à chaque pas",)),
    (sampler(noise="none"), ("no fresh noise is added",), ("aucun bruit neuf n'est ajouté",)),
    (sampler(start="zeros"), ("starts from zeros", "pure noise"), ("part de zéros", "bruit pur")),
    (sampler(as_t=lambda step, B: step), ("plain number (int)", "torch.full((B,), t)"), ("simple nombre (int)", "torch.full((B,), t)")),
    (sampler(as_t=lambda step, B: torch.tensor(step)), ("t has shape ()", "(B,) = (6,)"), ("t a la forme ()",)),
    (sampler(as_t=lambda step, B: torch.full((B,), float(step))), ("torch.float32 values", "integers"), ("valeurs torch.float32", "entiers")),
    (sampler(update=False), ("x is never updated",), ("x n'est jamais mis à jour",)),
    (sampler(generator=False), ("two runs with the same seed differ", "generator=generator"), ("deux exécutions avec la même graine diffèrent",)),
    (sampler(instants=lambda T: range(1000, 0, -1)), ("starts at t = 1000", "T = len(betas) − 1 = 20", "do not write 1000"),
     ("commence en t = 1000", "n'écrivez pas 1000")),
]


def test_ddpm_sample_accepts_the_lessons_loop_and_the_courses_sampler(capsys):
    assert ok(check_ddpm_sample(my_ddpm_sample))
    assert ok(check_ddpm_sample(lambda model, shape, betas, generator: ddpm_sample(model, shape, betas, generator=generator, progress=True)))
    assert "▏" not in capsys.readouterr().err  # the learner's tqdm bars stay quiet during the check
    draws_z_only_when_needed = sampler(noise="fresh")
    assert ok(check_ddpm_sample(draws_z_only_when_needed))


@pytest.mark.parametrize("mistake, english_words, french_words", SAMPLER_MISTAKES, ids=[m[1][0] for m in SAMPLER_MISTAKES])
def test_ddpm_sample_names_each_mistake(mistake, english_words, french_words, monkeypatch):
    assert wrong(check_ddpm_sample(mistake), *english_words)
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert wrong_fr(check_ddpm_sample(mistake), *french_words)


def test_ddpm_sample_in_french(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert ok_fr(check_ddpm_sample(my_ddpm_sample), "un z neuf à chaque pas")


@pytest.mark.parametrize("T", [20, 1000])
def test_the_checkers_reference_is_the_courses_sampler_draw_for_draw(T):
    """x_T, then one z per step from t = T down: the course draws no z at t = 1 (unused), so both give the same samples."""
    betas = linear_betas(T)
    reference = _reference_sampler(_toy_model, (6, 2), betas, torch.Generator().manual_seed(7))
    course = ddpm_sample(_toy_model, (6, 2), betas, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(reference, course, atol=1e-4)


def test_the_reference_loop_is_algorithm_2():
    betas = linear_betas(5)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, generator=g)
    for step in (5, 4, 3, 2, 1):
        t = torch.full((3,), step)
        x = p_sample_step(x, t, _toy_model(x, t), torch.randn(3, 2, generator=g), betas, alphas_cumprod(betas))
    assert torch.equal(_reference_sampler(_toy_model, (3, 2), betas, torch.Generator().manual_seed(0)), x)


def test_quiet_progress_silences_bars_and_restores_them(capsys):
    with _quiet_progress():
        for _ in tqdm(range(3), desc="hidden"):
            pass
    assert "hidden" not in capsys.readouterr().err
    for _ in tqdm(range(3), desc="shown"):
        pass
    assert "shown" in capsys.readouterr().err


# ----------------------------------------------------------------------------- lesson 03: one training step


def my_similarity(image_features, text_features, logit_scale):  # the lesson's solution
    return logit_scale.exp() * F.normalize(image_features, dim=-1) @ F.normalize(text_features, dim=-1).T


def my_contrastive_loss(logits):  # the lesson's solution
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def my_clip_step(model, optimizer, images, ids, mask):  # the lesson's solution
    logits = my_similarity(model.image(images), model.text(ids, mask)[2], model.logit_scale)
    loss = my_contrastive_loss(logits)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step(order="zbs", loss_fn=my_contrastive_loss, similarity=my_similarity, returns=lambda loss: loss.item()):
    """The lesson's step with one mistake: ``order`` lists the moves made (z: zero_grad, b: backward, s: step)."""

    def fn(model, optimizer, images, ids, mask):
        loss = loss_fn(similarity(model.image(images), model.text(ids, mask)[2], model.logit_scale))
        for move in order:
            {"z": optimizer.zero_grad, "b": loss.backward, "s": optimizer.step}[move]()
        return returns(loss)

    return fn


def diagonal(logits):
    return torch.arange(logits.shape[0])


STEP_MISTAKES = [  # (the mistake, English words, French words)
    (step(order="bs"), ("optimizer.zero_grad() is missing", "accumulates"), ("optimizer.zero_grad() manque", "accumule")),
    (step(order="zb"), ("did not move", "optimizer.step() is missing"), ("n'ont pas bougé", "optimizer.step() manque")),
    (step(order="zsb"), ("did not move", "comes before loss.backward()"), ("vient avant loss.backward()",)),
    (step(order="zs"), ("loss.backward() is missing",), ("loss.backward() manque",)),
    (step(order="bzs"), ("zero_grad() comes after backward()",), ("zero_grad() vient après backward()",)),
    (step(loss_fn=lambda lg: F.cross_entropy(lg, diagonal(lg))), ("only the image→text direction",), ("seul le sens image→texte",)),
    (step(loss_fn=lambda lg: F.cross_entropy(lg.T, diagonal(lg))), ("only the text→image direction",), ("seul le sens texte→image",)),
    (step(loss_fn=lambda lg: F.cross_entropy(lg, diagonal(lg)) + F.cross_entropy(lg.T, diagonal(lg))), ("summed, not averaged",),
     ("additionnés au lieu d'être moyennés",)),
    (step(similarity=lambda i, t, s: F.normalize(i, dim=-1) @ F.normalize(t, dim=-1).T), ("the logit scale is missing",),
     ("le facteur d'échelle manque",)),
    (step(similarity=lambda i, t, s: s * F.normalize(i, dim=-1) @ F.normalize(t, dim=-1).T), ("the factor is exp(model.logit_scale)",),
     ("le facteur est exp(model.logit_scale)",)),
    (step(loss_fn=lambda lg: -my_contrastive_loss(lg)), ("moved uphill",), ("dans le mauvais sens",)),
    (step(returns=lambda loss: 0.0), ("not this step's loss",), ("n'est pas la perte de ce pas",)),
    (step(similarity=lambda i, t, s: s.exp() * i @ t.T), ("differ from the course's step", "check logits = my_similarity(image vectors, "
     "text vectors, model.logit_scale), then loss = my_contrastive_loss(logits)"),
     ("diffèrent de ceux du pas du cours", "vérifiez logits = my_similarity(vecteurs des images, vecteurs des textes, model.logit_scale), "
      "puis perte = my_contrastive_loss(logits)")),
]


def test_clip_step_accepts_the_lessons_step_the_courses_and_a_tensor(capsys):
    assert ok(check_clip_step(my_clip_step))
    assert ok(check_clip_step(clip_step))
    assert ok(check_clip_step(step(returns=lambda loss: loss)))  # a tensor is a loss too

    def with_the_models_forward(model, optimizer, images, ids, mask):
        loss = my_contrastive_loss(model(images, ids, mask))
        model.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    assert ok(check_clip_step(with_the_models_forward))


@pytest.mark.parametrize("mistake, english_words, french_words", STEP_MISTAKES, ids=[m[1][0] for m in STEP_MISTAKES])
def test_clip_step_names_each_mistake(mistake, english_words, french_words, monkeypatch):
    assert wrong(check_clip_step(mistake), *english_words)
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert wrong_fr(check_clip_step(mistake), *french_words)


def text_vectors(pick):
    """The lesson's step with model.text's whole tuple (``pick`` None) or one of its other two tensors as the text vectors."""

    def fn(model, optimizer, images, ids, mask):
        texts = model.text(ids, mask) if pick is None else model.text(ids, mask)[pick]
        loss = my_contrastive_loss(my_similarity(model.image(images), texts, model.logit_scale))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return fn


def test_clip_step_explains_model_text_without_its_projection(monkeypatch):
    tuple_en = "model.text(ids, mask) returns three tensors (the tokens' states, the state at <eos>, its projection): take the third, [2]"
    tuple_fr = "model.text(ids, mask) renvoie trois tenseurs (états des jetons, état de <eos>, projection) : prenez le troisième, [2]"
    shape_en = "the text vectors must have the shape (B, P) of the image vectors: model.text(ids, mask)[2]"
    shape_fr = "les vecteurs des textes doivent avoir la forme (B, P) de ceux des images : model.text(ids, mask)[2]"

    def matmul_the_tuple(model, optimizer, images, ids, mask):
        loss = my_contrastive_loss(model.image(images) @ model.text(ids, mask))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    with pytest.warns(UserWarning):  # x.T on the 3-d states: torch's deprecation warning, then the shapes do not match
        cases = [(text_vectors(None), tuple_en, tuple_fr), (matmul_the_tuple, tuple_en, tuple_fr), (text_vectors(0), shape_en, shape_fr),
                 (text_vectors(1), shape_en, shape_fr)]
        for fn, en, fr in cases:
            monkeypatch.setenv("COURSE_LANG", "en")
            assert wrong(check_clip_step(fn), "your code raised", en)
            monkeypatch.setenv("COURSE_LANG", "fr")
            assert wrong_fr_raised(check_clip_step(fn), fr)


def test_clip_step_in_french(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert ok_fr(check_clip_step(my_clip_step), "`zero_grad` → `backward` → `step`")


def test_the_check_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_clip_step(my_clip_step)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32])
def test_contrastive_loss_names_targets_that_are_not_long_integers(dtype, monkeypatch):
    def float_targets(logits):
        targets = torch.arange(logits.shape[0], dtype=dtype)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2

    assert wrong(check_contrastive_loss(float_targets), "the targets must be integer class indices (torch.arange(B)", "not floats")
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert wrong_fr(check_contrastive_loss(float_targets), "les cibles doivent être des indices de classe entiers")


def test_an_unfinished_function_called_inside_is_named(monkeypatch):
    def unfinished_step(*args):
        raise NotImplementedError

    def loop(model, shape, betas, generator):
        x = torch.randn(shape, generator=generator)
        t = torch.full((shape[0],), len(betas) - 1)
        return unfinished_step(x, t, model(x, t), x, betas, alphas_cumprod(betas))

    result = check_ddpm_sample(loop)
    assert result.not_implemented and "your code calls unfinished_step, which is not written yet" in result.message
    clip = check_clip_step(step(loss_fn=unfinished_step))
    assert clip.not_implemented and "calls unfinished_step" in clip.message
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert "votre code appelle unfinished_step, qui n'est pas encore écrit" in check_ddpm_sample(loop).message
