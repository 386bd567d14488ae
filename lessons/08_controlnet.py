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
# # 08 — ControlNet : imposer la forme
#
# > « Des extensions comme ControlNet permettent un conditionnement spatial précis, guidant la génération
# > avec des cartes de profondeur, des poses, des croquis, etc. Ces techniques offrent un contrôle beaucoup
# > plus fin sur la composition de l'image générée, tout en préservant la cohérence avec le prompt
# > textuel. » — diapositive *Conditionnement Spatial*
#
# Le prompt dit **quoi** (« un carré bleu ») et, dans notre monde, **à peu près où** (une des neuf cases
# d'une grille 3 × 3). Il ne peut pas dire « ici, exactement, avec ce contour ». ControlNet (Zhang, Rao &
# Agrawala 2023) ajoute cette seconde consigne : une **image de condition** — des contours de Canny, un
# gribouillis, un masque — que le modèle doit suivre, sans rien oublier de ce qu'il sait déjà.
#
# **Au programme**
# 1. les conditions, calculées à partir de nos rendus (la figure « Input image → Canny → Stable Diffusion ») ;
# 2. l'architecture : une copie entraînable, un encodeur de condition et des **convolutions zéro** — *exercice 1* ;
# 3. les résidus de ControlNet, assemblés bloc par bloc — *exercice 2* ;
# 4. l'entraînement (modèle de base gelé) et sa courbe ;
# 5. des contours à l'image, plusieurs prompts sur une même carte ; ce qu'on mesure ;
# 6. l'échelle de conditionnement, et le conflit : les contours d'un cercle avec le prompt « un carré ».

# %% [markdown] lang="en"
# # 08 — ControlNet: imposing the shape
#
# > "Extensions such as ControlNet allow precise spatial conditioning, guiding generation with depth maps,
# > poses, sketches, etc. These techniques give much finer control over the composition of the generated
# > image, while keeping it consistent with the text prompt." — slide *Conditionnement Spatial*
#
# The prompt says **what** ("a blue square") and, in our world, **roughly where** (one of the nine cells of a
# 3 × 3 grid). It cannot say "here, exactly, with this outline". ControlNet (Zhang, Rao & Agrawala 2023) adds
# that second instruction: a **condition image** — Canny edges, a scribble, a mask — that the model must follow,
# without forgetting anything it already knows.
#
# **Plan**
# 1. the conditions, computed from our renders (the figure "Input image → Canny → Stable Diffusion");
# 2. the architecture: a trainable copy, a condition encoder and **zero convolutions** — *exercise 1*;
# 3. ControlNet's residuals, assembled block by block — *exercise 2*;
# 4. training (the base model frozen) and its curve;
# 5. from edges to image, several prompts on one map; what we measure;
# 6. the conditioning scale, and the conflict: a circle's edges with the prompt "a square".

# %%
import json

import numpy as np
import torch
from torch import nn

from course import current_profile
from course.checkpoints import read_manifest
from course.checks.controlnet import check_controlnet_residuals, check_zero_conv
from course.conditions import canny, conditions, layout_mask, scribble, shift_layouts, to_condition
from course.control_eval import conflict_sweep, evaluate, scale_sweep
from course.controlnet import ControlledUNet, ControlNet
from course.hints import hint
from course.images import cat
from course.language import hardware, num, tr
from course.paths import data_dir
from course.pipeline import TextToImagePipeline
from course.plotting import figure, show_grid
from course.shipped import load_controlnet, load_unet, text_states
from course.yours import choose, use

P = current_profile()
torch.manual_seed(0)
pipe = TextToImagePipeline(device="cpu")
unet = load_unet().requires_grad_(False)  # frozen: only the ControlNet learns
N = max(8, P.latent_samples // 4)  # held-out layouts per live measurement (the recorded table uses 256)
STEPS = min(25, P.sample_steps)
print(tr(en=f"profile: {P.name} · {N} layouts per measurement, {STEPS} sampling steps",
         fr=f"profil : {P.name} · {N} dispositions par mesure, {STEPS} pas d'échantillonnage"))

# %% [markdown] lang="fr"
# ## 1. Les conditions : des contours, un gribouillis, un masque
#
# La figure des diapositives part d'une photo, en tire les contours avec le **détecteur de Canny** (Canny
# 1986 : lissage gaussien, gradient, suppression des non-maxima, double seuil), puis demande à Stable
# Diffusion une image qui suit ces contours. Dans notre monde, chaque image d'entraînement est un rendu :
# sa condition exacte ne coûte rien, sans annotateur ni jeu de données. `course.conditions` en calcule
# trois :
#
# - `canny(image)` : le détecteur de scikit-image appliqué **à chaque canal de couleur**, les trois cartes
#   réunies par un OU ;
# - `scribble(image, rng)` : le contour des silhouettes, déformé par un champ aléatoire lisse et épaissi,
#   comme les gribouillis synthétiques de l'article (§4) ;
# - `layout_mask(image)` : les silhouettes pleines.
#
# Pourquoi chaque canal ? Un jaune sur fond beige n'a presque aucun contraste en niveaux de gris : la
# cellule ci-dessous le montre.

# %% [markdown] lang="en"
# ## 1. The conditions: edges, a scribble, a mask
#
# The slides' figure starts from a photo, takes its edges with the **Canny detector** (Canny 1986: Gaussian
# smoothing, gradient, non-maximum suppression, double threshold), then asks Stable Diffusion for an image that
# follows those edges. In our world every training image is a render: its exact condition is free, with no
# annotator and no dataset. `course.conditions` computes three:
#
# - `canny(image)`: scikit-image's detector applied **to each colour channel**, the three maps joined by an OR;
# - `scribble(image, rng)`: the silhouettes' outline, bent by a smooth random field and thickened, like the
#   paper's synthetic scribbles (§4);
# - `layout_mask(image)`: the filled silhouettes.
#
# Why each channel? A yellow on a beige background has almost no contrast in grey levels: the cell below
# shows it.

# %% tags=["key-figure"]
from skimage.color import rgb2gray
from skimage.feature import canny as grey_canny

from course.data import render_scenes
from course.scenes import sample_scene, single

yellow = render_scenes([single("square", "yellow", "centre", "large", "beige")], 64)[0]
rgb = ((yellow.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
grey, channels = int(grey_canny(rgb2gray(rgb), sigma=1.0).sum()), int(canny(rgb).sum())
print(tr(en=f"yellow square on beige, edge pixels found by Canny: {grey} on grey levels, {channels} channel by channel",
         fr=f"carré jaune sur fond beige, pixels de contour trouvés par Canny : {grey} en niveaux de gris, {channels} canal par canal"))

rng = np.random.default_rng(1)
scenes = [sample_scene(rng, "train", (kind,)) for kind in ("single", "pair", "count", "single", "pair", "count")]
renders = render_scenes(scenes, 64, seed=1)
rows = [renders] + [to_condition(np.stack([f(((r.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()) for r in renders])) * 2 - 1
                    for f in (canny, lambda im: scribble(im, np.random.default_rng(0)), layout_mask)]
names = [tr(en="render", fr="rendu"), "Canny", tr(en="scribble", fr="gribouillis"), tr(en="mask", fr="masque")]
fig, axes = figure(4, len(scenes), figsize=(1.5 * len(scenes), 6.4), squeeze=False)
for r, (row, name) in enumerate(zip(rows, names)):
    for c in range(len(scenes)):
        axes[r, c].imshow(((row[c].permute(1, 2, 0) + 1) / 2).clamp(0, 1), interpolation="nearest")
        axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name)
fig.suptitle(tr(en="three conditions computed from each render", fr="trois conditions calculées à partir de chaque rendu"))
fig.tight_layout()

# %% [markdown] lang="fr"
# Une précision : **la légende fixe déjà la disposition**, à un ou deux pixels près pour un grand objet
# (la case, la taille). Pour que la condition apporte quelque chose, l'entraînement déplace les objets
# **hors de la grille**, jusqu'à 6 pixels (`shift_layouts`) : la légende dit alors « à peu près là », et
# seuls les contours disent « exactement ici ». Les dispositions de test sont tirées de la même façon,
# avec des graines jamais vues.

# %% [markdown] lang="en"
# One caveat: **the caption already fixes the layout**, to a pixel or two for a large object (the cell, the
# size). For the condition to add something, training moves the objects **off the grid**, by up to 6 pixels
# (`shift_layouts`): the caption then says "roughly there", and only the edges say "exactly here". The test
# layouts are drawn the same way, from seeds never seen.

# %% [markdown] lang="fr"
# ## 2. L'architecture : une copie, un encodeur, des convolutions zéro
#
# ControlNet ne touche pas au U-Net : ses poids $\Theta$ restent **gelés**. Il en fait une **copie
# entraînable** $\Theta_c$ de la descente et du bloc du milieu, qui lit l'image de condition $c_i$
# (l'article note $c_f = E(c_i)$ sa version encodée), et ramène ce qu'elle calcule dans le U-Net par des
# **convolutions zéro** $\mathcal Z$ (§3.1) :
#
# $$y_c = \mathcal F(x;\Theta) + \mathcal Z\big(\mathcal F(x + \mathcal Z(c;\Theta_{z1});\Theta_c);\Theta_{z2}\big).$$
#
# - l'**encodeur de condition** $E$ (§3.2) ramène l'image de condition, $64 \times 64$, à la taille des
#   latents, $8 \times 8$ : huit convolutions $3 \times 3$ (l'article en décrit quatre ; nous suivons
#   diffusers), dont trois de pas 2. La dernière part de zéro : c'est la convolution zéro
#   $\mathcal Z(\cdot\,;\Theta_{z1})$ de l'équation, et $E(c_i)$ s'ajoute à `conv_in(z_t)`, pas à $z_t$
#   lui-même ;
# - la **copie** part exactement des poids du U-Net ($\Theta_c \leftarrow \Theta$) : elle sait déjà lire
#   une image bruitée ;
# - une **convolution zéro** est une convolution $1 \times 1$ dont le poids et le biais valent 0. Sa sortie
#   est nulle : au départ, le U-Net contrôlé est **exactement** le modèle de base. Mais son gradient ne l'est
#   pas : celui de son poids est le produit de son entrée par le gradient qui lui revient ; dès le premier
#   pas, elle quitte zéro. (À ce premier pas, la copie elle-même ne reçoit encore rien, car tout repasse
#   par des poids nuls ; elle apprend à partir du suivant.)
#
# Chaque sortie gardée de la descente (les connexions de saut du U-Net) reçoit sa convolution zéro, et la
# sortie du bloc du milieu aussi ; le U-Net ajoute ces **résidus** à ses connexions de saut et à son bloc du
# milieu.

# %% [markdown] lang="en"
# ## 2. The architecture: a copy, an encoder, zero convolutions
#
# ControlNet leaves the U-Net alone: its weights $\Theta$ stay **frozen**. It makes a **trainable copy**
# $\Theta_c$ of the way down and of the mid block, which reads the condition image $c_i$ (the paper writes
# $c_f = E(c_i)$ for its encoding), and brings what it computes back into the U-Net through **zero convolutions**
# $\mathcal Z$ (§3.1):
#
# $$y_c = \mathcal F(x;\Theta) + \mathcal Z\big(\mathcal F(x + \mathcal Z(c;\Theta_{z1});\Theta_c);\Theta_{z2}\big).$$
#
# - the **condition encoder** $E$ (§3.2) brings the condition image, $64 \times 64$, down to the latents'
#   size, $8 \times 8$: eight $3 \times 3$ convolutions (the paper describes four; we follow diffusers), three of
#   stride 2. The last one starts at zero: it is the equation's zero convolution $\mathcal Z(\cdot\,;\Theta_{z1})$,
#   and $E(c_i)$ is added to `conv_in(z_t)`, not to $z_t$ itself;
# - the **copy** starts exactly from the U-Net's weights ($\Theta_c \leftarrow \Theta$): it already knows how
#   to read a noisy image;
# - a **zero convolution** is a $1 \times 1$ convolution whose weight and bias are 0. Its output is zero: at the
#   start, the controlled U-Net is **exactly** the base model. But its gradient is not: its weight's gradient is
#   its input times the gradient that comes back; after the first step it is no longer zero. (At that first step
#   the copy itself receives nothing yet, since everything goes back through zero weights; it learns from the next.)
#
# Each output of the way down that is kept (the U-Net's skips) gets its zero convolution, and so does the mid
# block's output; the U-Net adds these **residuals** to its skips and to its mid block.

# %%
net0 = ControlNet.from_unet(unet)
count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
zeros = sum(count(z) for z in net0.controlnet_down_blocks) + count(net0.controlnet_mid_block)
n_zero = len(net0.controlnet_down_blocks) + 1
print(tr(en=f"base U-Net (frozen): {num(count(unet), ',')} parameters · ControlNet (trained): {num(count(net0), ',')}, of which "
            f"{num(count(net0.controlnet_cond_embedding), ',')} in the condition encoder and {num(zeros, ',')} in the {n_zero} zero convolutions",
         fr=f"U-Net de base (gelé) : {num(count(unet), ',')} paramètres · ControlNet (entraîné) : {num(count(net0), ',')}, dont "
            f"{num(count(net0.controlnet_cond_embedding), ',')} pour l'encodeur de condition et {num(zeros, ',')} pour les {n_zero} convolutions zéro"))
with torch.no_grad():
    c = torch.zeros(1, 3, 64, 64)
    print(tr(en=f"condition {tuple(c.shape)} → encoder E → {tuple(net0.controlnet_cond_embedding(c).shape)}, the shape of conv_in(z_t)",
             fr=f"condition {tuple(c.shape)} → encodeur E → {tuple(net0.controlnet_cond_embedding(c).shape)}, la forme de conv_in(z_t)"))

# %% [markdown] lang="fr"
# ### ✏️ Exercice 1 — la convolution zéro
#
# Écrivez `my_zero_conv(channels)` : une convolution $1 \times 1$ de `channels` vers `channels` canaux,
# dont le poids **et** le biais valent zéro. La vérification construit un ControlNet dont la copie a des
# poids **aléatoires**, y met vos convolutions, et exige que le U-Net contrôlé rende exactement ce que rend
# le modèle de base.
#
# Bloqué ? `hint("zero_conv")`, puis `hint("zero_conv", 2)` et `hint("zero_conv", 3)`.

# %% [markdown] lang="en"
# ### ✏️ Exercise 1 — the zero convolution
#
# Write `my_zero_conv(channels)`: a $1 \times 1$ convolution from `channels` to `channels` channels, whose
# weight **and** bias are zero. The check builds a ControlNet whose copy has **random** weights, puts your
# convolutions in it, and requires the controlled U-Net to give exactly what the base model gives.
#
# Stuck? `hint("zero_conv")`, then `hint("zero_conv", 2)` and `hint("zero_conv", 3)`.

# %%
# NBVAL_CHECK_OUTPUT
def my_zero_conv(channels):
    """A 1 × 1 convolution whose weight and bias are 0 (Zhang et al. 2023, §3.1: the zero convolution)."""
    # BEGIN SOLUTION
    # HINT[en]: a 1 × 1 convolution whose output is 0 whatever its input, but whose gradient is not
    # HINT[fr]: une convolution 1 × 1 dont la sortie vaut 0 quelle que soit son entrée, mais pas le gradient
    conv = nn.Conv2d(channels, channels, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv
    # END SOLUTION


check_zero_conv(my_zero_conv)

# %% [markdown] lang="fr"
# Sur le vrai modèle, maintenant : un ControlNet copié du U-Net livré, dont on remplace les convolutions
# zéro par les vôtres, et une condition quelconque. La sortie du U-Net contrôlé doit coïncider avec celle du
# modèle de base, au bit près ; et une rétropropagation doit quand même atteindre vos convolutions.

# %% [markdown] lang="en"
# On the real model now: a ControlNet copied from the shipped U-Net, its zero convolutions replaced by yours,
# and any condition. The controlled U-Net's output must equal the base model's, bit for bit; and a
# backpropagation must still reach your convolutions.

# %%
from course.controlnet import zero_conv

make_zero = choose("zero_conv", my_zero_conv, check_zero_conv, zero_conv)
net0.controlnet_down_blocks = nn.ModuleList(make_zero(z.in_channels) for z in net0.controlnet_down_blocks)
net0.controlnet_mid_block = make_zero(net0.controlnet_mid_block.in_channels)
g = torch.Generator().manual_seed(0)
z_t, t = torch.randn(2, 4, 8, 8, generator=g), torch.tensor([300, 800])
context, _ = text_states(["un carré bleu au centre"] * 2, pipe.clip)
cond = conditions(((renders[:2] + 1) * 127.5).round().byte(), "canny")
eps = ControlledUNet(unet, net0, cond)(z_t, t, context)
with torch.no_grad():
    base = unet(z_t, t, context)
eps.square().mean().backward()
print(tr(en=f"max |ε(controlled) − ε(base)| at initialisation: {(eps - base).abs().max().item():.1e}",
         fr=f"écart maximal entre ε(contrôlé) et ε(base) à l'initialisation : {(eps - base).abs().max().item():.1e}"))
print(tr(en=f"gradient reaching the first zero convolution: norm {net0.controlnet_down_blocks[0].weight.grad.norm().item():.2e} (not 0: it will learn)",
         fr=f"gradient reçu par la première convolution zéro : norme {net0.controlnet_down_blocks[0].weight.grad.norm().item():.2e} (non nulle : elle apprendra)"))

# %% [markdown] lang="fr"
# ## 3. Les résidus de ControlNet
#
# ### ✏️ Exercice 2 — assembler la copie
#
# Écrivez `my_controlnet_residuals(net, x, emb, context, mask, cond, scale)`, le cœur de `ControlNet.forward` :
#
# 1. ajoutez à `net.conv_in(x)` l'encodage de la condition par `net.controlnet_cond_embedding` ;
# 2. la descente : chaque bloc de `net.down_blocks` s'appelle comme dans le U-Net de la leçon 04 et renvoie
#    `h` et la **liste** des sorties qu'il met de côté ; gardez-les toutes, plus la toute première (`h` après
#    `conv_in`) : ce sont les connexions de saut du U-Net ;
# 3. le bloc du milieu, `net.mid_block`, s'appelle comme un bloc ;
# 4. une convolution zéro par sortie gardée (`net.controlnet_down_blocks`, dans le même ordre), une pour le
#    milieu (`net.controlnet_mid_block`), le tout multiplié par `scale`.
#
# Renvoyez la paire `(liste des résidus de la descente, résidu du milieu)`. `emb` (le codage du temps) et
# `mask` (le masque d'attention des jetons du texte) sont fournis. La vérification compare, sur un petit
# ControlNet aux poids aléatoires, avec la version du cours.
#
# Bloqué ? `hint("controlnet_residuals")`, puis `hint("controlnet_residuals", 2)` et
# `hint("controlnet_residuals", 3)`.

# %% [markdown] lang="en"
# ## 3. ControlNet's residuals
#
# ### ✏️ Exercise 2 — assembling the copy
#
# Write `my_controlnet_residuals(net, x, emb, context, mask, cond, scale)`, the heart of `ControlNet.forward`:
#
# 1. add to `net.conv_in(x)` the condition encoded by `net.controlnet_cond_embedding`;
# 2. the way down: each block of `net.down_blocks` is called as in lesson 04's U-Net and returns `h` and the
#    **list** of the outputs it keeps aside; keep them all, plus the very first one (`h` after `conv_in`): they
#    are the U-Net's skip connections;
# 3. the mid block, `net.mid_block`, is called like a block;
# 4. one zero convolution per kept output (`net.controlnet_down_blocks`, in the same order), one for the middle
#    (`net.controlnet_mid_block`), all multiplied by `scale`.
#
# Return the pair `(list of the down residuals, mid residual)`. `emb` (the time embedding) and `mask` (the
# attention mask of the text's tokens) are given. The check compares, on a small ControlNet with random weights,
# with the course's version.
#
# Stuck? `hint("controlnet_residuals")`, then `hint("controlnet_residuals", 2)` and
# `hint("controlnet_residuals", 3)`.

# %%
# NBVAL_CHECK_OUTPUT
def my_controlnet_residuals(net, x, emb, context, mask, cond, scale):
    """ControlNet's residuals: the copy's way down from conv_in(x) + E(c), a zero convolution on each output (Zhang et al. 2023, §3.1)."""
    # BEGIN SOLUTION
    # HINT[en]: the U-Net's way down with the condition added after conv_in, keeping every skip; then the zero convolutions and the scale
    # HINT[fr]: la descente du U-Net, la condition ajoutée après conv_in, en gardant chaque connexion ; puis les convolutions zéro et l'échelle
    h = net.conv_in(x) + net.controlnet_cond_embedding(cond)
    skips = [h]
    for block in net.down_blocks:
        h, new = block(h, emb, context, mask)
        skips += new
    h = net.mid_block(h, emb, context, mask)
    down = [scale * z(s) for z, s in zip(net.controlnet_down_blocks, skips)]
    return down, scale * net.controlnet_mid_block(h)
    # END SOLUTION


check_controlnet_residuals(my_controlnet_residuals)

# %% [markdown] lang="fr"
# À partir d'ici, **chaque appel** du ControlNet de cette leçon passe par votre `my_controlnet_residuals` (s'il n'est
# pas prêt, la cellule le dit et le cours garde sa version).

# %% [markdown] lang="en"
# From here on, **every call** of this lesson's ControlNet goes through your `my_controlnet_residuals` (if it is not
# ready, the cell says so and the course keeps its version).

# %%
use(controlnet_residuals=my_controlnet_residuals)

# %% [markdown] lang="fr"
# ## 4. L'entraînement
#
# On n'entraîne que le ControlNet ; le U-Net, CLIP et l'autoencodeur restent gelés. La perte est celle du
# modèle de base (§3.3), à travers le U-Net contrôlé :
#
# $$\mathcal L = \mathbb E_{z_0, t, c_t, c_f, \varepsilon}\,\big\|\varepsilon - \varepsilon_\theta(z_t, t, c_t, c_f)\big\|^2,$$
#
# pondérée par Min-SNR comme en leçon 05, sur des rendus déplacés hors de la grille et leurs contours. La
# moitié des légendes est remplacée par le prompt vide (§3.3) : le ControlNet doit apprendre à lire la
# condition elle-même, pas seulement à compléter la légende. Les poids livrés (et mesurés) sont la moyenne
# exponentielle (EMA) des poids entraînés. La commande (elle reprend là où elle s'était arrêtée, et écrit
# dans `runs/controlnet_canny/`) :
#
# ```bash
# python -m course.controlnet_train train
# ```
#
# Ajoutez `--ship` seulement pour remplacer le modèle livré : les chiffres enregistrés de cette leçon ne
# vaudraient plus. Le modèle livré a été entraîné ainsi :

# %% [markdown] lang="en"
# ## 4. Training
#
# Only the ControlNet is trained; the U-Net, CLIP and the autoencoder stay frozen. The loss is the base
# model's (§3.3), through the controlled U-Net:
#
# $$\mathcal L = \mathbb E_{z_0, t, c_t, c_f, \varepsilon}\,\big\|\varepsilon - \varepsilon_\theta(z_t, t, c_t, c_f)\big\|^2,$$
#
# Min-SNR-weighted as in lesson 05, on renders moved off the grid and their edges. Half the captions are replaced
# by the empty prompt (§3.3): the ControlNet must learn to read the condition itself, not only to complete the
# caption. The shipped (and measured) weights are the exponential moving average (EMA) of the trained ones. The
# command (it resumes where it stopped, and writes into `runs/controlnet_canny/`):
#
# ```bash
# python -m course.controlnet_train train
# ```
#
# Add `--ship` only to replace the shipped model: this lesson's recorded numbers would no longer hold. The shipped
# model was trained this way:

# %%
manifest = read_manifest(data_dir() / "controlnet_canny.safetensors")
recipe = manifest["recipe"]
print(tr(en=f"{num(recipe['steps'], ',')} steps of {recipe['batch_size']} images, learning rate {recipe['lr']:g}, "
            f"{round(100 * recipe['p_uncond'])} % of the captions replaced by the empty prompt, "
            f"in {manifest['wall_time_s'] / 60:.0f} min of training on {hardware(manifest['hardware'])}",
         fr=f"{num(recipe['steps'], ',')} pas de {recipe['batch_size']} images, taux d'apprentissage {num(recipe['lr'], 'g')}, "
            f"{round(100 * recipe['p_uncond'])} % des légendes remplacées par le prompt vide, en {manifest['wall_time_s'] / 60:.0f} min d'entraînement sur {hardware(manifest['hardware'])}"))
record = json.loads((data_dir() / "controlnet_eval.json").read_text())
base = record["table"]["off_grid"]["without_control"]  # step 0: the ControlNet at initialisation is the base model (exercise 1)
curve = [{"step": 0, "f1": base["f1"]["mean"], "chamfer": base["chamfer"]["mean"]}] + manifest["metrics"]["adherence_curve"]
fig, ax = figure(1, 2, figsize=(9, 3))
ceiling = record["table"]["off_grid"]["ceiling_autoencoder"]
ax[0].plot([p["step"] for p in curve], [p["f1"] for p in curve], "o-", label=tr(en="ControlNet (at step 0: the base model)", fr="ControlNet (au pas 0 : le modèle de base)"))
ax[0].axhline(ceiling["f1"]["mean"], color="grey", ls="--", label=tr(en="ceiling", fr="plafond"))
ax[0].set(xlabel=tr(en="training step", fr="pas d'entraînement"), ylabel=tr(en="edge F1 (off the grid)", fr="F1 des contours (hors grille)"), ylim=(0, 1))
ax[0].legend(loc="lower right", fontsize=8)
ax[1].plot([p["step"] for p in curve], [p["chamfer"] for p in curve], "o-", color="C1")
ax[1].axhline(ceiling["chamfer"]["mean"], color="grey", ls="--")
ax[1].set(xlabel=tr(en="training step", fr="pas d'entraînement"), ylabel=tr(en="Chamfer distance (pixels)", fr="distance de Chamfer (pixels)"))
fig.suptitle(tr(en="edge adherence along training (validation layouts; step 0: the test table)",
                fr="fidélité aux contours au fil de l'entraînement (dispositions de validation ; pas 0 : le tableau de test)"))
fig.tight_layout()

# %% [markdown] lang="fr"
# Le point du pas 0 est le modèle de base : à l'initialisation, le ControlNet ne change rien (exercice 1).
# L'article décrit une « convergence soudaine » (§3.3) : pendant des milliers de pas le modèle ignore la
# condition, puis se met d'un coup à la suivre. Ici, l'apprentissage est rapide mais progressif : F1 de
# {{controlnet_eval.json:table.off_grid.without_control.f1.mean|num2}} au départ,
# {{controlnet_canny.json:metrics.adherence_curve.0.f1|num2}} après
# {{controlnet_canny.json:metrics.adherence_curve.0.step|int}} pas,
# {{controlnet_canny.json:metrics.adherence_curve.1.f1|num2}} après
# {{controlnet_canny.json:metrics.adherence_curve.1.step|int}}, puis un plateau tout près du plafond
# ({{controlnet_eval.json:table.off_grid.ceiling_autoencoder.f1.mean|num3}}, mesuré plus bas). Une copie
# de quelques millions de paramètres, un monde de formes simples, des conditions exactes et un taux
# d'apprentissage élevé ($5\cdot10^{-4}$) rendent la tâche facile ; la convergence soudaine est un
# phénomène des grands modèles, entraînés lentement.

# %% [markdown] lang="en"
# The step-0 point is the base model: at initialisation the ControlNet changes nothing (exercise 1). The paper
# describes a "sudden convergence" (§3.3): for thousands of steps the model ignores the condition, then suddenly
# starts to follow it. Here learning is fast but gradual: F1
# {{controlnet_eval.json:table.off_grid.without_control.f1.mean|num2}} at the start,
# {{controlnet_canny.json:metrics.adherence_curve.0.f1|num2}} after
# {{controlnet_canny.json:metrics.adherence_curve.0.step|int}} steps,
# {{controlnet_canny.json:metrics.adherence_curve.1.f1|num2}} after
# {{controlnet_canny.json:metrics.adherence_curve.1.step|int}}, then a plateau right under the ceiling
# ({{controlnet_eval.json:table.off_grid.ceiling_autoencoder.f1.mean|num3}}, measured below). A copy of a few million
# parameters, a world of simple shapes, exact conditions and a high learning rate ($5\cdot10^{-4}$) make the task
# easy; sudden convergence is a phenomenon of large models, trained slowly.

# %% [markdown] lang="fr"
# ## 5. Des contours à l'image
#
# La figure des diapositives, sur notre monde : **une** carte de contours, plusieurs prompts. Le prompt
# choisit la couleur ; les contours imposent la place exacte. Puis, pour le plaisir, les contours du
# chat de la leçon 01, réduits à 64 × 64 pixels.

# %% [markdown] lang="en"
# ## 5. From edges to image
#
# The slides' figure, on our world: **one** edge map, several prompts. The prompt chooses the colour; the edges
# impose the exact place. Then, for fun, the edges of lesson 01's cat, shrunk to 64 × 64 pixels.

# %%
net = load_controlnet("canny")
quoted = lambda p: tr(en=f"“{p}”", fr=f"«\u00a0{p}\u00a0»")  # noqa: E731
star = shift_layouts(((render_scenes([single("star", "grey", "top left", "large")], 64, seed=3) + 1) * 127.5).round().byte(), 6, seed=2)
edges = conditions(star, "canny")
prompts = [tr(en=f"a large {c} star at the top left", fr=f"une grande étoile {f} en haut à gauche")
           for c, f in (("red", "rouge"), ("blue", "bleue"), ("green", "verte"), ("yellow", "jaune"), ("purple", "violette"))]
out = pipe(prompts, num_inference_steps=STEPS, generator=0, control=edges, control_scale=1.0)
show_grid([edges[0] * 2 - 1] + list(out.tensors), [tr(en="Canny edges", fr="contours de Canny")] + [quoted(p) for p in prompts], ncols=6, size=1.7,
          suptitle=tr(en="one edge map, five prompts", fr="une carte de contours, cinq prompts"))

kitty = cat(size=64)
kitty_edges = to_condition(canny(((kitty.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()))
cat_prompts = [tr(en="a large orange circle at the centre", fr="un grand cercle orange au centre"),
               tr(en="a large blue square at the centre", fr="un grand carré bleu au centre"),
               tr(en="a large pink heart at the centre", fr="un grand cœur rose au centre")]
cats = pipe(cat_prompts, num_inference_steps=STEPS, generator=0, control=kitty_edges, control_scale=1.0)
show_grid([kitty, kitty_edges[0] * 2 - 1] + list(cats.tensors),
          [tr(en="the cat", fr="le chat"), tr(en="its Canny edges", fr="ses contours de Canny")] + [quoted(p) for p in cat_prompts], ncols=5, size=1.7,
          suptitle=tr(en="the cat's edges, read by a model that only knows shapes", fr="les contours du chat, lus par un modèle qui ne connaît que des formes"))

# %% [markdown] lang="fr"
# Le chat déroute le modèle : il n'a jamais vu que des contours de formes simples et fermées, et ces
# contours-là ne ressemblent à rien de ce qu'il connaît. Dans notre exécution, selon le prompt, il ignore
# la carte et dessine sa forme ordinaire au centre, ou ne dessine rien du tout, ou en fait un patchwork de
# taches. Ce qu'il en
# fait dit bien ce qu'est un ControlNet : un traducteur appris, de *ce* type de carte vers *ce* monde
# d'images.
#
# ### Ce qu'on mesure
#
# Trois questions, sur des prompts tenus à l'écart (des couples forme + couleur jamais vus à
# l'entraînement) et des dispositions neuves, sur la grille et hors de la grille :
#
# - **l'image suit-elle les contours ?** Les contours de Canny de l'image générée contre ceux de la
#   condition : le F1 avec une tolérance de 1,5 pixel (la moyenne harmonique de la précision — la part des
#   pixels de contour de l'image générée à moins de 1,5 pixel d'un contour de la condition — et du rappel —
#   la part des pixels de contour de la condition retrouvés de même ; 1 : les mêmes contours), et la distance
#   de Chamfer (la distance moyenne, en pixels, de chaque pixel de contour au contour le plus proche de
#   l'autre carte, moyennée dans les deux sens ; 0 : des contours confondus) ;
# - **l'image suit-elle encore le prompt ?** L'évaluateur du cours (leçon 02 ; forme, couleur, taille,
#   case). Il a été entraîné sur la grille : chaque image est d'abord décalée en sens inverse de sa
#   disposition pour revenir sur la grille, puis jugée (les images sans ControlNet sont déjà sur la
#   grille) ;
# - **le plafond :** le vrai rendu passé dans l'autoencodeur — ce que rendrait un modèle latent parfait.
#
# Le tableau enregistré (256 prompts par ligne, `python -m course.control_eval record`, 2 fils
# d'exécution) :

# %% [markdown] lang="en"
# The cat puzzles the model: it has only ever seen the edges of simple closed shapes, and these edges look like
# nothing it knows. In our run, depending on the prompt, it ignores the map and draws its usual shape at the
# centre, or draws nothing at all, or turns it into a patchwork of blotches. What it makes of them says what a ControlNet is:
# a learned translator, from *this* kind of map to *this* world of images.
#
# ### What we measure
#
# Three questions, on held-out prompts (shape + colour pairs never seen in training) and fresh layouts, on the
# grid and off it:
#
# - **does the image follow the edges?** Canny's edges of the generated image against the condition's: the F1
#   with a 1.5-pixel tolerance (the harmonic mean of the precision — the share of the generated image's edge pixels
#   within 1.5 pixels of a condition edge — and of the recall — the share of the condition's edge pixels found the
#   same way; 1: the same edges), and the Chamfer distance (the mean distance, in pixels, from each edge pixel to
#   the other map's nearest edge, averaged both ways; 0: identical edges);
# - **does the image still follow the prompt?** The course's evaluator (lesson 02; shape, colour, size, cell). It
#   was trained on the grid: each image is first shifted back onto the grid by its layout's offset, then judged
#   (the images without ControlNet are on the grid already);
# - **the ceiling:** the real render through the autoencoder — what a perfect latent model would give.
#
# The recorded table (256 prompts per row, `python -m course.control_eval record`, 2 threads):

# %%
def pct(v):
    return num(100 * v, ".1f") + " %"


def table_rows(m):
    f = lambda d: f"{num(d['mean'], '.3f')} [{num(d['ci95'][0], '.3f')}{tr(en=', ', fr=' ; ')}{num(d['ci95'][1], '.3f')}]"  # noqa: E731
    return [(tr(en="without ControlNet", fr="sans ControlNet"), f(m["without_control"]["f1"]), num(m['without_control']['chamfer']['mean'], '.2f'),
             pct(m['prompt_without_control']['all_correct']), num(m['seconds_per_image_without'], '.3f')),
            (tr(en="with ControlNet", fr="avec ControlNet"), f(m["with_control"]["f1"]), num(m['with_control']['chamfer']['mean'], '.2f'),
             pct(m['prompt_with_control']['all_correct']), num(m['seconds_per_image'], '.3f')),
            (tr(en="ceiling (the render → autoencoder)", fr="plafond (le rendu → autoencodeur)"), f(m["ceiling_autoencoder"]["f1"]),
             num(m['ceiling_autoencoder']['chamfer']['mean'], '.2f'), pct(m['prompt_real_renders']['all_correct']), "")]


header = tr(en=("", "edge F1 [95 % interval]", "Chamfer (px)", "prompt: all correct", "s / image"),
            fr=("", "F1 des contours [intervalle à 95 %]", "Chamfer (px)", "prompt : tout correct", "s / image"))
for layout in ("off_grid", "grid"):
    print(tr(en={"off_grid": "objects moved off the grid (up to 6 px)", "grid": "objects on the captions' grid"}[layout],
             fr={"off_grid": "objets déplacés hors de la grille (jusqu'à 6 px)", "grid": "objets sur la grille des légendes"}[layout]))
    for row in [header] + table_rows(record["table"][layout]):
        print(f"  {row[0]:<36}{row[1]:<37}{row[2]:<14}{row[3]:<22}{row[4]}")

# %% [markdown] lang="fr"
# Et la même mesure, en direct, sur moins de dispositions et, selon le profil, moins de pas (voir la
# première cellule) :

# %% [markdown] lang="en"
# And the same measurement, live, on fewer layouts and, depending on the profile, fewer steps (see the first cell):

# %%
live = evaluate(net, "canny", n=N, steps=STEPS, shift=6)
print(tr(en=f"live: {N} layouts off the grid, {STEPS} steps", fr=f"en direct : {N} dispositions hors de la grille, {STEPS} pas"))
for row in [header] + table_rows(live):
    print(f"  {row[0]:<36}{row[1]:<37}{row[2]:<14}{row[3]:<22}{row[4]}")

# %% [markdown] lang="fr"
# Lecture du tableau enregistré. **Hors de la grille**, sans ControlNet, le modèle de base dessine l'objet
# au centre de sa case : la distance de Chamfer vaut
# {{controlnet_eval.json:table.off_grid.without_control.chamfer.mean|num2}} pixels ; avec le ControlNet,
# {{controlnet_eval.json:table.off_grid.with_control.chamfer.mean|num2}}, tout près du plafond
# ({{controlnet_eval.json:table.off_grid.ceiling_autoencoder.chamfer.mean|num2}}). Le F1 passe de
# {{controlnet_eval.json:table.off_grid.without_control.f1.mean|num2}} à
# {{controlnet_eval.json:table.off_grid.with_control.f1.mean|num3}}, pour un plafond de
# {{controlnet_eval.json:table.off_grid.ceiling_autoencoder.f1.mean|num3}}. **Sur la grille**, la légende
# place déjà l'objet presque au bon endroit (F1 {{controlnet_eval.json:table.grid.without_control.f1.mean|num2}}
# sans ControlNet) : le ControlNet n'ajoute que la précision du dernier pixel.
#
# Le prix : le prompt est un peu moins bien suivi. Sur la grille,
# {{controlnet_eval.json:table.grid.prompt_with_control.all_correct|pct1}} d'images entièrement justes avec
# ControlNet contre {{controlnet_eval.json:table.grid.prompt_without_control.all_correct|pct1}} sans, un écart
# de l'ordre de l'incertitude sur 256 images ; hors de la grille,
# {{controlnet_eval.json:table.off_grid.prompt_with_control.all_correct|pct1}}. C'est surtout la forme qui
# manque (juste dans {{controlnet_eval.json:table.off_grid.prompt_with_control.per_attribute.shape|pct1}} des
# images), mais c'était déjà l'attribut le plus fragile sans ControlNet
# ({{controlnet_eval.json:table.off_grid.prompt_without_control.per_attribute.shape|pct1}}). Et le temps : à
# chaque évaluation du réseau s'ajoute un passage de la copie (la descente et le milieu du U-Net) — la
# colonne « s / image ».

# %% [markdown] lang="en"
# Reading the recorded table. **Off the grid**, without ControlNet, the base model draws the object at the centre of
# its cell: the Chamfer distance is {{controlnet_eval.json:table.off_grid.without_control.chamfer.mean|num2}} pixels;
# with the ControlNet, {{controlnet_eval.json:table.off_grid.with_control.chamfer.mean|num2}}, close to the ceiling
# ({{controlnet_eval.json:table.off_grid.ceiling_autoencoder.chamfer.mean|num2}}). F1 goes from
# {{controlnet_eval.json:table.off_grid.without_control.f1.mean|num2}} to
# {{controlnet_eval.json:table.off_grid.with_control.f1.mean|num3}}, for a ceiling of
# {{controlnet_eval.json:table.off_grid.ceiling_autoencoder.f1.mean|num3}}. **On the grid**, the caption already
# puts the object almost at the right place (F1 {{controlnet_eval.json:table.grid.without_control.f1.mean|num2}}
# without ControlNet): the ControlNet only adds the last pixel of precision.
#
# The price: the prompt is followed a little less. On the grid,
# {{controlnet_eval.json:table.grid.prompt_with_control.all_correct|pct1}} of images entirely right with ControlNet
# against {{controlnet_eval.json:table.grid.prompt_without_control.all_correct|pct1}} without, a gap of the order of
# the uncertainty on 256 images; off the grid, {{controlnet_eval.json:table.off_grid.prompt_with_control.all_correct|pct1}}.
# It is mostly the shape that fails (right in
# {{controlnet_eval.json:table.off_grid.prompt_with_control.per_attribute.shape|pct1}} of the images), but it was
# already the most fragile attribute without ControlNet
# ({{controlnet_eval.json:table.off_grid.prompt_without_control.per_attribute.shape|pct1}}). And the time: each network
# evaluation adds a pass of the copy (the U-Net's way down and middle) — the "s / image" column.

# %% [markdown] lang="fr"
# ## 6. L'échelle de conditionnement, et le conflit
#
# Les résidus sont multipliés par une **échelle** $s$ (`control_scale`, le `controlnet_conditioning_scale`
# de diffusers) : $s = 0$ rend le modèle de base, $s = 1$ le modèle tel qu'entraîné, $s > 1$ exagère la
# condition. La guidance s'applique aux deux moitiés du lot — avec et sans prompt —, qui voient toutes deux
# la condition, comme dans le pipeline de diffusers.
#
# Et si les contours et le prompt se contredisent ? Les contours d'un **cercle**, le prompt « un grand
# carré … » (et trois autres couples, contours/prompt : carré/cercle, triangle/cœur, étoile/croix).
# L'évaluateur dit quelle forme l'image montre, pour chaque échelle.

# %% [markdown] lang="en"
# ## 6. The conditioning scale, and the conflict
#
# The residuals are multiplied by a **scale** $s$ (`control_scale`, diffusers' `controlnet_conditioning_scale`):
# $s = 0$ gives the base model, $s = 1$ the model as trained, $s > 1$ exaggerates the condition. Guidance applies
# to both halves of the batch — with and without the prompt —, which both see the condition, as in diffusers'
# pipeline.
#
# And when the edges and the prompt disagree? A **circle**'s edges, the prompt "a large square …" (and three more
# pairs, edges/prompt: square/circle, triangle/heart, star/cross). The evaluator says which shape the image shows,
# for each scale.

# %% tags=["key-figure"]
scales = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
sweep = scale_sweep(net, n=N, scales=scales, steps=STEPS)
fight = conflict_sweep(net, n=N, scales=scales, steps=STEPS)
fig, ax = figure(1, 2, figsize=(10, 3.4))
ax[0].plot(scales, [r["f1_off_grid"]["mean"] for r in sweep], "o-", label=tr(en="edge F1 (off the grid)", fr="F1 des contours (hors grille)"))
ax[0].plot(scales, [r["prompt_all_correct_grid"] for r in sweep], "s-", label=tr(en="prompt: all attributes right (on the grid)", fr="prompt entièrement respecté (sur la grille)"))
ax[0].set(xlabel=tr(en="conditioning scale s", fr="échelle de conditionnement s"), ylim=(0, 1),
          title=tr(en="held-out prompts", fr="prompts réservés au test"))
ax[0].legend(loc="best", fontsize=8)
ax[1].plot(scales, [r["edges"] for r in fight], "o-", label=tr(en="the edges' shape", fr="la forme des contours"))
ax[1].plot(scales, [r["prompt"] for r in fight], "s-", label=tr(en="the prompt's shape", fr="la forme du prompt"))
ax[1].plot(scales, [r["other"] for r in fight], "^:", label=tr(en="another shape", fr="une autre forme"))
ax[1].set(xlabel=tr(en="conditioning scale s", fr="échelle de conditionnement s"), ylim=(0, 1),
          title=tr(en="conflict: which shape wins?", fr="conflit : quelle forme l'emporte ?"))
ax[1].legend(loc="best", fontsize=8)
fig.tight_layout()
for r in fight:
    print(tr(en=f"s = {r['scale']:<4g}: the edges win in {round(100 * r['edges'])} % of images, the prompt in {round(100 * r['prompt'])} %, "
                f"another shape in {round(100 * r['other'])} % (n = {r['n']})",
             fr=f"s = {num(r['scale'], 'g'):<4} : les contours l'emportent dans {round(100 * r['edges'])} % des images, le prompt dans "
                f"{round(100 * r['prompt'])} %, une autre forme dans {round(100 * r['other'])} % (n = {r['n']})"))

# %% [markdown] lang="fr"
# Les courbes de votre exécution portent sur peu d'images (leur nombre dépend du profil) ; la mesure
# enregistrée ({{controlnet_eval.json:conflict_sweep.0.n|int}} images par échelle, 2 fils d'exécution) dit, à
# gauche : le F1 des contours monte avec l'échelle et plafonne à partir de $s = 1$
# ({{controlnet_eval.json:scale_sweep.4.f1_off_grid.mean|num3}}) ; le prompt reste suivi jusqu'à $s = 1$
# ({{controlnet_eval.json:scale_sweep.0.prompt_all_correct_grid|pct0}} d'images entièrement justes à $s = 0$,
# {{controlnet_eval.json:scale_sweep.4.prompt_all_correct_grid|pct0}} à $s = 1$), puis recule
# ({{controlnet_eval.json:scale_sweep.6.prompt_all_correct_grid|pct0}} à $s = 2$). À droite, le conflit :
#
# - à $s = 0$ et $0{,}25$, le prompt gagne presque toujours
#   ({{controlnet_eval.json:conflict_sweep.1.prompt|pct0}} des images) : la condition n'est pas, ou à peine,
#   entendue ;
# - à $s = 1$, l'échelle de l'entraînement, c'est **à peu près l'égalité** : les contours l'emportent dans
#   {{controlnet_eval.json:conflict_sweep.4.edges|pct0}} des cas, le prompt dans
#   {{controlnet_eval.json:conflict_sweep.4.prompt|pct0}}, et le reste
#   ({{controlnet_eval.json:conflict_sweep.4.other|pct0}}) est lu par l'évaluateur comme une troisième forme ;
# - à $s = 2$, les contours dessinent la forme ({{controlnet_eval.json:conflict_sweep.6.edges|pct0}}).
#
# L'échelle est donc le curseur qui décide qui, du texte ou de la carte, a le dernier mot quand ils se
# contredisent.

# %% [markdown] lang="en"
# Your run's curves rest on few images (how many depends on the profile); the recorded measurement
# ({{controlnet_eval.json:conflict_sweep.0.n|int}} images per scale, 2 threads) says, on the left: the edge F1 rises
# with the scale and levels off from $s = 1$ ({{controlnet_eval.json:scale_sweep.4.f1_off_grid.mean|num3}}); the prompt
# is still followed up to $s = 1$ ({{controlnet_eval.json:scale_sweep.0.prompt_all_correct_grid|pct0}} of images
# entirely right at $s = 0$, {{controlnet_eval.json:scale_sweep.4.prompt_all_correct_grid|pct0}} at $s = 1$), then falls
# back ({{controlnet_eval.json:scale_sweep.6.prompt_all_correct_grid|pct0}} at $s = 2$). On the right, the conflict:
#
# - at $s = 0$ and $0.25$, the prompt almost always wins ({{controlnet_eval.json:conflict_sweep.1.prompt|pct0}} of the
#   images): the condition is not heard, or barely;
# - at $s = 1$, the training scale, it is **roughly a tie**: the edges win in
#   {{controlnet_eval.json:conflict_sweep.4.edges|pct0}} of cases, the prompt in
#   {{controlnet_eval.json:conflict_sweep.4.prompt|pct0}}, and the evaluator reads the rest
#   ({{controlnet_eval.json:conflict_sweep.4.other|pct0}}) as a third shape;
# - at $s = 2$, the edges draw the shape ({{controlnet_eval.json:conflict_sweep.6.edges|pct0}}).
#
# The scale is thus the knob that decides which one, the text or the map, has the last word when they disagree.

# %% [markdown] lang="fr"
# ## À retenir
#
# - ControlNet **ajoute** un réseau, il ne modifie pas le modèle : la copie lit la condition, les
#   convolutions zéro garantissent qu'au départ rien ne change.
# - La condition dit ce que le prompt ne peut pas dire (ici, la place exacte, au pixel) ; l'échelle règle
#   qui l'emporte.
# - Nos classes ont les noms de paramètres de `ControlNetModel` de diffusers : les tests du cours
#   (`tests/test_controlnet.py`) chargent nos poids dans diffusers et obtiennent les mêmes résidus, et
#   `StableDiffusionControlNetPipeline` la même image.
# - Une erreur des diapositives : la diapositive intitulée *Control Net* montre des retouches
#   commandées par une phrase (« Give him a cowboy hat », « Turn him into a Modigliani painting »…). Ce
#   n'est pas ControlNet, qui ne lit aucune instruction mais une carte spatiale : ce sont des éditions
#   par instruction, de la famille d'InstructPix2Pix (Brooks et al. 2023) — la liste est celle
#   d'Instruct-NeRF2NeRF (Haque et al. 2023), qui applique InstructPix2Pix à des scènes 3D. C'est l'objet
#   de la leçon 09. (ERRATA.md)
#
# **Pour aller plus loin :** `python -m course generate "un grand carré bleu au centre" --control contours.png`
# (une carte de contours blanche sur fond noir, ou une image, dont la commande calcule les contours).

# %% [markdown] lang="en"
# ## Key points
#
# - ControlNet **adds** a network, it does not change the model: the copy reads the condition, the zero
#   convolutions guarantee that at the start nothing changes.
# - The condition says what the prompt cannot say (here, the exact place, to the pixel); the scale sets which
#   one wins.
# - Our classes have the parameter names of diffusers' `ControlNetModel`: the course's tests
#   (`tests/test_controlnet.py`) load our weights into diffusers and get the same residuals, and
#   `StableDiffusionControlNetPipeline` the same image.
# - An error in the slides: the slide titled *Control Net* shows edits commanded by a sentence ("Give him a
#   cowboy hat", "Turn him into a Modigliani painting"…). That is not ControlNet, which reads no instruction but a
#   spatial map: they are instruction edits, of the InstructPix2Pix family (Brooks et al. 2023) — the list is
#   Instruct-NeRF2NeRF's (Haque et al. 2023), which applies InstructPix2Pix to 3-D scenes. That is the subject
#   of lesson 09. (ERRATA.md)
#
# **Going further:** `python -m course generate "a large blue square at the centre" --control edges.png`
# (an edge map, white on black, or a picture, whose edges the command computes).
