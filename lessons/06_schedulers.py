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
# # 06 — Les schedulers : DDPM, DDIM, PNDM, Euler a, DPM-Solver++
#
# > « Le scheduler contrôle la progression du processus de débruitage, déterminant comment et à quelle
# > vitesse le bruit est retiré à chaque étape. […] Différents schedulers (DDIM, PNDM, etc.) offrent des
# > compromis entre vitesse de génération et qualité d'image. » — diapositive *3 éléments majeurs*
#
# Le même réseau $\varepsilon_\theta$ peut être utilisé par des **algorithmes d'échantillonnage** très
# différents. Les diapositives en citent quatre et dressent un tableau comparatif — sans mesure. On écrit
# les cinq à partir de zéro (`course.samplers`), on prouve qu'ils calculent exactement ce que calcule la
# bibliothèque diffusers, puis on **mesure** le tableau.
#
# **Au programme**
# 1. une convention commune et les pas de temps visités ;
# 2. DDPM, puis DDIM — *exercice 1* ;
# 3. PNDM, Euler a — *exercice 2* —, DPM-Solver++ ;
# 4. la précision, sur des données dont le bruit exact est connu ;
# 5. le tableau des diapositives, mesuré sur notre modèle texte → image.

# %% [markdown] lang="en"
# # 06 — The schedulers: DDPM, DDIM, PNDM, Euler a, DPM-Solver++
#
# > "The scheduler controls the progression of the denoising process, deciding how and how fast noise is
# > removed at each step. […] Different schedulers (DDIM, PNDM, etc.) offer trade-offs between generation
# > speed and image quality." — slide *3 éléments majeurs*
#
# The same network $\varepsilon_\theta$ can be used by very different **sampling algorithms**. The slides
# name four and draw a comparison table — without measurements. We write all five from scratch
# (`course.samplers`), prove that they compute exactly what the diffusers library computes, then **measure**
# the table.
#
# **Plan**
# 1. one shared convention and the timesteps visited;
# 2. DDPM, then DDIM — *exercise 1*;
# 3. PNDM, Euler a — *exercise 2* —, DPM-Solver++;
# 4. accuracy, on data whose exact noise is known;
# 5. the slides' table, measured on our text-to-image model.

# %%
import json
import time

import matplotlib.pyplot as plt
import torch

from course import current_profile
from course.checks.samplers import check_ddim_step, check_euler_step
from course.paths import data_dir
from course.plotting import figure, show_grid
from course.samplers import SAMPLERS, dpm_timesteps, sample, sigmas_from, timesteps
from course.schedules import alphas_cumprod, get_betas
from course.toy2d import GaussianMixture, sliced_wasserstein

P = current_profile()
torch.manual_seed(0)
T = 1000
betas = get_betas("scaled_linear", T)  # Stable Diffusion's schedule, used by our text-to-image model
abar = alphas_cumprod(betas)
print(f"profile: {P.name}")

# %% [markdown] lang="fr"
# ## 1. Une convention, des pas de temps
#
# Tous nos échantillonneurs sont de petites fonctions `sampler(model, x_T, betas, steps, …)` où `model(x, t)`
# renvoie $\hat\varepsilon$ ; la guidance et le texte sont enveloppés dans `model`, les échantillonneurs n'en
# savent rien. Le temps suit la convention du cours : $t \in \{1, \dots, T\}$ pour le réseau, $\bar\alpha_0 = 1$
# au bout (diffusers numérote $\tau = t - 1$).
#
# Avec $S$ étapes, on ne visite que $S$ des 1000 instants. Trois façons de les choisir, que diffusers appelle
# *leading*, *trailing* et *linspace* : elles ne commencent pas toutes à $t = T$ !

# %% [markdown] lang="en"
# ## 1. One convention, the timesteps
#
# All our samplers are small functions `sampler(model, x_T, betas, steps, …)` where `model(x, t)` returns
# $\hat\varepsilon$; guidance and text are wrapped inside `model`, samplers know nothing of them. Time follows
# the course's convention: $t \in \{1, \dots, T\}$ for the network, $\bar\alpha_0 = 1$ at the end (diffusers
# numbers $\tau = t - 1$).
#
# With $S$ steps we visit only $S$ of the 1000 instants. Three ways to pick them, which diffusers calls
# *leading*, *trailing* and *linspace*: they do not all start at $t = T$!

# %%
# NBVAL_CHECK_OUTPUT
for spacing in ("leading", "trailing", "linspace"):
    print(f"{spacing:>9}: {timesteps(T, 10, spacing)}")
print(f"DPM-Solver (linspace, S + 1 points minus the last): {dpm_timesteps(T, 10)}")

# %% [markdown] lang="fr"
# ## 2. DDPM et DDIM
#
# **DDPM** (leçon 02) fait un pas de la loi a posteriori $q(x_{t'} \mid x_t, \hat x_0)$ ; avec moins de
# 1000 étapes, on remplace $\beta_t$ par $1 - \bar\alpha_t / \bar\alpha_{t'}$ et l'on ajoute du bruit frais
# à chaque pas. **DDIM** (Song et al. 2021, éq. 12) remarque qu'on peut choisir un processus qui a les
# mêmes lois marginales mais ajoute **moins** de bruit — jusqu'à zéro ($\eta = 0$) : le pas devient
# déterministe.
#
# $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}},\qquad
# x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\varepsilon + \sigma z,\qquad
# \sigma = \eta\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}\big(1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}\big)}$$
#
# Lu à voix haute : on devine l'image propre, puis on la « rebruite » au niveau $t'$ **avec le même bruit**.
# Avec $\eta = 1$, on retrouve DDPM.
#
# ### ✏️ Exercice 1 — un pas de DDIM ($\eta = 0$)
#
# Écrivez `my_ddim_step(x_t, eps, abar_t, abar_prev)`.
#
# <details><summary>Indice</summary>
#
# D'abord $\hat x_0$, puis `abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps`.
# </details>

# %% [markdown] lang="en"
# ## 2. DDPM and DDIM
#
# **DDPM** (lesson 02) takes a step of the posterior $q(x_{t'} \mid x_t, \hat x_0)$; with fewer than 1000 steps,
# $\beta_t$ becomes $1 - \bar\alpha_t / \bar\alpha_{t'}$ and fresh noise is added at every step. **DDIM** (Song
# et al. 2021, eq. 12) notices that one can choose a process with the same marginals that adds **less**
# noise — down to none ($\eta = 0$): the step becomes deterministic.
#
# $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}},\qquad
# x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\varepsilon + \sigma z,\qquad
# \sigma = \eta\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}\big(1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}\big)}$$
#
# Read aloud: guess the clean image, then "re-noise" it to level $t'$ **with the same noise**. With $\eta = 1$
# we get DDPM back.
#
# ### ✏️ Exercise 1 — a DDIM step ($\eta = 0$)
#
# Write `my_ddim_step(x_t, eps, abar_t, abar_prev)`.
#
# <details><summary>Hint</summary>
#
# First $\hat x_0$, then `abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps`.
# </details>

# %%
# NBVAL_CHECK_OUTPUT
def my_ddim_step(x_t, eps, abar_t, abar_prev):
    """x_{t'} = √ᾱ_{t'}·x̂_0 + √(1 − ᾱ_{t'})·ε̂ with x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t (Song et al. 2021, eq. 12, η = 0)."""
    # BEGIN SOLUTION
    # HINT: predict the clean image, then re-noise it to t_prev with the same ε
    x0_hat = (x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
    return abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps
    # END SOLUTION


check_ddim_step(my_ddim_step)

# %% [markdown] lang="fr"
# ## 3. PNDM, Euler a, DPM-Solver++
#
# **PNDM** (Liu et al. 2022) voit l'échantillonnage comme la résolution d'une équation différentielle et
# emprunte aux méthodes numériques **multi-pas** : plutôt que le seul $\hat\varepsilon$ courant, il combine
# les 4 derniers avec les poids d'Adams–Bashforth $(55, -59, 37, -9)/24$ (éq. 12). Il lui faut donc un
# démarrage : l'article utilise trois pas de Runge-Kutta (12 appels au réseau) ; on suit ici le réglage de
# Stable Diffusion, un premier pas d'ordre 2 (deux appels), moins cher pour 20 à 50 étapes.
#
# **Euler a** (Karras et al. 2022) change de variable : $y = x_t / \sqrt{\bar\alpha_t} = x_0 + \sigma_t\,\varepsilon$
# avec $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$. Débruiter, c'est faire descendre $\sigma$ ; et
# $dy/d\sigma = \varepsilon$. Un pas d'Euler va de $\sigma$ à $\sigma_\downarrow$, puis on rajoute un peu de
# bruit frais $\sigma_\uparrow$ (« a » pour *ancestral*), avec $\sigma_\downarrow^2 + \sigma_\uparrow^2 = \sigma_{\text{suivant}}^2$.
#
# ### ✏️ Exercice 2 — un pas d'Euler
#
# Écrivez `my_euler_step(y, eps, sigma, sigma_next)` : le pas d'Euler (sans bruit) de $dy/d\sigma = \varepsilon$.
#
# <details><summary>Indice</summary>
#
# Nouvelle valeur = ancienne + pente × (variation de $\sigma$), et $\sigma$ **diminue**.
# </details>

# %% [markdown] lang="en"
# ## 3. PNDM, Euler a, DPM-Solver++
#
# **PNDM** (Liu et al. 2022) sees sampling as solving a differential equation and borrows **multistep**
# numerical methods: instead of the current $\hat\varepsilon$ alone, it combines the last 4 with the
# Adams–Bashforth weights $(55, -59, 37, -9)/24$ (eq. 12). So it needs a warm-up: the paper uses three
# Runge-Kutta steps (12 network calls); we follow Stable Diffusion's setting, a second-order first step (two
# calls), cheaper for 20 to 50 steps.
#
# **Euler a** (Karras et al. 2022) changes variable: $y = x_t / \sqrt{\bar\alpha_t} = x_0 + \sigma_t\,\varepsilon$
# with $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$. Denoising means bringing $\sigma$ down; and
# $dy/d\sigma = \varepsilon$. An Euler step goes from $\sigma$ to $\sigma_\downarrow$, then a little fresh noise
# $\sigma_\uparrow$ is added back ("a" for *ancestral*), with $\sigma_\downarrow^2 + \sigma_\uparrow^2 = \sigma_{\text{next}}^2$.
#
# ### ✏️ Exercise 2 — an Euler step
#
# Write `my_euler_step(y, eps, sigma, sigma_next)`: the (noise-free) Euler step of $dy/d\sigma = \varepsilon$.
#
# <details><summary>Hint</summary>
#
# New value = old value + slope × (change of $\sigma$), and $\sigma$ **decreases**.
# </details>

# %%
# NBVAL_CHECK_OUTPUT
def my_euler_step(y, eps, sigma, sigma_next):
    """y_next = y + (σ_next − σ)·ε: one Euler step of dy/dσ = ε (Karras et al. 2022, Alg. 1)."""
    # BEGIN SOLUTION
    # HINT: the slope is ε; the step is σ_next − σ (negative)
    return y + (sigma_next - sigma) * eps
    # END SOLUTION


check_euler_step(my_euler_step)

# %% [markdown] lang="fr"
# **DPM-Solver++** (Lu et al. 2022) résout la même équation mais dans la variable
# $\lambda = \log(\sqrt{\bar\alpha}/\sqrt{1-\bar\alpha})$, où la partie linéaire se calcule exactement ; il
# travaille sur les prédictions $\hat x_0$ et, en « 2M », corrige chaque pas avec le $\hat x_0$ du pas
# précédent (ordre 2). C'est le scheduler rapide de la fin du tableau.
#
# Tous sont dans `course.samplers` ; les tests du dépôt les font tourner côte à côte avec les classes de
# diffusers (`DDPMScheduler`, `DDIMScheduler`, `PNDMScheduler`, `EulerAncestralDiscreteScheduler`,
# `DPMSolverMultistepScheduler`) sur un même réseau fictif, avec les mêmes bruits, et vérifient l'égalité
# **à chaque étape**. Une curiosité que ces tests révèlent : avec le même bruit, Euler a et DDPM donnent
# exactement les mêmes images.

# %% [markdown] lang="en"
# **DPM-Solver++** (Lu et al. 2022) solves the same equation in the variable
# $\lambda = \log(\sqrt{\bar\alpha}/\sqrt{1-\bar\alpha})$, where the linear part is computed exactly; it works on
# $\hat x_0$ predictions and, in "2M", corrects each step with the previous step's $\hat x_0$ (second order).
# It is the fast scheduler at the end of the table.
#
# All live in `course.samplers`; the repository's tests run them side by side with diffusers' classes
# (`DDPMScheduler`, `DDIMScheduler`, `PNDMScheduler`, `EulerAncestralDiscreteScheduler`,
# `DPMSolverMultistepScheduler`) on one fake network with the same noises, and check equality **at every
# step**. A curiosity these tests reveal: with the same noise, Euler a and DDPM give exactly the same images.

# %% [markdown] lang="fr"
# ## 4. La précision, là où l'on connaît la réponse
#
# Sur un mélange de gaussiennes du plan, le meilleur $\varepsilon$ possible se calcule exactement (pas de
# réseau, pas d'erreur d'apprentissage) : l'écart entre les échantillons et la vraie loi ne vient que de
# l'échantillonneur. On trace la distance de Wasserstein « par tranches » en fonction du nombre d'étapes ;
# la ligne grise est le plancher du hasard (deux tirages de la vraie loi).

# %% [markdown] lang="en"
# ## 4. Accuracy, where the answer is known
#
# On a mixture of Gaussians in the plane, the best possible $\varepsilon$ can be computed exactly (no network,
# no learning error): the gap between samples and the true distribution comes from the sampler alone. We
# plot the sliced Wasserstein distance against the number of steps; the grey line is the floor of chance
# (two draws of the true distribution).

# %%
mixture = GaussianMixture.ring(k=6, radius=0.8, s=0.08)
exact_eps = mixture.eps(abar)
n_points = 1000 if P.name == "smoke" else 4000
truth = mixture.sample(n_points, torch.Generator().manual_seed(0))
floor = sliced_wasserstein(truth, mixture.sample(n_points, torch.Generator().manual_seed(1)))
step_counts = [5, 10, 20, 50, 100] if P.name != "smoke" else [5, 20]
curves = {}
x_T = torch.randn(n_points, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
for name in SAMPLERS:
    curves[name] = [sliced_wasserstein(sample(name, exact_eps, x_T, betas, s, generator=torch.Generator().manual_seed(3)), truth) for s in step_counts]
fig, ax = figure(1, 2, figsize=(11, 3.4))
for name, values in curves.items():
    ax[0].plot(step_counts, values, "o-", ms=3, label=name)
ax[0].axhline(floor, color="grey", lw=1, ls="--", label="two draws of the truth")
ax[0].set(xscale="log", yscale="log", xlabel="steps", ylabel="sliced Wasserstein to the truth", title="exact ε, error of the sampler only")
ax[0].legend(fontsize=7)
few = sample("dpmpp", exact_eps, x_T, betas, 10)
ax[1].scatter(*truth.T, s=1, alpha=0.3, label="truth")
ax[1].scatter(*few.T, s=1, alpha=0.3, label="DPM-Solver++, 10 steps")
ax[1].set(aspect="equal", title="10 steps")
ax[1].legend(fontsize=7, markerscale=5)
fig.tight_layout()
for name, values in curves.items():
    print(f"{name:>8}: " + "  ".join(f"{s} steps {v:.3f}" for s, v in zip(step_counts, values)))
print(f"floor (two draws of the truth): {floor:.3f}")

# %% [markdown] lang="fr"
# Lecture des courbes : toutes les erreurs baissent avec le nombre de pas, mais pas au même rythme. PNDM,
# avec sa mémoire des 4 dernières prédictions, est le plus précis à petit nombre de pas et touche le plancher
# dès 50. DDPM et Euler a sont confondus (même bruit, mêmes points). DPM-Solver++ rejoint DDIM vers 20 pas
# puis s'aplatit au-dessus du plancher. La raison tient à sa grille : comme dans diffusers, son dernier
# instant visité est $t \approx T/S$ (vers $t = 11$ pour 100 pas), d'où il saute d'un coup à $\sigma = 0$ en
# rendant $\hat x_0$, c'est-à-dire la **moyenne** des $x_0$ compatibles avec $x_t$. Quand le bruit restant
# est plus large que les détails (ici des composantes d'écart-type 0,08), cette moyenne resserre chaque
# composante : les points sont trop groupés. DDIM, lui, finit par un tout petit pas depuis $t = 1$. Sur le
# vrai modèle (ci-dessous), les écarts entre méthodes sont plus petits encore.

# %% [markdown] lang="en"
# Reading the curves: every error falls with the number of steps, but not at the same pace. PNDM, with its
# memory of the last 4 predictions, is the most accurate at few steps and touches the floor from 50 on.
# DDPM and Euler a coincide (same noise, same points). DPM-Solver++ joins DDIM around 20 steps and then
# flattens above the floor. The reason lies in its grid: as in diffusers, the last instant it visits is
# $t \approx T/S$ (about $t = 11$ for 100 steps), from which it jumps straight to $\sigma = 0$ by returning
# $\hat x_0$, that is the **mean** of the $x_0$ compatible with $x_t$. When the remaining noise is wider than
# the details (here components of standard deviation 0.08), that mean tightens every component: the points
# are too bunched. DDIM, for its part, ends with a tiny step from $t = 1$. On the real model (below), the
# gaps between methods are smaller still.

# %% [markdown] lang="fr"
# ## 5. Le tableau des diapositives, mesuré
#
# Le tableau *Comparaison des Schedulers* annonce : DDPM 1000+ étapes, excellente qualité, non
# déterministe ; DDIM 50–100, très bonne, déterministe ; Euler a 30–50, bonne, non déterministe ; DPM-Solver
# 20–30, bonne, « configurable ». Voici les mesures sur notre modèle texte → image, sur des prompts jamais
# vus (script `python -m course.scheduler_table`, résultats dans `data/scheduler_table.json`) :
# l'adhérence au prompt (l'évaluateur indépendant), la distance de type FID, le temps par image sur la
# machine indiquée, et le **déterminisme** : le même bruit de départ $x_T$ donne-t-il toujours la même image
# quand on change le hasard des étapes ?

# %% [markdown] lang="en"
# ## 5. The slides' table, measured
#
# The table *Comparaison des Schedulers* announces: DDPM 1000+ steps, excellent quality, not deterministic;
# DDIM 50–100, very good, deterministic; Euler a 30–50, good, not deterministic; DPM-Solver 20–30, good,
# "configurable". Here are the measurements on our text-to-image model, on prompts never seen (script
# `python -m course.scheduler_table`, results in `data/scheduler_table.json`): prompt adherence (the
# independent evaluator), the FID-like distance, the time per image on the machine named, and
# **determinism**: does the same starting noise $x_T$ always give the same image when the randomness of the
# steps changes?

# %%
table = json.loads((data_dir() / "scheduler_table.json").read_text())
print(f"held-out prompts, guidance {table['guidance']}, {table['hardware']}")
print(f"{'sampler':>8} {'steps':>5} {'prompts':>7} {'all right':>9} {'shape':>6} {'FID-like':>8} {'s/image':>8}  same x_T → same image")
for row in table["rows"]:
    print(f"{row['sampler']:>8} {row['steps']:>5} {row['n_prompts']:>7} {row['all_correct']:>9.0%} {row['per_attribute']['shape']:>6.0%} "
          f"{row['fid_like']:>8.1f} {row['seconds_per_image']:>8.3f}  {'yes' if row['same_x_T_same_image'] else 'no'}")
print(f"(FID-like between two sets of real renders: {table['fid_like_real_vs_real']})")
pairing = table["guidance_pairing"]
print(f"\nat {pairing[0]['steps']} steps, all asked attributes right, against the guidance scale w:")
for w in sorted({r["guidance"] for r in pairing}):
    print(f"  w = {w:g}: " + ", ".join(f"{r['sampler']} {r['all_correct']:.0%}" for r in pairing if r["guidance"] == w))
fig, ax = figure(figsize=(7, 3.2))
for name in SAMPLERS:
    rows = [r for r in table["rows"] if r["sampler"] == name]
    ax.plot([r["steps"] for r in rows], [r["all_correct"] for r in rows], "o-", ms=3, label=name)
ax.set(xscale="log", xlabel="steps", ylabel="all asked attributes right", ylim=(0, 1), title="adherence against steps")
ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown] lang="fr"
# Ce que disent nos mesures (64 prompts par ligne, donc environ ± 6 points d'incertitude) :
#
# - **Dès 20 pas, tous se valent ou presque** sur notre modèle (de 80 à 92 % de scènes justes) :
#   l'adhérence ne bouge presque plus avec le nombre de pas, et les 1 000 pas de DDPM n'achètent rien de
#   visible ici, sinon un temps par image 50 fois plus long. Les deux échantillonneurs stochastiques (DDPM,
#   Euler a) restent quelques points sous les déterministes (80 à 84 % contre 89 à 92 % de 20 à 100 pas) ;
#   l'écart est de l'ordre de l'incertitude, mais il revient à chaque ligne.
# - À 10 pas, PNDM s'effondre (19 %), et ce n'est pas un hasard : c'est son mariage avec la guidance qui
#   pèche. Les dernières lignes le mesurent sur les mêmes 64 prompts à 10 pas : jeu égal avec DDIM à
#   $w = 1$, du retard à $w = 2$, l'effondrement à $w = 3$, la guidance du modèle livré. Sa formule
#   multi-pas extrapole à partir de prédictions espacées de 100 pas ; la guidance amplifie leurs écarts, et
#   l'extrapolation déraille. À 20 pas, PNDM remonte à 80 %, et dès 50 pas il rejoint les autres.
# - **Déterminisme** : DDIM, PNDM et DPM-Solver++ redonnent exactement la même image pour le même $x_T$ ;
#   DDPM et Euler a, non, puisqu'ils rajoutent du bruit à chaque pas. Et avec le même bruit, DDPM et Euler a
#   donnent des lignes identiques : la curiosité annoncée plus haut.
# - Le tableau des diapositives (« DDPM 1000+ pas, DPM-Solver 20–30 ») décrit de grands modèles sur de vraies
#   images ; sur nos petites scènes, l'écart de qualité entre échantillonneurs est plus faible que l'erreur
#   du modèle lui-même (la forme, voir leçon 05).
# - Attention au FID-like des lignes à 1 000 pas : calculé sur 16 images seulement, il est fortement biaisé
#   vers le haut et ne se compare pas aux autres lignes.

# %% [markdown] lang="en"
# What our measurements say (64 prompts per row, so roughly ± 6 points of uncertainty):
#
# - **From 20 steps on, they are all about equal** on our model (80 to 92 % of scenes right): adherence
#   hardly moves with the number of steps any more, and DDPM's 1,000 steps buy nothing visible here, except
#   a time per image 50 times longer. The two stochastic samplers (DDPM, Euler a) stay a few points below
#   the deterministic ones (80 to 84 % against 89 to 92 % from 20 to 100 steps); the gap is about the size
#   of the uncertainty, but it comes back in every row.
# - At 10 steps PNDM collapses (19 %), and not by chance: its pairing with guidance is what fails. The last
#   lines measure it on the same 64 prompts at 10 steps: level with DDIM at $w = 1$, behind at $w = 2$,
#   collapsing at $w = 3$, the shipped model's guidance. Its multistep formula extrapolates from predictions
#   100 steps apart; guidance amplifies their differences, and the extrapolation goes off the rails. At 20
#   steps PNDM climbs back to 80 %, and from 50 steps on it catches up with the others.
# - **Determinism**: DDIM, PNDM and DPM-Solver++ give back exactly the same image for the same $x_T$; DDPM and
#   Euler a do not, since they add noise at every step. And with the same noise, DDPM and Euler a give
#   identical rows: the curiosity announced above.
# - The slides' table ("DDPM 1000+ steps, DPM-Solver 20–30") describes large models on real images; on our
#   small scenes, the quality gap between samplers is smaller than the model's own error (shape, see
#   lesson 05).
# - Beware the FID-like of the 1,000-step rows: computed on only 16 images, it is strongly biased upwards and
#   does not compare with the other rows.

# %% [markdown] lang="fr"
# ### Le même prompt, la même graine, cinq échantillonneurs
#
# Et la figure des diapositives, « variance du bruit sur 30 étapes », pour chaque échantillonneur : la
# variance $1-\bar\alpha_t$ du bruit présent dans $x_t$ à chacune des étapes visitées.
# DDPM, DDIM, PNDM et Euler a visitent les mêmes 30 instants, leurs courbes se superposent ; la grille de
# DPM-Solver++ est décalée d'un cran.

# %% [markdown] lang="en"
# ### The same prompt, the same seed, five samplers
#
# And the slides' figure, "noise variance over 30 steps", for each sampler: the variance $1-\bar\alpha_t$ of the
# noise in $x_t$ at each step visited.
# DDPM, DDIM, PNDM and Euler a visit the same 30 instants, so their curves lie on top of each other;
# DPM-Solver++'s grid is shifted by one notch.

# %%
from course.scheduler_table import generate_with

prompt = "une grande étoile rouge en haut à gauche"
side_by_side = torch.cat([generate_with(name, [prompt], steps=20 if P.name != "smoke" else 5) for name in SAMPLERS])
show_grid(side_by_side, [f"{name}, {20 if P.name != 'smoke' else 5} steps" for name in SAMPLERS], ncols=5, size=1.8,
          suptitle=f"« {prompt} », seed 0")

fig, ax = figure(figsize=(7, 3))
for name in SAMPLERS:
    ts = dpm_timesteps(T, 30) if name == "dpmpp" else timesteps(T, 30)
    ax.plot(range(1, len(ts) + 1), [(1 - abar[t]).item() for t in ts], "o-", ms=2, label=name)
ax.set(xlabel="sampling step", ylabel="1 − ᾱ_t", title="noise variance over 30 steps (scaled-linear schedule)")
ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown] lang="fr"
# ## À retenir
#
# - Un même réseau, plusieurs façons de remonter le temps : ancestrales (DDPM, Euler a : du bruit frais à
#   chaque pas) ou déterministes (DDIM, PNDM, DPM-Solver++ : une équation différentielle).
# - Nos cinq échantillonneurs calculent exactement ce que calcule diffusers (testé pas à pas).
# - Le tableau des diapositives se mesure : voir ci-dessus combien d'étapes chaque méthode demande vraiment
#   sur notre modèle.
#
# **Et ensuite ?** Leçon 07 : la guidance, et le pipeline complet du prompt à l'image.

# %% [markdown] lang="en"
# ## Key points
#
# - One network, several ways of running time backwards: ancestral (DDPM, Euler a: fresh noise at every
#   step) or deterministic (DDIM, PNDM, DPM-Solver++: a differential equation).
# - Our five samplers compute exactly what diffusers computes (tested step by step).
# - The slides' table can be measured: see above how many steps each method really needs on our model.
#
# **Next.** Lesson 07: guidance, and the full pipeline from prompt to image.
