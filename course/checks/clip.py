"""Checks for lesson 03 (CLIP): the similarity matrix, the symmetric contrastive loss and one training step."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F

from course.checks.core import CheckResult, _Raised, call, diagnose, failed, passed, run
from course.checks.ddpm import _guarded, _unfinished_inside
from course.clip import contrastive_loss
from course.language import tr


def check_similarity(fn: Callable) -> CheckResult:
    """Check ``fn(image_features, text_features, logit_scale)`` = exp(logit_scale)·normalize(I)·normalize(T)ᵀ."""
    name = "similarity"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(4)
        img, txt = torch.randn(5, 8, generator=g) * 3, torch.randn(6, 8, generator=g) * 2
        scale = torch.tensor(math.log(20.0))
        expected = scale.exp() * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
        actual = call(name, fn, img.clone(), txt.clone(), scale.clone())
        mistakes = {
            tr(en="the features were not normalised to unit length (use F.normalize(x, dim=-1))",
               fr="les vecteurs de caractéristiques n'ont pas été ramenés à une norme 1 (utilisez F.normalize(x, dim=-1))"):
                scale.exp() * img @ txt.T,
            tr(en="logit_scale was used as the factor itself; the factor is exp(logit_scale)",
               fr="logit_scale a été pris lui-même comme facteur ; le facteur est exp(logit_scale)"):
                scale * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T,
            tr(en="the temperature factor exp(logit_scale) is missing",
               fr="le facteur de température exp(logit_scale) manque"):
                F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T,
            tr(en="the features were normalised along the batch (dim=0) instead of along the features (dim=-1)",
               fr="les vecteurs ont été normalisés le long du lot (dim=0) au lieu de le long des caractéristiques (dim=-1)"):
                scale.exp() * F.normalize(img, dim=0) @ F.normalize(txt, dim=0).T,
        }
        problem = diagnose(
            name, actual, expected, mistakes=mistakes, atol=1e-4,
            shape_hint=tr(en="one row per image, one column per text: (B_images, B_texts) — transpose the texts",
                          fr="une ligne par image, une colonne par texte : (B_images, B_texts) — transposez les textes"),
        )
        detail = tr(en="cosine similarities scaled by exp(logit_scale)", fr="similarités cosinus multipliées par exp(logit_scale)")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


_TARGET_DTYPE_ERRORS = ("expected target dtype", "expected scalar type Long")  # torch's words, across versions


def check_contrastive_loss(fn: Callable) -> CheckResult:
    """Check ``fn(logits)`` = the mean of the image→text and text→image cross-entropies (Radford et al. 2021)."""
    name = "contrastive_loss"

    def body() -> CheckResult:
        logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(5)) * 4
        expected = contrastive_loss(logits)
        try:
            actual = call(name, fn, logits.clone())
        except _Raised as raised:
            if any(fragment in raised.result.message for fragment in _TARGET_DTYPE_ERRORS):
                return failed(name, tr(en="the targets must be integer class indices (torch.arange(B), dtype torch.long), not floats",
                                       fr="les cibles doivent être des indices de classe entiers (torch.arange(B), de dtype "
                                          "torch.long), pas des flottants"))
            raise
        target = torch.arange(6)
        mistakes = {
            tr(en="only the image→text direction (rows) is there: CLIP averages both directions",
               fr="seul le sens image→texte (les lignes) est présent : CLIP fait la moyenne des deux sens"): F.cross_entropy(logits, target),
            tr(en="only the text→image direction (columns) is there: CLIP averages both directions",
               fr="seul le sens texte→image (les colonnes) est présent : CLIP fait la moyenne des deux sens"): F.cross_entropy(logits.T, target),
            tr(en="the two directions are summed, not averaged",
               fr="les deux sens sont additionnés au lieu d'être moyennés"): F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target),
        }
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            return failed(name, tr(en=f"expected one number (a 0-d tensor), got shape {tuple(actual.shape)}",
                                   fr=f"un seul nombre était attendu (un tenseur de dimension 0), reçu la forme {tuple(actual.shape)}"))
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-5)
        detail = tr(en="(CE(rows) + CE(columns)) / 2 with the diagonal as targets",
                    fr="(CE(lignes) + CE(colonnes)) / 2, avec la diagonale pour cibles")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


# ----------------------------------------------------------------------------- one training step


def clip_step(model, optimizer, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> float:
    """The course's contrastive training step: both encoders, the similarity logits, the symmetric loss, then
    zero_grad → backward → step. Returns the loss (before the update) as a float."""
    return float(_step(model, optimizer, images, ids, mask))


def _step(model, optimizer, images, ids, mask, *, zero_grad: bool = True, loss: str = "both", scale: str = "exp") -> torch.Tensor:
    """:func:`clip_step`, or one of its typical mistakes (``zero_grad=False``; ``loss`` "rows", "columns", "sum";
    ``scale`` "none", "raw", the factor being 1 or logit_scale itself)."""
    factor = {"exp": model.logit_scale.exp(), "raw": model.logit_scale, "none": 1.0}[scale]
    logits = factor * F.normalize(model.image(images), dim=-1) @ F.normalize(model.text(ids, mask)[2], dim=-1).T
    target = torch.arange(logits.shape[0], device=logits.device)
    rows, columns = F.cross_entropy(logits, target), F.cross_entropy(logits.T, target)
    value = {"both": (rows + columns) / 2, "rows": rows, "columns": columns, "sum": rows + columns}[loss]
    if zero_grad:
        optimizer.zero_grad()
    value.backward()
    optimizer.step()
    return value.detach()


def _tiny_clip():
    """A small CLIP (one text layer, a 16×16 image encoder) with fixed weights, and two batches of four pairs."""
    from course.clip import CLIP, ClipConfig
    from course.tokenizer import encode, vocab_size

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CLIP(ClipConfig(vocab_size=vocab_size(), hidden_size=16, layers=1, heads=2, intermediate_size=32, projection_dim=8,
                                image_size=16, image_width=4))
    g = torch.Generator().manual_seed(6)
    batches = []
    for captions in (["a red circle", "un carré bleu", "two small grey stars", "un triangle vert en haut à gauche"],
                     ["a large purple star", "une étoile jaune", "a blue square at the bottom", "deux cercles rouges"]):
        ids, mask = encode(captions, pad_to_longest=True)
        batches.append((torch.rand(4, 3, 16, 16, generator=g) * 2 - 1, ids, mask))
    return model, batches


_LR = 0.5  # plain SGD: the update is −lr·gradient, so every mistake in the loss moves the weights differently (Adam's first step hides it)


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _trained(base, batches, **mistake) -> tuple[torch.Tensor, list[float]]:
    """The weights moved by each step (flattened, from ``base``) after every batch, and each step's loss."""
    model = copy.deepcopy(base)
    optimizer = torch.optim.SGD(model.parameters(), lr=_LR)
    start, moves, losses = _flat(model), [], []
    for batch in batches:
        losses.append(float(_step(model, optimizer, *batch, **mistake)))
        moves.append(_flat(model) - start)
    return moves, losses


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool((a - b).norm() <= 1e-3 * b.norm() + 1e-7)


_TEXT_TUPLE_ERRORS = (  # torch's and Python's words when model.text's tuple is used as the text vectors (not the loss's 'backward')
    *(f"'tuple' object has no attribute '{attribute}'" for attribute in ("norm", "T", "mT", "transpose", "t", "to", "shape", "dim")),
    "must be Tensor, not tuple", "and 'tuple'")


def check_clip_step(fn: Callable) -> CheckResult:
    """Check ``fn(model, optimizer, images, ids, mask)``: one contrastive step (Radford et al. 2021, Fig. 3), on a tiny CLIP.

    The weights after one step, then after a second on another batch, are compared with :func:`clip_step`'s.
    """
    name = "clip_step"

    def body() -> CheckResult:
        base, batches = _tiny_clip()
        expected, expected_losses = _trained(base, batches)
        model = copy.deepcopy(base)
        optimizer = torch.optim.SGD(model.parameters(), lr=_LR)
        start = _flat(model)
        backward_ran = []
        for p in model.parameters():
            p.register_hook(lambda grad: backward_ran.append(True) or grad)
        hints = {
            "does not require grad": tr(en="the loss has no gradient: do not compute it under torch.no_grad(), nor turn it into a number "
                                           "before backward()",
                                        fr="la perte n'a pas de gradient : ne la calculez pas sous torch.no_grad(), et ne la changez pas "
                                           "en nombre avant backward()"),
            "has no attribute 'backward'": tr(en="backward() is called on the loss tensor; .item() only for the value you return",
                                              fr="backward() s'appelle sur le tenseur de la perte ; .item() seulement pour la valeur renvoyée"),
            **dict.fromkeys(_TEXT_TUPLE_ERRORS, tr(
                en="model.text(ids, mask) returns three tensors (the tokens' states, the state at <eos>, its projection): take the "
                   "third, [2]",
                fr="model.text(ids, mask) renvoie trois tenseurs (états des jetons, état de <eos>, projection) : prenez le "
                   "troisième, [2]")),
            "mat1 and mat2 shapes cannot be multiplied": tr(
                en="the text vectors must have the shape (B, P) of the image vectors: model.text(ids, mask)[2]",
                fr="les vecteurs des textes doivent avoir la forme (B, P) de ceux des images : model.text(ids, mask)[2]"),
        }
        moves, losses, unfinished = [], [], []
        for batch in batches:
            images, ids, mask = (x.clone() for x in batch)
            try:
                losses.append(call(name, _guarded(fn, unfinished), model, optimizer, images, ids, mask, error_hints=hints))
            except _Raised:
                if unfinished:
                    return _unfinished_inside(name, unfinished[0])
                raise
            moves.append(_flat(model) - start)
            if len(moves) == 1:
                if not backward_ran:
                    return failed(name, tr(en="loss.backward() is missing: no gradient is computed, so the step cannot move the weights",
                                           fr="loss.backward() manque : aucun gradient n'est calculé, le pas ne peut donc pas bouger "
                                              "les poids"))
                if bool((moves[0] == 0).all()):
                    grads = [p.grad for p in model.parameters() if p.grad is not None]
                    if grads and any(bool(g.abs().sum() > 0) for g in grads):
                        return failed(name, tr(en="the weights did not move: optimizer.step() is missing, or comes before loss.backward() "
                                                  "(the order is `zero_grad`, `backward`, `step`)",
                                               fr="les poids n'ont pas bougé : optimizer.step() manque, ou vient avant loss.backward() "
                                                  "(l'ordre est `zero_grad`, `backward`, `step`)"))
                    return failed(name, tr(en="the weights did not move: zero_grad() comes after backward() and erases the gradients "
                                              "before optimizer.step() (the order is `zero_grad`, `backward`, `step`)",
                                           fr="les poids n'ont pas bougé : zero_grad() vient après backward() et efface les gradients "
                                              "avant optimizer.step() (l'ordre est `zero_grad`, `backward`, `step`)"))
                problem = _loss_problem(base, batches[:1], moves[0], expected[0])
                if problem is not None:
                    return failed(name, problem)
        if not _same(moves[1], expected[1]):
            accumulated, _ = _trained(base, batches, zero_grad=False)
            if _same(moves[1], accumulated[1]):
                return failed(name, tr(en="optimizer.zero_grad() is missing: the second step added its gradient to the first one's "
                                          "(PyTorch accumulates gradients until they are reset)",
                                       fr="optimizer.zero_grad() manque : le second pas a ajouté son gradient à celui du premier "
                                          "(PyTorch accumule les gradients tant qu'on ne les remet pas à zéro)"))
            return failed(name, tr(en="the first step was right, the second not: does your step keep something from one call to the next?",
                                   fr="le premier pas était juste, le second non : votre pas garde-t-il quelque chose d'un appel à l'autre ?"))
        for value, want in zip(losses, expected_losses):
            got = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
            if not isinstance(got, (int, float)) or not math.isclose(float(got), want, rel_tol=1e-4, abs_tol=1e-6):
                return failed(name, tr(en=f"the weights are right, but the value returned ({_short(value)}) is not this step's loss "
                                          f"({want:.4f}): return the loss computed before the update, e.g. loss.item()",
                                       fr=f"les poids sont justes, mais la valeur renvoyée ({_short(value)}) n'est pas la perte de ce "
                                          f"pas ({want:.4f}) : renvoyez la perte calculée avant la mise à jour, par exemple loss.item()"))
        detail = tr(en="logits, symmetric loss, `zero_grad` → `backward` → `step`: the same weights as the course's step, twice",
                    fr="logits, perte symétrique, `zero_grad` → `backward` → `step` : les mêmes poids que le pas du cours, deux fois de suite")
        return passed(name, detail)

    return run(name, body)


def _short(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.item():.4f}" if value.numel() == 1 else f"tensor {tuple(value.shape)}"
    return f"{value:.4f}" if isinstance(value, float) else type(value).__name__


def _loss_problem(base, batch, move: torch.Tensor, expected: torch.Tensor) -> str | None:
    """Why the first step moved the weights the wrong way, if it did: each typical mistake of the loss is tried."""
    if _same(move, expected):
        return None
    if _same(move, -expected):
        return tr(en="the weights moved uphill: the loss was maximised (a minus sign too many, or backward() of −loss)",
                  fr="les poids sont partis dans le mauvais sens : la perte a été maximisée (un signe moins en trop, ou backward() de −loss)")
    mistakes = {
        tr(en="only the image→text direction (the rows) is in the loss: CLIP averages both directions, CE(S) and CE(Sᵀ)",
           fr="seul le sens image→texte (les lignes) est dans la perte : CLIP fait la moyenne des deux sens, CE(S) et CE(Sᵀ)"): {"loss": "rows"},
        tr(en="only the text→image direction (the columns) is in the loss: CLIP averages both directions, CE(S) and CE(Sᵀ)",
           fr="seul le sens texte→image (les colonnes) est dans la perte : CLIP fait la moyenne des deux sens, CE(S) et CE(Sᵀ)"): {"loss": "columns"},
        tr(en="the two directions are summed, not averaged: the step is twice too long",
           fr="les deux sens sont additionnés au lieu d'être moyennés : le pas est deux fois trop long"): {"loss": "sum"},
        tr(en="the logit scale is missing: the cosines must be multiplied by exp(model.logit_scale), as in my_similarity",
           fr="le facteur d'échelle manque : les cosinus doivent être multipliés par exp(model.logit_scale), comme dans my_similarity"):
            {"scale": "none"},
        tr(en="model.logit_scale was used as the factor itself; the factor is exp(model.logit_scale)",
           fr="model.logit_scale a été pris lui-même comme facteur ; le facteur est exp(model.logit_scale)"): {"scale": "raw"},
    }
    for description, mistake in mistakes.items():
        if _same(move, _trained(base, batch, **mistake)[0][0]):
            return tr(en="looks like ", fr="erreur typique — ") + description
    gap = ((move - expected).norm() / expected.norm()).item()
    return tr(en=f"after one step the weights differ from the course's step (relative gap {gap:.2g}): check logits = my_similarity("
                 "image vectors, text vectors, model.logit_scale), then loss = my_contrastive_loss(logits)",
              fr=f"après un pas, les poids diffèrent de ceux du pas du cours (écart relatif {gap:.2g}) : vérifiez logits = my_similarity("
                 "vecteurs des images, vecteurs des textes, model.logit_scale), puis perte = my_contrastive_loss(logits)")


HINTS = {
    "similarity": (
        {"en": "bring every image vector and every text vector to length 1, take every image·text dot product, and scale them all by "
               "the temperature factor.",
         "fr": "ramenez chaque vecteur d'image et chaque vecteur de texte à la longueur 1, calculez tous les produits scalaires "
               "image·texte, et multipliez-les tous par le facteur de température."},
        {"en": "S = exp(logit_scale) · Î T̂ᵀ, with Î and T̂ the rows divided by their norm; S has one row per image, one column per text.",
         "fr": "S = exp(logit_scale) · Î T̂ᵀ, où Î et T̂ sont les lignes divisées par leur norme ; S a une ligne par image et une "
               "colonne par texte."},
        {"en": "image_features = F.normalize(image_features, dim=-1)\n   text_features = F.normalize(text_features, dim=-1)\n"
               "   return logit_scale.exp() * image_features @ text_features.T",
         "fr": "image_features = F.normalize(image_features, dim=-1)\n   text_features = F.normalize(text_features, dim=-1)\n"
               "   return logit_scale.exp() * image_features @ text_features.T"},
    ),
    "contrastive_loss": (
        {"en": "each row is a B-way classification (which text goes with this image?) whose right answer is on the diagonal; each "
               "column too (which image goes with this text?). Average the two.",
         "fr": "chaque ligne est une classification à B classes (quel texte va avec cette image ?) dont la bonne réponse est sur la "
               "diagonale ; chaque colonne aussi (quelle image va avec ce texte ?). Faites la moyenne des deux."},
        {"en": "targets = 0, 1, …, B − 1 (integers); L = (CE(S, targets) + CE(Sᵀ, targets)) / 2.",
         "fr": "cibles = 0, 1, …, B − 1 (des entiers) ; L = (CE(S, cibles) + CE(Sᵀ, cibles)) / 2."},
        {"en": "targets = torch.arange(logits.shape[0], device=logits.device)\n"
               "   return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2",
         "fr": "targets = torch.arange(logits.shape[0], device=logits.device)\n"
               "   return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2"},
    ),
    "clip_step": (
        {"en": "encode the images and the texts, compute the similarity logits then the loss with your two functions, and chain the "
               "three moves of every PyTorch step: reset the gradients, compute them, update the weights.",
         "fr": "encodez les images et les textes, calculez avec vos deux fonctions les logits de similarité puis la perte, et "
               "enchaînez les trois gestes de tout pas PyTorch : remettre les gradients à zéro, les calculer, mettre à jour les poids."},
        {"en": "logits = my_similarity(model.image(images), model.text(ids, mask)[2], model.logit_scale); "
               "loss = my_contrastive_loss(logits); then optimizer.zero_grad(), loss.backward(), optimizer.step().",
         "fr": "logits = my_similarity(model.image(images), model.text(ids, mask)[2], model.logit_scale) ; "
               "loss = my_contrastive_loss(logits) ; puis optimizer.zero_grad(), loss.backward(), optimizer.step()."},
        {"en": "logits = my_similarity(model.image(images), model.text(ids, mask)[2], model.logit_scale)\n"
               "   loss = my_contrastive_loss(logits)\n   optimizer.zero_grad()\n   loss.backward()\n   optimizer.step()\n"
               "   return loss.item()",
         "fr": "logits = my_similarity(model.image(images), model.text(ids, mask)[2], model.logit_scale)\n"
               "   loss = my_contrastive_loss(logits)\n   optimizer.zero_grad()\n   loss.backward()\n   optimizer.step()\n"
               "   return loss.item()"},
    ),
}
