"""The checkers speak the learner's language: with ``COURSE_LANG=fr`` (the French editions' first cell),
a known mistake is named in French and a right answer is confirmed in French.

The English messages are covered by ``test_checks.py`` and ``test_checks_lessons.py``; here every mistake
each checker names is provoked once in French, and its message must hold no English sentence.
"""

import math
import re

import pytest
import torch
import torch.nn.functional as F

import cosine_mistakes
from course.checks.clip import check_contrastive_loss, check_similarity
from course.checks.composition import check_excite_loss, check_relative_distance, check_wilson
from course.checks.ddpm import check_epsilon_loss, check_p_sample_step
from course.checks.forward import check_cosine_alphas_cumprod, check_q_sample
from course.checks.guidance import check_guidance
from course.checks.latent import check_kl_divergence
from course.checks.samplers import check_ddim_step, check_euler_step
from course.checks.tour import check_to_signed
from course.checks.unet import check_cross_attention, check_resblock
from course.ddpm import p_sample_step, posterior_variance
from course.forward import q_sample
from course.geneval import wilson
from course.schedules import cosine_alphas_cumprod

# Words no French message uses (code, formulas and `quoted` names are left out before looking).
EN_WORDS = frozenset(
    "the an is are was were of and with not instead missing expected got looks like one per must use "
    "used take sum mean over only both step wrong way should has have been by".split()
)


@pytest.fixture(autouse=True)
def french(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "fr")


def english_words(message: str) -> list[str]:
    text = re.sub(r"`[^`]*`", " ", message)
    text = re.sub(r"\b\w*[_.(]\w*\b", " ", text)  # identifiers and calls: q_sample, F.normalize, exp(...)
    return [w for w in re.findall(r"[A-Za-zÀ-ÿœ']+", text) if w.lower() in EN_WORDS]


def ok_fr(result, *fragments):
    assert result.passed and result.message.startswith("✅"), result.message
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"
    assert not english_words(result.message), result.message
    return True


def wrong_fr(result, *fragments):
    assert not result.passed and result.message.startswith("❌") and "\n" not in result.message, result.message
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"
    assert not english_words(result.message), (english_words(result.message), result.message)
    return True


# ----------------------------------------------------------------------------- tour


def test_to_signed_in_french():
    chw = lambda im: torch.from_numpy(im).permute(2, 0, 1).float()  # noqa: E731
    assert ok_fr(check_to_signed(lambda im: chw(im) / 127.5 - 1), "canaux en premier")
    assert wrong_fr(check_to_signed(lambda im: chw(im) / 255), "l'image est dans [0, 1], pas dans [−1, 1]")
    assert wrong_fr(check_to_signed(lambda im: chw(im) / 255 - 0.5), "divisez par 127.5")
    assert wrong_fr(check_to_signed(lambda im: chw(im) / 127.5), "soustrayez 1 à la fin")
    assert wrong_fr(check_to_signed(lambda im: torch.from_numpy(im).reshape(3, 5, 7).float() / 127.5 - 1), "mélange les pixels")
    overflow = lambda im: (torch.from_numpy(im).permute(2, 0, 1) * 2).float() / 255 - 1  # noqa: E731
    assert wrong_fr(check_to_signed(overflow), "a débordé", "appelez d'abord .float()")
    assert wrong_fr(check_to_signed(lambda im: torch.from_numpy(im).float() / 127.5 - 1), "les canaux viennent en premier")
    assert wrong_fr(check_to_signed(lambda im: torch.from_numpy(im / 127.5 - 1).permute(2, 0, 1)), "les images PyTorch sont en float32")


def test_the_language_is_read_when_the_message_is_made(monkeypatch):
    chw = lambda im: torch.from_numpy(im).permute(2, 0, 1).float() / 255  # noqa: E731
    assert "pas dans [−1, 1]" in check_to_signed(chw).message
    monkeypatch.setenv("COURSE_LANG", "en")
    assert "[0, 1], not [−1, 1]" in check_to_signed(chw).message


# ----------------------------------------------------------------------------- forward


def test_q_sample_in_french():
    assert ok_fr(check_q_sample(q_sample))

    def formula_of(formula):
        return lambda x0, t, eps, abar: formula(abar[t].view(-1, 1, 1, 1), x0, eps)

    assert wrong_fr(check_q_sample(lambda x0, t, eps, abar: q_sample(x0, t - 1, eps, abar)), "décalage de un dans l'indice")
    assert wrong_fr(check_q_sample(formula_of(lambda a, x0, eps: a * x0 + (1 - a) * eps)), "les racines carrées manquent")
    assert wrong_fr(check_q_sample(formula_of(lambda a, x0, eps: a * x0 + (1 - a).sqrt() * eps)), "la racine carrée de ᾱ_t manque")
    assert wrong_fr(check_q_sample(formula_of(lambda a, x0, eps: a.sqrt() * x0 + (1 - a) * eps)), "le terme de bruit est")
    assert wrong_fr(check_q_sample(formula_of(lambda a, x0, eps: (1 - a).sqrt() * x0 + a.sqrt() * eps)), "sont intervertis")
    assert wrong_fr(check_q_sample(formula_of(lambda a, x0, eps: a.sqrt() * x0)), "le terme de bruit √(1 − ᾱ_t)·ε manque")
    assert wrong_fr(check_q_sample(formula_of(lambda a, x0, eps: a.sqrt() * x0 + (1 - a.sqrt()) * eps)), "porte sur tout 1 − ᾱ_t")
    assert wrong_fr(check_q_sample(lambda *a: q_sample(*a).double()), "x_t doit garder le dtype de x0")
    no_view = lambda x0, t, eps, abar: abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * eps  # noqa: E731
    assert "donnez-lui la forme (B, 1, 1, 1)" in check_q_sample(no_view).message  # after PyTorch's own (English) error
    assert "versions pour tenseurs" in check_q_sample(lambda x0, t, eps, abar: math.sqrt(abar[t]) * x0).message


def test_cosine_alphas_cumprod_in_french():
    assert ok_fr(check_cosine_alphas_cumprod(lambda T, s: cosine_alphas_cumprod(T, s)), "comme un cosinus au carré")

    for fn, _, french_words in cosine_mistakes.MISTAKES:
        assert wrong_fr(check_cosine_alphas_cumprod(fn), *french_words)
    hard_coded_T = check_cosine_alphas_cumprod(lambda T, s: cosine_alphas_cumprod(1000, s))
    assert wrong_fr(hard_coded_T, "T=50", "écrits en dur")
    assert wrong_fr(check_cosine_alphas_cumprod(lambda T, s: cosine_alphas_cumprod(T, 0.008)), "écrits en dur")


def test_a_mistake_seen_only_at_T_50_is_named_without_the_hard_coded_hint(monkeypatch):
    """The hint "are T or s hard-coded?" is for an unnamed failure; a named one is enough, in either language."""

    def no_s_for_small_T(T, s):
        u = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((u + (s if T == 1000 else 0)) / (1 + (s if T == 1000 else 0)) * math.pi / 2) ** 2
        return f / f[0]

    assert wrong_fr(check_cosine_alphas_cumprod(no_s_for_small_T), "le décalage s manque")
    assert "en dur" not in check_cosine_alphas_cumprod(no_s_for_small_T).message
    monkeypatch.setenv("COURSE_LANG", "en")
    message = check_cosine_alphas_cumprod(no_s_for_small_T).message
    assert "the offset s is missing" in message and "hard-coded" not in message


# ----------------------------------------------------------------------------- ddpm


def test_epsilon_loss_in_french():
    assert ok_fr(check_epsilon_loss(lambda m, x0, t, eps, a: F.mse_loss(m(q_sample(x0, t, eps, a), t), eps)), "L = moyenne")
    x_t = lambda x0, t, eps, a: q_sample(x0, t, eps, a)  # noqa: E731
    assert wrong_fr(check_epsilon_loss(lambda m, x0, t, eps, a: m(x_t(x0, t, eps, a), t).square().mean()), "sans la cible ε")
    assert wrong_fr(check_epsilon_loss(lambda m, x0, t, eps, a: (eps - m(x0, t)).square().mean()), "au lieu de l'image bruitée x_t")
    assert wrong_fr(check_epsilon_loss(lambda m, x0, t, eps, a: (eps - m(x_t(x0, t, eps, a), t)).square().sum()), "une somme au lieu d'une moyenne")
    assert wrong_fr(check_epsilon_loss(lambda m, x0, t, eps, a: (eps + m(x_t(x0, t, eps, a), t)).square().mean()), "ε + ε_θ au lieu de ε − ε_θ")
    rms = lambda m, x0, t, eps, a: (eps - m(x_t(x0, t, eps, a), t)).square().mean().sqrt()  # noqa: E731
    assert wrong_fr(check_epsilon_loss(rms), "la racine carrée de la moyenne")
    off_by_one = lambda m, x0, t, eps, a: (eps - m(x_t(x0, t - 1, eps, a), t)).square().mean()  # noqa: E731
    assert wrong_fr(check_epsilon_loss(off_by_one), "construit avec t − 1")
    no_mean = lambda m, x0, t, eps, a: (eps - m(x_t(x0, t, eps, a), t)).square()  # noqa: E731
    assert wrong_fr(check_epsilon_loss(no_mean), "un seul nombre était attendu", "prenez la moyenne")


def _step(mean_fn=None, noise_fn=None):
    def fn(x_t, t, eps_pred, z, betas, abar):
        b, a = betas[t].view(-1, 1, 1, 1), abar[t].view(-1, 1, 1, 1)
        mean = (mean_fn or (lambda x, b, a, e: (x - b / (1 - a).sqrt() * e) / (1 - b).sqrt()))(x_t, b, a, eps_pred)
        noise = (noise_fn or (lambda b, t, z, betas, abar: (t > 1).view(-1, 1, 1, 1) * b.sqrt() * z))(b, t, z, betas, abar)
        return mean + noise

    return fn


def test_p_sample_step_in_french():
    assert ok_fr(check_p_sample_step(p_sample_step), "z est ignoré en t = 1")
    assert wrong_fr(check_p_sample_step(_step(noise_fn=lambda b, t, z, *_: b.sqrt() * z)), "du bruit a été ajouté au dernier pas")
    assert wrong_fr(check_p_sample_step(_step(noise_fn=lambda b, t, z, *_: 0 * z)), "un bruit neuf")
    assert wrong_fr(check_p_sample_step(_step(mean_fn=lambda x, b, a, e: (x - b / (1 - a).sqrt() * e) / a.sqrt())), "divise par √ᾱ_t")
    assert wrong_fr(check_p_sample_step(_step(mean_fn=lambda x, b, a, e: (x - b / (1 - a) * e) / (1 - b).sqrt())), "il manque la racine carrée")
    assert wrong_fr(check_p_sample_step(_step(mean_fn=lambda x, b, a, e: (x + b / (1 - a).sqrt() * e) / (1 - b).sqrt())), "au lieu d'être soustrait")
    tilde = lambda b, t, z, betas, abar: (t > 1).view(-1, 1, 1, 1) * posterior_variance(t, betas, abar).sqrt().view(-1, 1, 1, 1) * z  # noqa: E731
    assert wrong_fr(check_p_sample_step(_step(noise_fn=tilde)), "cet exercice demande σ_t = √β_t")
    assert wrong_fr(check_p_sample_step(_step(noise_fn=lambda b, t, z, *_: (t > 1).view(-1, 1, 1, 1) * b * z)), "l'échelle du bruit est √β_t")

    def no_view(x_t, t, eps_pred, z, betas, abar):
        return (x_t - betas[t] / (1 - abar[t]).sqrt() * eps_pred) / (1 - betas[t]).sqrt()

    assert "une valeur par échantillon, de forme (B,)" in check_p_sample_step(no_view).message


# ----------------------------------------------------------------------------- clip


def test_similarity_in_french():
    n = F.normalize
    right = lambda i, t, s: s.exp() * n(i, dim=-1) @ n(t, dim=-1).T  # noqa: E731
    assert ok_fr(check_similarity(right), "similarités cosinus")
    assert wrong_fr(check_similarity(lambda i, t, s: s.exp() * i @ t.T), "n'ont pas été ramenés à une norme 1")
    assert wrong_fr(check_similarity(lambda i, t, s: s * n(i, dim=-1) @ n(t, dim=-1).T), "le facteur est exp(logit_scale)")
    assert wrong_fr(check_similarity(lambda i, t, s: n(i, dim=-1) @ n(t, dim=-1).T), "facteur de température")
    assert wrong_fr(check_similarity(lambda i, t, s: s.exp() * n(i, dim=0) @ n(t, dim=0).T), "le long du lot (dim=0)")
    assert wrong_fr(check_similarity(lambda i, t, s: right(t, i, s)), "transposez les textes")


def test_contrastive_loss_in_french():
    targets = lambda logits: torch.arange(logits.shape[0])  # noqa: E731
    both = lambda lg: F.cross_entropy(lg, targets(lg)) + F.cross_entropy(lg.T, targets(lg))  # noqa: E731
    assert ok_fr(check_contrastive_loss(lambda lg: both(lg) / 2), "avec la diagonale pour cibles")
    assert wrong_fr(check_contrastive_loss(lambda lg: F.cross_entropy(lg, targets(lg))), "seul le sens image→texte")
    assert wrong_fr(check_contrastive_loss(lambda lg: F.cross_entropy(lg.T, targets(lg))), "seul le sens texte→image")
    assert wrong_fr(check_contrastive_loss(both), "additionnés au lieu d'être moyennés")
    per_pair = lambda lg: F.cross_entropy(lg, targets(lg), reduction="none")  # noqa: E731
    assert wrong_fr(check_contrastive_loss(per_pair), "un seul nombre était attendu")


# ----------------------------------------------------------------------------- unet


def test_resblock_in_french():
    def resblock(skip=True, emb_silu=True, emb_on=True, first=True):
        def fn(block, x, emb):
            h = block.conv1(F.silu(block.norm1(x))) if first else block.conv1(x)
            if emb_on:
                h = h + block.time_emb_proj(F.silu(emb) if emb_silu else emb)[:, :, None, None]
            h = block.conv2(F.silu(block.norm2(h)))
            return h + block.conv_shortcut(x) if skip else h

        return fn

    assert ok_fr(check_resblock(resblock()))
    assert wrong_fr(check_resblock(resblock(skip=False)), "la connexion résiduelle manque")
    assert wrong_fr(check_resblock(resblock(emb_on=False)), "le codage du temps manque")
    assert wrong_fr(check_resblock(resblock(emb_silu=False)), "la SiLU n'a pas été appliquée")
    assert wrong_fr(check_resblock(resblock(first=False)), "la première normalisation/activation manque")
    no_broadcast = lambda block, x, emb: block.conv1(F.silu(block.norm1(x))) + block.time_emb_proj(F.silu(emb))  # noqa: E731
    assert "doit devenir (B, C, 1, 1) pour décaler chaque pixel" in check_resblock(no_broadcast).message
    assert "portent les noms de diffusers" in check_resblock(lambda block, x, emb: block.conv0(x)).message


def test_cross_attention_in_french():
    def attn(scale=True, mask_value=float("-inf"), dim=-1, use_mask=True):
        def fn(q, k, v, key_mask):
            scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1)
            if use_mask:
                scores = scores.masked_fill(~key_mask[:, None, :], mask_value)
            return torch.nan_to_num(scores.softmax(dim=dim)) @ v

        return fn

    assert ok_fr(check_cross_attention(attn()), "sur les clés non masquées")
    assert wrong_fr(check_cross_attention(attn(use_mask=False)), "le masque de remplissage est ignoré")
    assert wrong_fr(check_cross_attention(attn(scale=False)), "ne sont pas divisés par √d")
    assert wrong_fr(check_cross_attention(attn(dim=1)), "porte sur les requêtes")
    assert wrong_fr(check_cross_attention(attn(mask_value=0.0)), "mis à 0 au lieu de −∞")
    assert wrong_fr(check_cross_attention(lambda q, k, v, m: attn()(q, k, v, m).transpose(1, 2)), "une ligne de sortie par requête")


# ----------------------------------------------------------------------------- latent


def test_kl_divergence_in_french():
    per_value = lambda m, lv: 0.5 * (m.square() + lv.exp() - 1 - lv)  # noqa: E731
    assert ok_fr(check_kl_divergence(lambda m, lv: per_value(m, lv).flatten(1).sum(1).mean()), "sommée par image, moyennée sur le lot")
    assert wrong_fr(check_kl_divergence(lambda m, lv: per_value(m, lv).mean()), "une moyenne sur toutes les valeurs")
    assert wrong_fr(check_kl_divergence(lambda m, lv: per_value(m, lv).sum()), "une somme sur le lot aussi")
    assert wrong_fr(check_kl_divergence(lambda m, lv: (2 * per_value(m, lv)).flatten(1).sum(1).mean()), "le facteur ½ manque")
    assert wrong_fr(check_kl_divergence(lambda m, lv: (0.5 * (m.square() - 1)).flatten(1).sum(1).mean()), "σ² = exp(logvar)")
    assert wrong_fr(check_kl_divergence(lambda m, lv: (0.5 * (m.square() + lv.exp() - 1 + lv)).flatten(1).sum(1).mean()), "n'a pas le bon signe")
    assert wrong_fr(check_kl_divergence(lambda m, lv: per_value(m, lv).flatten(1).sum(1)), "un seul nombre était attendu")


# ----------------------------------------------------------------------------- samplers


def test_ddim_step_in_french():
    x0 = lambda x, e, a: (x - (1 - a).sqrt() * e) / a.sqrt()  # noqa: E731
    right = lambda x, e, a, ap: ap.sqrt() * x0(x, e, a) + (1 - ap).sqrt() * e  # noqa: E731
    assert ok_fr(check_ddim_step(right), "puis le rebruiter jusqu'à t_prev")
    assert wrong_fr(check_ddim_step(lambda x, e, a, ap: right(x, e, ap, a)), "ᾱ_t et ᾱ_prev sont intervertis")
    assert wrong_fr(check_ddim_step(lambda x, e, a, ap: ap.sqrt() * x0(x, e, a)), "le terme en ε manque")
    assert wrong_fr(check_ddim_step(lambda x, e, a, ap: ap * ((x - (1 - a) * e) / a) + (1 - ap) * e), "les racines carrées sur ᾱ manquent")
    assert wrong_fr(check_ddim_step(lambda x, e, a, ap: ap * x0(x, e, a) + (1 - ap).sqrt() * e), "et non par √ᾱ_prev")


def test_euler_step_in_french():
    assert ok_fr(check_euler_step(lambda y, eps, s, s_next: y + (s_next - s) * eps))
    assert wrong_fr(check_euler_step(lambda y, eps, s, s_next: y + (s - s_next) * eps), "dans le mauvais sens")
    assert wrong_fr(check_euler_step(lambda y, eps, s, s_next: y - eps), "la taille du pas manque")
    assert wrong_fr(check_euler_step(lambda y, eps, s, s_next: y + (s_next - s) * (y - s * eps)), "la dérivée a été prise égale à x̂_0")


# ----------------------------------------------------------------------------- guidance


def test_guidance_in_french():
    assert ok_fr(check_guidance(lambda c, u, w: u + w * (c - u)), "w = 0 non conditionnel", "w > 1 guidé")
    assert wrong_fr(check_guidance(lambda c, u, w: w * u + (1 - w) * c), "ε(c) et ε(∅) sont intervertis", "vers le prompt")
    assert wrong_fr(check_guidance(lambda c, u, w: w * c), "le terme (1 − w)·ε(∅) manque")
    assert wrong_fr(check_guidance(lambda c, u, w: w * c - (1 - w) * u), "le signe du terme (1 − w)·ε(∅) est inversé")


# ----------------------------------------------------------------------------- composition


def test_wilson_in_french():
    assert ok_fr(check_wilson(wilson), "demi-largeur", "jamais vide en 0/n")
    p = lambda k, n: k / n  # noqa: E731
    normal = lambda k, n: (p(k, n) - 1.96 * math.sqrt(p(k, n) * (1 - p(k, n)) / n), p(k, n) + 1.96 * math.sqrt(p(k, n) * (1 - p(k, n)) / n))  # noqa: E731
    assert wrong_fr(check_wilson(normal), "pour k = 7, n = 20 : reçu", "c'est l'approximation normale")
    assert wrong_fr(check_wilson(lambda k, n: wilson(k, n)[::-1]), "lo et hi sont intervertis")
    assert wrong_fr(check_wilson(lambda k, n: k / n), "deux nombres (lo, hi) étaient attendus")
    assert wrong_fr(check_wilson(lambda k, n: (0.0, 1.0)), "attendu (0.1812, 0.5671)")


def test_relative_distance_in_french():
    def mine(s, s2, where):
        where = where.to(s.dtype)
        return ((s - s2).square().sum(-1) * where).sum() / (s.square().sum(-1) * where).sum()

    assert ok_fr(check_relative_distance(mine), "des états sans rapport")
    assert wrong_fr(check_relative_distance(lambda s, s2, w: ((s - s2) ** 2).sum() / (s**2).sum()), "ont été comptées aussi")
    assert wrong_fr(check_relative_distance(lambda s, s2, w: (((s - s2) ** 2).sum(-1) * w).sum() / (s**2).sum()), "le dénominateur")
    norms = lambda s, s2, w: ((s - s2).norm(dim=-1) * w).sum() / (s.norm(dim=-1) * w).sum()  # noqa: E731
    assert wrong_fr(check_relative_distance(norms), "et non des normes au carré")
    ratios = lambda s, s2, w: ((((s - s2) ** 2).sum(-1) / (s**2).sum(-1)) * w).sum() / w.sum()  # noqa: E731
    assert wrong_fr(check_relative_distance(ratios), "une moyenne des rapports")
    assert wrong_fr(check_relative_distance(lambda s, s2, w: (((s - s2) ** 2).sum(-1) * w)), "sommez sur le lot")


def test_excite_loss_in_french():
    per_image = lambda reduce: lambda st, counts: torch.stack([reduce(1 - st[b, :n]) for b, n in enumerate(counts)])  # noqa: E731
    assert ok_fr(check_excite_loss(per_image(torch.amax)), "au mot le plus négligé")
    assert wrong_fr(check_excite_loss(per_image(torch.mean)), "et non leur max")
    assert wrong_fr(check_excite_loss(per_image(torch.amin)), "la perte doit suivre le plus faible")
    assert wrong_fr(check_excite_loss(lambda st, counts: (1 - st).amax(1)), "les colonnes inutilisées")
    assert wrong_fr(check_excite_loss(lambda st, counts: (1 - st).amax()), "une perte par image")
