# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] lang="fr"
# # 07 — La guidance et le pipeline complet : du prompt à l'image
#
# > « Prompt textuel → Encodage CLIP → Initialisation du bruit → Débruitage conditionné → Image finale »
# > — diapositive *Intégration de CLIP et du Modèle de Diffusion*
#
# Toutes les pièces sont là. Il reste la dernière idée des diapositives, la **classifier-free guidance**, puis
# on assemble le pipeline : celui qui répond à `python -m course generate "un cercle rouge en haut à gauche"`.
#
# **Au programme**
# 1. la guidance — *exercice* — et le compromis adhérence / diversité, mesuré ;
# 2. le pipeline, étape par étape, face à celui de diffusers ;
# 3. la chronologie d'une génération (la figure du lion des diapositives) ;
# 4. le contrôle par le prompt ; un terrain de jeu.
# 5. en option, en ligne avec un GPU : les vrais poids de Stable Diffusion v1.5 dans notre code.

# %% [markdown] lang="en"
# # 07 — Guidance and the full pipeline: from prompt to image
#
# > "Text prompt → CLIP encoding → noise initialisation → conditioned denoising → final image"
# > — slide *Intégration de CLIP et du Modèle de Diffusion*
#
# Every piece is there. What remains is the slides' last idea, **classifier-free guidance**, then we assemble
# the pipeline: the one behind `python -m course generate "un cercle rouge en haut à gauche"`.
#
# **Plan**
# 1. guidance — *exercise* — and the adherence / diversity trade-off, measured;
# 2. the pipeline, stage by stage, next to diffusers';
# 3. the timeline of a generation (the slides' lion figure);
# 4. control through the prompt; a playground.
# 5. optional, online with a GPU: Stable Diffusion v1.5's real weights in our code.

# %%
import matplotlib.pyplot as plt
import torch

from course import current_profile
from course.checks.guidance import check_guidance, check_guided_sampling
from course.eval import adherence, features, scene_attributes
from course.evaluation import heldout_prompts
from course.hints import hint
from course.language import tr
from course.pipeline import TextToImagePipeline
from course.plotting import figure, show_grid, show_strip
from course.yours import choose, use

P = current_profile()
torch.manual_seed(0)
pipe = TextToImagePipeline()
print(tr(en=f"profile: {P.name} · device {pipe.device}", fr=f"profil : {P.name} · calcul sur {pipe.device}"))

# %% [markdown] lang="fr"
# ## 1. La classifier-free guidance
#
# Le modèle a appris deux choses à la fois (leçon 05) : débruiter avec le prompt, $\varepsilon(x_t, c)$, et
# sans, $\varepsilon(x_t, \varnothing)$. La diapositive *Classifier-Free Guidance* les combine :
#
# $$\tilde\varepsilon = w\,\varepsilon(x_t, t, c) + (1 - w)\,\varepsilon(x_t, t, \varnothing)
# \;=\; \varepsilon(x_t, t, \varnothing) + w\,\big(\varepsilon(x_t, t, c) - \varepsilon(x_t, t, \varnothing)\big).$$
#
# La seconde écriture dit tout : on part de la prédiction « sans consigne » et on pousse $w$ fois dans la
# direction qu'ajoute le prompt. $w = 1$ : le modèle conditionnel tel quel ; $w > 1$ : on exagère ce que le
# prompt change. Les deux prédictions se calculent en **un seul** passage du réseau, sur un lot doublé.
#
# ### ✏️ Exercice — la combinaison de guidance
#
# <details><summary>Indice</summary>
#
# Une ligne : la formule de la diapositive.
# </details>
#
# Bloqué ? `hint("guidance")`, puis `hint("guidance", 2)` et `hint("guidance", 3)`.

# %% [markdown] lang="en"
# ## 1. Classifier-free guidance
#
# The model learned two things at once (lesson 05): denoising with the prompt, $\varepsilon(x_t, c)$, and
# without, $\varepsilon(x_t, \varnothing)$. The slide *Classifier-Free Guidance* combines them:
#
# $$\tilde\varepsilon = w\,\varepsilon(x_t, t, c) + (1 - w)\,\varepsilon(x_t, t, \varnothing)
# \;=\; \varepsilon(x_t, t, \varnothing) + w\,\big(\varepsilon(x_t, t, c) - \varepsilon(x_t, t, \varnothing)\big).$$
#
# The second form says it all: start from the "no instruction" prediction and push $w$ times in the direction
# the prompt adds. $w = 1$: the conditional model as is; $w > 1$: exaggerate what the prompt changes. Both
# predictions come from **one** pass of the network, on a doubled batch.
#
# ### ✏️ Exercise — the guidance combination
#
# <details><summary>Hint</summary>
#
# One line: the slide's formula.
# </details>
#
# Stuck? `hint("guidance")`, then `hint("guidance", 2)` and `hint("guidance", 3)`.

# %%
# NBVAL_CHECK_OUTPUT
def my_guidance(eps_cond, eps_uncond, w):
    """ε̃ = w·ε(c) + (1 − w)·ε(∅) (Ho & Salimans 2022; the slides' form)."""
    # BEGIN SOLUTION
    # HINT[en]: the slide's formula, with eps_cond = ε(x_t, t, c) and eps_uncond = ε(x_t, t, ∅)
    # HINT[fr]: la formule de la diapositive, avec eps_cond = ε(x_t, t, c) et eps_uncond = ε(x_t, t, ∅)
    return w * eps_cond + (1 - w) * eps_uncond
    # END SOLUTION


check_guidance(my_guidance)

# %% [markdown] lang="fr"
# Confions votre formule au pipeline : à partir d'ici, **chaque image** de cette leçon est guidée par votre
# `my_guidance` (si elle n'est pas prête, la cellule le dit et le cours garde la sienne).

# %% [markdown] lang="en"
# Let us hand your formula to the pipeline: from here on, **every image** of this lesson is guided by your
# `my_guidance` (if it is not ready, the cell says so and the course keeps its own).

# %%
use(guidance=my_guidance)

# %% [markdown] lang="fr"
# ### Le compromis, mesuré
#
# Les diapositives : « des valeurs de $w$ plus élevées produisent des images plus fidèles au prompt mais
# potentiellement moins diversifiées ». Mesurons les deux. L'**adhérence** : l'évaluateur lit-il ce que le
# prompt demande, sur des prompts jamais vus ? La **diversité** : pour un même prompt et des graines
# différentes, la distance moyenne entre les caractéristiques (celles de l'évaluateur) des images générées.

# %% [markdown] lang="en"
# ### The trade-off, measured
#
# The slides: "higher values of $w$ give images more faithful to the prompt but potentially less diverse".
# Let us measure both. **Adherence**: does the evaluator read what the prompt asks, on prompts never seen?
# **Diversity**: for one prompt and different seeds, the mean distance between the (evaluator) features of
# the generated images.

# %% tags=["key-figure"]
scales = [0, 1, 2, 3, 5, 7.5, 10]
n_prompts = {"smoke": 8, "cpu": 48, "gpu": 256}[P.name]
n_seeds = {"smoke": 3, "cpu": 6, "gpu": 16}[P.name]
scenes, prompts = heldout_prompts(n_prompts)
asked = [scene_attributes(s, include=("shape", "colour", "size", "position")) for s in scenes]
sweep = []
for w in scales:
    images = pipe(prompts, num_inference_steps=P.sample_steps // 2, guidance_scale=w, generator=0, sampler="dpmpp").tensors
    score = adherence(images, asked)
    same = pipe(prompts[0], num_inference_steps=P.sample_steps // 2, guidance_scale=w, generator=1, num_images_per_prompt=n_seeds, sampler="dpmpp").tensors
    f = features(same)
    diversity = torch.cdist(f, f).sum().item() / (len(f) * (len(f) - 1))
    sweep.append((w, score["all_correct"], score["per_attribute"]["shape"], diversity))
    print(tr(en=f"w = {w:>4}: all asked attributes right {score['all_correct']:.0%}, shape {score['per_attribute']['shape']:.0%}, diversity {diversity:.2f}",
             fr=f"w = {w:>4} : tous les attributs demandés justes {score['all_correct']:.0%}, forme {score['per_attribute']['shape']:.0%}, "
                f"diversité {diversity:.2f}"))
fig, ax = figure(figsize=(6, 3.2))
ax.plot([s[3] for s in sweep], [s[1] for s in sweep], "o-")
for w, acc, _, div in sweep:
    ax.annotate(f"w={w}", (div, acc), fontsize=7, xytext=(3, 3), textcoords="offset points")
ax.set(xlabel=tr(en="diversity (mean feature distance, same prompt)", fr="diversité (distance moyenne des caractéristiques, même prompt)"),
       ylabel=tr(en="adherence (all attributes right)", fr="adhérence (tous les attributs justes)"),
       title=tr(en="guidance: adherence against diversity", fr="guidance : adhérence et diversité"))
fig.tight_layout()

# %% [markdown] lang="fr"
# Lecture, faite sur les chiffres du profil `cpu` (48 prompts et 6 graines par point ; dans le profil `smoke`,
# 8 prompts et 3 graines, les chiffres imprimés ci-dessus sont trop peu nombreux pour cela, et un modèle
# d'essai peut même n'en respecter aucun) : sur la diversité, les diapositives ont raison, mais l'essentiel se
# joue ailleurs qu'on ne croit. Elle chute de moitié entre $w = 0$ et $w = 1$, puis ne baisse presque plus (d'environ 47 à 42
# jusqu'à $w = 7{,}5$) : sur notre modèle, c'est le conditionnement lui-même, bien plus que l'exagération, qui
# resserre les images autour du prompt. À $w = 10$ elle remonte, mais parce que les images se défont :
# l'adhérence chute au même moment. Sur la fidélité, seulement jusqu'à un point : sans guidance
# ($w = 0$, le modèle inconditionnel) l'évaluateur ne retrouve jamais la scène demandée, $w = 1$ fait déjà
# bien mieux, le maximum est vers $w = 2$ ou 3, puis l'adhérence redescend à mesure que $w$ monte (48 prompts
# par point, soit environ ± 6 points d'incertitude). Une guidance trop forte pousse l'image au-delà de ce
# que le modèle a appris.

# %% [markdown] lang="en"
# Reading, done on the `cpu` profile's numbers (48 prompts and 6 seeds per point; in the `smoke` profile, 8
# prompts and 3 seeds, the numbers printed above are too few for this, and a trial model may even get none
# right): on diversity the slides are right, but most of it happens elsewhere than one might think. It
# halves between $w = 0$ and $w = 1$, then hardly falls any more (from about 47 to 42 by $w = 7.5$): on our
# model it is conditioning itself, far more than the exaggeration, that gathers the images around the
# prompt. At $w = 10$ it rises again, but because the images come apart: adherence drops at the same time. On faithfulness, only up to a point: without guidance ($w = 0$, the unconditional model) the
# evaluator never finds the requested scene, $w = 1$ already does much better, the peak is around $w = 2$
# or 3, then adherence falls as $w$ keeps rising (48 prompts per point, so roughly ± 6 points of
# uncertainty). Too strong a guidance pushes the image beyond what the model has learned.

# %% [markdown] lang="fr"
# ## 2. Le pipeline, pièce par pièce
#
# `course.pipeline.TextToImagePipeline` enchaîne exactement les étapes des diapositives ; son appel imite
# celui de `StableDiffusionPipeline` de diffusers, pour que le passage à la vraie bibliothèque soit court :
#
# | étape | notre pipeline | `StableDiffusionPipeline` |
# |---|---|---|
# | 1. prompt → tokens | `course.tokenizer.encode` | `pipe.tokenizer` (`CLIPTokenizer`) |
# | 2. tokens → états | `pipe.clip.text` (notre CLIP, leçon 03) | `pipe.text_encoder` (`CLIPTextModel`) |
# | 3. bruit initial | `torch.randn(…, generator=…)`, 8 × 8 × 4 | `randn_tensor`, 64 × 64 × 4 pour 512 px |
# | 4. débruitage guidé | `pipe.unet` + `course.guidance.guided` | `pipe.unet`, `guidance_scale` |
# | 5. échantillonneur | `course.samplers` (`sampler="dpmpp"`…) | `pipe.scheduler` |
# | 6. latent → image | `pipe.vae.decode(z / facteur)` | `pipe.vae.decode(z / 0.18215)` |
#
# `pipe("un cercle rouge en haut à gauche", num_inference_steps=25, guidance_scale=3, generator=0,
# negative_prompt=None)` renvoie des images PIL, comme diffusers.

# %% [markdown] lang="en"
# ## 2. The pipeline, piece by piece
#
# `course.pipeline.TextToImagePipeline` chains exactly the slides' stages; its call imitates diffusers'
# `StableDiffusionPipeline`, so the step to the real library is short:
#
# | stage | our pipeline | `StableDiffusionPipeline` |
# |---|---|---|
# | 1. prompt → tokens | `course.tokenizer.encode` | `pipe.tokenizer` (`CLIPTokenizer`) |
# | 2. tokens → states | `pipe.clip.text` (our CLIP, lesson 03) | `pipe.text_encoder` (`CLIPTextModel`) |
# | 3. initial noise | `torch.randn(…, generator=…)`, 8 × 8 × 4 | `randn_tensor`, 64 × 64 × 4 for 512 px |
# | 4. guided denoising | `pipe.unet` + `course.guidance.guided` | `pipe.unet`, `guidance_scale` |
# | 5. sampler | `course.samplers` (`sampler="dpmpp"`…) | `pipe.scheduler` |
# | 6. latent → image | `pipe.vae.decode(z / factor)` | `pipe.vae.decode(z / 0.18215)` |
#
# `pipe("un cercle rouge en haut à gauche", num_inference_steps=25, guidance_scale=3, generator=0,
# negative_prompt=None)` returns PIL images, like diffusers.

# %%
import time

start = time.perf_counter()
out = pipe("un cercle rouge en haut à gauche", num_inference_steps=25, guidance_scale=3.0, generator=0)
seconds = time.perf_counter() - start
again = pipe("un cercle rouge en haut à gauche", num_inference_steps=25, guidance_scale=3.0, generator=0)
same = torch.equal(out.tensors, again.tensors)
print(tr(en=f"one image in {seconds:.2f} s on {pipe.device}; same seed, same image: {same}",
         fr=f"une image en {seconds:.2f} s sur {pipe.device} ; même graine, même image : {'oui' if same else 'non'}"))
out.images[0].resize((192, 192), resample=0)

# %% [markdown] lang="fr"
# ### ✏️ Exercice 2 — la boucle du pipeline
#
# Les étapes 4 et 5 du tableau ne sont qu'une boucle : celle que vous avez écrite à la leçon 05, où la formule
# de guidance était écrite dans la boucle. Réécrivez-la comme le pipeline l'appelle, avec **votre**
# `my_guidance` et les masques des prompts (le U-Net ignore ainsi le remplissage) :
# `my_guided_sampling(unet, context, mask, null, null_mask, z, grid, schedule, w)` part du bruit $z = z_T$ et,
# pour chaque paire d'instants $(t, t')$ de la grille jusqu'à $0$, interroge le U-Net **deux fois**,
# `unet(z, t, context, mask)` puis `unet(z, t, null, null_mask)` (le 4ᵉ argument est le masque, comme à la
# leçon 04), combine les deux réponses avec votre `my_guidance(eps_cond, eps_uncond, w)`, et fait un pas DDIM
# avec `ddim_update(z, ε̃, ᾱ_t, ᾱ_t')` (celui de la leçon 06 ; `schedule.abar(t)` donne $\bar\alpha_t$). Elle
# renvoie le latent $z_0$, que le décodeur transforme en image.
#
# Bloqué ? `hint("guided_sampling")`, puis `hint("guided_sampling", 2)` et `hint("guided_sampling", 3)`.

# %% [markdown] lang="en"
# ### ✏️ Exercise 2 — the pipeline's loop
#
# Stages 4 and 5 of the table are only a loop: the one you wrote in lesson 05, where the guidance formula was
# written inside the loop. Write it again as the pipeline calls it, with **your** `my_guidance` and the prompts'
# masks (so that the U-Net ignores the padding):
# `my_guided_sampling(unet, context, mask, null, null_mask, z, grid, schedule, w)` starts from the noise $z = z_T$
# and, for each pair of instants $(t, t')$ of the grid down to $0$, asks the U-Net **twice**,
# `unet(z, t, context, mask)` then `unet(z, t, null, null_mask)` (the 4th argument is the mask, as in lesson
# 04), combines the two answers with your `my_guidance(eps_cond, eps_uncond, w)`, and takes a DDIM step with
# `ddim_update(z, ε̃, ᾱ_t, ᾱ_t')` (lesson 06's; `schedule.abar(t)` gives $\bar\alpha_t$). It returns the
# latent $z_0$, which the decoder turns into an image.
#
# Stuck? `hint("guided_sampling")`, then `hint("guided_sampling", 2)` and `hint("guided_sampling", 3)`.

# %%
# NBVAL_CHECK_OUTPUT
from course.samplers import ddim_update


def my_guided_sampling(unet, context, mask, null, null_mask, z, grid, schedule, w):
    """Guided DDIM from z_T to z_0: ε̃ = guidance(ε(z, t, c), ε(z, t, ∅), w), then a DDIM step (Ho & Salimans 2022; Song et al. 2021)."""
    # BEGIN SOLUTION
    # HINT[en]: one iteration per pair (t, t_prev) of the grid: two U-Net calls, your guidance, one DDIM step
    # HINT[fr]: une itération par paire (t, t_prev) de la grille : deux appels au U-Net, votre guidance, un pas DDIM
    for t, t_prev in zip(grid[:-1], grid[1:]):
        eps = my_guidance(unet(z, t, context, mask), unet(z, t, null, null_mask), w)
        z = ddim_update(z, eps, schedule.abar(t), schedule.abar(t_prev))
    return z
    # END SOLUTION


check_guided_sampling(my_guided_sampling)

# %% [markdown] lang="fr"
# Votre boucle, sur le vrai modèle : mêmes états de texte, même bruit de départ, même grille que le pipeline
# réglé sur `sampler="ddim"`. Les deux latents doivent coïncider (aux arrondis près : le pipeline calcule
# $\varepsilon(c)$ et $\varepsilon(\varnothing)$ en un seul lot doublé).

# %% [markdown] lang="en"
# Your loop, on the real model: the same text states, the same starting noise, the same grid as the pipeline
# set to `sampler="ddim"`. The two latents must agree (up to rounding: the pipeline computes $\varepsilon(c)$ and
# $\varepsilon(\varnothing)$ in one doubled batch).

# %%
from course.guidance import guided
from course.noise_schedule import NoiseSchedule
from course.pipeline import generate_latents
from course.samplers import grid_for, sample
from course.shipped import betas, latent_shape, text_states

guided_sampling = choose("guided_sampling", my_guided_sampling, check_guided_sampling,
                       lambda unet, c, m, n, nm, z, grid, schedule, w: sample("ddim", guided(unet, c, m, n, nm, w), z, schedule, len(grid) - 1, grid=grid))
circle, steps, w = "un cercle rouge en haut à gauche", 25, 3.0
schedule = NoiseSchedule.from_betas(betas())
grid = grid_for("ddim", schedule, steps)
z_T = torch.randn((1, *latent_shape(pipe.vae.config)), generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    context, mask = text_states([circle], pipe.clip)
    null, null_mask = text_states([""], pipe.clip)
    z_yours = guided_sampling(pipe.unet, context, mask, null, null_mask, z_T, grid, schedule, w)
    z_pipe = generate_latents(pipe.unet, pipe.clip, [circle], "ddim", steps, w, x_T=z_T)
    pictures = [pipe.decode(z)[0] for z in (z_yours, z_pipe)]
print(tr(en=f"your loop and the pipeline, {steps} DDIM steps, w = {w:g}: max |z_yours − z_pipeline| = {(z_yours - z_pipe).abs().max().item():.1e}",
         fr=f"{steps} pas DDIM, w = {w:g} : l'écart maximal entre vos latents et ceux du pipeline vaut {(z_yours - z_pipe).abs().max().item():.1e}"))
show_grid(pictures, [tr(en="your loop", fr="votre boucle"), tr(en="the pipeline (ddim)", fr="le pipeline (ddim)")], ncols=2, size=2.2,
          suptitle=f"« {circle} »")

# %% [markdown] lang="fr"
# ## 3. La chronologie d'une génération
#
# La diapositive *Exemple de Génération* montre un lion à $t = 50, 40, 30, 20, 10, 1$ et décrit ce qui
# apparaît quand : la composition d'abord, puis les formes, les détails à la fin. Refaisons-la avec notre
# modèle : 50 étapes de DDIM, et l'image propre $\hat x_0$ que le modèle prédit à chaque étape. (Attention :
# la diapositive numérote les étapes à rebours, 50 étant la première.)

# %% [markdown] lang="en"
# ## 3. The timeline of a generation
#
# The slide *Exemple de Génération* shows a lion at $t = 50, 40, 30, 20, 10, 1$ and describes what appears
# when: composition first, then shapes, details at the end. Let us redo it with our model: 50 DDIM steps, and
# the clean image $\hat x_0$ the model predicts at each step. (Note: the slide counts steps backwards, 50
# being the first.)

# %% tags=["key-figure"]
timeline = pipe("une grande étoile jaune au centre sur fond noir", num_inference_steps=50, guidance_scale=3.0, generator=3,
                sampler="ddim", keep_x0_hat=True)
marks = [50, 40, 30, 20, 10, 1]  # the slide's labels: step k of 50, counted down
picked = [timeline.x0_hats[50 - k] for k in marks]
show_strip([x[1][0] for x in picked], [tr(en=f"step {k} (t={t})", fr=f"étape {k} (t={t})") for k, (t, _) in zip(marks, picked)],
           suptitle=tr(en="x̂_0 along the 50 steps", fr="x̂_0 au fil des 50 étapes"))

# %% [markdown] lang="fr"
# Ce que l'on voit : dès la première étape, la place de l'objet est décidée ; à l'étape 40, la prédiction
# $\hat x_0$ est déjà une étoile jaune bien nette. La suite précise les détails… et ici les abîme un peu : les
# branches s'amincissent et tirent vers l'orange, et le fond noir garde des taches vertes. Notre petit modèle
# n'est pas infaillible ; essayez une autre graine ou une autre guidance dans le terrain de jeu plus bas.

# %% [markdown] lang="en"
# What we see: from the first step the object's place is decided; at step 40 the prediction $\hat x_0$ is
# already a crisp yellow star. The rest refines the details… and here spoils them a little: the branches get
# thinner and drift to orange, and the black background keeps green stains. Our small model is not
# infallible; try another seed or another guidance in the playground below.

# %% [markdown] lang="fr"
# ## 4. Le contrôle par le prompt
#
# Même graine, un seul mot change à chaque fois : couleur, position, taille, nombre. Le bruit de départ est
# identique ; seule la phrase diffère.

# %% [markdown] lang="en"
# ## 4. Control through the prompt
#
# Same seed, one word changes each time: colour, position, size, count. The starting noise is the same; only
# the sentence differs.

# %%
variations = [
    "un grand cercle rouge en haut à gauche", "un grand cercle bleu en haut à gauche", "un grand cercle bleu en bas à droite",
    "un petit cercle bleu en bas à droite", "deux petits cercles bleus", "trois petits cercles bleus",
]
show_grid(pipe(variations, num_inference_steps=P.sample_steps // 2, guidance_scale=3.0, generator=7).tensors, variations, ncols=6, size=1.8, wrap=20)

# %% [markdown] lang="fr"
# Regardez ce qui bouge d'une image à l'autre : la couleur, la place et la taille suivent le mot changé ; le
# fond change parfois avec, puisque le prompt ne le fixe pas. Le nombre, lui, n'est pas toujours tenu : dans
# le profil `cpu`, « deux » donne ici trois cercles. Les scènes à plusieurs objets ne font que 30 % des
# images d'entraînement, et l'évaluation de la leçon 05 ne porte que sur des scènes à un objet : ce défaut-là
# n'y est pas mesuré.

# %% [markdown] lang="en"
# Look at what moves from one image to the next: colour, place and size follow the changed word; the
# background sometimes changes too, since the prompt does not fix it. The count, though, is not always
# kept: in the `cpu` profile, "deux" (two) gives three circles here. Scenes with several objects are only
# 30 % of the training images, and lesson 05's evaluation only covers one-object scenes: this flaw is not
# measured there.

# %% [markdown] lang="fr"
# ### Un terrain de jeu
#
# Avec un noyau Jupyter actif, les contrôles ci-dessous génèrent à la demande (prompt, échantillonneur,
# étapes, guidance, graine) ; sinon, un exemple fixe s'affiche.

# %% [markdown] lang="en"
# ### A playground
#
# With a live Jupyter kernel, the controls below generate on demand (prompt, sampler, steps, guidance, seed);
# otherwise a fixed example is shown.

# %%
from course.playground import playground

playground(pipe)

# %% [markdown] lang="fr"
# ## 5. De vrais poids de Stable Diffusion dans votre propre code (optionnel, en ligne)
#
# Notre U-Net et notre autoencodeur (`course.unet`, `course.autoencoder`, leçons 04 et 05) ont la
# topologie de Stable Diffusion v1.5 (Rombach et al. 2022) et les noms de paramètres de diffusers ; seules
# leurs tailles diffèrent. Construits aux tailles du vrai modèle, ils reçoivent, avec notre CLIP, les poids
# publiés : 1,07 milliard de paramètres. `course.stable_diffusion` lit le dossier du modèle
# (téléchargé une fois depuis huggingface.co, environ 2,1 Go en fp16) dans nos propres modules, puis génère
# par le même chemin que notre pipeline, `course.pipeline.generate_latents` : notre guidance
# (`course.guidance`, la formule même de votre exercice) et notre DPM-Solver++ (leçon 06). Seul le
# tokenizer BPE de CLIP, et son vocabulaire de 49 408 jetons, vient de transformers ; diffusers n'est pas
# utilisé du tout. Sur de petits modèles aléatoires de même architecture, les tests montrent que
# `StableDiffusionPipeline`, réglé sur DPM-Solver++, donne alors les mêmes images (`tests/test_stable_diffusion.py`).
#
# Il faut deux choses : un GPU CUDA (en fp16, environ 2,5 Go de mémoire pour une image 512 × 512, d'après
# le calcul détaillé dans la docstring du module) et le réseau, à moins que les poids ne soient déjà en
# cache. La cellule vérifie d'abord le GPU, puis si huggingface.co répond en moins de 3 secondes ; s'il
# manque l'un des deux, elle le dit en une ligne et ne fait rien d'autre.
#
# Un mot sur la langue : SD v1.5 a appris sur des légendes essentiellement anglaises (son encodeur de texte
# est le CLIP ViT-L/14 d'OpenAI). Les prompts des diapositives, « Un chat blanc tigré en gros plan sur un
# bureau » et « Corgi sur un rocher », seront découpés en morceaux de mots qu'il connaît mal ; on les donne
# donc aussi en anglais, avec la même graine pour chaque prompt, c'est-à-dire le même bruit de départ.
# La guidance est celle d'usage pour SD v1.5, $w = 7{,}5$ (la valeur par défaut de diffusers), bien
# au-dessus des 2 ou 3 qui convenaient à notre petit modèle.

# %% [markdown] lang="en"
# ## 5. Real Stable Diffusion weights in your own code (optional, online)
#
# Our U-Net and autoencoder (`course.unet`, `course.autoencoder`, lessons 04 and 05) have the topology of
# Stable Diffusion v1.5 (Rombach et al. 2022) and diffusers' parameter names; only their sizes differ. Built
# at the real model's sizes and, together with our CLIP, they take the published weights: 1.07 billion
# parameters. `course.stable_diffusion` reads the model's folder (downloaded once from huggingface.co, about
# 2.1 GB in fp16) into our own modules, then generates along the same path as our pipeline,
# `course.pipeline.generate_latents`: our guidance (`course.guidance`, the very formula of your exercise)
# and our DPM-Solver++ (lesson 06). Only CLIP's BPE tokenizer, with its 49,408-token vocabulary, comes from
# transformers; diffusers is not used at all. On small random models of the same architecture, the tests
# show that `StableDiffusionPipeline`, set to DPM-Solver++, then gives the same images (`tests/test_stable_diffusion.py`).
#
# It takes two things: a CUDA GPU (in fp16, about 2.5 GB of memory for one 512 × 512 image, computed in
# the module's docstring) and the network, unless the weights are already cached. The cell checks the GPU
# first, then whether huggingface.co answers within 3 seconds; if either is missing, it says so in one line
# and does nothing else.
#
# A word on language: SD v1.5 learned from mostly English captions (its text encoder is OpenAI's CLIP
# ViT-L/14). The slides' French prompts, « Un chat blanc tigré en gros plan sur un bureau » and « Corgi sur
# un rocher », get cut into word pieces it barely knows; so we also give them in English, with the same seed
# for every prompt, that is the same starting noise. The guidance is SD v1.5's usual $w = 7.5$ (diffusers'
# default), well above the 2 or 3 that suited our small model.

# %%
from course import stable_diffusion

slide_prompts = [
    "Un chat blanc tigré en gros plan sur un bureau", "A white tabby cat close-up on a desk",
    "Corgi sur un rocher", "Corgi on a rock",
    "Corgi sur un rocher, à la Van Gogh", "Corgi on a rock, in the style of Van Gogh",  # the slide « Variations Stylistiques »
    "The face of a lion, photography",
]
reason = stable_diffusion.unavailable()  # a CUDA GPU first, then huggingface.co within 3 s (or the weights already cached)
if reason:
    print(tr(en=f"Section 5 skipped: {reason}.", fr=f"Section 5 sautée : {reason}."))
else:
    sd = stable_diffusion.load(device="cuda", dtype=torch.float16)  # the first time, downloads about 2.1 GB
    start = time.perf_counter()
    real = torch.cat([stable_diffusion.generate(sd, p, sampler="dpmpp", steps=25, guidance=7.5, seed=0) for p in slide_prompts])
    seconds, peak = time.perf_counter() - start, torch.cuda.max_memory_allocated() / 1e9
    print(tr(en=f"{len(slide_prompts)} images of 512×512 in {seconds:.0f} s on {torch.cuda.get_device_name()}, peak GPU memory {peak:.1f} GB",
             fr=f"{len(slide_prompts)} images de 512×512 en {seconds:.0f} s sur {torch.cuda.get_device_name()}, pic de mémoire GPU {peak:.1f} Go"))
    show_grid(real, slide_prompts, ncols=4, size=3.0, wrap=26)

# %% [markdown] lang="fr"
# Si la cellule a trouvé un GPU et le réseau, elle a affiché les sept images, le temps qu'elles ont pris et
# la mémoire GPU la plus haute réellement occupée, à comparer aux 2,5 Go calculés. Regardez chaque prompt
# français à côté de sa traduction : même bruit de départ, donc toute différence vient du texte. Le corgi
# « à la Van Gogh » est l'exemple de la diapositive *Variations Stylistiques et Sémantiques* : un style,
# appris de milliards d'images légendées, que notre petit monde de formes ne peut pas apprendre (leçon 10). Sinon, la
# ligne affichée dit ce qui manquait ; rien n'a été téléchargé ni calculé, et le reste de la leçon n'en
# dépend pas.

# %% [markdown] lang="en"
# If the cell found a GPU and the network, it showed the seven images, the time they took and the highest GPU
# memory actually used, to set against the 2.5 GB computed. Look at each French prompt next to its
# translation: same starting noise, so any difference comes from the text. The corgi "in the style of Van
# Gogh" is the example of the slide *Variations Stylistiques et Sémantiques*: a style, learned from billions
# of captioned images, that our small world of shapes cannot learn (lesson 10). Otherwise, the line it printed
# says what was missing; nothing was downloaded or computed, and the rest of the lesson does not depend on it.

# %% [markdown] lang="fr"
# ## À retenir
#
# - La guidance combine deux prédictions du même réseau : $\varepsilon(\varnothing) + w\,(\varepsilon(c) - \varepsilon(\varnothing))$ ;
#   monter $w$ fait d'abord suivre le prompt bien mieux, puis, au-delà de 2 ou 3 sur notre modèle, l'adhérence
#   redescend ; la diversité, elle, chute surtout jusqu'à $w = 1$, puis ne baisse presque plus (mesuré
#   ci-dessus).
# - Le pipeline est celui des diapositives, étape par étape, et celui de diffusers, nom pour nom.
# - `python -m course generate "…"` fait tout cela en une commande.
#
# <details><summary><b>Pour les enseignants</b></summary>
#
# La légende du lion parle « du chien » ; les étapes y sont comptées à rebours (« $t = 50$–$40$ » est le
# début de la génération). Voir `ERRATA.md`.
# </details>

# %% [markdown] lang="en"
# ## Key points
#
# - Guidance combines two predictions of the same network: $\varepsilon(\varnothing) + w\,(\varepsilon(c) - \varepsilon(\varnothing))$;
#   raising $w$ first makes the image follow the prompt much better, then, beyond 2 or 3 on our model,
#   adherence falls again; diversity drops mostly up to $w = 1$, then hardly falls any more (measured above).
# - The pipeline is the slides', stage by stage, and diffusers', name by name.
# - `python -m course generate "…"` does all of this in one command.
#
# <details><summary><b>For lecturers</b></summary>
#
# The lion's caption speaks of "the dog"; its steps are counted backwards ("$t = 50$–$40$" is the start of
# generation). See `ERRATA.md`.
# </details>
