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
# # 01 — Le processus forward : abîmer une image, pas à pas
#
# > « Il est *plus facile d'ajouter du bruit à une image que de l'enlever*. »
# > — diapositive *Principe Fondamental*
#
# Avant d'apprendre à un réseau à débruiter, il faut savoir **bruiter**. C'est le *processus forward*
# (diapositives *Processus Forward* et *Rôle du Scheduler*) : on part d'une image propre $x_0$ et on
# lui ajoute, étape après étape, un peu de bruit gaussien, jusqu'à ce qu'il ne reste plus que du bruit.
# Aucun apprentissage ici : rien que des formules, que l'on va vérifier une à une.
#
# **Au programme**
# 1. une étape de bruitage $q(x_t \mid x_{t-1})$ ;
# 2. le planning des $\beta_t$ et la quantité clé $\bar\alpha_t$ ;
# 3. la forme close $q(x_t \mid x_0)$ — *exercice 1* — et la preuve numérique qu'elle équivaut à $t$ étapes, faites par
#    votre boucle — *exercice 2* ;
# 4. trois plannings (linéaire, cosinus, *scaled-linear*) — *exercice 3* — et leur rapport signal/bruit ;
# 5. un chat tigré bruité, avec un curseur sur $t$ ;
# 6. la figure des diapositives : la variance du bruit sur 30 étapes.

# %% [markdown] lang="en"
# # 01 — The forward process: ruining an image, step by step
#
# > "It is *easier to add noise to an image than to remove it*."
# > — slide *Principe Fondamental* (fundamental principle)
#
# Before teaching a network to denoise, we must know how to **add noise**. That is the *forward process*
# (slides *Processus Forward*, "forward process", and *Rôle du Scheduler*, "role of the scheduler"): start from a clean image $x_0$ and add a little
# Gaussian noise, step after step, until nothing but noise is left. No learning here: only formulas,
# and we will check each of them.
#
# **Plan**
# 1. one noising step $q(x_t \mid x_{t-1})$;
# 2. the schedule of $\beta_t$ and the key quantity $\bar\alpha_t$;
# 3. the closed form $q(x_t \mid x_0)$ — *exercise 1* — and a numerical proof that it equals $t$ steps, taken by your
#    loop — *exercise 2*;
# 4. three schedules (linear, cosine, scaled-linear) — *exercise 3* — and their signal-to-noise ratio;
# 5. a tabby cat under noise, with a slider over $t$;
# 6. the slides' figure: the variance of the noise over 30 steps.

# %%
import math

import matplotlib.pyplot as plt
import torch

from course import current_profile
from course.checks.forward import check_cosine_alphas_cumprod, check_q_sample, check_q_sample_iterated
from course.forward import q_mean_std, q_sample, q_sample_iterated, q_step
from course.hints import hint
from course.images import cat
from course.language import tr
from course.plotting import figure, show_strip
from course.schedules import alphas_cumprod, cosine_betas, linear_betas, scaled_linear_betas, snr
from course.widgets import int_slider
from course.yours import choose

P = current_profile()  # every size below comes from the profile (smoke, cpu or gpu)
torch.manual_seed(0)
print(tr(en=f"profile: {P.name} ({P.describe()})", fr=f"profil : {P.name} ({P.describe()})"))

# %% [markdown] lang="fr"
# ## 1. Une étape de bruitage
#
# La diapositive *Processus Forward* donne la loi d'une étape :
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\!\left(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\right)$$
#
# Pour **tirer** $x_t$ selon cette loi, on tire un bruit $\varepsilon \sim \mathcal N(0, I)$ de même taille
# que l'image et l'on pose
#
# $$x_t = \sqrt{1-\beta_t}\;x_{t-1} + \sqrt{\beta_t}\;\varepsilon .$$
#
# Pourquoi ce $\sqrt{1-\beta_t}$ devant l'image ? Parce qu'on **atténue** légèrement l'image en même temps
# qu'on ajoute du bruit, pour que la variance totale reste égale à 1 : si $x_{t-1}$ est de variance 1,
# alors $\operatorname{Var}(x_t) = (1-\beta_t)\cdot 1 + \beta_t = 1$. On dit que le processus *préserve la
# variance* : au bout du compte, on aboutit à $\mathcal N(0, I)$, et non à un bruit qui explose.
#
# Nos images sont à valeurs dans $[-1, 1]$ (centrées, comme le bruit). Vérifions que la variance est bien
# conservée sur des données de variance 1 :

# %% [markdown] lang="en"
# ## 1. One noising step
#
# The slide *Processus Forward* gives the law of one step:
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\!\left(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\right)$$
#
# To **draw** $x_t$ from it, draw noise $\varepsilon \sim \mathcal N(0, I)$ the size of the image and write
#
# $$x_t = \sqrt{1-\beta_t}\;x_{t-1} + \sqrt{\beta_t}\;\varepsilon .$$
#
# Why the $\sqrt{1-\beta_t}$ in front of the image? We **shrink** the image a little while adding noise,
# so the total variance stays at 1: if $x_{t-1}$ has variance 1, then
# $\operatorname{Var}(x_t) = (1-\beta_t)\cdot 1 + \beta_t = 1$. The process is *variance preserving*:
# in the end we reach $\mathcal N(0, I)$, not a noise that blows up.
#
# Our images live in $[-1, 1]$ (centred, like the noise). Let us check that the variance is preserved
# on data of variance 1:

# %%
T = 1000
betas = linear_betas(T)  # betas[t] = β_t for t = 0 … T (betas[0] = 0: x_0 is the clean image)
x_prev = torch.randn(P.n_samples, 1)  # a batch of P.n_samples one-pixel "images" of variance 1: shape (B, 1)
for t in (1, 500, 1000):  # one step at three different t, each time from the same input
    x_t = q_step(x_prev, t, torch.randn(P.n_samples, 1), betas)
    print(f"t = {t:4d}   β_t = {betas[t].item():.5f}   "
          + tr(en=f"Var(input) = {x_prev.var().item():.3f}   Var(output) = {x_t.var().item():.3f}",
               fr=f"Var(entrée) = {x_prev.var().item():.3f}   Var(sortie) = {x_t.var().item():.3f}"))

# %% [markdown] lang="fr"
# ## 2. Le planning des $\beta_t$ et la quantité $\bar\alpha_t$
#
# Le *scheduler* « détermine la séquence des coefficients de bruitage $\beta_t$ » (diapositive *Rôle du
# Scheduler*). Le DDPM original (Ho et al., 2020) utilise $T = 1000$ étapes et des $\beta_t$ qui croissent
# **linéairement** de $10^{-4}$ à $0{,}02$ : on bruite à peine au début, et fortement à la fin.
#
# **Convention du cours.** $t$ va de $0$ (image propre) à $T$ (bruit), et chaque tableau est indexé par
# $t$ lui-même : `betas[t]` vaut $\beta_t$, et `betas[0] = 0`. Les tableaux ont donc $T + 1$ éléments.
# (La bibliothèque diffusers numérote les mêmes étapes de 0 à $T-1$ : son étape $\tau$ correspond à notre
# $t = \tau + 1$.)
#
# On pose $\alpha_t = 1 - \beta_t$ et, surtout,
#
# $$\bar\alpha_t = \prod_{k=1}^{t} \alpha_k ,\qquad \bar\alpha_0 = 1 .$$
#
# $\sqrt{\bar\alpha_t}$ est le coefficient qui multiplie $x_0$ après $t$ étapes, et $\bar\alpha_t$ est **la part de
# la variance de $x_t$ qui est encore du signal**. C'est la seule quantité dont on aura vraiment besoin. Sa valeur finale $\bar\alpha_T$ indique si l'on aboutit bien à du bruit pur :

# %% [markdown] lang="en"
# ## 2. The schedule of $\beta_t$ and the quantity $\bar\alpha_t$
#
# The scheduler "determines the sequence of noising coefficients $\beta_t$" (slide *Rôle du Scheduler*).
# The original DDPM (Ho et al., 2020) takes $T = 1000$ steps and $\beta_t$ rising **linearly** from
# $10^{-4}$ to $0.02$: barely any noise at first, a lot at the end.
#
# **Course convention.** $t$ runs from $0$ (clean image) to $T$ (noise), and every array is indexed by
# $t$ itself: `betas[t]` is $\beta_t$, and `betas[0] = 0`. Arrays therefore have $T + 1$ entries.
# (The diffusers library numbers the same steps 0 to $T-1$: its step $\tau$ is our $t = \tau + 1$.)
#
# Let $\alpha_t = 1 - \beta_t$ and above all
#
# $$\bar\alpha_t = \prod_{k=1}^{t} \alpha_k ,\qquad \bar\alpha_0 = 1 .$$
#
# $\sqrt{\bar\alpha_t}$ is the coefficient that multiplies $x_0$ after $t$ steps, and $\bar\alpha_t$ is **the share of
# the variance of $x_t$ that is still signal**. It is the only quantity we will really need. Its final value $\bar\alpha_T$ tells whether we do end on pure noise:

# %%
# NBVAL_CHECK_OUTPUT
abar = alphas_cumprod(betas)  # abar[t] = ᾱ_t
print(f"len(betas) = {len(betas)} (T + 1),  β_1 = {betas[1].item():.4g},  β_T = {betas[T].item():.4g}")
print(f"ᾱ_0 = {abar[0].item():.4g},  ᾱ_500 = {abar[500].item():.4g},  ᾱ_T = {abar[T].item():.4e},  √ᾱ_T = {abar[T].sqrt().item():.4f}")

# %% [markdown] lang="fr"
# Après 1000 étapes, $\sqrt{\bar\alpha_T} \approx 0{,}006$ : l'image est réduite à 0,6 % de son amplitude
# et noyée dans un bruit d'écart-type $\approx 1$. Pour le réseau, c'est du bruit pur.

# %% [markdown] lang="en"
# After 1000 steps, $\sqrt{\bar\alpha_T} \approx 0.006$: 0.6% of the image is left, drowned in noise of
# standard deviation $\approx 1$. For the network, that is pure noise.

# %% [markdown] lang="fr"
# ## 3. Sauter directement à l'étape $t$ : la forme close
#
# Pour entraîner le réseau, il nous faudra $x_t$ pour des $t$ tirés au hasard — des millions de fois.
# Appliquer $t$ fois l'étape ci-dessus serait bien trop lent. Heureusement, une somme de gaussiennes
# indépendantes est encore gaussienne. Sur deux étapes :
#
# $$x_2 = \sqrt{\alpha_2}\big(\sqrt{\alpha_1}\,x_0 + \sqrt{\beta_1}\,\varepsilon_1\big) + \sqrt{\beta_2}\,\varepsilon_2
#       = \sqrt{\alpha_1\alpha_2}\;x_0 + \underbrace{\sqrt{\alpha_2\beta_1}\,\varepsilon_1 + \sqrt{\beta_2}\,\varepsilon_2}_{\text{variance } \alpha_2\beta_1 + \beta_2 \;=\; 1-\alpha_1\alpha_2}$$
#
# et, en itérant, on obtient la **forme close** (Ho et al. 2020, éq. 4) :
#
# $$q(x_t \mid x_0) = \mathcal N\!\left(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\,I\right)
# \quad\Longleftrightarrow\quad x_t = \sqrt{\bar\alpha_t}\;x_0 + \sqrt{1-\bar\alpha_t}\;\varepsilon .$$
#
# ### ✏️ Exercice 1 — `q_sample`
#
# Écrivez la fonction qui calcule $x_t$ pour **un lot** d'images : `x0` et `eps` sont de forme
# `(B, C, H, W)`, `t` est un tenseur d'entiers de forme `(B,)` (un $t$ par image) et `alphas_cumprod`
# contient $\bar\alpha_0, \dots, \bar\alpha_T$. Exécutez ensuite la cellule : la vérification vous signale
# ce qui ne va pas.
#
# <details><summary>Indice</summary>
#
# `alphas_cumprod[t]` est de forme `(B,)` : un nombre par image. Pour le multiplier par un lot d'images
# `(B, C, H, W)`, donnez-lui la forme `(B, 1, 1, 1)` avec `.view(-1, 1, 1, 1)`.
# </details>
#
# Toujours bloqué ? `hint("q_sample")` donne l'idée, puis `hint("q_sample", 2)` la formule et `hint("q_sample", 3)` le code.

# %% [markdown] lang="en"
# ## 3. Jumping straight to step $t$: the closed form
#
# To train the network we will need $x_t$ for random $t$ — millions of times. Applying the step above
# $t$ times would be far too slow. Fortunately, a sum of independent Gaussians is still Gaussian. Over
# two steps:
#
# $$x_2 = \sqrt{\alpha_2}\big(\sqrt{\alpha_1}\,x_0 + \sqrt{\beta_1}\,\varepsilon_1\big) + \sqrt{\beta_2}\,\varepsilon_2
#       = \sqrt{\alpha_1\alpha_2}\;x_0 + \underbrace{\sqrt{\alpha_2\beta_1}\,\varepsilon_1 + \sqrt{\beta_2}\,\varepsilon_2}_{\text{variance } \alpha_2\beta_1 + \beta_2 \;=\; 1-\alpha_1\alpha_2}$$
#
# and, repeating, the **closed form** (Ho et al. 2020, eq. 4):
#
# $$q(x_t \mid x_0) = \mathcal N\!\left(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\,I\right)
# \quad\Longleftrightarrow\quad x_t = \sqrt{\bar\alpha_t}\;x_0 + \sqrt{1-\bar\alpha_t}\;\varepsilon .$$
#
# ### ✏️ Exercise 1 — `q_sample`
#
# Write the function that computes $x_t$ for **a batch** of images: `x0` and `eps` have shape
# `(B, C, H, W)`, `t` is an integer tensor of shape `(B,)` (one $t$ per image), `alphas_cumprod`
# holds $\bar\alpha_0, \dots, \bar\alpha_T$. Then run the cell: the check tells you what is wrong.
#
# <details><summary>Hint</summary>
#
# `alphas_cumprod[t]` has shape `(B,)`: one number per image. To multiply it with an image batch
# `(B, C, H, W)`, give it shape `(B, 1, 1, 1)` with `.view(-1, 1, 1, 1)`.
# </details>
#
# Still stuck? `hint("q_sample")` gives the idea, then `hint("q_sample", 2)` the formula and `hint("q_sample", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_q_sample(x0, t, eps, alphas_cumprod):
    """x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε (Ho et al. 2020, eq. 4). x0, eps: (B, C, H, W); t: (B,)."""
    # BEGIN SOLUTION
    # HINT[en]: one ᾱ_t per image — make it broadcast against (B, C, H, W), then apply the formula above
    # HINT[fr]: un ᾱ_t par image : donnez-lui une forme qui se diffuse sur (B, C, H, W), puis appliquez la formule ci-dessus
    abar_t = alphas_cumprod[t].view(-1, 1, 1, 1)  # (B, 1, 1, 1)
    return abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * eps
    # END SOLUTION


check_q_sample(my_q_sample)

# %% [markdown] lang="fr"
# Désormais, toutes les cellules qui bruitent le chat font tourner **votre** `my_q_sample`, dès que la vérification
# l'accepte ; tant qu'il n'est pas prêt, elles prennent `course.forward.q_sample`, et une ligne le signale. La version
# du cours est la même formule, avec en plus des messages clairs quand `t` sort de $[0, T]$ ou quand les formes ne
# concordent pas : essayez par exemple `import course.forward`, puis
# `course.forward.q_sample(torch.zeros(2, 3, 8, 8), 1001, torch.zeros(2, 3, 8, 8), abar)` dans une cellule…
#
# ### La forme close équivaut-elle *vraiment* à $t$ étapes ?
#
# Oui, et on peut le vérifier **exactement**, pas seulement en moyenne. Si l'on conserve les bruits
# $\varepsilon_1, \dots, \varepsilon_t$ tirés au cours des $t$ étapes, le calcul ci-dessus montre que
#
# $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sum_{k=1}^{t} \sqrt{\tfrac{\bar\alpha_t}{\bar\alpha_k}\,\beta_k}\;\varepsilon_k
# \qquad\text{et donc}\qquad
# \bar\varepsilon = \frac{1}{\sqrt{1-\bar\alpha_t}} \sum_{k=1}^{t} \sqrt{\tfrac{\bar\alpha_t}{\bar\alpha_k}\,\beta_k}\;\varepsilon_k$$
#
# est **un** bruit $\mathcal N(0, I)$ pour lequel
# la forme close redonne exactement le même $x_t$. Pourquoi de variance 1 ? Comme
# $\beta_k/\bar\alpha_k = 1/\bar\alpha_k - 1/\bar\alpha_{k-1}$, la somme des carrés des coefficients se télescope :
# $\sum_{k=1}^{t} \bar\alpha_t\beta_k/\bar\alpha_k = \bar\alpha_t\,(1/\bar\alpha_t - 1) = 1 - \bar\alpha_t$, que l'on divise
# par $1 - \bar\alpha_t$.
#
# ### ✏️ Exercice 2 — $t$ étapes, l'une après l'autre
#
# Pour le vérifier, il faut d'abord les $t$ étapes. Écrivez `my_q_sample_iterated(x0, t, betas, generator)`, qui
# applique $t$ fois l'étape de la partie 1 (`t` est ici un entier Python, le même pour tout le lot), pour
# $k = 1, \dots, t$, avec à chaque étape un bruit neuf $\varepsilon_k$
# tiré par `torch.randn(x0.shape, generator=generator, dtype=x0.dtype)`, et renvoie $x_t$. `q_step(x, k, eps, betas)`
# fait une étape (ou écrivez la formule vous-même). Tirer avec le générateur, dans l'ordre des étapes, permet de
# rejouer ensuite exactement les mêmes $\varepsilon_k$ : c'est ce qu'il faut pour calculer $\bar\varepsilon$.
#
# Bloqué ? `hint("q_sample_iterated")` donne l'idée, puis `hint("q_sample_iterated", 2)` la formule et
# `hint("q_sample_iterated", 3)` le code.

# %% [markdown] lang="en"
# From here on, every cell that noises the cat runs **your** `my_q_sample`, as soon as the check accepts it; until it
# is ready they take `course.forward.q_sample`, and one line says so. The course's version is the same formula, plus
# clear messages when `t` leaves $[0, T]$ or when shapes do not match: try, for instance, `import course.forward`, then
# `course.forward.q_sample(torch.zeros(2, 3, 8, 8), 1001, torch.zeros(2, 3, 8, 8), abar)` in a cell…
#
# ### Is the closed form *really* the same as $t$ steps?
#
# Yes, and we can check it **exactly**, not only on average. If we keep the noises
# $\varepsilon_1, \dots, \varepsilon_t$ drawn during the $t$ steps, the computation above shows that
#
# $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sum_{k=1}^{t} \sqrt{\tfrac{\bar\alpha_t}{\bar\alpha_k}\,\beta_k}\;\varepsilon_k
# \qquad\text{hence}\qquad
# \bar\varepsilon = \frac{1}{\sqrt{1-\bar\alpha_t}} \sum_{k=1}^{t} \sqrt{\tfrac{\bar\alpha_t}{\bar\alpha_k}\,\beta_k}\;\varepsilon_k$$
#
# is **a** noise $\mathcal N(0, I)$ for which the closed form gives back exactly the same $x_t$. Why variance 1?
# Since $\beta_k/\bar\alpha_k = 1/\bar\alpha_k - 1/\bar\alpha_{k-1}$, the sum of the squared coefficients telescopes:
# $\sum_{k=1}^{t} \bar\alpha_t\beta_k/\bar\alpha_k = \bar\alpha_t\,(1/\bar\alpha_t - 1) = 1 - \bar\alpha_t$, which we divide
# by $1 - \bar\alpha_t$.
#
# ### ✏️ Exercise 2 — $t$ steps, one after the other
#
# To check it we first need the $t$ steps. Write `my_q_sample_iterated(x0, t, betas, generator)`, which applies the
# step of part 1 $t$ times (`t` is a Python integer here, the same for the whole batch), for $k = 1, \dots, t$, each time with fresh noise $\varepsilon_k$ drawn by
# `torch.randn(x0.shape, generator=generator, dtype=x0.dtype)`, and returns $x_t$. `q_step(x, k, eps, betas)` takes one
# step (or write the formula yourself). Drawing with the generator, in the order of the steps, lets us replay exactly
# the same $\varepsilon_k$ afterwards: that is what computing $\bar\varepsilon$ takes.
#
# Still stuck? `hint("q_sample_iterated")` gives the idea, then `hint("q_sample_iterated", 2)` the formula and
# `hint("q_sample_iterated", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_q_sample_iterated(x0, t, betas, generator):
    """x_t after t noising steps x_k = √(1 − β_k)·x_{k−1} + √β_k·ε_k, k = 1 … t, a fresh ε_k each (Ho et al. 2020, eq. 2)."""
    # BEGIN SOLUTION
    # HINT[en]: start from x0; for each k from 1 to t, a fresh ε_k from the generator, then one step
    # HINT[fr]: partez de x0 ; pour chaque k de 1 à t, un ε_k neuf tiré par le générateur, puis une étape
    x = x0
    for k in range(1, t + 1):
        eps_k = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        x = q_step(x, k, eps_k, betas)
    return x
    # END SOLUTION


check_q_sample_iterated(my_q_sample_iterated)

# %% [markdown] lang="fr"
# Vérifions-le sur le chat : votre boucle (ou celle du cours, tant que la vôtre n'est pas prête) fait les 300 étapes,
# puis on rejoue les mêmes tirages (même graine) pour combiner les $\varepsilon_k$ en $\bar\varepsilon$ et sauter d'un
# coup à $x_{300}$.

# %% [markdown] lang="en"
# Let us check it on the cat: your loop (or the course's, while yours is not ready) takes the 300 steps, then we replay
# the same draws (same seed) to combine the $\varepsilon_k$ into $\bar\varepsilon$ and jump to $x_{300}$ in one go.

# %%
q_sample = choose("q_sample", my_q_sample, check_q_sample, q_sample)  # yours once checked, else the course's
steps = choose("q_sample_iterated", my_q_sample_iterated, check_q_sample_iterated, q_sample_iterated)
x0 = cat(size=64)[None].double()  # (1, 3, 64, 64) in [−1, 1]; float64 to see the formula, not rounding
betas64, abar64 = linear_betas(T, dtype=torch.float64), alphas_cumprod(linear_betas(T, dtype=torch.float64))

t = 300
x = steps(x0, t, betas64, torch.Generator().manual_seed(0))  # t noising steps
gen = torch.Generator().manual_seed(0)  # the same draws again, combined into one noise ε̄
eps_bar = torch.zeros_like(x0)
for k in range(1, t + 1):
    eps_k = torch.randn(x0.shape, generator=gen, dtype=x0.dtype)
    eps_bar += (abar64[t] / abar64[k] * betas64[k]).sqrt() * eps_k
eps_bar /= (1 - abar64[t]).sqrt()

x_closed = q_sample(x0, t, eps_bar, abar64)
gap = (x - x_closed).abs().max().item()
print(tr(en=f"after {t} steps: max |x_t(steps) − x_t(closed form)| = {gap:.1e}",
         fr=f"après {t} étapes : max |x_t(étapes) − x_t(forme close)| = {gap:.1e}"))
print(tr(en=f"the combined noise ε̄: mean {eps_bar.mean().item():+.3f}, std {eps_bar.std().item():.3f}  (N(0, I) expected)",
         fr=f"le bruit combiné ε̄ : moyenne {eps_bar.mean().item():+.3f}, écart-type {eps_bar.std().item():.3f}  (N(0, I) attendu)"))

# %% [markdown] lang="fr"
# L'écart est de l'ordre de $10^{-15}$, c'est-à-dire l'erreur d'arrondi du float64 : les deux chemins
# donnent la même image, aux derniers bits près.
#
# **Et en loi ?** Deuxième vérification, statistique cette fois : on part d'un même pixel $x_0 = 0{,}8$,
# on le bruite `P.n_samples` fois indépendamment, étape par étape jusqu'à $T$, et l'on compare, à chaque
# $t$, la moyenne et l'écart-type observés aux valeurs données par la forme close,
# $\sqrt{\bar\alpha_t}\,x_0$ et $\sqrt{1-\bar\alpha_t}$.

# %% [markdown] lang="en"
# The gap is around $10^{-15}$: float64 rounding. Both paths give the same image, to the last bits.
#
# **And in distribution?** A second, statistical check: start from one pixel $x_0 = 0.8$, noise it
# `P.n_samples` times independently, step by step up to $T$, and compare at each $t$ the observed mean
# and standard deviation with the closed form's $\sqrt{\bar\alpha_t}\,x_0$ and $\sqrt{1-\bar\alpha_t}$.

# %%
gen = torch.Generator().manual_seed(1)
pixel = torch.full((P.n_samples, 1), 0.8)
means, stds = [pixel.mean().item()], [pixel.std().item()]
for k in range(1, T + 1):
    pixel = q_step(pixel, k, torch.randn(pixel.shape, generator=gen), betas)
    means.append(pixel.mean().item())
    stds.append(pixel.std().item())
means, stds = torch.tensor(means), torch.tensor(stds)

mean_cf, std_cf = q_mean_std(torch.full((T + 1, 1), 0.8), torch.arange(T + 1), abar)
mean_cf, std_cf = mean_cf[:, 0], std_cf[:, 0]
# gaps in units of the Monte-Carlo standard error: σ/√n for a mean, σ/√(2n) for a std (t ≥ 1)
z_mean = ((means - mean_cf) / (std_cf / math.sqrt(P.n_samples)))[1:].abs()
z_std = ((stds - std_cf) / (std_cf / math.sqrt(2 * P.n_samples)))[1:].abs()
within_mean, within_std = (z_mean < 2).float().mean().item(), (z_std < 2).float().mean().item()
print(tr(en=f"n = {P.n_samples} samples, t = 1 … {T}: largest gap, in standard errors — mean {z_mean.max():.1f}, std {z_std.max():.1f}",
         fr=f"n = {P.n_samples} tirages, t = 1 … {T} : plus grand écart, en erreurs types — moyenne {z_mean.max():.1f}, écart-type {z_std.max():.1f}"))
print(tr(en=f"share of t within 2 standard errors — mean {within_mean:.0%}, std {within_std:.0%} (≈ 95% expected)",
         fr=f"part des t à moins de 2 erreurs types — moyenne {within_mean * 100:.0f} %, écart-type {within_std * 100:.0f} % (≈ 95 % attendu)"))

fig, ax = figure(1, 2, figsize=(9, 3))
ts = torch.arange(T + 1)
simulated = tr(en="t steps (empirical)", fr="t étapes (simulation)")
ax[0].plot(ts, mean_cf, "k", label=tr(en="closed form √ᾱ_t·x_0", fr="forme close √ᾱ_t·x_0"))
ax[0].plot(ts[::25], means[::25], "o", ms=3, label=simulated)
ax[0].set(xlabel="t", ylabel=tr(en="mean of x_t", fr="moyenne de x_t"))
ax[1].plot(ts, std_cf, "k", label=tr(en="closed form √(1 − ᾱ_t)", fr="forme close √(1 − ᾱ_t)"))
ax[1].plot(ts[::25], stds[::25], "o", ms=3, label=simulated)
ax[1].set(xlabel="t", ylabel=tr(en="std of x_t", fr="écart-type de x_t"))
for a in ax:
    a.legend(fontsize=8)
fig.tight_layout()

# %% [markdown] lang="fr"
# Les points (simulation étape par étape) tombent sur les courbes (forme close), à l'erreur de
# Monte-Carlo près : mesurés en erreurs types, les écarts sont ceux qu'on attend du hasard (une simulation
# est un tirage aléatoire : environ 95 % des écarts doivent rester sous 2 erreurs types). La moyenne
# s'éteint, l'écart-type monte vers 1 : le pixel oublie qu'il valait 0,8.
#
# ## 4. Trois plannings
#
# Le planning linéaire a un défaut : il détruit l'image trop vite. Dès $t \approx 600$, $\bar\alpha_t$ est
# presque nul, et les dernières centaines d'étapes ne font qu'ajouter du bruit à du bruit : autant
# d'étapes gâchées. Deux autres choix possibles :
#
# - **cosinus** (Nichol & Dhariwal, 2021, éq. 17) : on choisit directement la forme de $\bar\alpha_t$,
#   $$\bar\alpha_t = \frac{f(t)}{f(0)},\qquad f(t) = \cos^2\!\left(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\right),\quad s = 0{,}008,$$
#   puis $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}$ (plafonné à 0,999) ;
# - **scaled-linear** : celui de Stable Diffusion, dans lequel c'est $\sqrt{\beta_t}$ qui varie
#   linéairement, de $\sqrt{0{,}00085}$ à $\sqrt{0{,}012}$.
#
# ### ✏️ Exercice 3 — le $\bar\alpha_t$ du planning cosinus
#
# Écrivez `my_cosine_alphas_cumprod(T, s)`, qui renvoie le tenseur des $T + 1$ valeurs
# $\bar\alpha_0, \dots, \bar\alpha_T$.
#
# <details><summary>Indice</summary>
#
# `u = torch.arange(T + 1) / T` donne tous les $t/T$ d'un coup ; `torch.cos` et `math.pi` font le reste.
# N'oubliez pas de diviser par $f(0)$ : il faut que $\bar\alpha_0 = 1$.
# </details>
#
# Toujours bloqué ? `hint("cosine_alphas_cumprod")` donne l'idée, puis `hint("cosine_alphas_cumprod", 2)` la formule et
# `hint("cosine_alphas_cumprod", 3)` le code.

# %% [markdown] lang="en"
# The dots (step-by-step simulation) fall on the curves (closed form), up to Monte-Carlo error: the gaps,
# measured in standard errors, are those of chance (a simulation is a draw: about 95% of the gaps
# should stay under 2 standard errors). The mean
# fades away, the standard deviation rises to 1: the pixel forgets it was 0.8.
#
# ## 4. Three schedules
#
# The linear schedule has a flaw: it destroys the image too fast. From $t \approx 600$ on, $\bar\alpha_t$
# is almost zero, and the last hundreds of steps merely add noise to noise — wasted steps. Two
# alternatives:
#
# - **cosine** (Nichol & Dhariwal, 2021, eq. 17): choose the shape of $\bar\alpha_t$ directly,
#   $$\bar\alpha_t = \frac{f(t)}{f(0)},\qquad f(t) = \cos^2\!\left(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\right),\quad s = 0.008,$$
#   then $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}$ (capped at 0.999);
# - **scaled-linear**: Stable Diffusion's, where $\sqrt{\beta_t}$ is linear, from $\sqrt{0.00085}$
#   to $\sqrt{0.012}$.
#
# ### ✏️ Exercise 3 — the cosine schedule's $\bar\alpha_t$
#
# Write `my_cosine_alphas_cumprod(T, s)`, returning the tensor of the $T + 1$ values
# $\bar\alpha_0, \dots, \bar\alpha_T$.
#
# <details><summary>Hint</summary>
#
# `u = torch.arange(T + 1) / T` gives every $t/T$ at once; `torch.cos` and `math.pi` do the rest. Do not forget
# to divide by $f(0)$: we need $\bar\alpha_0 = 1$.
# </details>
#
# Still stuck? `hint("cosine_alphas_cumprod")` gives the idea, then `hint("cosine_alphas_cumprod", 2)` the formula and
# `hint("cosine_alphas_cumprod", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_cosine_alphas_cumprod(T, s=0.008):
    """ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2), for t = 0 … T (Nichol & Dhariwal 2021, eq. 17)."""
    # BEGIN SOLUTION
    # HINT[en]: u = torch.arange(T + 1) / T holds every t/T at once
    # HINT[fr]: u = torch.arange(T + 1) / T contient tous les t/T d'un coup
    u = torch.arange(T + 1, dtype=torch.float64) / T  # t/T for t = 0 … T
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return f / f[0]
    # END SOLUTION


check_cosine_alphas_cumprod(my_cosine_alphas_cumprod)

# %% [markdown] lang="fr"
# Comparons les trois plannings. Le rapport signal/bruit $\mathrm{SNR}(t) = \bar\alpha_t / (1-\bar\alpha_t)$
# (Kingma et al., 2021) résume tout : c'est le rapport entre la variance du signal et celle du bruit
# dans $x_t$. On le trace en échelle logarithmique.

# %% [markdown] lang="en"
# Let us compare the three schedules. The signal-to-noise ratio $\mathrm{SNR}(t) = \bar\alpha_t / (1-\bar\alpha_t)$
# (Kingma et al., 2021) sums it all up: the variance of the signal over that of the noise in $x_t$.
# We plot it on a log scale.

# %%
schedules = {"linear": linear_betas(T), "cosine": cosine_betas(T), "scaled-linear": scaled_linear_betas(T)}
names = {"linear": tr(en="linear", fr="linéaire"), "cosine": tr(en="cosine", fr="cosinus"), "scaled-linear": "scaled-linear"}  # as a learner reads them
fig, ax = figure(1, 3, figsize=(12, 3.2))
ts = torch.arange(T + 1)
for label, b in schedules.items():
    a = alphas_cumprod(b)
    ax[0].plot(ts[1:], b[1:], label=names[label])
    ax[1].plot(ts, a, label=names[label])
    ax[2].plot(ts[1:], snr(a)[1:].log10(), label=names[label])
ax[0].set(xlabel="t", ylabel="β_t", yscale="log", title="β_t")
ax[1].set(xlabel="t", ylabel="ᾱ_t", title=tr(en="ᾱ_t  (signal kept)", fr="ᾱ_t  (signal conservé)"))
ax[2].set(xlabel="t", ylabel="log₁₀ SNR(t)", title="SNR = ᾱ_t / (1 − ᾱ_t)")
ax[2].axhline(0, color="grey", lw=0.8)
ax[2].set_ylim(-5, 5)  # the cosine curve plunges off the plot at t = T, where β_T is capped at 0.999
for a in ax:
    a.legend(fontsize=8)
fig.tight_layout()

for label, b in schedules.items():
    a = alphas_cumprod(b)
    half = int((a < 0.5).nonzero()[0])
    print(tr(en=f"{label:>13}: ᾱ_T = {a[T].item():.2e}   signal and noise equal (SNR = 1) at t = {half}",
             fr=f"{names[label]:>13} : ᾱ_T = {a[T].item():.2e}   signal et bruit à égalité (SNR = 1) en t = {half}"))

# %% [markdown] lang="fr"
# Ce que disent les courbes :
# - le **linéaire** passe sous SNR = 1 vers $t \approx 260$ ; au-delà de $t \approx 600$ il ne reste
#   presque plus rien de l'image, et les 400 dernières étapes ne font qu'ajouter du bruit à du bruit ;
# - le **cosinus** fait décroître $\log \mathrm{SNR}$ presque linéairement sur l'essentiel du parcours : chaque
#   étape retire à peu près la même quantité d'information (la chute finale vient du plafond
#   $\beta_T = 0{,}999$) ;
# - le **scaled-linear** de Stable Diffusion finit avec $\bar\alpha_T \approx 0{,}005$ : ce n'est **pas**
#   tout à fait du bruit pur. Stable Diffusion travaille dans un espace latent (leçon 05) où cela ne pose
#   guère de problème en pratique, mais c'est un défaut connu (Lin et al., 2024, *Common Diffusion Noise
#   Schedules and Sample Steps are Flawed*) : le modèle ne voit jamais de bruit pur à l'entraînement, alors
#   que la génération part de bruit pur.
#
# ## 5. Le chat tigré sous le bruit
#
# La diapositive *3 éléments majeurs* prend l'exemple d'« un chat blanc tigré en gros plan ». Voici le
# nôtre, un chat tigré brun (`skimage.data.chelsea()`, fourni avec scikit-image, domaine public), bruité pour plusieurs
# valeurs de $t$ avec **le même** $\varepsilon$ : seule la quantité de bruit change d'une image à l'autre.

# %% [markdown] lang="en"
# What the curves say:
# - the **linear** schedule crosses SNR = 1 around $t \approx 260$; beyond $t \approx 600$ almost nothing of
#   the image is left, and the last 400 steps merely add noise to noise;
# - the **cosine** one makes $\log \mathrm{SNR}$ fall almost linearly over most of the range: each step removes
#   about the same amount of information (the final plunge comes from the cap $\beta_T = 0.999$);
# - Stable Diffusion's **scaled-linear** ends at $\bar\alpha_T \approx 0.005$: **not** quite pure noise.
#   Stable Diffusion works in a latent space (lesson 05) where this is fine in practice, but it is a known
#   flaw (Lin et al., 2024, *Common Diffusion Noise Schedules and Sample Steps are Flawed*): the model
#   never sees pure noise in training, yet generation starts from pure noise.
#
# ## 5. The tabby cat under noise
#
# The slide *3 éléments majeurs* uses "a white tabby cat in close-up". Here is ours, a brown
# tabby (`skimage.data.chelsea()`, shipped with scikit-image, public domain), noised at several $t$ with
# **the same** $\varepsilon$: only the amount of noise changes from one image to the next.

# %% tags=["key-figure"]
x0 = cat(size=128)[None]  # (1, 3, 128, 128)
eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
t_values = torch.linspace(0, T, P.n_strip).round().long().tolist()
for label in ("linear", "cosine"):
    a = alphas_cumprod(schedules[label])
    strip = [q_sample(x0, t, eps, a)[0] for t in t_values]
    show_strip(strip, [f"t = {t}" for t in t_values], suptitle=tr(en=f"{label} schedule", fr=f"planning {names[label]}"))

# %% [markdown] lang="fr"
# Avec le planning linéaire, le chat a disparu avant mi-parcours ; avec le cosinus, on le devine encore
# au-delà. Faites varier $t$ avec le curseur (il faut un noyau Jupyter actif ; sinon, une figure fixe
# s'affiche à la place) :

# %% [markdown] lang="en"
# With the linear schedule the cat is gone before half-way; with the cosine one it is still visible
# beyond. Walk along $t$ with the slider (it needs a live Jupyter kernel; otherwise a fixed
# figure is shown instead):

# %% tags=["key-figure"]
abar_lin, abar_cos = alphas_cumprod(schedules["linear"]), alphas_cumprod(schedules["cosine"])


def draw(t):
    images = [q_sample(x0, t, eps, abar_lin)[0], q_sample(x0, t, eps, abar_cos)[0]]
    show_strip(images, [f"{names['linear']}  ᾱ_t = {abar_lin[t].item():.3f}", f"{names['cosine']}  ᾱ_t = {abar_cos[t].item():.3f}"], suptitle=f"t = {t}", size=2.4)
    plt.show()


int_slider(draw, name="t", min=0, max=T, value=250, static_values=[100, 400])

# %% [markdown] lang="fr"
# ## 6. La variance du bruit sur 30 étapes
#
# La diapositive *Rôle du Scheduler* montre « l'évolution de la variance du bruit au cours des étapes de
# diffusion (30 étapes) ». En génération, on ne parcourt pas les 1000 étapes : un échantillonneur n'en
# visite qu'une trentaine, par exemple $t = 1000, 967, \dots, 33, 0$. La variance du bruit présent dans
# $x_t$ vaut $1 - \bar\alpha_t$ ; traçons-la le long de ces 30 étapes, du bruit pur vers l'image, pour
# chaque planning, ainsi que la part de variance que chaque étape doit retirer.

# %% [markdown] lang="en"
# ## 6. The variance of the noise over 30 steps
#
# The slide *Rôle du Scheduler* shows "the evolution of the noise variance over the diffusion steps
# (30 steps)". At generation time we do not walk all 1000 steps: a sampler visits about thirty of them,
# e.g. $t = 1000, 967, \dots, 33, 0$. The variance of the noise in $x_t$ is $1 - \bar\alpha_t$; let us
# plot it along these 30 steps, from pure noise to the image, for each schedule, together with the
# share of variance each step must remove.

# %%
n_steps = 30
visited = torch.linspace(T, 0, n_steps + 1).round().long()  # 1000, 967, …, 0
fig, ax = figure(1, 2, figsize=(10, 3.2))
for label, b in schedules.items():
    variance = 1 - alphas_cumprod(b)[visited]
    ax[0].plot(range(n_steps + 1), variance, "o-", ms=3, label=names[label])
    offset = 0.27 * (list(schedules).index(label) - 1)  # three bars side by side, centred on each step
    ax[1].bar([i + offset for i in range(1, n_steps + 1)], variance[:-1] - variance[1:], width=0.27, label=names[label])
ax[0].set(xlabel=tr(en="sampling step (0 = pure noise)", fr="étape d'échantillonnage (0 = bruit pur)"), ylabel="1 − ᾱ_t",
          title=tr(en=f"noise variance in x_t, {n_steps} steps", fr=f"variance du bruit dans x_t, {n_steps} étapes"))
ax[1].set(xlabel=tr(en="sampling step", fr="étape d'échantillonnage"), ylabel=tr(en="variance removed", fr="variance retirée"),
          title=tr(en="variance removed by each step", fr="variance retirée à chaque étape"))
for a in ax:
    a.legend(fontsize=8)
fig.tight_layout()

# %% [markdown] lang="fr"
# Avec le planning linéaire, les dix premières étapes ne retirent presque rien (on reste dans le bruit
# pur) et tout se joue à la fin ; le cosinus, lui, répartit l'effort. C'est pourquoi « le choix du
# scheduler affecte significativement la qualité et l'efficacité » : le planning décide **où** l'on
# dépense ses étapes. La leçon 06 reprendra cette figure pour chaque échantillonneur (DDPM, DDIM, PNDM,
# Euler a, DPM-Solver++).
#
# ## À retenir
#
# - Une étape : $x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon$ — on atténue et on bruite,
#   la variance reste égale à 1.
# - D'un seul coup : $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$, avec
#   $\bar\alpha_t = \prod_{k \le t}(1-\beta_k)$ — vérifié exactement et en loi.
# - Le planning des $\beta_t$ fixe la vitesse à laquelle le signal s'éteint ; le SNR la résume.
#
# <details><summary><b>Pour les enseignants</b></summary>
#
# La diapositive *Processus Forward* est correcte ; notez que le « scheduler » des diapositives désigne à
# la fois le planning des $\beta_t$ (cette leçon) et l'algorithme d'échantillonnage (leçon 06) : deux
# rôles que diffusers réunit dans une même classe et que le cours distingue. Les erreurs relevées dans les
# diapositives sont rassemblées dans `ERRATA.md`, à la racine du dépôt.
# </details>
#
# **Et ensuite ?** Leçon 02 : on entraîne un réseau à prédire $\varepsilon$ à partir de $x_t$, puis on
# remonte le temps.

# %% [markdown] lang="en"
# With the linear schedule, the first ten steps remove almost nothing (we stay in pure noise) and
# everything happens at the end; the cosine one spreads the effort. That is why "the choice of scheduler
# significantly affects quality and efficiency": the schedule decides **where** the steps are spent.
# Lesson 06 redraws this figure for each sampler (DDPM, DDIM, PNDM, Euler a, DPM-Solver++).
#
# ## Key points
#
# - One step: $x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon$ — shrink and add noise,
#   the variance stays at 1.
# - In one jump: $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$, with
#   $\bar\alpha_t = \prod_{k \le t}(1-\beta_k)$ — checked exactly and in distribution.
# - The schedule of $\beta_t$ decides how fast the signal fades; the SNR sums it up.
#
# <details><summary><b>For lecturers</b></summary>
#
# The slide *Processus Forward* (forward process) is correct; note that the slides' "scheduler" means both
# the schedule of $\beta_t$ (this lesson) and the sampling algorithm (lesson 06): two roles that diffusers
# puts in one class and that the course keeps apart. The slides' errors are gathered in `ERRATA.md`, at
# the root of the repository.
# </details>
#
# **Next.** Lesson 02: we train a network to predict $\varepsilon$ from $x_t$, then run time backwards.
