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
# # 00 — Visite guidée
#
# Bienvenue ! Dans ce cours, on construit **une version miniature de Stable Diffusion en partant de zéro**,
# pièce par pièce, en suivant les diapositives *La Théorie de la Diffusion Stable*. À la fin, vous taperez
# un prompt (« un cercle rouge en haut à gauche ») et vous obtiendrez une image, produite par des modèles
# que vous aurez entraînés vous-mêmes.
#
# Cette première leçon ne demande aucun calcul lourd. On y fait quatre choses :
# 1. vérifier l'environnement et le **profil** d'exécution ;
# 2. passer en revue les **trois éléments** de Stable Diffusion et voir où le cours construit chacun d'eux ;
# 3. apprendre à se servir des **exercices** et de leurs vérifications ;
# 4. jeter un coup d'œil aux **données**.

# %% [markdown] lang="en"
# # 00 — Tour
#
# Welcome! In this course we build **a small Stable Diffusion from scratch**, piece by piece, following
# the slides *La Théorie de la Diffusion Stable*. By the end you will type a prompt ("a red circle at the
# top left") and get an image, made by models you trained yourself.
#
# This first lesson needs no heavy computation. We do four things:
# 1. check the environment and the run **profile**;
# 2. revisit the **three elements** of Stable Diffusion and see where the course builds each;
# 3. learn how the **exercises** and their checks work;
# 4. take a look at the **data**.

# %% [markdown] lang="fr"
# ## 1. L'environnement et le profil
#
# La cellule suivante vérifie que tout ce dont le cours a besoin est bien installé, puis indique le
# matériel (CPU ou GPU) et le **profil** retenu. C'est le profil qui fixe la taille de tous les carnets :
#
# | profil | usage | durée typique |
# |---|---|---|
# | `smoke` | l'intégration continue (CI) | quelques secondes par carnet |
# | `cpu` | un ordinateur portable | quelques minutes par carnet |
# | `gpu` | un GPU (Colab T4 ou mieux) | taille réelle, entraînements complets |
#
# Il est choisi automatiquement (un GPU CUDA → `gpu`, la CI → `smoke`, sinon `cpu`) ; pour l'imposer,
# définissez la variable d'environnement `COURSE_PROFILE` avant de lancer Jupyter, par exemple
# `COURSE_PROFILE=smoke jupyter lab`.

# %% [markdown] lang="en"
# ## 1. Environment and profile
#
# The next cell checks that everything the course needs is installed, and shows the hardware (CPU or
# GPU) and the chosen **profile**. The profile sizes every notebook:
#
# | profile | for | typical time |
# |---|---|---|
# | `smoke` | continuous integration (CI) | seconds per notebook |
# | `cpu` | a laptop | minutes per notebook |
# | `gpu` | a GPU (Colab T4 or better) | full size, complete training runs |
#
# It is chosen automatically (a CUDA GPU → `gpu`, CI → `smoke`, else `cpu`); to force it, set the
# environment variable `COURSE_PROFILE` before starting Jupyter, e.g. `COURSE_PROFILE=smoke jupyter lab`.

# %%
import numpy as np
import torch

from course import current_profile, env
from course.checks.tour import check_noise_strip, check_to_signed, noise_strip
from course.hints import hint
from course.images import cat, from_uint8
from course.language import tr
from course.lessons import LESSONS
from course.plotting import figure, show_grid, show_strip
from course.yours import choose

all_good = env.report()
P = current_profile()
print(tr(en=f"\nsizes of the {P.name} profile:", fr=f"\ntailles du profil {P.name} :"), P.sizes())

# %% [markdown] lang="fr"
# Chaque ligne doit afficher ✅. Sinon, le message indique le paquet manquant : relancez l'installation
# décrite dans le README (`pip install -e ".[dev]"`).
#
# ## 2. Les trois éléments de Stable Diffusion
#
# La diapositive *3 éléments majeurs pour de la Diffusion Stable* découpe le système en trois parties :
#
# 1. **le processeur de texte (CLIP)** transforme le prompt en vecteurs ;
# 2. **le générateur d'images (le modèle de diffusion)**, un U-Net, part d'un bruit aléatoire et le
#    transforme pas à pas en image, guidé par ces vecteurs ;
# 3. **le scheduler (~50 étapes)** règle le rythme du débruitage.
#
# Les diapositives *Architecture Détaillée* y ajoutent un **décodeur** : Stable Diffusion débruite une
# petite image « latente », que le décodeur agrandit ensuite en une véritable image. Voici où le cours
# construit chaque pièce :
#
# | élément | ce que l'on construit | leçon |
# |---|---|---|
# | bruitage (processus forward) | $q(x_t \mid x_0)$, plannings des $\beta_t$ | 01 |
# | objectif et débruitage | la perte sur $\varepsilon$, l'échantillonnage DDPM | 02 |
# | processeur de texte | un CLIP entraîné à partir de zéro, en français et en anglais | 03 |
# | générateur d'images | un U-Net avec self-attention et cross-attention | 04 |
# | décodeur, espace latent | un autoencodeur, la diffusion latente texte → image | 05 |
# | scheduler | DDPM, DDIM, PNDM, Euler a, DPM-Solver++ (2M, 3M), Heun | 06 |
# | guidance, pipeline | classifier-free guidance, du prompt à l'image | 07 |
#
# Un mot sur l'exemple que prennent les diapositives, « DALL-E ». Il y en a deux : DALL-E 1 (Ramesh et al.,
# 2021) n'est **pas** un modèle de diffusion, c'est un transformer qui écrit l'image jeton après jeton ;
# DALL-E 2 (Ramesh et al., 2022) en est un, mais il passe par un « prior » qui change le texte en
# caractéristiques d'image de CLIP. Stable Diffusion (Rombach et al., 2022), celui que l'on construit, lit
# directement les états des jetons de CLIP par cross-attention (voir `ERRATA.md`).

# %% [markdown] lang="en"
# Every line should carry ✅. If not, the message names the missing package: run the install from the
# README again (`pip install -e ".[dev]"`).
#
# ## 2. The three elements of Stable Diffusion
#
# The slide *3 éléments majeurs pour de la Diffusion Stable* ("3 major elements") splits the system in three:
#
# 1. **the text processor (CLIP)** turns the prompt into vectors;
# 2. **the image generator (the diffusion model)**, a U-Net, starts from random noise and turns it
#    step by step into an image, guided by those vectors;
# 3. **the scheduler (~50 steps)** sets the pace of denoising.
#
# The slides *Architecture Détaillée* ("detailed architecture") add a **decoder**: Stable Diffusion denoises a small "latent"
# image, which the decoder enlarges into a real image. Here is where the course builds each piece:
#
# | element | what we build | lesson |
# |---|---|---|
# | noising (forward process) | $q(x_t \mid x_0)$, $\beta_t$ schedules | 01 |
# | objective and denoising | the $\varepsilon$ loss, DDPM sampling | 02 |
# | text processor | a CLIP trained from scratch, in French and in English | 03 |
# | image generator | a U-Net with self- and cross-attention | 04 |
# | decoder, latent space | an autoencoder, text-to-image latent diffusion | 05 |
# | scheduler | DDPM, DDIM, PNDM, Euler a, DPM-Solver++ (2M, 3M), Heun | 06 |
# | guidance, pipeline | classifier-free guidance, from prompt to image | 07 |
#
# A word on the slides' example, "DALL-E". There are two: DALL-E 1 (Ramesh et al., 2021) is **not** a diffusion
# model, it is a transformer that writes the image token after token; DALL-E 2 (Ramesh et al., 2022) is one, but
# it goes through a "prior" that turns the text into CLIP image features. Stable Diffusion (Rombach et al.,
# 2022), the one we build, reads CLIP's token states directly through cross-attention (see `ERRATA.md`).

# %% tags=["key-figure"]
def box(ax, x, y, text, color, lessons):
    ax.text(x, y, text, ha="center", va="center", fontsize=9, bbox=dict(boxstyle="round,pad=0.5", fc=color, ec="0.3"))
    ax.text(x, y - 0.23, lessons, ha="center", va="center", fontsize=8, color="0.35")


def arrow(ax, x0, x1, y=0.5):
    ax.annotate("", xy=(x1, y), xytext=(x0, y), arrowprops=dict(arrowstyle="->", color="0.3"))


fig, ax = figure(figsize=(11, 2.6))
ax.set_xlim(0, 11)
ax.set_ylim(0, 1)
ax.set_axis_off()
box(ax, 0.9, 0.5, "prompt\n« un chat blanc tigré »\n“a white tabby cat”", "white", "")
box(ax, 3.0, 0.5, tr(en="CLIP\ntext encoder", fr="CLIP\nencodeur de texte"), "#cfe2f3", tr(en="lesson 03", fr="leçon 03"))
box(ax, 5.5, 0.5, tr(en="U-Net\n(diffusion model)\n× ~50 steps", fr="U-Net\n(modèle de diffusion)\n× ~50 étapes"), "#fce5cd", "")
ax.text(6.3, 0.27, tr(en="lessons 02, 04, 05", fr="leçons 02, 04, 05"), ha="left", va="center", fontsize=8, color="0.35")
box(ax, 5.5, 0.93, "scheduler", "#d9ead3", "")
ax.text(6.3, 0.93, tr(en="lessons 01, 06", fr="leçons 01, 06"), ha="left", va="center", fontsize=8, color="0.35")
box(ax, 8.0, 0.5, tr(en="decoder", fr="décodeur"), "#ead1dc", tr(en="lesson 05", fr="leçon 05"))
box(ax, 10.0, 0.5, "image", "white", "")
box(ax, 5.5, 0.08, tr(en="random noise x_T", fr="bruit aléatoire x_T"), "#eeeeee", "")
ax.annotate("", xy=(5.5, 0.31), xytext=(5.5, 0.15), arrowprops=dict(arrowstyle="->", color="0.3"))
ax.text(6.4, 0.08, tr(en="guided denoising x_T → x_0 (lesson 07)", fr="débruitage guidé x_T → x_0 (leçon 07)"), ha="left", va="center", fontsize=8, color="0.35")
for a, b in ((1.75, 2.35), (3.65, 4.55), (6.45, 7.45), (8.55, 9.55)):
    arrow(ax, a, b)
ax.annotate("", xy=(5.5, 0.69), xytext=(5.5, 0.86), arrowprops=dict(arrowstyle="->", color="0.3"))
fig.tight_layout()

# %% [markdown] lang="fr"
# ## 3. Comment fonctionnent les exercices
#
# Dans les carnets d'exercices (`notebooks/`), certaines cellules contiennent un trou à compléter, marqué
# `✏️ EXERCISE`, suivi d'une piste puis de `raise NotImplementedError`. Remplacez cette ligne par votre
# code, puis exécutez la cellule : la fonction `check_…` qui suit vous signale ce qui ne va pas — une
# mauvaise forme, un mauvais type, une valeur fausse à un indice donné, une erreur de signe, un décalage
# de un — ou vous confirme que tout est correct. Les corrigés complets se trouvent dans `solutions/`.
#
# Bloqué ? Chaque exercice a trois indices de plus en plus précis : `hint("to_signed")` donne l'idée,
# `hint("to_signed", 2)` la formule, `hint("to_signed", 3)` le code.
#
# Une fois vérifiée, **votre fonction sert pour de bon** : les cellules suivantes font tourner votre code, pas celui du
# cours (une ligne « ▶ » le signale). Si votre fonction n'est pas encore prête, le cours reprend sa propre version et le
# dit en une ligne « ↩ », avec la raison : le carnet va toujours jusqu'au bout.
#
# **Échauffement.** Les modèles de diffusion travaillent sur des images centrées, comme le bruit
# gaussien : on convertit donc une image `uint8` (valeurs de 0 à 255, forme `(H, W, C)`) en un tenseur
# `float32` à valeurs dans $[-1, 1]$, de forme `(C, H, W)` (les canaux en premier, comme le veut PyTorch).
# Complétez `my_to_signed`.

# %% [markdown] lang="en"
# ## 3. How the exercises work
#
# In the exercise notebooks (`notebooks/`), some cells hold a blank marked `✏️ EXERCISE`, followed by a
# hint and `raise NotImplementedError`. Replace that line with your code, then run the cell: the
# `check_…` function that follows tells you what is wrong — a shape, a dtype, a wrong value at some
# index, a sign error, an off-by-one — or confirms you got it right. Full solutions live in `solutions/`.
#
# Stuck? Every exercise has three hints, each more precise: `hint("to_signed")` gives the idea,
# `hint("to_signed", 2)` the formula, `hint("to_signed", 3)` the code.
#
# Once checked, **your function is used for real**: the cells below run your code, not the course's (a "▶" line says
# so). If your function is not ready yet, the course takes its own version back and says so in one "↩" line, with the
# reason: the notebook always runs to the end.
#
# **Warm-up.** Diffusion models work on centred images, like Gaussian noise: we turn a `uint8` image
# (values 0 to 255, shape `(H, W, C)`) into a `float32` tensor with values in $[-1, 1]$ and shape
# `(C, H, W)` (channels first, as PyTorch wants). Complete `my_to_signed`.

# %%
# NBVAL_CHECK_OUTPUT
def my_to_signed(image):
    """(H, W, C) uint8 in [0, 255] → (C, H, W) float32 in [−1, 1]."""
    # BEGIN SOLUTION
    # HINT[en]: channels first, then floats, then rescale [0, 255] to [−1, 1]
    # HINT[fr]: les canaux d'abord, puis des flottants, puis ramenez [0, 255] à [−1, 1]
    x = torch.from_numpy(image).permute(2, 0, 1).float()  # (C, H, W)
    return x / 127.5 - 1
    # END SOLUTION


check_to_signed(my_to_signed)

# %% [markdown] lang="fr"
# Et voici ce que répond la vérification face à une erreur classique — oublier de recentrer :

# %% [markdown] lang="en"
# And here is what the check says about a classic mistake — forgetting to centre:

# %%
# NBVAL_CHECK_OUTPUT
check_to_signed(lambda image: torch.from_numpy(image).permute(2, 0, 1).float() / 255)

# %% [markdown] lang="fr"
# ## 4. Un coup d'œil aux données
#
# Tout le cours fonctionne **hors ligne** : aucune donnée n'est téléchargée. Les leçons 01 et suivantes
# utilisent :
# - le **chat tigré** des diapositives : `skimage.data.chelsea()`, une photo du domaine public fournie
#   avec scikit-image ;
# - à partir de la leçon 02, un jeu d'**images de formes légendées** (« un cercle rouge au-dessus d'un carré
#   bleu »), dessinées par programme, en français et en anglais.
#
# Voici le chat tel qu'il est stocké, puis après conversion par **votre** `my_to_signed` (ou par la version du cours,
# `course.images.from_uint8`, s'il n'est pas encore prêt) :

# %% [markdown] lang="en"
# ## 4. A look at the data
#
# The whole course runs **offline**: nothing is downloaded. Lessons 01 onwards use:
# - the slides' **tabby cat**: `skimage.data.chelsea()`, a public-domain photo shipped with scikit-image;
# - from lesson 02 on, a set of **captioned shape images** ("a red circle above a blue square"), drawn by
#   code, in French and in English.
#
# The cat as stored, then converted by **your** `my_to_signed` (or by the course's version,
# `course.images.from_uint8`, if yours is not ready yet):

# %%
# NBVAL_CHECK_OUTPUT
from skimage import data

photo = data.chelsea()
to_signed = choose("to_signed", my_to_signed, check_to_signed, from_uint8)  # yours once checked, else the course's
x = to_signed(photo)
print(tr(en=f"stored:    shape {photo.shape}, dtype {photo.dtype}, values {photo.min()} … {photo.max()}",
         fr=f"stocké :   forme {photo.shape}, dtype {photo.dtype}, valeurs {photo.min()} … {photo.max()}"))
print(tr(en=f"converted: shape {tuple(x.shape)}, dtype {x.dtype}, values {x.min().item():.2f} … {x.max().item():.2f}",
         fr=f"converti : forme {tuple(x.shape)}, dtype {x.dtype}, valeurs {x.min().item():.2f} … {x.max().item():.2f}"))

# %%
fig, ax = figure(1, 2, figsize=(9, 3))
ax[0].imshow(photo)
ax[0].set_title("skimage.data.chelsea()")
ax[0].set_axis_off()
for c, (color, name) in enumerate((("red", tr(en="red", fr="rouge")), ("green", tr(en="green", fr="vert")), ("blue", tr(en="blue", fr="bleu")))):
    ax[1].hist(x[c].flatten().numpy(), bins=np.linspace(-1, 1, 65), histtype="step", color=color, label=name)
ax[1].set(xlabel=tr(en="pixel value after to_signed", fr="valeur du pixel après to_signed"), ylabel=tr(en="count", fr="nombre de pixels"),
          title=tr(en="pixel values in [−1, 1]", fr="valeurs des pixels dans [−1, 1]"))
ax[1].legend(fontsize=8)
fig.tight_layout()

# %% [markdown] lang="fr"
# Et voici les **formes légendées**, dessinées à la demande par `course.data.ShapesDataset` : chaque image
# vient avec sa légende, en français ou en anglais, et avec ses attributs exacts (forme, couleur, taille,
# position…), que la leçon 02 présente en détail.

# %% [markdown] lang="en"
# And here are the **captioned shapes**, drawn on demand by `course.data.ShapesDataset`: each image comes
# with its caption, in French or in English, and with its exact attributes (shape, colour, size,
# position…), which lesson 02 presents in detail.

# %%
from course.data import ShapesDataset

shapes = ShapesDataset(6, size=64, seed=0)
items = [shapes[i] for i in range(6)]
show_grid([item["image"] for item in items], [item["caption"] for item in items], ncols=6, size=2.0)

# %% [markdown] lang="fr"
# Et pour finir, un avant-goût de la leçon 01 — et un second exercice, une boucle cette fois. On ajoute au même chat
# de plus en plus de bruit gaussien $\varepsilon \sim \mathcal N(0, I)$ : au niveau $m$, entre 0 et 1, on prend
# $\sqrt{1 - m^2}\,x + m\,\varepsilon$. L'image s'atténue à mesure que le bruit grandit, et les deux variances,
# $1 - m^2$ et $m^2$, ont toujours pour somme 1. Tout l'enjeu de Stable Diffusion est d'apprendre à **défaire**
# cette opération.
#
# ### ✏️ Exercice — une bande d'images bruitées
#
# Écrivez `my_noise_strip(image, eps, mixes)`, qui renvoie la liste des images $\sqrt{1 - m^2}\,x + m\,\varepsilon$
# (où $x$ est `image` et $\varepsilon$ est `eps`, de même forme), une par niveau $m$ de `mixes`, dans l'ordre.
# La cellule d'après affiche la bande que produit votre fonction.
#
# Bloqué ? `hint("noise_strip")` donne l'idée, puis `hint("noise_strip", 2)` la formule et `hint("noise_strip", 3)` le code.

# %% [markdown] lang="en"
# And to finish, a taste of lesson 01 — and a second exercise, a loop this time. We add more and more Gaussian noise
# $\varepsilon \sim \mathcal N(0, I)$ to the same cat: at level $m$, between 0 and 1, we take
# $\sqrt{1 - m^2}\,x + m\,\varepsilon$. The image fades as the noise grows, and the two variances, $1 - m^2$ and
# $m^2$, always add up to 1. All of Stable Diffusion is about learning to **undo** this.
#
# ### ✏️ Exercise — a strip of noised images
#
# Write `my_noise_strip(image, eps, mixes)`, which returns the list of the images $\sqrt{1 - m^2}\,x + m\,\varepsilon$
# (where $x$ is `image` and $\varepsilon$ is `eps`, of the same shape),
# one per level $m$ of `mixes`, in order. The next cell shows the strip your function makes.
#
# Stuck? `hint("noise_strip")` gives the idea, then `hint("noise_strip", 2)` the formula and `hint("noise_strip", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_noise_strip(image, eps, mixes):
    """[√(1 − m²)·image + m·ε for each level m in mixes], in order: from the clean image (m = 0) to pure noise (m = 1)."""
    # BEGIN SOLUTION
    # HINT[en]: one loop over the levels, one image per level, gathered in a list
    # HINT[fr]: une boucle sur les niveaux, une image par niveau, rassemblées dans une liste
    strip = []
    for m in mixes:
        strip.append((1 - m**2) ** 0.5 * image + m * eps)
    return strip
    # END SOLUTION


check_noise_strip(my_noise_strip)

# %%
noise_strip = choose("noise_strip", my_noise_strip, check_noise_strip, noise_strip)  # yours once checked, else the course's
torch.manual_seed(0)
small = cat(size=96)
eps = torch.randn_like(small)
mix = [0.0, 0.3, 0.6, 0.9, 1.0]
show_strip(noise_strip(small, eps, mix), [f"√{1 - m**2:.2f}·x + {m}·ε" for m in mix])

# %% [markdown] lang="fr"
# ## Le programme
#
# Les leçons disponibles et celles à venir (la même liste que `python -m course`) :

# %% [markdown] lang="en"
# ## The programme
#
# The lessons available and those to come (the same list as `python -m course`):

# %%
for lesson in LESSONS:
    status = "" if lesson.available else tr(en="  (coming)", fr="  (à venir)")
    print(f"{lesson.number:02d}  {lesson.display_title()}{status}")
