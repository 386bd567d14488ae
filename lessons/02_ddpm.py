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
# # 02 — Prédire le bruit : l'objectif $\varepsilon$ et l'échantillonnage DDPM
#
# > « Durant l'entraînement, le modèle […] apprend à prédire le bruit qui a été ajouté à chaque étape.
# > Lors de l'inférence, […] partant d'un bruit gaussien pur, le modèle retire progressivement le bruit
# > qu'il prédit. » — diapositive *Principe Fondamental*
#
# Dans la leçon 01, on a appris à abîmer une image. Ici, on apprend à **la réparer** : on entraîne un réseau
# $\varepsilon_\theta(x_t, t, c)$ à deviner le bruit contenu dans $x_t$, puis on s'en sert pour remonter le
# temps, de $x_T$ (du bruit pur) jusqu'à $x_0$ (une image). C'est le DDPM de Ho et al. (2020), le premier
# scheduler du tableau des diapositives.
#
# **Au programme** (diapositives *Processus Reverse* et *Objectif d'Entraînement*)
# 1. le processus reverse et ce qu'il faut prédire ;
# 2. la perte $\lVert \varepsilon - \varepsilon_\theta \rVert^2$ — *exercice 1* — et l'erreur de la diapositive ;
# 3. un premier modèle sur des points du plan : on regarde le nuage se former ;
# 4. une étape de débruitage — *exercice 2* — puis votre boucle d'échantillonnage ancestral — *exercice 3* ;
# 5. des images : le jeu de formes légendées, un petit réseau convolutif, la trajectoire de débruitage,
#    et un juge indépendant qui note ce que le modèle produit.

# %% [markdown] lang="en"
# # 02 — Predicting the noise: the $\varepsilon$ objective and DDPM sampling
#
# > "During training, the model […] learns to predict the noise that was added at each step. At
# > inference, […] starting from pure Gaussian noise, the model gradually removes the noise it predicts."
# > — slide *Principe Fondamental* (fundamental principle)
#
# Lesson 01 could ruin an image. Here we learn to **repair** it: we train a network
# $\varepsilon_\theta(x_t, t, c)$ to guess the noise inside $x_t$, then use it to run time backwards, from
# $x_T$ (pure noise) to $x_0$ (an image). This is the DDPM of Ho et al. (2020), the first scheduler of the
# slides' table.
#
# **Plan** (slides *Processus Reverse*, "reverse process", and *Objectif d'Entraînement*, "training objective")
# 1. the reverse process and what to predict;
# 2. the loss $\lVert \varepsilon - \varepsilon_\theta \rVert^2$ — *exercise 1* — and the slide's mistake;
# 3. a first model on points of the plane: watch the cloud form;
# 4. one denoising step — *exercise 2* — then your ancestral sampling loop — *exercise 3*;
# 5. images: the captioned shapes dataset, a small conv net, the denoising trajectory, and an independent
#    judge that scores what the model makes.

# %%
from functools import partial

import torch
from tqdm.auto import tqdm

from course import current_profile
from course.captions import FR_COLOURS, FR_SHAPES
from course.checks.ddpm import check_ddpm_sample, check_epsilon_loss, check_p_sample_step
from course.data import ShapesDataset
from course.ddpm import ddpm_sample, training_loss
from course.denoisers import MLPDenoiser
from course.forward import q_sample
from course.hints import hint
from course.language import tr
from course.plotting import figure, show_grid, show_strip
from course.schedules import alphas_cumprod, linear_betas
from course.toy2d import make_points, sliced_wasserstein
from course.train import TrainConfig, train
from course.yours import choose, use

P = current_profile()
torch.manual_seed(0)
T = 1000
betas = linear_betas(T)  # the DDPM schedule of lesson 01: betas[t] = β_t, t = 0 … T
abar = alphas_cumprod(betas)  # abar[t] = ᾱ_t
print(tr(en=f"profile: {P.name}  ·  T = {T}", fr=f"profil : {P.name}  ·  T = {T}"))


def asked(shape, colour):
    """What a sample was asked for, as a learner reads it: "red star" in English, « étoile rouge » in French."""
    noun, _, gender = FR_SHAPES[shape]
    return tr(en=f"{colour} {shape}", fr=f"{noun} {FR_COLOURS[colour][1 if gender == 'f' else 0]}")

# %% [markdown] lang="fr"
# ## 1. Le processus reverse
#
# La diapositive *Processus Reverse* donne
#
# $$p_\theta(x_{t-1} \mid x_t) = \mathcal N\!\left(x_{t-1};\ \mu_\theta(x_t, t),\ \Sigma_\theta(x_t, t)\right).$$
#
# Pourquoi une gaussienne, et que doit valoir $\mu_\theta$ ? Parce que, **si l'on connaissait $x_0$**, le
# pas en arrière serait connu exactement (Ho et al. 2020, éq. 6–7) :
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal N\!\left(x_{t-1};\ \tilde\mu_t(x_t, x_0),\ \tilde\beta_t I\right),\qquad
# \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,
# \qquad \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t .$$
#
# On ne connaît pas $x_0$ — c'est justement ce qu'on cherche. Mais la forme close de la leçon 01,
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$, dit que connaître le bruit $\varepsilon$
# revient à connaître $x_0$ : $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon)/\sqrt{\bar\alpha_t}$.
# On demande donc au réseau de **prédire le bruit** ; en remplaçant $x_0$ par $\hat x_0$ dans
# $\tilde\mu_t$, on obtient (éq. 11)
#
# $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\right).$$
#
# Quant à la variance, Ho et al. ne l'apprennent pas : ils fixent $\Sigma = \sigma_t^2 I$, avec $\sigma_t^2 = \beta_t$
# ou $\sigma_t^2 = \tilde\beta_t$ — les deux choix donnent des résultats presque équivalents.

# %% [markdown] lang="en"
# ## 1. The reverse process
#
# The slide *Processus Reverse* writes
#
# $$p_\theta(x_{t-1} \mid x_t) = \mathcal N\!\left(x_{t-1};\ \mu_\theta(x_t, t),\ \Sigma_\theta(x_t, t)\right).$$
#
# Why a Gaussian, and what should $\mu_\theta$ be? Because **if we knew $x_0$**, the step backwards would
# be known exactly (Ho et al. 2020, eq. 6–7):
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal N\!\left(x_{t-1};\ \tilde\mu_t(x_t, x_0),\ \tilde\beta_t I\right),\qquad
# \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,
# \qquad \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t .$$
#
# We do not know $x_0$ — that is what we are after. But lesson 01's closed form,
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$, says that knowing the noise $\varepsilon$
# means knowing $x_0$: $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon)/\sqrt{\bar\alpha_t}$. So we ask
# the network to **predict the noise**, and putting $\hat x_0$ in place of $x_0$ in $\tilde\mu_t$ gives (eq. 11)
#
# $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\right).$$
#
# Ho et al. do not learn the variance: they fix $\Sigma = \sigma_t^2 I$ with $\sigma_t^2 = \beta_t$ or
# $\sigma_t^2 = \tilde\beta_t$ — both work almost equally well.

# %% [markdown] lang="fr"
# ## 2. L'objectif d'entraînement
#
# La diapositive *Objectif d'Entraînement* affiche la formule
#
# $$L = E_{t, x_0, \epsilon}\big[\lVert \epsilon_\theta(x_t, t, c) \rVert_2^2\big]$$
#
# **Il manque la cible !** Telle qu'elle est écrite, cette perte est minimale pour un réseau qui répond
# toujours 0 : il n'apprendrait rien. La bonne perte (Ho et al. 2020, éq. 14), appelée $L_\text{simple}$,
# compare la prédiction au vrai bruit :
#
# $$L = E_{t, x_0, \varepsilon}\big[\lVert \varepsilon - \varepsilon_\theta(x_t, t, c) \rVert_2^2\big],\qquad
# x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\quad t \sim \mathcal U\{1,\dots,T\}.$$
#
# C'est l'algorithme 1 de l'article : on tire une image, un $t$ et un bruit ; on bruite l'image ; on
# demande au réseau quel bruit il voit ; on corrige le réseau.
#
# ### ✏️ Exercice 1 — la perte
#
# Écrivez `my_epsilon_loss(model, x0, t, eps, alphas_cumprod)` : construisez $x_t$, appelez
# `model(x_t, t)` et renvoyez la moyenne des écarts au carré (un seul nombre). Ici, $t$ et $\varepsilon$
# vous sont fournis, pour que la vérification soit exacte ; pendant l'entraînement, c'est
# `course.ddpm.training_loss` qui les tire au hasard.
#
# <details><summary>Indice</summary>
#
# `q_sample(x0, t, eps, alphas_cumprod)` (leçon 01) donne $x_t$ ; `(a - b).square().mean()` donne la
# moyenne des carrés.
# </details>
#
# Toujours bloqué ? `hint("epsilon_loss")` donne l'idée, puis `hint("epsilon_loss", 2)` la formule et
# `hint("epsilon_loss", 3)` le code.

# %% [markdown] lang="en"
# ## 2. The training objective
#
# The slide *Objectif d'Entraînement* prints
#
# $$L = E_{t, x_0, \epsilon}\big[\lVert \epsilon_\theta(x_t, t, c) \rVert_2^2\big]$$
#
# **The target is missing!** As printed, this loss is smallest for a network that always answers 0, and it
# would learn nothing. The right loss (Ho et al. 2020, eq. 14, called $L_\text{simple}$) compares the
# prediction with the true noise:
#
# $$L = E_{t, x_0, \varepsilon}\big[\lVert \varepsilon - \varepsilon_\theta(x_t, t, c) \rVert_2^2\big],\qquad
# x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\quad t \sim \mathcal U\{1,\dots,T\}.$$
#
# This is the paper's Algorithm 1: draw an image, a $t$, a noise; add the noise; ask the network which
# noise it sees; correct it.
#
# ### ✏️ Exercise 1 — the loss
#
# Write `my_epsilon_loss(model, x0, t, eps, alphas_cumprod)`: build $x_t$, call `model(x_t, t)` and
# return the mean of the squared differences (a single number). Here $t$ and $\varepsilon$ are given, so
# the check is exact; in training, `course.ddpm.training_loss` draws them at random.
#
# <details><summary>Hint</summary>
#
# `q_sample(x0, t, eps, alphas_cumprod)` (lesson 01) gives $x_t$; `(a - b).square().mean()` gives the mean
# of the squares.
# </details>
#
# Still stuck? `hint("epsilon_loss")` gives the idea, then `hint("epsilon_loss", 2)` the formula and
# `hint("epsilon_loss", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_epsilon_loss(model, x0, t, eps, alphas_cumprod):
    """L_simple = mean ‖ε − ε_θ(x_t, t)‖², x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε (Ho et al. 2020, eq. 14)."""
    # BEGIN SOLUTION
    # HINT[en]: noise x0 to x_t, ask the model, compare with the true noise
    # HINT[fr]: bruitez x0 jusqu'à x_t, interrogez le modèle, comparez au vrai bruit
    x_t = q_sample(x0, t, eps, alphas_cumprod)
    return (eps - model(x_t, t)).square().mean()
    # END SOLUTION


check_epsilon_loss(my_epsilon_loss)

# %% [markdown] lang="fr"
# L'erreur de la diapositive, chiffres à l'appui : un « réseau » qui répond toujours 0 obtient une perte
# nulle avec la formule de la diapositive, et une perte de 1 (la variance du bruit) avec la bonne.

# %% [markdown] lang="en"
# To see the slide's mistake in numbers: a "network" that always answers 0 gets zero loss with the printed
# formula, and a loss of 1 (the variance of the noise) with the right one.

# %%
# NBVAL_CHECK_OUTPUT
lazy = lambda x_t, t, cond=None: torch.zeros_like(x_t)  # noqa: E731  a "model" that predicts no noise
x0 = torch.randn(512, 2, generator=torch.Generator().manual_seed(0))
eps = torch.randn(512, 2, generator=torch.Generator().manual_seed(1))
t = torch.randint(1, T + 1, (512,), generator=torch.Generator().manual_seed(2))
print(tr(en="slide's formula  ", fr="formule de la diapositive  ") + f"E‖ε_θ‖²    = {lazy(q_sample(x0, t, eps, abar), t).square().mean().item():.3f}")
print(tr(en="right formula    ", fr="bonne formule              ") + f"E‖ε − ε_θ‖² = {(eps - lazy(q_sample(x0, t, eps, abar), t)).square().mean().item():.3f}")

# %% [markdown] lang="fr"
# ## 3. Un premier modèle, dans le plan
#
# Avant les images, un cas où l'on voit tout : des points du plan disposés en spirale. Chaque point est
# une « donnée » $x_0 \in \mathbb R^2$. Le réseau est un petit perceptron multicouche (MLP) qui reçoit $x_t$
# et $t$ (codé par des sinusoïdes, comme les positions dans un transformer) et renvoie $\varepsilon_\theta \in \mathbb R^2$.
#
# L'entraînement utilise la boucle du cours, `course.train.train` : AdamW, moyenne mobile exponentielle
# des poids (EMA), écrêtage du gradient, barre de progression. À chaque pas, on tire un nouveau lot de
# points. Même une spirale demande un peu de patience : avec 3 couches de 128 neurones et 4 000 pas,
# nos essais ne donnaient qu'un nuage rond et flou ; avec 4 couches de 256 et 15 000 pas (deux minutes de
# CPU environ, profil `cpu`), la spirale apparaît nettement. En profil `smoke`, l'entraînement est trop
# court pour la voir : c'est normal.
#
# La perte de chaque pas, c'est **la vôtre** : `use(epsilon_loss=my_epsilon_loss)` confie votre fonction à
# `course.ddpm.training_loss`, qui tire $t$ et $\varepsilon$ au hasard puis l'appelle. Si elle n'est pas encore prête,
# la perte du cours prend sa place, et une ligne le signale. Elle reste en service jusqu'à la fin de la leçon : c'est
# aussi elle qui entraîne le modèle d'images de la partie 5 (`use()` rendrait la main à celle du cours).

# %% [markdown] lang="en"
# ## 3. A first model, in the plane
#
# Before images, a case where we can see everything: points of the plane laid out in a spiral. Each point
# is a "data item" $x_0 \in \mathbb R^2$. The network is a small perceptron (MLP) that takes $x_t$ and $t$
# (encoded with sinusoids, like a transformer's positions) and returns $\varepsilon_\theta \in \mathbb R^2$.
#
# Training uses the course's loop, `course.train.train`: AdamW, an exponential moving average of the
# weights (EMA), gradient clipping, a progress bar. Each step draws a fresh batch of points. Even a
# spiral takes some patience: with 3 layers of 128 neurons and 4,000 steps our attempts gave only a round,
# blurry cloud; with 4 layers of 256 and 15,000 steps (about two minutes of CPU, `cpu` profile) the spiral
# comes out clearly. In the `smoke` profile training is too short to see it: that is expected.
#
# The loss of every step is **yours**: `use(epsilon_loss=my_epsilon_loss)` hands your function to
# `course.ddpm.training_loss`, which draws $t$ and $\varepsilon$ at random and then calls it. If it is not ready yet, the
# course's loss takes its place, and one line says so. It stays in use until the end of the lesson: it also trains the
# image model of part 5 (`use()` would give the course's back).

# %%
use(epsilon_loss=my_epsilon_loss)  # from here on, training_loss calls your loss (checked first)
data = make_points("spiral", P.toy_points, torch.Generator().manual_seed(0))
toy = MLPDenoiser(dim=2, hidden=256, layers=4)
n_params = sum(p.numel() for p in toy.parameters())
print(tr(en=f"MLP denoiser: {n_params:,} parameters", fr=f"débruiteur MLP : {format(n_params, ',').replace(',', ' ')} paramètres"))


def toy_batch(step):
    return make_points("spiral", 256, torch.Generator().manual_seed(10_000 + step))


toy_run = train(
    toy,
    lambda model, x0: training_loss(model, x0, abar),
    toy_batch,
    TrainConfig(steps=P.toy_steps, lr=2e-3, warmup=100, decay="cosine", ema_decay=0.995, log_every=50),
    desc=tr(en="toy denoiser", fr="débruiteur du plan"),
)
fig, ax = figure(1, 2, figsize=(9, 3))
ax[0].scatter(*data.T, s=2, alpha=0.5)
ax[0].set(title=tr(en="data x_0 (spiral)", fr="données x_0 (spirale)"), aspect="equal")
ax[1].plot(toy_run.history.steps, toy_run.history.losses)
ax[1].set(xlabel=tr(en="training step", fr="pas d'entraînement"), ylabel=tr(en="loss (smoothed)", fr="perte (lissée)"),
          title=tr(en=f"L_simple, {toy_run.history.wall_time:.0f} s of training", fr=f"L_simple, {toy_run.history.wall_time:.0f} s d'entraînement"))
fig.tight_layout()

# %% [markdown] lang="fr"
# La perte ne tend pas vers 0 : même un réseau parfait ne peut pas deviner tout le bruit quand $t$ est
# petit (le bruit est alors minuscule, noyé dans l'incertitude sur $x_0$). Ce qui compte, c'est la
# qualité des échantillons.
#
# ## 4. Une étape de débruitage, puis toutes
#
# L'algorithme 2 de Ho et al. part de $x_T \sim \mathcal N(0, I)$ et répète, pour $t = T, \dots, 1$ :
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\right) + \sigma_t\,z,
# \qquad z \sim \mathcal N(0, I),$$
#
# **sauf à la dernière étape** ($t = 1$), où l'on n'ajoute pas de bruit : $x_0$ est la moyenne.
#
# ### ✏️ Exercice 2 — une étape
#
# Écrivez `my_p_sample_step(x_t, t, eps_pred, z, betas, alphas_cumprod)` avec $\sigma_t = \sqrt{\beta_t}$.
# `t` est un tenseur de forme `(B,)` : une étape par échantillon, dont certaines valent 1.
#
# <details><summary>Indice</summary>
#
# Prenez `b = betas[t]` et `a = alphas_cumprod[t]`, et donnez-leur la forme `(B, 1, …)`, comme dans la
# leçon 01. Pour ne pas bruiter à $t = 1$, multipliez $\sigma_t z$ par `(t > 1)`, mis à la même forme.
# </details>
#
# Toujours bloqué ? `hint("p_sample_step")` donne l'idée, puis `hint("p_sample_step", 2)` la formule et
# `hint("p_sample_step", 3)` le code.

# %% [markdown] lang="en"
# The loss does not go to 0: even a perfect network cannot guess all of the noise when $t$ is small (the
# noise is then tiny and drowned in the uncertainty about $x_0$). What matters is the quality of samples.
#
# ## 4. One denoising step, then all of them
#
# Algorithm 2 of Ho et al. starts from $x_T \sim \mathcal N(0, I)$ and repeats, for $t = T, \dots, 1$:
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\right) + \sigma_t\,z,
# \qquad z \sim \mathcal N(0, I),$$
#
# **except at the last step** ($t = 1$), where no noise is added: $x_0$ is the mean.
#
# ### ✏️ Exercise 2 — one step
#
# Write `my_p_sample_step(x_t, t, eps_pred, z, betas, alphas_cumprod)` with $\sigma_t = \sqrt{\beta_t}$.
# `t` is a `(B,)` tensor: one step per sample, and some of them are 1.
#
# <details><summary>Hint</summary>
#
# Take `b = betas[t]` and `a = alphas_cumprod[t]`, shaped `(B, 1, …)` as in lesson 01. To add no noise at
# $t = 1$, multiply $\sigma_t z$ by `(t > 1)` (shaped too).
# </details>
#
# Still stuck? `hint("p_sample_step")` gives the idea, then `hint("p_sample_step", 2)` the formula and
# `hint("p_sample_step", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_p_sample_step(x_t, t, eps_pred, z, betas, alphas_cumprod):
    """x_{t−1} = (x_t − β_t/√(1 − ᾱ_t)·ε_θ)/√α_t + σ_t·z, σ_t = √β_t, no noise at t = 1 (Ho et al. 2020, Alg. 2)."""
    # BEGIN SOLUTION
    # HINT[en]: per-sample b = β_t and a = ᾱ_t shaped (B, 1, …); the noise term is multiplied by (t > 1)
    # HINT[fr]: b = β_t et a = ᾱ_t par échantillon, de forme (B, 1, …) ; le terme de bruit est multiplié par (t > 1)
    shape = (-1,) + (1,) * (x_t.dim() - 1)  # (B, 1, …, 1)
    b, a = betas[t].view(shape).to(x_t), alphas_cumprod[t].view(shape).to(x_t)
    mean = (x_t - b / (1 - a).sqrt() * eps_pred) / (1 - b).sqrt()
    return mean + (t > 1).view(shape).to(x_t) * b.sqrt() * z
    # END SOLUTION


check_p_sample_step(my_p_sample_step)

# %% [markdown] lang="fr"
# ### ✏️ Exercice 3 — la boucle complète
#
# Assemblez maintenant l'algorithme 2 : écrivez `my_ddpm_sample(model, shape, betas, generator)`, qui part de
# $x_T \sim \mathcal N(0, I)$, applique votre `my_p_sample_step` pour $t = T, T-1, \dots, 1$ et renvoie $x_0$.
# - Tous les tirages passent par `generator` : d'abord $x_T$, puis un $z$ neuf à chaque pas. Une même graine redonne
#   alors les mêmes échantillons.
# - Le modèle s'appelle `model(x, t)`, avec `t` un tenseur d'entiers de forme `(B,)` : un instant par échantillon.
# - $T$ se lit sur le planning : `len(betas) - 1`.
# - `my_p_sample_step` demande aussi $\bar\alpha$ : calculez-le sur ce planning, `alphas_cumprod(betas)` (pas le
#   `abar` de la partie 3, fait pour T = 1000). `B` vaut `shape[0]`.
#
# Pour voir avancer les 1000 pas, enveloppez votre `range` dans `tqdm(…)`. La vérification fait tourner votre boucle
# sur un petit modèle jouet et un planning court, et la compare à celle du cours, avec la même graine.
#
# Bloqué ? `hint("ddpm_sample")` donne l'idée, puis `hint("ddpm_sample", 2)` la formule et `hint("ddpm_sample", 3)` le code.

# %% [markdown] lang="en"
# ### ✏️ Exercise 3 — the whole loop
#
# Now assemble Algorithm 2: write `my_ddpm_sample(model, shape, betas, generator)`, which starts from
# $x_T \sim \mathcal N(0, I)$, applies your `my_p_sample_step` for $t = T, T-1, \dots, 1$ and returns $x_0$.
# - Every draw goes through `generator`: first $x_T$, then a fresh $z$ at each step. The same seed then gives the same
#   samples back.
# - The model is called as `model(x, t)`, with `t` an integer tensor of shape `(B,)`: one instant per sample.
# - $T$ is read off the schedule: `len(betas) - 1`.
# - `my_p_sample_step` also needs $\bar\alpha$: compute it on this schedule, `alphas_cumprod(betas)` (not part 3's
#   `abar`, made for T = 1000). `B` is `shape[0]`.
#
# To watch the 1000 steps go by, wrap your `range` in `tqdm(…)`. The check runs your loop on a small toy model and a
# short schedule, and compares it with the course's, with the same seed.
#
# Stuck? `hint("ddpm_sample")` gives the idea, then `hint("ddpm_sample", 2)` the formula and `hint("ddpm_sample", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_ddpm_sample(model, shape, betas, generator):
    """Ancestral sampling (Ho et al. 2020, Alg. 2): x_T ~ N(0, I), then one my_p_sample_step for t = T, …, 1. Returns x_0."""
    # BEGIN SOLUTION
    # HINT[en]: x_T first; then for t = T … 1: the instant as a (B,) tensor, the model's ε, a fresh z, one step
    # HINT[fr]: x_T d'abord ; puis pour t = T … 1 : l'instant en tenseur (B,), le ε du modèle, un z neuf, une étape
    abar = alphas_cumprod(betas)
    x = torch.randn(shape, generator=generator)  # x_T
    for step in tqdm(range(len(betas) - 1, 0, -1), desc=tr(en="your DDPM loop", fr="votre boucle DDPM"), leave=False):
        t = torch.full((shape[0],), step)  # one instant per sample
        z = torch.randn(shape, generator=generator)
        x = my_p_sample_step(x, t, model(x, t), z, betas, abar)
    return x
    # END SOLUTION


check_ddpm_sample(my_ddpm_sample)

# %% [markdown] lang="fr"
# C'est maintenant votre boucle qui échantillonne le modèle entraîné (tant qu'elle n'est pas prête, c'est
# `course.ddpm.ddpm_sample`, la même boucle, et une ligne le signale). Pour regarder le nuage se former, on enveloppe
# le modèle : à quelques instants, il garde au passage le $x_t$ qu'on lui donne.

# %% [markdown] lang="en"
# Your loop now samples the trained model (until it is ready, `course.ddpm.ddpm_sample` does, the same loop, and one
# line says so). To watch the cloud form we wrap the model: at a few instants it keeps the $x_t$ it is given.

# %%
keep = [1000, 600, 300, 150, 50, 1]
snapshots = {}


@torch.no_grad()
def watched(x_t, t, cond=None):
    """The trained denoiser, keeping x_t at a few instants on the way."""
    if int(t[0]) in keep:
        snapshots[int(t[0])] = x_t.clone()
    return toy_run.ema(x_t, t, cond)


sample = choose("ddpm_sample", my_ddpm_sample, check_ddpm_sample, partial(ddpm_sample, progress=True))
samples = sample(watched, (P.toy_points, 2), betas, generator=torch.Generator().manual_seed(1))
fig, ax = figure(1, len(keep) + 1, figsize=(2.2 * (len(keep) + 1), 2.4), sharex=True, sharey=True)
for a, t in zip(ax, keep):
    a.scatter(*snapshots[t].T, s=1, alpha=0.4)
    a.set_title(f"x_{t}", fontsize=9)
ax[-1].scatter(*samples.T, s=1, alpha=0.4, color="C2")
ax[-1].set_title(tr(en="x_0 (samples)", fr="x_0 (échantillons)"), fontsize=9)
for a in ax:
    a.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), aspect="equal", xticks=[], yticks=[])
fig.tight_layout()

reference = make_points("spiral", P.toy_points, torch.Generator().manual_seed(2))
sw_samples, sw_reference, sw_noise = (sliced_wasserstein(points, data) for points in (samples, reference, torch.randn_like(data)))
print(tr(en=f"sliced Wasserstein distance to the data: samples {sw_samples:.3f}, another draw of the data {sw_reference:.3f}, pure noise {sw_noise:.3f}",
         fr=f"distance de Wasserstein par tranches aux données : échantillons {sw_samples:.3f}, autre tirage des données {sw_reference:.3f}, "
         f"bruit pur {sw_noise:.3f}"))

# %% [markdown] lang="fr"
# De gauche à droite, le temps remonte : le bruit gaussien se contracte puis s'enroule en spirale. La
# distance de Wasserstein « par tranches » (*sliced Wasserstein* : on projette les deux nuages sur des
# directions aléatoires et on compare les projections triées) chiffre la ressemblance : plus elle est
# proche de la distance entre deux tirages des vraies données, mieux c'est.
#
# ## 5. Des images
#
# ### Le jeu de données : des formes légendées
#
# Pour tout le reste du cours, nos images viennent d'un générateur de **scènes de formes** : 8 formes,
# 8 couleurs, 3 fonds, 2 tailles, 9 positions sur une grille 3 × 3, de 1 à 3 objets, et des paires reliées
# par une relation (« au-dessus de », « à gauche de »). Chaque image est dessinée par programme, donc ses
# attributs sont connus exactement, et elle est légendée en français et en anglais, de plusieurs façons,
# avec des accords corrects (« deux petites étoiles grises »). Certaines combinaisons forme + couleur (une
# étoile rouge, un cercle violet…) n'apparaissent **jamais** dans les données d'entraînement : les leçons
# suivantes s'en serviront pour tester des prompts inédits.

# %% [markdown] lang="en"
# From left to right, time runs backwards: the Gaussian noise contracts, then winds into a spiral. The
# "sliced" Wasserstein distance (project both clouds on random directions and compare the sorted
# projections) puts a number on the likeness: the closer to the distance between two draws of the real
# data, the better.
#
# ## 5. Images
#
# ### The dataset: captioned shapes
#
# For the rest of the course our images come from a generator of **shape scenes**: 8 shapes, 8 colours,
# 3 backgrounds, 2 sizes, 9 positions on a 3 × 3 grid, 1 to 3 objects, and pairs linked by a relation
# ("above", "to the left of"). Each image is drawn by code, so its attributes are known exactly, and it is
# captioned in French and in English, in several phrasings, with correct agreement ("deux petites étoiles
# grises"). Some shape + colour combinations (a red star, a purple circle…) **never** appear in the
# training split: later lessons use them to test prompts never seen.

# %%
shapes = ShapesDataset(12, size=64, split="train", seed=3)
items = [shapes[i] for i in range(12)]
show_grid([item["image"] for item in items], [item["caption"] for item in items], ncols=6, size=2.0)

# %% [markdown] lang="fr"
# ### Le modèle : un petit réseau convolutif conditionné
#
# Pour les images, $\varepsilon_\theta$ est un petit réseau convolutif en forme de U (32 → 16 → 8 pixels et
# retour, avec des connexions de saut, et au fond une moyenne de toute l'image rediffusée à chaque pixel,
# pour que le réseau ait une vue d'ensemble ; la leçon 04 construira le vrai U-Net avec attention). Le
# conditionnement $c$ de la formule des diapositives est ici le plus simple possible : deux étiquettes,
# **la forme et la couleur**, transformées en vecteurs appris et ajoutées au codage de $t$. À la leçon 05,
# $c$ deviendra le texte d'un prompt, encodé par le CLIP de la leçon 03. Pendant l'entraînement, on efface $c$ une fois sur
# dix : le même réseau apprend aussi à débruiter sans consigne, ce qui servira à la *classifier-free
# guidance* (leçon 07).
#
# On s'en tient aux scènes à un seul objet sur fond blanc, en 32 × 32 : un premier essai avec les trois
# fonds donnait des fonds gris, mélange des trois, et peu de formes — la capacité du petit réseau va
# maintenant aux formes, aux couleurs et aux positions. Entraîner ce réseau prend environ une heure
# sur deux cœurs de CPU : les profils `smoke` et `cpu` chargent donc le modèle livré dans `data/` (entraîné
# par `python -m course.shapes_ddpm train`), puis font quelques pas d'entraînement pour montrer la boucle ;
# le profil `gpu`, lui, l'entraîne à partir de zéro. Dans les deux cas, chaque pas calcule votre perte.

# %% [markdown] lang="en"
# ### The model: a small conditioned conv net
#
# For images, $\varepsilon_\theta$ is a small U-shaped conv net (32 → 16 → 8 pixels and back, with skip
# connections, and at the bottom a mean over the whole image broadcast back to every pixel, so the network
# gets an overall view; lesson 04 builds the real U-Net with attention). The slide formula's conditioning $c$ is
# as simple as can be here: two labels, **the shape and the colour**, turned into learned vectors and added
# to the encoding of $t$. In lesson 05, $c$ becomes the text of a prompt, encoded by lesson 03's CLIP. During training
# $c$ is erased one time in ten: the same network also learns to denoise without instructions, which
# classifier-free guidance will use (lesson 07).
#
# We stick to one-object scenes on a white background at 32 × 32: a first attempt with all three
# backgrounds gave grey backgrounds, a blend of the three, and few shapes — the small network's capacity
# now goes to shapes, colours and positions. Training this network takes about an hour on two CPU
# cores, so the `smoke` and `cpu` profiles load the model shipped in `data/` (trained by
# `python -m course.shapes_ddpm train`) and run a few training steps to show the loop; the `gpu` profile
# trains it from scratch. Either way, every step computes your loss.

# %%
from course import shapes_ddpm
from course.checkpoints import read_manifest
from course.language import hardware
from course.paths import data_dir
from course.recipes import SHAPES_DDPM_RECIPE

device = "cuda" if torch.cuda.is_available() else "cpu"
get_batch = shapes_ddpm.batch_getter(batch_size=SHAPES_DDPM_RECIPE.batch_size if P.train_image_model else 32)
net = shapes_ddpm.make_model()
n_params = sum(p.numel() for p in net.parameters())
print(tr(en=f"conv denoiser: {n_params:,} parameters", fr=f"débruiteur convolutif : {format(n_params, ',').replace(',', ' ')} paramètres"))
if P.train_image_model:  # gpu: from scratch
    config = SHAPES_DDPM_RECIPE.scaled(steps=P.image_steps).train_config(log_every=50)  # the shipped recipe (course.recipes)
else:  # smoke, cpu: a few steps on a copy of the shipped model, to see the loop run; sampling uses the shipped model
    shipped = read_manifest(data_dir() / shapes_ddpm.CHECKPOINT)
    seen, minutes, machine = shipped["samples_seen"], shipped["wall_time_s"] / 60, hardware(shipped["hardware"])
    print(tr(en=f"shipped model: {seen:,} training images, {minutes:.0f} min on {machine}",
             fr=f"modèle livré : {format(seen, ',').replace(',', ' ')} images d'entraînement, {minutes:.0f} min sur {machine}"))
    net.load_state_dict(shapes_ddpm.load_model().state_dict())
    config = TrainConfig(steps=P.image_steps, lr=1e-4, ema_decay=None, log_every=max(1, P.image_steps // 10))
image_run = train(net, shapes_ddpm.loss_fn(abar), get_batch, config, device=device, desc=tr(en="image denoiser", fr="débruiteur d'images"))
first, last, seconds = image_run.history.losses[0], image_run.history.losses[-1], image_run.history.wall_time
print(tr(en=f"{config.steps} steps: loss {first:.4f} → {last:.4f} in {seconds:.0f} s", fr=f"{config.steps} pas : perte {first:.4f} → {last:.4f} en {seconds:.0f} s"))
model = image_run.ema.eval() if P.train_image_model else shapes_ddpm.load_model().to(device)

# %% [markdown] lang="fr"
# ### Générer, et regarder le débruitage
#
# On demande une forme et une couleur pour chaque image, et on lance les 1000 étapes de DDPM. À côté de
# $x_t$, on affiche aussi $\hat x_0$ — l'image propre que le réseau « croit voir » à cet instant. C'est la figure
# *Visualisation du Processus de Débruitage* des diapositives ; attention : celle des diapositives se lit
# de droite à gauche, la nôtre de gauche à droite. Ces images-ci viennent de l'échantillonneur du cours,
# `course.ddpm.ddpm_sample` : il fait les mêmes pas que votre boucle, mais il transmet en plus la consigne $c$ au
# réseau et borne $\hat x_0$ à $[-1, 1]$ à chaque pas (`clip_x0`).

# %% [markdown] lang="en"
# ### Generating, and watching the denoising
#
# We ask for one shape and one colour per image and run the 1000 DDPM steps. Next to $x_t$ we also show
# $\hat x_0$ — the clean image the network "believes it sees" at that instant. This is the slides' figure
# *Visualisation du Processus de Débruitage* (denoising process); note that it reads right to left, ours
# left to right. These images come from the course's sampler, `course.ddpm.ddpm_sample`: it takes the same steps as
# your loop, but also passes the instruction $c$ to the network and clamps $\hat x_0$ to $[-1, 1]$ at each step
# (`clip_x0`).

# %% tags=["key-figure"]
pairs = shapes_ddpm.prompts(P.image_samples, seed=0)
strip_at = [1000, 800, 600, 400, 250, 100, 30, 1]
trajectory = {}


def keep_first(t, x_t, x0_hat):
    if t in strip_at:
        trajectory[t] = (x_t[0].cpu(), x0_hat[0].clamp(-1, 1).cpu())


images = shapes_ddpm.sample(model, pairs, seed=0, device=device, callback=keep_first, progress=True).cpu()
show_strip([trajectory[t][0] for t in strip_at], [f"x_{t}" for t in strip_at], suptitle=tr(en=f"{asked(*pairs[0])}: x_t", fr=f"{asked(*pairs[0])} : x_t"))
show_strip([trajectory[t][1] for t in strip_at], [tr(en=f"x̂_0 at t={t}", fr=f"x̂_0 en t={t}") for t in strip_at],
           suptitle=tr(en="x̂_0: the clean image predicted at each step", fr="x̂_0 : l'image propre prédite à chaque étape"))

# %% [markdown] lang="fr"
# Au début ($t$ proche de 1000), $\hat x_0$ est une tache floue, grise ou colorée : le réseau ne connaît que la
# couleur moyenne. Vers $t \approx 400$, la position et la couleur sont fixées ; la forme et les bords nets
# arrivent en dernier. Les structures globales d'abord, les détails ensuite : c'est exactement ce que
# décrivent les diapositives.
#
# ### Un juge indépendant
#
# Comment savoir si le modèle fait ce qu'on lui demande, sans regarder chaque image ? Le cours fournit un
# **évaluateur** (`course.eval`) : un classifieur entraîné sur des rendus propres de toutes les combinaisons,
# qui lit la forme, la couleur, la position… d'une image. Il n'a jamais vu d'image générée. On lui soumet
# nos échantillons et l'on compte ceux qui montrent la forme et la couleur demandées (*l'adhérence au
# prompt*). On calcule aussi une distance de type FID entre les caractéristiques internes que l'évaluateur
# extrait de nos images et celles qu'il extrait de vrais rendus : elle vaut 0 pour deux ensembles
# identiques, et elle est d'autant plus grande que les images générées s'écartent des vraies.

# %% [markdown] lang="en"
# Early on ($t$ near 1000), $\hat x_0$ is a blurry grey or coloured blob: the network only knows the mean
# colour. Around $t \approx 400$, position and colour are settled; the shape and sharp edges come last.
# Global structure first, details later: exactly what the slides describe.
#
# ### An independent judge
#
# How do we know whether the model does what it is asked, without looking at every image? The course
# ships an **evaluator** (`course.eval`): a classifier trained on clean renders of every combination, which
# reads the shape, colour, position… of an image. It has never seen a generated image. We let it read our
# samples and count how many show the requested shape and colour (*prompt adherence*). We also compute an
# FID-like distance between the evaluator's internal features on our images and on real renders: 0 for two
# identical sets, and the larger the further generated images stray from real ones.

# %%
from course.eval import adherence, fid_like

n_show = min(16, len(images))
show_grid(images[:n_show], [asked(shape, colour) for shape, colour in pairs[:n_show]], ncols=8, size=1.3, wrap=10)

score = adherence(images, [{"shape": s, "colour": c} for s, c in pairs])
real = shapes_ddpm.real_images(pairs, seed=0)  # renders of the same pairs, placed and sized like the training images
colour_ok, shape_ok, both_ok = score["per_attribute"]["colour"], score["per_attribute"]["shape"], score["all_correct"]
print(tr(en=f"{score['n']} samples — colour right {colour_ok:.0%}, shape right {shape_ok:.0%}, both {both_ok:.0%}",
         fr=f"{score['n']} échantillons — couleur juste {colour_ok * 100:.0f} %, forme juste {shape_ok * 100:.0f} %, les deux {both_ok * 100:.0f} %"))
if len(images) >= 16:
    fid, fid_real = fid_like(images, real), fid_like(shapes_ddpm.real_images(pairs, seed=1), real)
    print(tr(en=f"FID-like to real renders: {fid:.1f} (two sets of real renders: {fid_real:.1f})",
             fr=f"distance de type FID aux vrais rendus : {fid:.1f} (entre deux ensembles de vrais rendus : {fid_real:.1f})"))
if not P.train_image_model:
    m = shipped["metrics"]
    colour_ok, shape_ok, both_ok = m["per_attribute"]["colour"], m["per_attribute"]["shape"], m["all_correct"]
    print(tr(en=f"shipped model on {m['n']} samples: colour {colour_ok:.0%}, shape {shape_ok:.0%}, both {both_ok:.0%}, FID-like {m['fid_like']:.1f}",
             fr=f"modèle livré, sur {m['n']} échantillons : couleur {colour_ok * 100:.0f} %, forme {shape_ok * 100:.0f} %, "
             f"les deux {both_ok * 100:.0f} %, distance de type FID {m['fid_like']:.1f}"))

# %% [markdown] lang="fr"
# Avec peu d'échantillons (profils `smoke` et `cpu`), ces pourcentages sont approximatifs ; la dernière
# ligne rappelle la mesure faite sur davantage d'échantillons à la fin de l'entraînement du modèle livré. La couleur
# est juste le plus souvent ; la forme, rarement — à peine mieux que le hasard (une chance sur huit). À
# 32 × 32 pixels, un hexagone et un cercle ne diffèrent que de quelques pixels ; notre petit réseau, sans
# attention, n'a vu que 320 000 images en un peu plus d'une heure de CPU, et il doit tout apprendre à la fois : la
# couleur, la place, la taille, la forme. Le débruitage fonctionne (les images ressemblent à des rendus),
# mais il obéit mal à la consigne.
# Toute la suite du cours cherche à faire mieux : un vrai U-Net avec attention (leçon 04), un espace
# latent pour réduire les calculs (leçon 05), de meilleurs échantillonneurs (leçon 06), la guidance (leçon 07).
#
# ## À retenir
#
# - On entraîne $\varepsilon_\theta$ à retrouver le bruit : $L = E\lVert \varepsilon - \varepsilon_\theta(x_t, t, c) \rVert^2$
#   — avec la cible $\varepsilon$, qui manque sur la diapositive.
# - Prédire $\varepsilon$, c'est prédire $\hat x_0$, donc la moyenne du pas en arrière (éq. 11).
# - L'échantillonnage ancestral compte $T$ étapes, de $t = T$ à $t = 1$, sans bruit à la dernière.
#
# <details><summary><b>Pour les enseignants</b></summary>
#
# La diapositive *Objectif d'Entraînement* donne la perte sans la cible $\varepsilon$ ; elle parle aussi
# de « minimiser la divergence », alors que $L_\text{simple}$ est une borne variationnelle repondérée
# (Ho et al. 2020, §3.4). La diapositive *Visualisation du Processus de Débruitage* se lit de droite à
# gauche. Voir `ERRATA.md`.
# </details>
#
# **Et ensuite ?** Leçon 03 : CLIP, pour que $c$ devienne une phrase.

# %% [markdown] lang="en"
# With few samples (`smoke` and `cpu` profiles) these percentages are rough; the last line recalls the
# measurement made on more samples at the end of the shipped model's training. The colour is right most of the time;
# the shape rarely — barely better than chance (one in eight). At 32 × 32 pixels a hexagon and a circle
# differ by a few pixels; our small network, without attention, saw only 320,000 images in a little over an hour of
# CPU, and it must learn everything at once: colour, place, size, shape. Denoising works (the images look
# like renders), but it follows the instructions poorly. The rest of the course is about doing better:
# a real U-Net with attention (lesson 04), a latent space to compute less (lesson 05), better samplers
# (lesson 06), guidance (lesson 07).
#
# ## Key points
#
# - We train $\varepsilon_\theta$ to recover the noise: $L = E\lVert \varepsilon - \varepsilon_\theta(x_t, t, c) \rVert^2$
#   — with the target $\varepsilon$, which the slide leaves out.
# - Predicting $\varepsilon$ means predicting $\hat x_0$, hence the mean of the backward step (eq. 11).
# - Ancestral sampling takes $T$ steps, from $t = T$ down to $t = 1$, with no noise at the last one.
#
# <details><summary><b>For lecturers</b></summary>
#
# The slide *Objectif d'Entraînement* prints the loss without the target $\varepsilon$; it also speaks of
# "minimising the divergence", whereas $L_\text{simple}$ is a reweighted variational bound (Ho et al. 2020,
# §3.4). The slide *Visualisation du Processus de Débruitage* reads right to left. See `ERRATA.md`.
# </details>
#
# **Next.** Lesson 03: CLIP, so that $c$ becomes a sentence.
