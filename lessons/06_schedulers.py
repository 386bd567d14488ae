# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] lang="fr"
# # 06 — Les schedulers : DDPM, DDIM, PNDM, Euler a, DPM-Solver++, Heun
#
# > « Le scheduler contrôle la progression du processus de débruitage, déterminant comment et à quelle
# > vitesse le bruit est retiré à chaque étape. […] Différents schedulers (DDIM, PNDM, etc.) offrent des
# > compromis entre vitesse de génération et qualité d'image. » — diapositive *3 éléments majeurs*
#
# Le même réseau $\varepsilon_\theta$ peut être utilisé par des **algorithmes d'échantillonnage** très
# différents. Les diapositives en citent quatre et dressent un tableau comparatif — sans mesure. On écrit
# ces cinq-là et deux de plus à partir de zéro (`course.samplers`), on prouve qu'ils calculent exactement ce
# que calcule la bibliothèque diffusers, puis on **mesure** : la précision, la course contre diffusers, le
# tableau.
#
# **Au programme**
# 1. une convention commune et les pas de temps visités ;
# 2. DDPM, puis DDIM — *exercice 1* ;
# 3. PNDM, Euler a — *exercice 2* —, DPM-Solver++ ;
# 4. le point de vue σ, la grille, Heun et DPM-Solver++ 3M ;
# 5. la précision, sur des données dont le flot exact est connu, et la course contre diffusers ;
# 6. le tableau des diapositives, mesuré sur notre modèle texte → image.

# %% [markdown] lang="en"
# # 06 — The schedulers: DDPM, DDIM, PNDM, Euler a, DPM-Solver++, Heun
#
# > "The scheduler controls the progression of the denoising process, deciding how and how fast noise is
# > removed at each step. […] Different schedulers (DDIM, PNDM, etc.) offer trade-offs between generation
# > speed and image quality." — slide *3 éléments majeurs*
#
# The same network $\varepsilon_\theta$ can be used by very different **sampling algorithms**. The slides
# name four and draw a comparison table — without measurements. We write those five and two more from scratch
# (`course.samplers`), prove that they compute exactly what the diffusers library computes, then **measure**:
# accuracy, the race against diffusers, the table.
#
# **Plan**
# 1. one shared convention and the timesteps visited;
# 2. DDPM, then DDIM — *exercise 1*;
# 3. PNDM, Euler a — *exercise 2* —, DPM-Solver++;
# 4. the σ view, the grid, Heun and DPM-Solver++ 3M;
# 5. accuracy, on data whose exact flow is known, and the race against diffusers;
# 6. the slides' table, measured on our text-to-image model.

# %%
import json
import time

import matplotlib.pyplot as plt
import torch

from course import current_profile
from course.checks.samplers import check_ddim_sampler, check_ddim_step, check_euler_step
from course.hints import hint
from course.language import hardware, tr
from course.paths import data_dir
from course.plotting import figure, show_grid
from course.samplers import SAMPLERS, dpm_timesteps, sample, timesteps
from course.schedules import alphas_cumprod, get_betas
from course.toy2d import GaussianMixture, sliced_wasserstein
from course.yours import choose, use

P = current_profile()
torch.manual_seed(0)
T = 1000
betas = get_betas("scaled_linear", T)  # Stable Diffusion's schedule, used by our text-to-image model
abar = alphas_cumprod(betas)
print(tr(en=f"profile: {P.name}", fr=f"profil : {P.name}"))

# %% [markdown] lang="fr"
# ## 1. Une convention, des pas de temps
#
# On lance un échantillonneur par `sample(nom, model, x_T, betas, steps, …)`, où `model(x, t)` renvoie
# $\hat\varepsilon$ ; la guidance et le texte sont enveloppés dans `model`, les échantillonneurs n'en savent rien
# (la section 4 montre ce qu'il y a dessous). Le temps suit la convention du cours : $t \in \{1, \dots, T\}$ pour le réseau, $\bar\alpha_0 = 1$
# au bout (diffusers numérote $\tau = t - 1$).
#
# Avec $S$ étapes, on ne visite que $S$ des 1000 instants. Trois façons de les choisir, que diffusers appelle
# *leading*, *trailing* et *linspace* : elles ne commencent pas toutes à $t = T$ !

# %% [markdown] lang="en"
# ## 1. One convention, the timesteps
#
# A sampler is run by `sample(name, model, x_T, betas, steps, …)`, where `model(x, t)` returns
# $\hat\varepsilon$; guidance and text are wrapped inside `model`, samplers know nothing of them (section 4
# shows what lies underneath). Time follows
# the course's convention: $t \in \{1, \dots, T\}$ for the network, $\bar\alpha_0 = 1$ at the end (diffusers
# numbers $\tau = t - 1$).
#
# With $S$ steps we visit only $S$ of the 1000 instants. Three ways to pick them, which diffusers calls
# *leading*, *trailing* and *linspace*: they do not all start at $t = T$!

# %%
# NBVAL_CHECK_OUTPUT
for spacing in ("leading", "trailing", "linspace"):
    print(tr(en=f"{spacing:>9}: {timesteps(T, 10, spacing)}", fr=f"{spacing:>9} : {timesteps(T, 10, spacing)}"))
print(tr(en=f"DPM-Solver (linspace, S + 1 points minus the last): {dpm_timesteps(T, 10)}",
         fr=f"DPM-Solver (linspace, S + 1 points moins le dernier) : {dpm_timesteps(T, 10)}"))

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
# D'abord $\hat x_0$, puis rebruitez-le jusqu'à $t'$ avec le **même** $\hat\varepsilon$ : la formule ci-dessus, avec $\sigma = 0$.
# </details>
#
# Bloqué ? `hint("ddim_step")` donne l'idée, `hint("ddim_step", 2)` la formule, `hint("ddim_step", 3)` le code.

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
# First $\hat x_0$, then re-noise it to $t'$ with the **same** $\hat\varepsilon$: the formula above, with $\sigma = 0$.
# </details>
#
# Stuck? `hint("ddim_step")` gives the idea, `hint("ddim_step", 2)` the formula, `hint("ddim_step", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_ddim_step(x_t, eps, abar_t, abar_prev):
    """x_{t'} = √ᾱ_{t'}·x̂_0 + √(1 − ᾱ_{t'})·ε̂ with x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t (Song et al. 2021, eq. 12, η = 0)."""
    # BEGIN SOLUTION
    # HINT[en]: predict the clean image, then re-noise it to t_prev with the same ε
    # HINT[fr]: prédisez l'image propre, puis rebruitez-la jusqu'à t_prev avec le même ε
    x0_hat = (x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
    return abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps
    # END SOLUTION


check_ddim_step(my_ddim_step)

# %% [markdown] lang="fr"
# Votre pas est juste ? Confiez-le au cours : à partir d'ici, **chaque pas DDIM** des cellules suivantes (la
# course des échantillonneurs, les images de la fin) est calculé par votre `my_ddim_step`. S'il n'est pas
# encore écrit, la cellule le dit en une ligne et le cours garde le sien.

# %% [markdown] lang="en"
# Is your step right? Hand it to the course: from here on, **every DDIM step** of the cells below (the race of
# samplers, the images at the end) is computed by your `my_ddim_step`. If it is not written yet, the cell says so
# in one line and the course keeps its own.

# %%
use(ddim_step=my_ddim_step)

# %% [markdown] lang="fr"
# ## 3. PNDM, Euler a, DPM-Solver++
#
# **PNDM** (Liu et al. 2022) voit l'échantillonnage comme la résolution d'une équation différentielle et
# emprunte aux méthodes numériques **multi-pas** : plutôt que le seul $\hat\varepsilon$ courant, il combine
# les 4 derniers avec les poids d'Adams–Bashforth $(55, -59, 37, -9)/24$ (éq. 12). Il lui faut donc un
# démarrage : l'article utilise trois pas de Runge-Kutta (12 appels au réseau) ; on suit ici le réglage de
# Stable Diffusion, un premier pas d'ordre 2 (deux appels), moins cher pour 20 à 50 étapes.
#
# **Euler a** (Euler *ancestral* : `sample_euler_ancestral` de k-diffusion, K. Crowson 2022, dans la variable $\sigma$
# de Karras et al. 2022 ; les diapositives ne citent pas de source) change de variable : $y = x_t / \sqrt{\bar\alpha_t} = x_0 + \sigma_t\,\varepsilon$
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
#
# Bloqué ? `hint("euler_step")`, puis `hint("euler_step", 2)` et `hint("euler_step", 3)`.

# %% [markdown] lang="en"
# ## 3. PNDM, Euler a, DPM-Solver++
#
# **PNDM** (Liu et al. 2022) sees sampling as solving a differential equation and borrows **multistep**
# numerical methods: instead of the current $\hat\varepsilon$ alone, it combines the last 4 with the
# Adams–Bashforth weights $(55, -59, 37, -9)/24$ (eq. 12). So it needs a warm-up: the paper uses three
# Runge-Kutta steps (12 network calls); we follow Stable Diffusion's setting, a second-order first step (two
# calls), cheaper for 20 to 50 steps.
#
# **Euler a** (Euler *ancestral*: k-diffusion's `sample_euler_ancestral`, K. Crowson 2022, in the $\sigma$ variable of
# Karras et al. 2022; the slides cite no source) changes variable: $y = x_t / \sqrt{\bar\alpha_t} = x_0 + \sigma_t\,\varepsilon$
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
#
# Stuck? `hint("euler_step")`, then `hint("euler_step", 2)` and `hint("euler_step", 3)`.

# %%
# NBVAL_CHECK_OUTPUT
def my_euler_step(y, eps, sigma, sigma_next):
    """y_next = y + (σ_next − σ)·ε: one Euler step of dy/dσ = ε (Karras et al. 2022, Alg. 1)."""
    # BEGIN SOLUTION
    # HINT[en]: the slope is ε; the step is σ_next − σ (negative)
    # HINT[fr]: la pente vaut ε ; le pas vaut σ_next − σ (négatif)
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
# `DPMSolverMultistepScheduler`, et pour les deux de la section 4 `HeunDiscreteScheduler` et le
# `DPMSolverMultistepScheduler` d'ordre 3) sur un même réseau fictif, avec les mêmes bruits, et vérifient l'égalité
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
# `DPMSolverMultistepScheduler`, and for section 4's two `HeunDiscreteScheduler` and the third-order
# `DPMSolverMultistepScheduler`) on one fake network with the same noises, and check equality **at every
# step**. A curiosity these tests reveal: with the same noise, Euler a and DDPM give exactly the same images.

# %% [markdown] lang="fr"
# ## 4. Le point de vue σ, la grille, et deux solveurs de plus
#
# Trois rôles, bien séparés dans `course` (comme dans k-diffusion) :
#
# - **le schedule** (`NoiseSchedule`) : $x_t = \alpha_t x_0 + \sigma_t\varepsilon$ avec $\alpha_t = \sqrt{\bar\alpha_t}$,
#   $\sigma_t = \sqrt{1-\bar\alpha_t}$, le « demi log-SNR » $\lambda_t = \log(\alpha_t/\sigma_t)$ et le $\tilde\sigma_t = \sigma_t/\alpha_t$
#   d'Euler a. Il se lit aussi **entre** deux pas entiers (interpolation de $\log\tilde\sigma$, comme diffusers) ;
# - **la grille** : les instants visités $t_0 > t_1 > \dots > t_S = 0$ (`course.grids`) — les trois espacements de
#   diffusers, celle de Karras et al. (2022, éq. 5 : $\tilde\sigma$ régulier en $\tilde\sigma^{1/\rho}$, $\rho = 7$, qui
#   serre les pas vers le peu bruité) et celle qui est régulière en $\lambda$ (DPM-Solver) ;
# - **l'adaptateur** (`Denoiser`) : que le réseau prédise $\varepsilon$, $x_0$ ou $v = \alpha\varepsilon - \sigma x_0$
#   (Stable Diffusion 2), le solveur reçoit $(\hat x_0, \hat\varepsilon)$ ; il vérifie aussi la forme et les NaN, et
#   **compte les appels au réseau**.
#
# Un solveur est alors une fonction `solveur(modèle, x, grille, schedule)`. Deux nouveaux venus :
# **Heun** (Karras et al. 2022, algorithme 1) refait chaque pas d'Euler avec la pente moyenne du début et de la
# fin du pas — ordre 2, mais **deux** appels par pas ; **DPM-Solver++ 3M** étend le 2M avec les trois derniers
# $\hat x_0$ (ordre 3 une fois lancé). Pour comparer honnêtement, on compte donc les **appels au réseau**, pas
# les pas. Voici les grilles de 10 pas, dont une « optimisée » que l'on expliquera plus bas.

# %% [markdown] lang="en"
# ## 4. The σ view, the grid, and two more solvers
#
# Three roles, kept apart in `course` (as in k-diffusion):
#
# - **the schedule** (`NoiseSchedule`): $x_t = \alpha_t x_0 + \sigma_t\varepsilon$ with $\alpha_t = \sqrt{\bar\alpha_t}$,
#   $\sigma_t = \sqrt{1-\bar\alpha_t}$, the "half log-SNR" $\lambda_t = \log(\alpha_t/\sigma_t)$ and Euler a's
#   $\tilde\sigma_t = \sigma_t/\alpha_t$. It is also read **between** integer steps (log $\tilde\sigma$ interpolated, as diffusers does);
# - **the grid**: the instants visited, $t_0 > t_1 > \dots > t_S = 0$ (`course.grids`): diffusers' three spacings,
#   Karras et al.'s (2022, eq. 5: $\tilde\sigma$ evenly spaced in $\tilde\sigma^{1/\rho}$, $\rho = 7$, which crowds the
#   steps at low noise) and the one evenly spaced in $\lambda$ (DPM-Solver);
# - **the adapter** (`Denoiser`): whether the network predicts $\varepsilon$, $x_0$ or $v = \alpha\varepsilon - \sigma x_0$
#   (Stable Diffusion 2), the solver receives $(\hat x_0, \hat\varepsilon)$; it also checks shapes and NaN, and
#   **counts the network calls**.
#
# A solver is then a function `solver(model, x, grid, schedule)`. Two newcomers: **Heun** (Karras et al. 2022,
# Algorithm 1) redoes each Euler step with the mean of the slopes at the start and at the end of the step:
# second order, but **two** calls per step; **DPM-Solver++ 3M** extends 2M with the last three $\hat x_0$
# (third order once started). To compare fairly we therefore count **network calls**, not steps. Here are the
# 10-step grids, including an "optimised" one explained below.

# %%
from course.grid_search import load_grid, mixture_flow
from course.grids import GRIDS, make_grid
from course.noise_schedule import NoiseSchedule
from course.samplers import SOLVERS, evaluations, grid_for

schedule = NoiseSchedule.from_betas(betas)
grids10 = {name: make_grid(name, schedule, 10) for name in GRIDS}
grids10[tr(en="optimised (toy)", fr="optimisée (mélange)")] = load_grid("toy_mixture", "dpmpp_3m", 10)
width = max(16, *map(len, grids10))
fig, ax = figure(figsize=(7, 3.2))
for name, grid in grids10.items():
    ax.plot(range(1, 11), schedule.sigma_ve(grid[:-1]), "o-", ms=3, label=name)
    print(f"{name:>{width}}{tr(en=':', fr=' :')} t = {[round(float(t), 1) for t in grid[:-1]]}")
ax.set(yscale="log", xlabel=tr(en="step", fr="pas"), ylabel=tr(en="σ̃ of the instant visited", fr="σ̃ de l'instant visité"),
       title=tr(en="10-step grids, then σ̃ = 0 (scaled-linear schedule)", fr="grilles de 10 pas, puis σ̃ = 0 (schedule scaled-linear)"))
ax.legend(fontsize=7)
fig.tight_layout()
print(tr(en="network calls for 10 steps:", fr="appels au réseau pour 10 pas :"), {name: evaluations(name, 10) for name in SOLVERS})

# %% [markdown] lang="fr"
# ### ✏️ Exercice 3 — votre propre échantillonneur
#
# Un solveur n'est qu'une boucle sur la grille. Écrivez `my_ddim_sampler(model, x, grid, schedule)` : partez de
# $x = x_{t_0}$, et pour chaque paire d'instants consécutifs $(t, t')$ de la grille (jusqu'au dernier, $0$),
# demandez $\hat\varepsilon$ au réseau, `model(x, t)`, puis faites **votre** pas DDIM de l'exercice 1 ;
# `schedule.abar(t)` donne $\bar\alpha_t$. Renvoyez $x$ à la fin.
#
# Bloqué ? `hint("ddim_sampler")`, puis `hint("ddim_sampler", 2)` et `hint("ddim_sampler", 3)`.

# %% [markdown] lang="en"
# ### ✏️ Exercise 3 — your own sampler
#
# A solver is only a loop over the grid. Write `my_ddim_sampler(model, x, grid, schedule)`: start from
# $x = x_{t_0}$, and for each pair of consecutive instants $(t, t')$ of the grid (down to the last one, $0$), ask
# the network for $\hat\varepsilon$, `model(x, t)`, then take **your** DDIM step from exercise 1;
# `schedule.abar(t)` gives $\bar\alpha_t$. Return $x$ at the end.
#
# Stuck? `hint("ddim_sampler")`, then `hint("ddim_sampler", 2)` and `hint("ddim_sampler", 3)`.

# %%
# NBVAL_CHECK_OUTPUT
def my_ddim_sampler(model, x, grid, schedule):
    """DDIM from grid[0] down to 0 (Song et al. 2021, eq. 12, η = 0): at each instant t, ε̂ = model(x, t), then one step to the next."""
    # BEGIN SOLUTION
    # HINT[en]: one iteration per pair of consecutive instants of the grid; keep x up to date
    # HINT[fr]: une itération par paire d'instants consécutifs de la grille ; tenez x à jour
    for t, t_prev in zip(grid[:-1], grid[1:]):
        eps = model(x, t)
        x = my_ddim_step(x, eps, schedule.abar(t), schedule.abar(t_prev))
    return x
    # END SOLUTION


check_ddim_sampler(my_ddim_sampler)

# %% [markdown] lang="fr"
# Et maintenant, le vrai modèle : le U-Net de la leçon 05, guidé par le texte, échantillonné par **votre**
# boucle (`generate_latents` accepte un solveur à la place d'un nom), à côté du DDIM du cours sur la même
# grille et la même graine.

# %% [markdown] lang="en"
# And now the real model: lesson 05's U-Net, guided by the text, sampled by **your** loop (`generate_latents`
# takes a solver instead of a name), beside the course's DDIM on the same grid with the same seed.

# %%
from course.pipeline import generate_latents
from course.shipped import GUIDANCE, load_autoencoder, load_clip, load_unet

ddim_sampler = choose("ddim_sampler", my_ddim_sampler, check_ddim_sampler, SOLVERS["ddim"])
unet, clip = load_unet(), load_clip()
autoencoder, scaling = load_autoencoder()
star = "une grande étoile rouge en haut à gauche"
n_steps = 20 if P.name != "smoke" else 5
z_yours = generate_latents(unet, clip, [star], ddim_sampler, n_steps, GUIDANCE, torch.Generator().manual_seed(0))
z_course = generate_latents(unet, clip, [star], "ddim", n_steps, GUIDANCE, torch.Generator().manual_seed(0))
print(tr(en=f"your loop and the course's DDIM, {n_steps} steps: max |z_yours − z_course| = {(z_yours - z_course).abs().max().item():.1e}",
         fr=f"{n_steps} pas : l'écart maximal entre vos latents et ceux du DDIM du cours vaut {(z_yours - z_course).abs().max().item():.1e}"))
with torch.no_grad():
    pictures = [autoencoder.decode(z / scaling).clamp(-1, 1)[0] for z in (z_yours, z_course)]
show_grid(pictures, [tr(en="your sampler", fr="votre échantillonneur"), tr(en="course's DDIM", fr="DDIM du cours")], ncols=2, size=2.2,
          suptitle=f"« {star} »")

# %% [markdown] lang="fr"
# ## 5. La précision, là où l'on connaît la réponse
#
# Sur un mélange de gaussiennes du plan, le meilleur $\varepsilon$ possible se calcule exactement (pas de
# réseau, pas d'erreur d'apprentissage) : l'écart entre les échantillons et la vraie loi ne vient que de
# l'échantillonneur. Mieux : on connaît aussi le **flot exact**, la solution de l'équation différentielle
# depuis chaque $x_T$ jusqu'à $\tilde\sigma \approx 0$ (`mixture_flow`). On mesure donc la distance de Wasserstein « par
# tranches » entre les points d'un échantillonneur et ceux du flot exact **partis des mêmes** $x_T$ : pour un
# échantillonneur déterministe, plus de plancher de hasard. Les ancestraux (DDPM, Euler a) tirent un bruit neuf à
# chaque pas : ils ne suivent pas ce flot, et leur mesure garde le hasard d'un tirage.
#
# Une limite commune à tous : le schedule s'arrête à $t = 1$ ($\tilde\sigma \approx 0{,}03$ ici, pour des
# composantes d'écart-type 0,08) ; de là, tous sautent à $\tilde\sigma = 0$ en rendant $\hat x_0$, la **moyenne** des
# $x_0$ compatibles, qui resserre un peu chaque composante. La ligne grise est ce que coûte ce dernier saut
# même avec une infinité de pas.

# %% [markdown] lang="en"
# ## 5. Accuracy, where the answer is known
#
# On a mixture of Gaussians in the plane, the best possible $\varepsilon$ can be computed exactly (no network, no
# learning error): the gap between samples and the true distribution comes from the sampler alone. Better, the
# **exact flow** is known too: the solution of the differential equation from each $x_T$ down to
# $\tilde\sigma \approx 0$ (`mixture_flow`). So we measure the sliced Wasserstein distance between a sampler's points
# and the exact flow's points **started from the same** $x_T$: for a deterministic sampler, no floor of chance
# remains. The ancestral ones (DDPM, Euler a) draw fresh noise at every step: they do not follow this flow, and
# their measure keeps the chance of one draw.
#
# One limit is shared by all: the schedule stops at $t = 1$ ($\tilde\sigma \approx 0.03$ here, for components of
# standard deviation 0.08); from there every sampler jumps to $\tilde\sigma = 0$ by returning $\hat x_0$, the **mean** of
# the compatible $x_0$, which tightens each component a little. The grey line is what that last jump costs even
# with infinitely many steps.

# %%
mixture = GaussianMixture.ring(k=6, radius=0.8, s=0.08)
exact_eps = mixture.eps(schedule)
n_points = 1000 if P.name == "smoke" else 4000
x_T = torch.randn(n_points, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
flow = mixture_flow(mixture, x_T, schedule, steps=500 if P.name == "smoke" else 2000)
stop_at_1 = sliced_wasserstein(sample("dpmpp_3m", exact_eps, x_T, schedule, 1000, grid="log_snr"), flow)
budgets = [5, 10, 20] if P.name == "smoke" else [5, 10, 20, 50, 100]
settings = [("ddpm", "leading"), ("euler_a", "leading"), ("ddim", "leading"), ("pndm", "leading"), ("dpmpp", "linspace"),
            ("heun", "karras"), ("dpmpp_3m", "log_snr")]
curves = {}
for name, grid in settings:
    points = []
    for budget in budgets:
        steps = max(s for s in range(1, budget + 1) if evaluations(name, s) <= budget)
        out = sample(name, exact_eps, x_T, schedule, steps, generator=torch.Generator().manual_seed(3), grid=grid)
        points.append((evaluations(name, steps), sliced_wasserstein(out, flow)))
    curves[f"{name} · {grid}"] = points
tuned = SOLVERS["dpmpp_3m"](exact_eps, x_T, load_grid("toy_mixture", "dpmpp_3m", 10), schedule)
tuned_error = sliced_wasserstein(tuned, flow)
fig, ax = figure(1, 2, figsize=(11, 3.4))
for label, points in curves.items():
    ax[0].plot(*zip(*points), "o-", ms=3, label=label)
ax[0].plot([10], [tuned_error], "*", ms=12, color="black", label=tr(en="dpmpp_3m · optimised grid", fr="dpmpp_3m · grille optimisée"))
ax[0].axhline(stop_at_1, color="grey", lw=1, ls="--", label=tr(en="stopping at t = 1 (1,000 steps)", fr="arrêt à t = 1 (1 000 pas)"))
ax[0].set(xscale="log", yscale="log", xlabel=tr(en="network calls", fr="appels au réseau"),
          ylabel=tr(en="sliced Wasserstein to the exact flow", fr="Wasserstein par tranches au flot exact"),
          title=tr(en="exact ε: the sampler's own error", fr="ε exact : l'erreur propre de l'échantillonneur"))
ax[0].legend(fontsize=6)
ax[1].scatter(*flow.T, s=1, alpha=0.3, label=tr(en="exact flow", fr="flot exact"))
ax[1].scatter(*tuned.T, s=1, alpha=0.3, label=tr(en="3M, optimised grid, 10 calls", fr="3M, grille optimisée, 10 appels"))
ax[1].set(aspect="equal", title=tr(en="10 network calls", fr="10 appels au réseau"))
ax[1].legend(fontsize=7, markerscale=5)
fig.tight_layout()
for label, points in curves.items():
    print(f"{label:>18}{tr(en=':', fr=' :')} " + "  ".join(tr(en=f"{n} calls {v:.4f}", fr=f"{n} appels {v:.4f}") for n, v in points))
print(tr(en=f"3M on the optimised grid, 10 calls: {tuned_error:.4f}; stopping at t = 1: {stop_at_1:.4f}",
         fr=f"3M sur la grille optimisée, 10 appels : {tuned_error:.4f} ; arrêt à t = 1 : {stop_at_1:.4f}"))

# %% [markdown] lang="fr"
# Lecture des courbes : les erreurs baissent avec le nombre d'appels, et les plus précis finissent sur la
# ligne grise. Les ancestraux (DDPM, Euler a, confondus : même bruit) restent loin au-dessus : leur bruit neuf
# demande beaucoup de pas pour se moyenner. Parmi les déterministes, la grille compte autant que la formule :
# DPM-Solver++ sur la grille de diffusers (`linspace`) ne fait pas mieux que DDIM, alors que le 3M sur la
# grille régulière en $\lambda$ est le plus précis dès 10 appels. PNDM, avec sa mémoire de 4 prédictions, est le
# meilleur sur les grilles de diffusers. Heun paie ses deux appels par pas : à 5 appels (3 pas), c'est le pire
# de tous.
#
# **La grille optimisée** (l'étoile) : dans l'esprit d'*Align Your Steps* (Sabour et al. 2024), on cherche les
# 10 instants qui minimisent l'écart entre le 3M et une solution de référence (`course.grid_search`,
# méthode de Nelder–Mead à partir de la grille régulière en $\lambda$). Elle a été réglée sur **un autre**
# mélange (huit gaussiennes placées au hasard, plus larges), jamais sur celui-ci : elle descend très vite
# jusque vers $t \approx 150$, puis dépense ses pas près de la fin, là où les détails se forment.

# %% [markdown] lang="en"
# Reading the curves: errors fall with the number of calls, and the most accurate end on the grey line. The
# ancestral samplers (DDPM, Euler a, on top of each other: same noise) stay far above: their fresh noise needs
# many steps to average out. Among the deterministic ones, the grid matters as much as the formula:
# DPM-Solver++ on diffusers' grid (`linspace`) does no better than DDIM, while 3M on the grid evenly spaced
# in $\lambda$ is the most accurate from 10 calls on. PNDM, with its memory of 4 predictions, is the best on
# diffusers' grids. Heun pays for its two calls per step: at 5 calls (3 steps) it is the worst of all.
#
# **The optimised grid** (the star): in the spirit of *Align Your Steps* (Sabour et al. 2024), we search for the
# 10 instants that minimise the gap between 3M and a reference solution (`course.grid_search`, Nelder–Mead
# from the grid evenly spaced in $\lambda$). It was tuned on **another** mixture (eight Gaussians at random
# places, wider), never on this one: it goes down fast to about $t \approx 150$, then spends its steps near the
# end, where the details form.

# %% [markdown] lang="fr"
# ### La course contre diffusers
#
# Le script `python benchmarks/sampler_race.py` fait courir, dans le même programme et au même nombre
# d'appels, **tous** nos échantillonneurs sur toutes nos grilles et **tous** les réglages de diffusers qui
# s'appliquent à un modèle $\varepsilon$ sur un schedule discret (DDIM, DDPM, PNDM, Euler, Heun, LMS, KDPM2,
# DPM-Solver multi-pas et mono-pas aux ordres 2 et 3, DEIS, UniPC, SA-Solver ; espacements, sigmas de Karras,
# exponentiels, bêta, « lu_lambdas », options du dernier pas). Puis `python benchmarks/sampler_race_ldm.py`
# confronte les meilleurs au vrai modèle texte → image, sur des prompts de test jamais vus.

# %% [markdown] lang="en"
# ### The race against diffusers
#
# The script `python benchmarks/sampler_race.py` runs, in one program and at equal network calls, **all** our
# samplers on all our grids and **every** diffusers setting that applies to an $\varepsilon$ model on a discrete
# schedule (DDIM, DDPM, PNDM, Euler, Heun, LMS, KDPM2, multistep and singlestep DPM-Solver at orders 2 and 3,
# DEIS, UniPC, SA-Solver; spacings, Karras, exponential and beta sigmas, "lu_lambdas", last-step options).
# Then `python benchmarks/sampler_race_ldm.py` pits the best ones against the real text-to-image model, on test
# prompts never seen.

# %%
race = json.loads((data_dir() / "sampler_race.json").read_text())


def shown(setting):
    """A race setting as a learner reads it: class, option and grid names stay, the benchmark's own words follow the language."""
    for en, fr in (("optimised (calibration mixture)", "optimisée (mélange de calibration)"), ("optimised", "optimisée"),
                   (" steps", " étapes"), ("default", "par défaut")):
        setting = setting.replace(en, tr(en=en, fr=fr))
    return setting


print(tr(en=f"Gaussian mixture, {race['points']} points, {hardware(race['hardware'])}; stopping at t = 1 costs {race['floor_t1']:.4f}",
         fr=f"mélange de gaussiennes, {race['points']} points, {hardware(race['hardware'])} ; s'arrêter à t = 1 coûte {race['floor_t1']:.4f}"))
for budget, result in race["summary"].items():
    ours, theirs = result["best"]["course"], result["best"]["diffusers"]
    print(tr(en=f"{budget} calls: best course {ours['setting']} {ours['sw_to_ode']:.4f}, "
                f"best diffusers {theirs['setting']} {theirs['sw_to_ode']:.4f} → ratio {result['ratio']:.2f}",
             fr=f"{budget} appels : notre meilleur {shown(ours['setting'])} {ours['sw_to_ode']:.4f}, "
                f"meilleur de diffusers {shown(theirs['setting'])} {theirs['sw_to_ode']:.4f} → rapport {result['ratio']:.2f}"))
race_ldm = json.loads((data_dir() / "sampler_race_ldm.json").read_text())
print(tr(en=f"\nshipped U-Net, {race_ldm['n']} held-out test prompts, w = {race_ldm['guidance']}, {race_ldm['budget']} calls:",
         fr=f"\nU-Net livré, {race_ldm['n']} prompts de test jamais vus, w = {race_ldm['guidance']}, {race_ldm['budget']} appels :"))
for r in sorted(race_ldm["rows"], key=lambda r: r["latent_error"]):
    print(f"  {shown(r['setting']):<62} " + tr(en=f"latent error {r['latent_error']:.3f}  all right {r['all_correct']:.0%} ± {r['stderr']:.0%}",
                                        fr=f"écart latent {r['latent_error']:.3f}  scène juste {r['all_correct']:.0%} ± {r['stderr']:.0%}"))

# %% [markdown] lang="fr"
# Ce que dit la course (mesurée une fois par les deux scripts, sur la machine indiquée) :
#
# - Sur le mélange, à **10 appels**, notre DPM-Solver++ 3M sur la grille optimisée a une erreur de 0,0017
#   contre 0,0040 pour le meilleur des 249 réglages de diffusers essayés (DPM-Solver d'ordre 2 sur les sigmas
#   de Karras, dernier pas vers $\sigma_{\min}$) : **2,4 fois moins**. Le gain vient de la grille, pas de la
#   formule : sur la grille régulière en $\lambda$, le même 3M fait 0,0084. La grille a été réglée sur un autre
#   mélange, mais de la même famille ; elle passe même sous la ligne grise, parce que ses erreurs de pas
#   compensent en partie celle du dernier saut. Une compensation de ce genre ne se transporte pas à d'autres
#   données : c'est la limite d'une grille optimisée.
# - À **20 appels**, plus de miracle : le meilleur réglage de diffusers (3M sur des sigmas exponentiels)
#   fait 0,0014, notre meilleur 0,0015 (PNDM sur la grille de Karras), la grille optimisée 0,0019.
# - Sur le **vrai modèle**, à 10 appels, l'écart à la solution de 200 pas classe premier un réglage de
#   diffusers, UniPC sur les sigmas de Karras (0,33), devant notre meilleur, le 2M sur la grille régulière en
#   $\lambda$ (0,38). La grille optimisée pour le U-Net (réglée sur 16 prompts de validation) n'apporte rien
#   sur les prompts de test. Là où les deux bibliothèques font la même chose, elles donnent le même résultat :
#   exactement pour DDIM, à 0,2 % près pour Heun.
# - Et l'adhérence au prompt ? La plupart des réglages tombent entre 91 et 92 % (± 2 points), au niveau des
#   200 pas (92 %) : à 10 appels, notre petit modèle n'a presque plus rien à gagner. En dessous, ceux qui
#   extrapolent loin à partir de prédictions guidées ($w = 2{,}5$) : un peu (3M sur Karras 86 %, UniPC
#   d'ordre 3 88 %) ou tout à fait (PNDM 11 %, Heun à 5 pas 11 %) — la guidance amplifie leurs écarts (voir
#   le tableau ci-dessous).

# %% [markdown] lang="en"
# What the race says (measured once by the two scripts, on the machine named):
#
# - On the mixture, at **10 calls**, our DPM-Solver++ 3M on the optimised grid has an error of 0.0017 against
#   0.0040 for the best of the 249 diffusers settings tried (second-order DPM-Solver on Karras sigmas, last step
#   to $\sigma_{\min}$): **2.4 times less**. The gain comes from the grid, not the formula: on the grid evenly
#   spaced in $\lambda$ the same 3M gives 0.0084. The grid was tuned on another mixture, but of the same family;
#   it even goes below the grey line, because its step errors partly cancel that of the last jump. A
#   cancellation of this kind does not carry over to other data: that is the limit of an optimised grid.
# - At **20 calls** there is no miracle left: diffusers' best setting (3M on exponential sigmas) gives 0.0014,
#   our best 0.0015 (PNDM on Karras' grid), the optimised grid 0.0019.
# - On the **real model**, at 10 calls, the gap to the 200-step solution ranks a diffusers setting first,
#   UniPC on Karras sigmas (0.33), ahead of our best, 2M on the grid evenly spaced in $\lambda$ (0.38). The
#   grid optimised for the U-Net (tuned on 16 validation prompts) brings nothing on the test prompts. Where
#   both libraries do the same thing, they give the same result: exactly for DDIM, within 0.2 % for Heun.
# - And prompt adherence? Most settings land between 91 and 92 % (± 2 points), level with the 200 steps
#   (92 %): at 10 calls our small model has almost nothing left to gain. Below them, those that extrapolate
#   far from guided predictions ($w = 2.5$): a little (3M on Karras 86 %, third-order UniPC 88 %) or entirely
#   (PNDM 11 %, Heun at 5 steps 11 %): guidance amplifies their differences (see the table below).

# %% [markdown] lang="fr"
# ## 6. Le tableau des diapositives, mesuré
#
# Le tableau *Comparaison des Schedulers* annonce : DDPM 1000+ étapes, excellente qualité, non
# déterministe ; DDIM 50–100, très bonne, déterministe ; Euler a 30–50, bonne, non déterministe ; DPM-Solver
# 20–30, bonne, « configurable ». Voici les mesures sur notre modèle texte → image, sur des prompts jamais
# vus (script `python -m course.scheduler_table`, résultats dans `data/scheduler_table.json`) :
# l'adhérence au prompt (l'évaluateur indépendant), la distance de type FID, le temps par image sur la
# machine indiquée, et le **déterminisme** : le même bruit de départ $x_T$ donne-t-il toujours la même image
# quand on change le hasard des étapes ?

# %% [markdown] lang="en"
# ## 6. The slides' table, measured
#
# The table *Comparaison des Schedulers* announces: DDPM 1000+ steps, excellent quality, not deterministic;
# DDIM 50–100, very good, deterministic; Euler a 30–50, good, not deterministic; DPM-Solver 20–30, good,
# "configurable". Here are the measurements on our text-to-image model, on prompts never seen (script
# `python -m course.scheduler_table`, results in `data/scheduler_table.json`): prompt adherence (the
# independent evaluator), the FID-like distance, the time per image on the machine named, and
# **determinism**: does the same starting noise $x_T$ always give the same image when the randomness of the
# steps changes?

# %% tags=["key-figure"]
table = json.loads((data_dir() / "scheduler_table.json").read_text())
print(tr(en=f"held-out prompts, guidance {table['guidance']}, {hardware(table['hardware'])}", fr=f"prompts jamais vus, guidance {table['guidance']}, {hardware(table['hardware'])}"))
heads = [tr(en="sampler", fr="échantillonneur"), tr(en="steps", fr="étapes"), "prompts", tr(en="all right", fr="scène juste"),
         tr(en="shape", fr="forme"), tr(en="FID-like", fr="type FID"), "s/image"]
widths = [max(w, len(h)) for w, h in zip((8, 5, 7, 9, 6, 8, 8), heads)]
print(" ".join(f"{h:>{w}}" for h, w in zip(heads, widths)) + tr(en="  same x_T → same image", fr="  même x_T → même image"))
for row in table["rows"]:
    same = tr(en="yes", fr="oui") if row["same_x_T_same_image"] else tr(en="no", fr="non")
    print(f"{row['sampler']:>{widths[0]}} {row['steps']:>{widths[1]}} {row['n_prompts']:>{widths[2]}} {row['all_correct']:>{widths[3]}.0%} "
          f"{row['per_attribute']['shape']:>{widths[4]}.0%} {row['fid_like']:>{widths[5]}.1f} {row['seconds_per_image']:>{widths[6]}.3f}  {same}")
print(tr(en=f"(FID-like between two sets of real renders: {table['fid_like_real_vs_real']})",
         fr=f"(type FID entre deux lots de rendus réels : {table['fid_like_real_vs_real']})"))
pairing = table["guidance_pairing"]
print(tr(en=f"\nat {pairing[0]['steps']} steps, all asked attributes right, against the guidance scale w:",
         fr=f"\nà {pairing[0]['steps']} étapes, tous les attributs demandés justes, selon l'échelle de guidance w :"))
for w in sorted({r["guidance"] for r in pairing}):
    print(f"  w = {w:g}{tr(en=':', fr=' :')} " + ", ".join(f"{r['sampler']} {r['all_correct']:.0%}" for r in pairing if r["guidance"] == w))
fig, ax = figure(figsize=(7, 3.2))
for name in sorted({r["sampler"] for r in table["rows"]}, key=list(SAMPLERS).index):
    rows = [r for r in table["rows"] if r["sampler"] == name]
    ax.plot([r["steps"] for r in rows], [r["all_correct"] for r in rows], "o-", ms=3, label=name)
ax.set(xscale="log", xlabel=tr(en="steps", fr="étapes"), ylabel=tr(en="all asked attributes right", fr="tous les attributs demandés justes"), ylim=(0, 1),
       title=tr(en="adherence against steps", fr="adhérence selon le nombre d'étapes"))
ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown] lang="fr"
# Ce que disent nos mesures (64 prompts par ligne, donc environ ± 6 points d'incertitude) :
#
# - **Dès 20 pas, tous se valent** sur notre modèle (de 94 à 98 % de scènes justes) : l'adhérence ne bouge
#   presque plus avec le nombre de pas, et les 1 000 pas de DDPM n'achètent rien de visible ici, sinon un
#   temps par image une cinquantaine de fois plus long. Les deux échantillonneurs stochastiques (DDPM,
#   Euler a) et les déterministes tombent dans la même fourchette : à cette précision, rien ne les sépare.
# - À 10 pas, PNDM s'effondre (28 %, quand les autres font 97 à 98 %), et ce n'est pas un hasard : c'est son
#   mariage avec la guidance qui pèche. Les dernières lignes le mesurent sur les mêmes 64 prompts à 10 pas :
#   jeu égal avec DDIM à $w = 1$, un grand retard à $w = 2$, l'effondrement à $w = 3$ ; la guidance du
#   modèle livré, $w = 2{,}5$, tombe entre les deux. Sa formule multi-pas extrapole à partir de prédictions
#   espacées de 100 pas ; la guidance amplifie leurs écarts, et l'extrapolation déraille. Dès 20 pas, PNDM
#   rejoint les autres.
# - **Déterminisme** : DDIM, PNDM et DPM-Solver++ redonnent exactement la même image pour le même $x_T$ ;
#   DDPM et Euler a, non, puisqu'ils rajoutent du bruit à chaque pas. Et avec le même bruit, DDPM et Euler a
#   donnent des lignes identiques : la curiosité annoncée plus haut.
# - Le tableau des diapositives (« DDPM 1000+ pas, DPM-Solver 20–30 ») décrit de grands modèles sur de vraies
#   images ; sur nos petites scènes, dès 20 pas, l'écart entre échantillonneurs est de l'ordre de
#   l'incertitude de mesure.
# - Attention au FID-like des lignes à 1 000 pas : calculé sur 16 images seulement, il est fortement biaisé
#   vers le haut et ne se compare pas aux autres lignes.

# %% [markdown] lang="en"
# What our measurements say (64 prompts per row, so roughly ± 6 points of uncertainty):
#
# - **From 20 steps on, they are all equal** on our model (94 to 98 % of scenes right): adherence hardly
#   moves with the number of steps any more, and DDPM's 1,000 steps buy nothing visible here, except a time
#   per image some fifty times longer. The two stochastic samplers (DDPM, Euler a) and the deterministic ones
#   fall in the same range: at this precision, nothing separates them.
# - At 10 steps PNDM collapses (28 %, when the others get 97 to 98 %), and not by chance: its pairing with
#   guidance is what fails. The last lines measure it on the same 64 prompts at 10 steps: level with DDIM at
#   $w = 1$, far behind at $w = 2$, collapsing at $w = 3$; the shipped model's guidance, $w = 2.5$, falls in
#   between. Its multistep formula extrapolates from predictions 100 steps apart; guidance amplifies their
#   differences, and the extrapolation goes off the rails. From 20 steps on, PNDM catches up with the others.
# - **Determinism**: DDIM, PNDM and DPM-Solver++ give back exactly the same image for the same $x_T$; DDPM and
#   Euler a do not, since they add noise at every step. And with the same noise, DDPM and Euler a give
#   identical rows: the curiosity announced above.
# - The slides' table ("DDPM 1000+ steps, DPM-Solver 20–30") describes large models on real images; on our
#   small scenes, from 20 steps on, the gap between samplers is about the size of the measurement's
#   uncertainty.
# - Beware the FID-like of the 1,000-step rows: computed on only 16 images, it is strongly biased upwards and
#   does not compare with the other rows.

# %% [markdown] lang="fr"
# ### Le même prompt, la même graine, sept échantillonneurs
#
# Et la figure des diapositives, « variance du bruit sur 30 étapes », pour chaque échantillonneur : la
# variance $1-\bar\alpha_t$ du bruit présent dans $x_t$ à chacune des étapes visitées (sur sa grille par défaut).
# DDPM, DDIM, PNDM et Euler a visitent les mêmes 30 instants, leurs courbes se superposent ; la grille de
# DPM-Solver++ est décalée d'un cran ; Heun et le 3M suivent la grille de Karras, qui reste longtemps près du
# bruit pur puis plonge.

# %% [markdown] lang="en"
# ### The same prompt, the same seed, seven samplers
#
# And the slides' figure, "noise variance over 30 steps", for each sampler: the variance $1-\bar\alpha_t$ of the
# noise in $x_t$ at each step visited (on its default grid).
# DDPM, DDIM, PNDM and Euler a visit the same 30 instants, so their curves lie on top of each other;
# DPM-Solver++'s grid is shifted by one notch; Heun and 3M follow Karras' grid, which stays near pure noise for
# a while and then plunges.

# %%
from course.scheduler_table import generate_with

prompt = "une grande étoile rouge en haut à gauche"
side_by_side = torch.cat([generate_with(name, [prompt], steps=20 if P.name != "smoke" else 5) for name in SAMPLERS])
n_steps = 20 if P.name != "smoke" else 5
show_grid(side_by_side, [tr(en=f"{name}, {n_steps} steps", fr=f"{name}, {n_steps} étapes") for name in SAMPLERS], ncols=len(SAMPLERS), size=1.8,
          suptitle=tr(en=f"« {prompt} », seed 0", fr=f"« {prompt} », graine 0"))

fig, ax = figure(figsize=(7, 3))
for name in SAMPLERS:
    ts = grid_for(name, schedule, 30)[:-1]
    ax.plot(range(1, len(ts) + 1), 1 - schedule.abar(ts), "o-", ms=2, label=name)
ax.set(xlabel=tr(en="sampling step", fr="étape d'échantillonnage"), ylabel="1 − ᾱ_t",
       title=tr(en="noise variance over 30 steps (scaled-linear schedule)", fr="variance du bruit sur 30 étapes (schedule scaled-linear)"))
ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown] lang="fr"
# ## À retenir
#
# - Un même réseau, plusieurs façons de remonter le temps : ancestrales (DDPM, Euler a : du bruit frais à
#   chaque pas) ou déterministes (DDIM, PNDM, Heun, DPM-Solver++ : une équation différentielle).
# - Trois rôles séparés : le schedule ($\alpha, \sigma, \lambda, \tilde\sigma$), la grille des instants, l'adaptateur
#   ($\varepsilon$, $x_0$ ou $v$) ; un solveur est `solveur(modèle, x, grille, schedule)`.
# - Nos sept échantillonneurs calculent exactement ce que calcule diffusers (testé pas à pas) ; à nombre
#   d'appels égal, la grille compte autant que la formule.
# - Le tableau des diapositives se mesure : voir ci-dessus combien d'étapes chaque méthode demande vraiment
#   sur notre modèle.
#
# **Et ensuite ?** Leçon 07 : la guidance, et le pipeline complet du prompt à l'image.

# %% [markdown] lang="en"
# ## Key points
#
# - One network, several ways of running time backwards: ancestral (DDPM, Euler a: fresh noise at every
#   step) or deterministic (DDIM, PNDM, Heun, DPM-Solver++: a differential equation).
# - Three separate roles: the schedule ($\alpha, \sigma, \lambda, \tilde\sigma$), the grid of instants, the adapter
#   ($\varepsilon$, $x_0$ or $v$); a solver is `solver(model, x, grid, schedule)`.
# - Our seven samplers compute exactly what diffusers computes (tested step by step); at an equal number of
#   calls, the grid matters as much as the formula.
# - The slides' table can be measured: see above how many steps each method really needs on our model.
#
# **Next.** Lesson 07: guidance, and the full pipeline from prompt to image.
