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
# # 03 — CLIP, le pont entre texte et image
#
# > « CLIP […] crée un espace d'embedding unifié pour le texte et les images. Il est entraîné à
# > maximiser la similarité entre les paires texte-image correspondantes tout en minimisant la
# > similarité pour les paires non correspondantes. » — diapositive *Architecture CLIP*
#
# Dans Stable Diffusion, CLIP est le **processeur de texte** : il transforme le prompt en vecteurs que le
# U-Net consulte à chaque étape. Aucun des cours les plus connus n'en entraîne un ; nous, si, et **à partir
# de zéro**, sur nos images de formes légendées en français et en anglais. On vérifiera ensuite que notre
# encodeur de texte a *exactement* l'architecture du CLIP de la bibliothèque transformers.
#
# **Au programme**
# 1. les paires image/légende et le tokenizer ;
# 2. l'encodeur de texte (un transformer) et l'encodeur d'images (un petit CNN) ;
# 3. la matrice de similarité — *exercice 1* —, la perte contrastive — *exercice 2* — et un pas d'entraînement —
#    *exercice 3* ;
# 4. l'entraînement, puis ce que CLIP a appris : classification zero-shot, recherche texte → image et
#    image → texte, concordance français ↔ anglais ;
# 5. ce que le modèle de diffusion recevra : `encode_text`.

# %% [markdown] lang="en"
# # 03 — CLIP, the bridge between text and image
#
# > "CLIP […] creates a unified embedding space for text and images. It is trained to maximise the
# > similarity between matching text-image pairs while minimising the similarity of non-matching pairs."
# > — slide *Architecture CLIP*
#
# In Stable Diffusion, CLIP is the **text processor**: it turns the prompt into vectors that the U-Net
# consults at every step. None of the well-known courses trains one; we do, **from scratch**, on our
# captioned shape images in French and in English. Then we check that our text encoder is *exactly* the
# architecture of the CLIP in the transformers library.
#
# **Plan**
# 1. image/caption pairs and the tokenizer;
# 2. the text encoder (a transformer) and the image encoder (a small CNN);
# 3. the similarity matrix — *exercise 1* —, the contrastive loss — *exercise 2* — and one training step — *exercise 3*;
# 4. training, then what CLIP learned: zero-shot classification, text → image and image → text retrieval,
#    French ↔ English agreement;
# 5. what the diffusion model will receive: `encode_text`.

# %%
import sys

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from course import clip_train, current_profile
from course.captions import caption, caption_variants
from course.checks.clip import check_clip_step, check_contrastive_loss, check_similarity, clip_step
from course.clip import to_transformers
from course.data import ShapesDataset, render_scenes
from course.hints import hint
from course.language import num, tr
from course.plotting import LiveLoss, figure, show_grid
from course.scenes import COLOURS, SHAPES, sample_scene
from course.tokenizer import encode, load_tokenizer, unknown_words
from course.train import TrainConfig, train
from course.yours import choose

P = current_profile()
torch.manual_seed(0)
print(tr(en=f"profile: {P.name}", fr=f"profil : {P.name}"))

# %% [markdown] lang="fr"
# ## 1. Des paires image/légende
#
# La diapositive montre la « collecte de paires image/légende » (« Corgi sur un rocher »…), l'étape sur
# laquelle tout repose. Nos paires sont fabriquées : chaque scène est dessinée, puis décrite de plusieurs
# façons, en français ou en anglais. Le modèle revoit rarement la même légende pour la même image : il doit
# comprendre les mots, pas les apprendre par cœur.

# %% [markdown] lang="en"
# ## 1. Image/caption pairs
#
# The slide shows "the collection of image/caption pairs" ("Corgi sur un rocher"…), the step everything
# rests on. Our pairs are manufactured: each scene is drawn, then described in several ways, in French or
# in English. The model rarely sees the same caption twice for an image: it must understand the words,
# not learn them by heart.

# %%
pairs = ShapesDataset(8, size=64, seed=11)
items = [pairs[i] for i in range(8)]
show_grid([it["image"] for it in items], [it["caption"] for it in items], ncols=8, size=1.7, wrap=18)
scene = pairs.scene(0)
print(tr(en="phrasings of the first scene:", fr="formulations de la première scène :"))
for lang in ("fr", "en"):
    for text in caption_variants(scene, lang)[:4]:
        print(f"  [{lang}] {text}")

# %% [markdown] lang="fr"
# ### Le tokenizer
#
# Un transformer ne lit pas des lettres mais des **tokens** : des nombres entiers, un par mot ici. Notre
# tokenizer a été entraîné avec la bibliothèque `tokenizers` sur toutes les légendes (il est livré dans
# `data/tokenizer/`, et il ne télécharge rien). Chaque prompt devient `<bos> mots… <eos>`, complété par
# des `<pad>` jusqu'à 32 tokens ; un **masque** indique quelles positions sont de vrais tokens. Un mot inconnu
# devient `<unk>` au lieu de faire planter le programme.

# %% [markdown] lang="en"
# ### The tokenizer
#
# A transformer does not read letters but **tokens**: integers, one per word here. Our tokenizer was trained
# with the `tokenizers` library on every caption (it ships in `data/tokenizer/` and downloads nothing).
# Each prompt becomes `<bos> words… <eos>`, padded with `<pad>` up to 32 tokens; a **mask** says which
# positions are real tokens. An unknown word becomes `<unk>` instead of crashing the program.

# %%
# NBVAL_CHECK_OUTPUT
tokenizer = load_tokenizer()
print(tr(en=f"vocabulary: {tokenizer.vocab_size} tokens", fr=f"vocabulaire : {tokenizer.vocab_size} tokens"))
for prompt in ("une étoile rouge au-dessus d'un cercle bleu", "a red star above a blue circle", "un chat rouge"):
    ids, mask = encode(prompt)
    n = int(mask.sum())
    print(f"{prompt!r}\n   → {tokenizer.convert_ids_to_tokens(ids[0, :n].tolist())}")
print(tr(en="unknown words in 'un chat rouge':", fr="mots inconnus dans 'un chat rouge' :"), unknown_words("un chat rouge"))

# %% [markdown] lang="fr"
# ## 2. Les deux encodeurs
#
# **L'encodeur de texte** est un transformer, construit dans `course.clip` :
# 1. chaque token devient un vecteur (*token embedding*), auquel on ajoute un vecteur de position ;
# 2. des blocs « pré-normalisés » : `x + Attention(LN(x))` puis `x + MLP(LN(x))` ; l'attention est
#    **causale**, chaque mot ne voit que lui-même et ceux qui le précèdent (comme dans le CLIP d'OpenAI) ;
# 3. une dernière normalisation ; l'état du token `<eos>`, qui a lu toute la phrase, résume le prompt ;
# 4. une projection linéaire vers l'espace commun.
#
# **L'encodeur d'images** est un petit réseau convolutif qui réduit l'image 64 × 64 à un vecteur du même
# espace commun. Les deux vecteurs sont normalisés : leur produit scalaire est donc un cosinus, compris
# entre −1 et 1.

# %% [markdown] lang="en"
# ## 2. The two encoders
#
# **The text encoder** is a transformer, built in `course.clip`:
# 1. each token becomes a vector (*token embedding*), to which a position vector is added;
# 2. "pre-norm" blocks: `x + Attention(LN(x))` then `x + MLP(LN(x))`; attention is **causal**, each word
#    only sees itself and those before it (as in OpenAI's CLIP);
# 3. a final normalisation; the state at the `<eos>` token, which has read the whole sentence, sums up the
#    prompt;
# 4. a linear projection into the shared space.
#
# **The image encoder** is a small conv net that reduces the 64 × 64 image to a vector of the same shared
# space. Both vectors are normalised: their dot product is a cosine, between −1 and 1.

# %%
demo_model = clip_train.make_model()
ids, mask = encode(["deux petites étoiles grises", "a red star"])
hidden, pooled, projected = demo_model.text(ids, mask)
print(tr(en=f"tokens {tuple(ids.shape)} → states {tuple(hidden.shape)} → <eos> state {tuple(pooled.shape)} → projection {tuple(projected.shape)}",
         fr=f"tokens {tuple(ids.shape)} → états {tuple(hidden.shape)} → état de <eos> {tuple(pooled.shape)} → projection {tuple(projected.shape)}"))
print(f"images (2, 3, 64, 64) → {tuple(demo_model.image(torch.zeros(2, 3, 64, 64)).shape)}")
for part, module in ((tr(en="text encoder", fr="encodeur de texte"), demo_model.text), (tr(en="image encoder", fr="encodeur d'images"), demo_model.image)):
    n_params = sum(p.numel() for p in module.parameters())
    print(tr(en=f"{part}: {n_params:,} parameters", fr=f"{part} : {format(n_params, ',').replace(',', ' ')} paramètres"))

fig, ax = figure(figsize=(3.2, 3))
ax.imshow(torch.ones(8, 8).tril(), cmap="Blues")
ax.set(title=tr(en="causal mask: query i sees keys j ≤ i", fr="masque causal : la requête i voit les clés j ≤ i"),
       xlabel=tr(en="key j", fr="clé j"), ylabel=tr(en="query i", fr="requête i"))

# %% [markdown] lang="fr"
# ### Est-ce vraiment l'architecture de CLIP ?
#
# Oui, et on le prouve : les poids de notre encodeur se chargent tels quels dans un
# `CLIPTextModelWithProjection` de transformers (l'encodeur de texte de CLIP avec sa projection ; Stable
# Diffusion 1.x utilise `CLIPTextModel`, le même sans la projection), et les deux calculent les mêmes
# vecteurs, à moins de $10^{-5}$ près.

# %% [markdown] lang="en"
# ### Is it really CLIP's architecture?
#
# Yes, and we prove it: our encoder's weights load as they are into a transformers
# `CLIPTextModelWithProjection` (CLIP's text encoder with its projection; Stable Diffusion 1.x uses
# `CLIPTextModel`, the same without the projection), and both compute the same vectors, to within
# $10^{-5}$.

# %%
# NBVAL_CHECK_OUTPUT
reference = to_transformers(demo_model.text)
with torch.no_grad():
    out = reference(input_ids=ids, attention_mask=mask)
    gap = (out.text_embeds - demo_model.text(ids, mask)[2]).abs().max().item()
within = "< 1e-5" if gap < 1e-5 else f"= {gap:.1e}"
print(tr(en=f"{type(reference).__name__}: max |ours − transformers| {within}", fr=f"{type(reference).__name__} : max |notre encodeur − transformers| {within}"))

# %% [markdown] lang="fr"
# ## 3. Apprendre par contraste
#
# Les diapositives le disent en deux temps : « maximiser la similarité entre les représentations des
# paires texte-image authentiques », et « maximiser la différence entre les embeddings sur les paires
# fictives ». Dans un lot de $B$ paires, on calcule **toutes** les similarités image $i$ / texte $j$ : une
# matrice $B \times B$ dont la diagonale contient les vraies paires, et tout le reste, les paires fictives.
#
# $$S_{ij} = e^{s}\,\frac{I_i \cdot T_j}{\lVert I_i \rVert\,\lVert T_j \rVert}$$
#
# où $e^{s} = 1/\tau$ est l'inverse d'une **température** apprise ($s$ = `logit_scale`, plafonné à
# $\ln 100$ comme dans CLIP).
#
# ### ✏️ Exercice 1 — la matrice de similarité
#
# Écrivez `my_similarity(image_features, text_features, logit_scale)` : normalisez les vecteurs des images
# `(B_images, P)` et des textes `(B_textes, P)`, calculez tous leurs produits scalaires et multipliez par
# $e^{s}$. Le résultat a une ligne par image et une colonne par texte.
#
# <details><summary>Indice</summary>
#
# `F.normalize(x, dim=-1)` ramène chaque ligne à la norme 1 ; `a @ b.T` calcule tous les produits scalaires.
# </details>
#
# Toujours bloqué ? `hint("similarity")` donne l'idée, puis `hint("similarity", 2)` la formule et `hint("similarity", 3)` le code.

# %% [markdown] lang="en"
# ## 3. Learning by contrast
#
# The slides say it in two steps: "maximise the similarity between the representations of genuine
# text-image pairs", and "maximise the difference between the embeddings of fictitious pairs". In a batch of
# $B$ pairs we compute **every** image $i$ / text $j$ similarity: a $B \times B$ matrix whose diagonal holds
# the true pairs, and everything else the fictitious ones.
#
# $$S_{ij} = e^{s}\,\frac{I_i \cdot T_j}{\lVert I_i \rVert\,\lVert T_j \rVert}$$
#
# where $e^{s} = 1/\tau$ is the inverse of a learned **temperature** ($s$ = `logit_scale`, capped at
# $\ln 100$ as in CLIP).
#
# ### ✏️ Exercise 1 — the similarity matrix
#
# Write `my_similarity(image_features, text_features, logit_scale)`: normalise the image vectors
# `(B_images, P)` and the text vectors `(B_texts, P)`, take all their dot products and multiply by $e^{s}$.
# The result has one row per image and one column per text.
#
# <details><summary>Hint</summary>
#
# `F.normalize(x, dim=-1)` brings each row to norm 1; `a @ b.T` takes every dot product.
# </details>
#
# Still stuck? `hint("similarity")` gives the idea, then `hint("similarity", 2)` the formula and `hint("similarity", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_similarity(image_features, text_features, logit_scale):
    """S = exp(logit_scale) · normalize(I) · normalize(T)ᵀ, shape (B_images, B_texts) (Radford et al. 2021, Fig. 3)."""
    # BEGIN SOLUTION
    # HINT[en]: unit-length rows for both, then all dot products, times the temperature factor
    # HINT[fr]: des lignes de norme 1 des deux côtés, puis tous les produits scalaires, multipliés par le facteur de température
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    return logit_scale.exp() * image_features @ text_features.T
    # END SOLUTION


check_similarity(my_similarity)

# %% [markdown] lang="fr"
# La perte demande que, dans chaque **ligne** (une image face à tous les textes), la case de la diagonale
# l'emporte — c'est une classification à $B$ classes, une entropie croisée — et de même dans chaque
# **colonne** (un texte face à toutes les images). CLIP fait la moyenne des deux.
#
# $$L = \tfrac12\Big(\mathrm{CE}(S, \text{diag}) + \mathrm{CE}(S^\top, \text{diag})\Big)$$
#
# ### ✏️ Exercice 2 — la perte contrastive symétrique
#
# <details><summary>Indice</summary>
#
# Les bonnes réponses (les cibles, `targets`) sont `torch.arange(B)` ; `F.cross_entropy(S, targets)`
# traite les lignes de `S`.
# </details>
#
# Toujours bloqué ? `hint("contrastive_loss")` donne l'idée, puis `hint("contrastive_loss", 2)` la formule et
# `hint("contrastive_loss", 3)` le code.

# %% [markdown] lang="en"
# The loss asks that in each **row** (one image against all texts) the diagonal entry wins — a $B$-class
# classification, a cross-entropy — and likewise in each **column** (one text against all images). CLIP
# averages the two.
#
# $$L = \tfrac12\Big(\mathrm{CE}(S, \text{diag}) + \mathrm{CE}(S^\top, \text{diag})\Big)$$
#
# ### ✏️ Exercise 2 — the symmetric contrastive loss
#
# <details><summary>Hint</summary>
#
# The right answers are `torch.arange(B)`; `F.cross_entropy(S, targets)` handles the rows of `S`.
# </details>
#
# Still stuck? `hint("contrastive_loss")` gives the idea, then `hint("contrastive_loss", 2)` the formula and
# `hint("contrastive_loss", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_contrastive_loss(logits):
    """(CE over rows + CE over columns) / 2, the diagonal being the true pairs (Radford et al. 2021, Fig. 3)."""
    # BEGIN SOLUTION
    # HINT[en]: targets = torch.arange(B); one cross-entropy on logits, one on logits.T
    # HINT[fr]: cibles = torch.arange(B) ; une entropie croisée sur logits, une sur logits.T
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    # END SOLUTION


check_contrastive_loss(my_contrastive_loss)

# %% [markdown] lang="fr"
# ### ✏️ Exercice 3 — un pas d'entraînement
#
# Assemblez les pièces : écrivez `my_clip_step(model, optimizer, images, ids, mask)`, un pas complet d'entraînement
# contrastif sur un lot de $B$ paires.
# 1. Encodez les deux côtés : `model.image(images)` donne les vecteurs des images, de forme `(B, P)`, et
#    `model.text(ids, mask)[2]` ceux des textes, `(B, P)` (la projection de l'état du token `<eos>`).
# 2. Calculez les logits avec votre `my_similarity` (la température apprise est `model.logit_scale`), puis la perte
#    avec votre `my_contrastive_loss`.
# 3. Enchaînez les trois gestes de tout pas PyTorch : remettre les gradients à zéro, les calculer par
#    rétropropagation, mettre à jour les poids (`hint("clip_step", 2)` les nomme).
# 4. Renvoyez la valeur de la perte, sous forme de nombre Python.
#
# La vérification fait deux pas de suite sur un CLIP miniature et compare ses poids à ceux du pas du cours : un
# `zero_grad()` oublié ne se voit qu'au second pas.
#
# Bloqué ? `hint("clip_step")` donne l'idée, puis `hint("clip_step", 2)` la formule et `hint("clip_step", 3)` le code.

# %% [markdown] lang="en"
# ### ✏️ Exercise 3 — one training step
#
# Put the pieces together: write `my_clip_step(model, optimizer, images, ids, mask)`, one whole contrastive training
# step on a batch of $B$ pairs.
# 1. Encode both sides: `model.image(images)` gives the image vectors, shape `(B, P)`, and `model.text(ids, mask)[2]`
#    the text vectors, `(B, P)` (the projection of the `<eos>` token's state).
# 2. Compute the logits with your `my_similarity` (the learned temperature is `model.logit_scale`), then the loss with
#    your `my_contrastive_loss`.
# 3. Chain the three moves of every PyTorch step: reset the gradients, compute them by backpropagation, update
#    the weights (`hint("clip_step", 2)` names them).
# 4. Return the value of the loss, as a Python number.
#
# The check takes two steps in a row on a miniature CLIP and compares its weights with those of the course's step: a
# forgotten `zero_grad()` only shows at the second step.
#
# Stuck? `hint("clip_step")` gives the idea, then `hint("clip_step", 2)` the formula and `hint("clip_step", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_clip_step(model, optimizer, images, ids, mask):
    """One contrastive training step on B pairs: logits, symmetric loss, zero_grad → backward → step. Returns the loss."""
    # BEGIN SOLUTION
    # HINT[en]: both encoders, then your two functions, then the three moves of a PyTorch step
    # HINT[fr]: les deux encodeurs, puis vos deux fonctions, puis les trois gestes d'un pas PyTorch
    logits = my_similarity(model.image(images), model.text(ids, mask)[2], model.logit_scale)  # (B, B)
    loss = my_contrastive_loss(logits)
    optimizer.zero_grad()  # forget the previous step's gradients
    loss.backward()  # ∂loss/∂θ for every weight of both encoders, and for the temperature
    optimizer.step()  # θ ← θ − (AdamW's step)
    return loss.item()
    # END SOLUTION


check_clip_step(my_clip_step)

# %% [markdown] lang="fr"
# Un pas d'entraînement correct doit pouvoir apprendre par cœur un seul lot : c'est le premier test de toute boucle
# d'entraînement. Votre pas (ou, s'il n'est pas encore prêt, `course.checks.clip.clip_step`, celui du cours) repasse
# quelques fois sur un même lot de 32 paires, avec un CLIP neuf : la perte doit tomber bien au-dessous de
# $\ln 32 \approx 3{,}47$, le niveau du hasard. L'entraînement de la partie 4, lui, tire un nouveau lot à chaque pas.

# %% [markdown] lang="en"
# A correct training step must be able to learn one batch by heart: that is the first test of any training loop. Your
# step (or, while it is not ready, `course.checks.clip.clip_step`, the course's) goes over the same batch of 32 pairs a
# few times, with a fresh CLIP: the loss must fall well below $\ln 32 \approx 3.47$, the level of chance. Part 4's
# training draws a new batch at every step.

# %%
train_step = choose("clip_step", my_clip_step, check_clip_step, clip_step)  # yours once checked, else the course's
demo_scenes, demo_images = clip_train.pool(256, seed=1)
one_batch = clip_train.batch_getter(demo_scenes, demo_images, batch_size=32)(0)  # (images, ids, mask), 32 pairs
torch.manual_seed(0)
fresh = clip_train.make_model()
optimizer = torch.optim.AdamW(fresh.parameters(), lr=3e-4, weight_decay=0.05)
demo_losses = [float(train_step(fresh, optimizer, *one_batch)) for _ in range(min(P.clip_steps, 30))]
print(tr(en=f"{len(demo_losses)} steps on the same 32 pairs: loss {demo_losses[0]:.2f} → {demo_losses[-1]:.2f} (ln 32 = 3.47 means chance)",
         fr=f"{len(demo_losses)} pas sur les mêmes 32 paires : perte {num(demo_losses[0], '.2f')} → {num(demo_losses[-1], '.2f')} "
            "(ln 32 = 3,47 : le niveau du hasard)"))

# %% [markdown] lang="fr"
# ## 4. L'entraînement
#
# À chaque pas, on tire 128 images, avec une légende pour chacune (en français ou en anglais), et on
# applique la perte. Le modèle livré dans `data/clip.safetensors` a été entraîné ainsi par
# `python -m course.clip_train train` (environ 10 minutes sur deux cœurs de CPU) ; les profils `smoke` et
# `cpu` le chargent après une courte démonstration de la boucle ; le profil `gpu`, lui, l'entraîne
# entièrement. La courbe se met à jour au fil de l'entraînement.

# %% [markdown] lang="en"
# ## 4. Training
#
# Each step draws 128 images, one caption each (in French or in English), and applies the loss. The model
# shipped in `data/clip.safetensors` was trained this way by `python -m course.clip_train train` (about
# 10 minutes on two CPU cores); the `smoke` and `cpu` profiles load it after a short demo of the loop, the
# `gpu` profile trains it fully. The curve redraws itself during training.

# %%
from course.checkpoints import read_manifest
from course.language import hardware
from course.paths import data_dir

device = "cuda" if torch.cuda.is_available() else "cpu"
from course.recipes import CLIP_RECIPE

clip_recipe = CLIP_RECIPE.scaled(steps=P.clip_steps)  # the shipped model's recipe over this profile's steps (warm-up in proportion)
scenes, images = clip_train.pool(clip_recipe.pool if P.train_clip else 2_000, seed=clip_recipe.seed)
live = LiveLoss(tr(en="CLIP contrastive loss", fr="CLIP : perte contrastive"))
run = train(
    clip_train.make_model(),
    clip_train.clip_loss,
    clip_train.batch_getter(scenes, images, batch_size=clip_recipe.batch_size),
    clip_recipe.train_config(log_every=5),
    device=device,
    on_log=live,
    desc="CLIP",
)
live.show(run.history)
first, last, chance = run.history.losses[0], run.history.losses[-1], torch.log(torch.tensor(128.0))
print(tr(en=f"{P.clip_steps} steps in {run.history.wall_time:.0f} s: loss {first:.2f} → {last:.2f} (log 128 = {chance:.2f} means chance)",
         fr=f"{P.clip_steps} pas en {run.history.wall_time:.0f} s : perte {first:.2f} → {last:.2f} (log 128 = {chance:.2f} : le niveau du hasard)"))
if P.train_clip:
    model = run.model.eval()
else:
    model = clip_train.load_clip().to(device)
    shipped = read_manifest(data_dir() / clip_train.CHECKPOINT)
    seen, minutes, machine = shipped["samples_seen"], shipped["wall_time_s"] / 60, hardware(shipped["hardware"])
    print(tr(en=f"shipped CLIP: {seen:,} pairs seen in {minutes:.1f} min on {machine}",
             fr=f"CLIP livré : {format(seen, ',').replace(',', ' ')} paires vues en {minutes:.1f} min sur {machine}"))
model = model.cpu()

# %% [markdown] lang="fr"
# ### La matrice de similarité d'un lot
#
# Sur 12 nouvelles images et leurs légendes, la diagonale doit ressortir. Les cases claires hors diagonale sont
# instructives : ce sont des paires qui se ressemblent (même forme et même couleur, mais pas la même
# position, par exemple).

# %% [markdown] lang="en"
# ### The similarity matrix of a batch
#
# On 12 fresh images and their captions, the diagonal should stand out. Bright cells off the diagonal are
# instructive: pairs that look alike (same shape and colour but not the same position, for instance).

# %%
batch = ShapesDataset(12, size=64, split="train", seed=2024, kinds=("single",))
batch_items = [batch[i] for i in range(12)]
with torch.no_grad():
    ids, mask = encode([it["caption"] for it in batch_items])
    sim = model.encode_image(torch.stack([it["image"] for it in batch_items])) @ model.encode_text_embeds(ids, mask).T
fig, ax = figure(figsize=(9, 6))
im = ax.imshow(sim, cmap="viridis")
ax.set_yticks(range(12), [f"image {i}" for i in range(12)], fontsize=7)
ax.set_xticks(range(12), [it["caption"] for it in batch_items], rotation=60, ha="right", fontsize=7)
fig.colorbar(im, ax=ax, label=tr(en="cosine similarity", fr="similarité cosinus"))
fig.tight_layout()
wins = (sim.argmax(1) == torch.arange(12)).sum().item()
print(tr(en=f"diagonal wins in {wins} of 12 rows", fr=f"la diagonale l'emporte dans {wins} lignes sur 12"))

# %% [markdown] lang="fr"
# ### Classification zero-shot
#
# CLIP n'a jamais appris de classes. Pourtant, pour lire la **couleur** d'une image, il suffit de lui
# proposer des phrases — "a red circle", "a green circle"… (en anglais ici ; des phrases françaises
# marcheraient aussi) — et de prendre la plus proche. Pour ne
# favoriser aucune forme, on fait la moyenne des phrases sur toutes les formes (un *ensemble de prompts*,
# comme dans l'article de CLIP). On procède de même pour lire la forme.

# %% [markdown] lang="en"
# ### Zero-shot classification
#
# CLIP never learned classes. Yet to read the **colour** of an image, it is enough to offer it sentences —
# "a red circle", "a green circle"… — and take the closest. Not to favour one shape, we average the
# sentences over every shape (a *prompt ensemble*, as in the CLIP paper). Same for the shape.

# %%
import numpy as np


def class_embeddings(template_pairs):
    """One unit vector per class: the mean of the normalised embeddings of its prompts."""
    with torch.no_grad():
        rows = []
        for prompts in template_pairs:
            ids, mask = encode(prompts)
            rows.append(F.normalize(model.encode_text_embeds(ids, mask).mean(0), dim=-1))
    return torch.stack(rows)


colour_classes = class_embeddings([[f"a {c} {s}" for s in SHAPES] for c in COLOURS])
shape_classes = class_embeddings([[f"a {c} {s}" for c in COLOURS] for s in SHAPES])
rng = np.random.default_rng(7)
test_scenes = [sample_scene(rng, "train", ("single",)) for _ in range(P.clip_eval_images)]
with torch.no_grad():
    feats = model.encode_image(render_scenes(test_scenes, size=64, seed=7))
colour_pred = (feats @ colour_classes.T).argmax(1)
shape_pred = (feats @ shape_classes.T).argmax(1)
colour_acc = np.mean([COLOURS[p] == s.objects[0].colour for p, s in zip(colour_pred.tolist(), test_scenes)])
shape_acc = np.mean([SHAPES[p] == s.objects[0].shape for p, s in zip(shape_pred.tolist(), test_scenes)])
print(tr(en=f"zero-shot on {len(test_scenes)} fresh images: colour {colour_acc:.0%}, shape {shape_acc:.0%} (chance 12.5%)",
         fr=f"zero-shot sur {len(test_scenes)} images neuves : couleur {colour_acc * 100:.0f} %, forme {shape_acc * 100:.0f} % (hasard : 12.5 %)"))
by_size = {size: np.mean([SHAPES[p] == s.objects[0].shape for p, s in zip(shape_pred.tolist(), test_scenes) if s.objects[0].size == size]) for size in ("small", "large")}
print(tr(en=f"shape, by object size: small {by_size['small']:.0%}, large {by_size['large']:.0%}",
         fr=f"forme, selon la taille de l'objet : petit {by_size['small'] * 100:.0f} %, grand {by_size['large'] * 100:.0f} %"))

# %% [markdown] lang="fr"
# La couleur se lit presque sans faute ; la forme, bien moins, et moins encore sur les petits objets, qui ne
# couvrent que quelques pixels. Retenez-le : quand le modèle de diffusion se trompera de forme (leçon 05),
# une partie de la faute viendra de là. La recherche qui suit paraîtra pourtant presque parfaite : parmi
# 100 images, la couleur, la taille et la position suffisent le plus souvent à désigner la bonne, même
# quand la forme est mal lue. Un score dépend toujours de la question posée.

# %% [markdown] lang="en"
# The colour is read almost without fault; the shape much less well, and worse still on small objects,
# which cover only a few pixels. Remember it: when the diffusion model gets a shape wrong (lesson 05), part
# of the blame lies here. The retrieval below will still look almost perfect: among 100 images, colour,
# size and position are usually enough to single out the right one even when the shape is misread. A
# score always depends on the question asked.

# %% [markdown] lang="fr"
# ### Recherche texte → image et image → texte
#
# Le test de référence du cours : 100 nouvelles images à un seul objet, chacune avec sa légende complète
# (« a small red circle at the top left »). Pour chaque légende, CLIP doit retrouver son image parmi les
# 100, et inversement. Une réponse est jugée correcte si l'image retrouvée possède tous les attributs
# énoncés par la légende (deux images identiques en forme, couleur, taille et position ne se distinguent pas
# par leur légende). On fait aussi la mesure sur les combinaisons forme + couleur **jamais vues** à
# l'entraînement.
#
# Puis trois prompts à nous : l'image qu'ils décrivent est cachée parmi 199 autres, et l'on affiche les
# quatre images que CLIP juge les plus proches.

# %% [markdown] lang="en"
# ### Text → image and image → text retrieval
#
# The course's benchmark: 100 fresh one-object images, each with its full caption ("a small red circle at
# the top left"). For each caption CLIP must find its image among the 100, and the other way round. An
# answer counts as right when the image found has every attribute the caption states (two images identical
# in shape, colour, size and position cannot be told apart by their captions). We also measure on shape +
# colour combinations **never seen** in training.
#
# Then three prompts of our own: the image each describes is hidden among 199 others, and we show the
# four images CLIP finds closest.

# %% tags=["key-figure"]
for split in ("train", "heldout"):
    for lang in ("en", "fr"):
        r = clip_train.retrieval(model, n=100, split=split, lang=lang)
        t2i, i2t = r["text_to_image_top1"], r["image_to_text_top1"]
        if split == "train":
            label = tr(en="seen combinations  ", fr="combinaisons vues       ")
        else:
            label = tr(en="unseen combinations", fr="combinaisons jamais vues")
        print(tr(en=f"{label} [{lang}]: text→image {t2i:.0%}, image→text {i2t:.0%}",
                 fr=f"{label} [{lang}] : texte→image {t2i * 100:.0f} %, image→texte {i2t * 100:.0f} %"))

from course.scenes import single

queries = {  # a prompt, and the scene it describes, hidden among 199 random scenes
    "un grand cercle rouge au centre": single("circle", "red", "centre", "large"),
    "a small blue star at the bottom right": single("star", "blue", "bottom right", "small"),
    "un petit triangle jaune en haut à gauche": single("triangle", "yellow", "top left", "small"),
}
for k, (q, target) in enumerate(queries.items()):
    gallery_scenes = [sample_scene(np.random.default_rng(100 + i), "train", ("single",)) for i in range(199)] + [target]
    gallery = render_scenes(gallery_scenes, size=64, seed=3 + k)
    with torch.no_grad():
        row = (model.encode_text_embeds(*encode(q)) @ model.encode_image(gallery).T)[0]
    top = row.topk(4).indices.tolist()
    rank = int((row > row[-1]).sum()) + 1  # the described image is the last of the gallery
    titles = [tr(en=f"#{r + 1}: {row[i]:.2f}", fr=f"n° {r + 1} : {row[i]:.2f}") + (" ✓" if clip_train.same_attributes(gallery_scenes[i], target) else "")
              for r, i in enumerate(top)]
    show_grid(gallery[top], titles, ncols=4, size=1.5,
              suptitle=tr(en=f"« {q} »: best 4 of 200 (✓ = matches the prompt; the described image ranks #{rank})",
                          fr=f"« {q} » : 4 meilleures sur 200 (✓ = conforme au prompt ; image décrite : n° {rank})"))

# %% [markdown] lang="fr"
# ### Français ↔ anglais
#
# Une légende française et sa jumelle anglaise décrivent la même scène : elles devraient tomber au même
# endroit de l'espace commun. Sur 200 scènes, on compare la similarité de chaque légende française avec
# **sa** jumelle anglaise à sa similarité avec les autres légendes anglaises.

# %% [markdown] lang="en"
# ### French ↔ English
#
# A French caption and its English twin describe the same scene: they should land in the same place of the
# shared space. For 200 scenes we compare each French caption's similarity with **its** English twin and
# with the other English captions.

# %%
twin_scenes = [sample_scene(np.random.default_rng(500 + i), "train", ("single",)) for i in range(200)]
with torch.no_grad():
    fr = model.encode_text_embeds(*encode([caption(s, "fr") for s in twin_scenes]))
    en = model.encode_text_embeds(*encode([caption(s, "en") for s in twin_scenes]))
cross = fr @ en.T
twins = cross.diag()
others = cross[~torch.eye(len(twin_scenes), dtype=torch.bool)]
fig, ax = figure(figsize=(6, 2.8))
ax.hist(others.numpy(), bins=40, alpha=0.6, density=True, label=tr(en="French vs other English captions", fr="légende française / autres légendes anglaises"))
ax.hist(twins.numpy(), bins=40, alpha=0.6, density=True, label=tr(en="French vs its English twin", fr="légende française / sa jumelle anglaise"))
ax.set(xlabel=tr(en="cosine similarity", fr="similarité cosinus"), ylabel=tr(en="density", fr="densité"))
ax.legend(fontsize=8)
fig.tight_layout()
nearest = cross.argmax(1).tolist()  # for each French caption, the closest English one
hits = np.mean([clip_train.same_attributes(twin_scenes[i], twin_scenes[j]) for i, j in enumerate(nearest)])
print(tr(en=f"nearest English caption means the same as the French one: {hits:.0%} of {len(twin_scenes)}",
         fr=f"la légende anglaise la plus proche dit la même chose que la française : {hits * 100:.0f} % sur {len(twin_scenes)}"))

# %% [markdown] lang="fr"
# ### Et le vrai CLIP ?
#
# Si Internet est accessible (dans Colab, par exemple), la cellule suivante charge le CLIP d'OpenAI et
# montre, pour chaque image, ses probabilités sur quelques légendes ; hors ligne, elle se contente d'afficher un message. Attention :
# ce modèle a été entraîné sur des photos et des textes en anglais, pas sur nos formes.

# %% [markdown] lang="en"
# ### And the real CLIP?
#
# If the internet is reachable (in Colab, for instance), the next cell loads OpenAI's CLIP and shows, for
# each image, its probabilities over a few captions; offline, it stops with a message. Note that it was trained on photographs and
# English, not on our shapes.

# %%
import os

if "google.colab" in sys.modules or os.environ.get("COURSE_ONLINE") == "1":
    try:
        from transformers import CLIPModel, CLIPProcessor

        real = CLIPModel.from_pretrained("openai/clip-vit-base-patch32")
        processor = CLIPProcessor.from_pretrained("openai/clip-vit-base-patch32")
        texts = [it["caption"] for it in batch_items if it["lang"] == "en"][:6] or ["a red circle"]
        pil = [((it["image"].permute(1, 2, 0) + 1) * 127.5).byte().numpy() for it in batch_items[:6]]
        inputs = processor(text=texts, images=pil, return_tensors="pt", padding=True)
        with torch.no_grad():
            print(real(**inputs).logits_per_image.softmax(-1).round(decimals=2))
    except Exception as err:  # no network, a moved model, a library change: say so and go on
        print(tr(en=f"pretrained CLIP unavailable ({type(err).__name__}): skipped",
                 fr=f"CLIP pré-entraîné indisponible ({type(err).__name__}) : comparaison abandonnée"))
else:
    print(tr(en="offline run: the comparison with OpenAI's pretrained CLIP is skipped (set COURSE_ONLINE=1 to try it)",
             fr="exécution hors ligne : pas de comparaison avec le CLIP pré-entraîné d'OpenAI (définissez COURSE_ONLINE=1 pour l'essayer)"))

# %% [markdown] lang="fr"
# ## 5. Ce que recevra le modèle de diffusion
#
# Pour guider le U-Net (leçons 04–05), on ne garde pas seulement le vecteur final : on garde **l'état de
# chaque token** (une matrice $L \times D$), que la *cross-attention* consultera mot par mot, et le masque
# qui indique quels tokens sont du remplissage. C'est ce que renvoie `course.clip_train.encode_text`, qui mélange
# sans problème français et anglais dans un même lot.

# %% [markdown] lang="en"
# ## 5. What the diffusion model will receive
#
# To guide the U-Net (lessons 04–05) we keep not only the final vector but **the state of every token** (an
# $L \times D$ matrix), which *cross-attention* will consult word by word, and the mask that says which tokens
# are padding. That is what `course.clip_train.encode_text` returns, and it mixes French and English in one
# batch without trouble.

# %%
# NBVAL_CHECK_OUTPUT
encoded = clip_train.encode_text(["un cercle rouge en haut à gauche", "two small grey stars"], model=model)
for key, value in encoded.items():
    print(tr(en=f"{key:>6}: {tuple(value.shape)} {value.dtype}", fr=f"{key!r:>8} : {tuple(value.shape)} {value.dtype}"))  # French: keys quoted, as in code

# %% [markdown] lang="fr"
# ## À retenir
#
# - CLIP apprend un espace commun en opposant, dans chaque lot, les vraies paires (la diagonale) à toutes les
#   paires fictives : une entropie croisée sur les lignes et une sur les colonnes.
# - Notre encodeur de texte a exactement l'architecture du CLIP de transformers (preuve numérique ci-dessus).
# - Il comprend les deux langues et des combinaisons jamais vues ; le modèle de diffusion se servira des
#   états de ses tokens.
#
# <details><summary><b>Pour les enseignants</b></summary>
#
# Les diapositives attribuent à CLIP la génération elle-même (« afin que le modèle puisse apprendre à
# générer des images ») : CLIP ne génère rien, il fournit le conditionnement et sait juger la
# correspondance texte-image. Le cours évalue ce jugement par la recherche et la classification
# zero-shot. Elles parlent aussi de CLIP « dans le contexte de DALL-E et autres modèles de diffusion » : DALL-E 1
# est autorégressif et ne se sert de CLIP que pour trier ses images ; DALL-E 2 est un modèle de diffusion
# conditionné par une caractéristique d'image de CLIP, prédite par un « prior » ; Stable Diffusion, lui, lit
# les états des jetons du texte, sans prior. Voir `ERRATA.md`.
# </details>
#
# **Et ensuite ?** Leçon 04 : le U-Net, et la cross-attention qui lit ces tokens.

# %% [markdown] lang="en"
# ## Key points
#
# - CLIP learns a shared space by opposing, in each batch, the true pairs (the diagonal) to every fictitious
#   pair: one cross-entropy over rows and one over columns.
# - Our text encoder is the exact architecture of transformers' CLIP (numerical proof above).
# - It understands both languages and unseen combinations; the diffusion model will consume its token states.
#
# <details><summary><b>For lecturers</b></summary>
#
# The slides credit CLIP with the generation itself ("so that the model can learn to generate images"): CLIP
# generates nothing; it provides the conditioning and can judge how well text and image match. The course
# measures that judgement through retrieval and zero-shot. They also speak of CLIP "in the context of DALL-E and
# other diffusion models": DALL-E 1 is autoregressive and uses CLIP only to rerank its images; DALL-E 2 is a
# diffusion model conditioned on a CLIP image feature predicted by a "prior"; Stable Diffusion reads the text's
# token states, with no prior. See `ERRATA.md`.
# </details>
#
# **Next.** Lesson 04: the U-Net, and the cross-attention that reads these tokens.
