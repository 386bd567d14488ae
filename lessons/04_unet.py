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
# # 04 — Le U-Net avec attention
#
# > « Le cœur du modèle de diffusion est généralement un réseau U-Net modifié avec des mécanismes
# > d'attention. […] Les blocs d'attention permettent d'intégrer le conditionnement textuel à différentes
# > échelles de résolution. » — diapositive *U-Net avec Attention*
#
# C'est le « générateur d'images » des trois éléments : le réseau $\varepsilon_\theta(x_t, t, c)$ qui, à
# chaque étape, regarde l'image bruitée, l'instant $t$ et le texte $c$, et prédit le bruit. On le construit
# pièce par pièce dans `course.unet`, exactement comme celui de Stable Diffusion, en plus petit.
#
# **Au programme**
# 1. le codage du temps $t$ ;
# 2. le bloc résiduel — *exercice 1* ;
# 3. les *downsamplers*, les *upsamplers* et les connexions de saut : le « U », bloc par bloc ;
# 4. l'attention : self-attention sur les pixels, cross-attention vers les mots — *exercice 2* —, le
#    masque qui ignore le remplissage, et le résumé du prompt ajouté au temps ;
# 5. après entraînement : où regarde le mot « rouge » ?
# 6. le même U-Net à la manière de Stable Diffusion, nom pour nom avec diffusers (`course.sd_unet`).

# %% [markdown] lang="en"
# # 04 — The U-Net with attention
#
# > "The heart of the diffusion model is usually a modified U-Net with attention mechanisms. […] The
# > attention blocks integrate the text conditioning at several resolutions." — slide *U-Net avec Attention*
#
# This is the "image generator" of the three elements: the network $\varepsilon_\theta(x_t, t, c)$ that, at
# each step, looks at the noisy image, the time $t$ and the text $c$, and predicts the noise. We build it
# piece by piece in `course.unet`, exactly like Stable Diffusion's, only smaller.
#
# **Plan**
# 1. encoding the time $t$;
# 2. the residual block — *exercise 1*;
# 3. downsamplers, upsamplers and skip connections: the "U", block by block;
# 4. attention: self-attention over pixels, cross-attention to words — *exercise 2* —, the mask that
#    ignores padding, and the prompt's summary added to the time;
# 5. after training: where does the word "red" look?
# 6. the same U-Net the Stable Diffusion way, name for name with diffusers (`course.sd_unet`).

# %%
import math

import torch
import torch.nn.functional as F

from course import current_profile
from course.attention import MultiHeadAttention, attention
from course.checks.unet import check_cross_attention, check_resblock
from course.embeddings import timestep_embedding
from course.plotting import figure
from course.unet import AttentionBlock, UNet

P = current_profile()
torch.manual_seed(0)
print(f"profile: {P.name}")

# %% [markdown] lang="fr"
# ## 1. Dire l'heure au réseau
#
# Le même réseau sert pour tous les $t$ : il doit savoir à quel point l'image est bruitée. On code l'entier
# $t$ par des sinusoïdes de fréquences géométriques, comme les positions d'un transformer
# (Vaswani et al. 2017) : $\big[\cos(t\,\omega_k), \sin(t\,\omega_k)\big]$ avec
# $\omega_k = 10000^{-k/(d/2)}$. Les premières composantes tournent vite (elles distinguent $t$ et $t+1$),
# les dernières lentement (elles disent « début » ou « fin »). Un petit MLP transforme ensuite ce vecteur.

# %% [markdown] lang="en"
# ## 1. Telling the network the time
#
# One network serves every $t$: it must know how noisy the image is. We encode the integer $t$ with sinusoids
# of geometric frequencies, like a transformer's positions (Vaswani et al. 2017):
# $\big[\cos(t\,\omega_k), \sin(t\,\omega_k)\big]$ with $\omega_k = 10000^{-k/(d/2)}$. The first components
# spin fast (they tell $t$ from $t+1$), the last ones slowly (they say "early" or "late"). A small MLP then
# transforms this vector.

# %%
emb = timestep_embedding(torch.arange(0, 1001), 64)  # (1001, 64)
fig, ax = figure(figsize=(9, 3))
ax.imshow(emb.T, aspect="auto", cmap="RdBu", interpolation="nearest")
ax.set(xlabel="t", ylabel="component", title="sinusoidal embedding of t (64 components)")
fig.tight_layout()

# %% [markdown] lang="fr"
# ## 2. Le bloc résiduel
#
# La brique de base du U-Net (Ho et al. 2020, annexe B) : normalisation de groupe, activation SiLU,
# convolution ; on **ajoute le codage du temps** (le même décalage pour tous les pixels d'un canal) ;
# encore normalisation, SiLU, convolution ; et l'on ajoute l'entrée, passée par une convolution 1 × 1 si le
# nombre de canaux change (la connexion résiduelle, qui laisse passer le signal et le gradient).
#
# ### ✏️ Exercice 1 — le passage avant d'un `ResBlock`
#
# Écrivez `my_resblock(block, x, emb)` avec les couches du bloc : `block.norm1`, `block.conv1`,
# `block.emb` (une couche linéaire), `block.norm2`, `block.conv2`, `block.skip`.
#
# <details><summary>Indice</summary>
#
# `F.silu` est l'activation. Le codage `(B, C)` doit devenir `(B, C, 1, 1)` pour s'ajouter à chaque pixel :
# `[:, :, None, None]`.
# </details>

# %% [markdown] lang="en"
# ## 2. The residual block
#
# The U-Net's basic brick (Ho et al. 2020, Appendix B): group normalisation, SiLU activation, convolution;
# **add the time encoding** (the same shift for every pixel of a channel); again normalisation, SiLU,
# convolution; and add the input, through a 1 × 1 convolution if the number of channels changes (the
# residual connection, which lets signal and gradient through).
#
# ### ✏️ Exercise 1 — a `ResBlock`'s forward pass
#
# Write `my_resblock(block, x, emb)` with the block's layers: `block.norm1`, `block.conv1`, `block.emb` (a
# linear layer), `block.norm2`, `block.conv2`, `block.skip`.
#
# <details><summary>Hint</summary>
#
# `F.silu` is the activation. The encoding `(B, C)` must become `(B, C, 1, 1)` to be added to every pixel:
# `[:, :, None, None]`.
# </details>

# %%
# NBVAL_CHECK_OUTPUT
def my_resblock(block, x, emb):
    """conv(silu(norm(x))) + proj(silu(emb)), then conv(silu(norm(h))), plus skip(x) (Ho et al. 2020, App. B)."""
    # BEGIN SOLUTION
    # HINT: two norm → silu → conv stages, the time shift in between, the skip at the end
    h = block.conv1(F.silu(block.norm1(x)))  # (B, C_out, H, W)
    h = h + block.emb(F.silu(emb))[:, :, None, None]  # one shift per channel
    h = block.conv2(F.silu(block.norm2(h)))
    return h + block.skip(x)
    # END SOLUTION


check_resblock(my_resblock)

# %% [markdown] lang="fr"
# ## 3. Le « U » : descendre, remonter, se souvenir
#
# Les *downsamplers* (« un entonnoir », disent les diapositives) divisent la résolution par deux à chaque
# niveau : le réseau voit de plus en plus large et de moins en moins fin. Les *upsamplers* font le chemin
# inverse. Pour ne pas perdre les détails en route, la sortie de chaque niveau descendant est **recopiée**
# et concaténée au niveau montant de même résolution : ce sont les connexions de saut, les barres
# horizontales du « U ».
#
# Voici le U-Net du cours (celui que la leçon 05 entraîne sur des latents 8 × 8 × 4), parcouru bloc par
# bloc : la forme de la sortie et le nombre de paramètres de chaque bloc. Le prompt est un lot de 2 phrases
# de 12 tokens, d'états de largeur 128 (la sortie du CLIP de la leçon 03).

# %% [markdown] lang="en"
# ## 3. The "U": going down, coming up, remembering
#
# Downsamplers ("a funnel", the slides say) halve the resolution at each level: the network sees wider and
# coarser. Upsamplers go the other way. Not to lose details on the way, each down level's output is
# **copied** and concatenated to the up level of the same resolution: the skip connections, the horizontal
# bars of the "U".
#
# Here is the course's U-Net (the one lesson 05 trains on 8 × 8 × 4 latents), walked through block by
# block: each block's output shape and parameter count. The prompt is a batch of 2 sentences of 12 tokens,
# with states of width 128 (the output of lesson 03's CLIP).

# %%
# NBVAL_CHECK_OUTPUT
from course.ldm import UNET

unet = UNet(UNET)
x = torch.randn(2, 4, 8, 8)
t = torch.tensor([10, 900])
context, context_mask = torch.randn(2, 12, 128), torch.ones(2, 12, dtype=torch.bool)
print(f"{'block':<14} {'output shape':<18} {'parameters':>10}")
for name, shape, params in unet.describe(x, t, context, context_mask):
    print(f"{name:<14} {str(shape):<18} {params:>10,}")
print(f"{'total':<33} {sum(p.numel() for p in unet.parameters()):>10,}")

# %%
parts = {"ResBlocks": 0, "self-attention": 0, "cross-attention": 0, "feed-forward & projections": 0, "down/up-sampling": 0, "time & pooled-text MLPs, stem, out": 0}
for name, p in unet.named_parameters():
    if ".res." in name:
        parts["ResBlocks"] += p.numel()
    elif "self_attn" in name:
        parts["self-attention"] += p.numel()
    elif "cross_attn" in name:
        parts["cross-attention"] += p.numel()
    elif ".attn." in name:
        parts["feed-forward & projections"] += p.numel()
    elif "sample" in name:
        parts["down/up-sampling"] += p.numel()
    else:
        parts["time & pooled-text MLPs, stem, out"] += p.numel()
fig, ax = figure(figsize=(7, 2.8))
ax.barh(list(parts), [v / 1e6 for v in parts.values()])
ax.set(xlabel="millions of parameters", title="where the U-Net's parameters are")
fig.tight_layout()

# %% [markdown] lang="fr"
# ## 4. L'attention
#
# Un bloc d'attention lit l'image $(B, C, H, W)$ comme une suite de $H \cdot W$ « tokens » de largeur $C$.
# Chaque token pose une **question** (une requête $q$), chaque token consulté offre une **clé** $k$ et une
# **valeur** $v$ ; la réponse est la moyenne des valeurs, pondérée par
# $\mathrm{softmax}(q \cdot k^\top / \sqrt d)$ (Vaswani et al. 2017, éq. 1).
#
# - en **self-attention**, requêtes, clés et valeurs viennent toutes des pixels : chaque pixel peut regarder
#   tous les autres (une forme en haut à gauche « sait » ce qu'il y a en bas à droite) ;
# - en **cross-attention**, les requêtes viennent des pixels, mais les clés et les valeurs viennent des
#   **mots du prompt** (les états de tokens de CLIP) : chaque pixel va chercher dans la phrase ce qui le
#   concerne. C'est ainsi que le texte entre dans l'image.
#
# Le prompt est complété par des `<pad>` jusqu'à la longueur du lot : notre U-Net ne veut pas que les pixels
# y prêtent attention (Stable Diffusion, lui, les laisse voir : section 6). Le masque met leur score à
# $-\infty$ avant le softmax, donc leur poids à 0.
#
# ### ✏️ Exercice 2 — la cross-attention masquée
#
# Écrivez `my_cross_attention(q, k, v, key_mask)` : `q` `(B, N, d)` vient des pixels, `k` et `v`
# `(B, L, d)` des mots, `key_mask` `(B, L)` vaut `True` pour les vrais tokens.
#
# <details><summary>Indice</summary>
#
# `scores.masked_fill(~key_mask[:, None, :], float("-inf"))`, puis `softmax(dim=-1)` sur les clés.
# </details>

# %% [markdown] lang="en"
# ## 4. Attention
#
# An attention block reads the image $(B, C, H, W)$ as a sequence of $H \cdot W$ "tokens" of width $C$. Each
# token asks a **question** (a query $q$), each token consulted offers a **key** $k$ and a **value** $v$; the
# answer is the average of the values weighted by $\mathrm{softmax}(q \cdot k^\top / \sqrt d)$ (Vaswani et
# al. 2017, eq. 1).
#
# - in **self-attention**, queries, keys and values all come from the pixels: each pixel can look at every
#   other (a shape at the top left "knows" what is at the bottom right);
# - in **cross-attention**, queries come from the pixels, but keys and values come from the **words of the
#   prompt** (CLIP's token states): each pixel fetches from the sentence what concerns it. That is how the
#   text gets into the image.
#
# The prompt is padded with `<pad>` up to the batch's length: our U-Net keeps pixels from attending to those
# (Stable Diffusion lets them be seen: section 6). The mask sets their scores to $-\infty$ before the softmax,
# hence their weight to 0.
#
# ### ✏️ Exercise 2 — masked cross-attention
#
# Write `my_cross_attention(q, k, v, key_mask)`: `q` `(B, N, d)` comes from the pixels, `k` and `v`
# `(B, L, d)` from the words, `key_mask` `(B, L)` is `True` for real tokens.
#
# <details><summary>Hint</summary>
#
# `scores.masked_fill(~key_mask[:, None, :], float("-inf"))`, then `softmax(dim=-1)` over the keys.
# </details>

# %%
# NBVAL_CHECK_OUTPUT
def my_cross_attention(q, k, v, key_mask):
    """softmax(q·kᵀ/√d, padded keys → −∞)·v with q (B, N, d), k and v (B, L, d), key_mask (B, L)."""
    # BEGIN SOLUTION
    # HINT: scores (B, N, L), masked, softmax over the keys, times the values
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, N, L)
    scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
    return scores.softmax(dim=-1) @ v  # (B, N, d)
    # END SOLUTION


check_cross_attention(my_cross_attention)

# %% [markdown] lang="fr"
# Notre `course.attention.attention` fait la même chose, avec des têtes multiples ; c'est exactement ce que
# calcule la fonction optimisée de PyTorch, `F.scaled_dot_product_attention` :

# %% [markdown] lang="en"
# Our `course.attention.attention` does the same with multiple heads; it is exactly what PyTorch's optimised
# `F.scaled_dot_product_attention` computes:

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
q, k, v = torch.randn(2, 4, 64, 32, generator=g), torch.randn(2, 4, 12, 32, generator=g), torch.randn(2, 4, 12, 32, generator=g)
mask = torch.ones(2, 1, 1, 12, dtype=torch.bool)
mask[0, ..., 7:] = False  # the first prompt has 7 real tokens, then padding
gap = (attention(q, k, v, mask) - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max().item()
print(f"max |ours − F.scaled_dot_product_attention| {'< 1e-5' if gap < 1e-5 else f'= {gap:.1e}'}")

block = MultiHeadAttention(32, heads=4, context_dim=32)
block.record = True
block(torch.randn(2, 64, 32), torch.randn(2, 12, 32), mask)
weights = block.weights  # (B, heads, pixels, tokens)
print(f"weight given to padding tokens: {weights[0, ..., 7:].sum().item():.1f}; each row sums to "
      f"{weights.sum(-1).mean().item():.1f}")

# %% [markdown] lang="fr"
# ### Un second chemin pour le texte : le résumé du prompt
#
# La cross-attention laisse chaque pixel aller chercher ses mots. Notre U-Net ajoute un chemin plus direct,
# emprunté à SDXL (Podell et al. 2023, §2.1) : l'état du **dernier token** du prompt, `<eos>` — celui que la
# perte contrastive de CLIP a entraîné à résumer toute la phrase (leçon 03) —, passe par une couche linéaire
# et **s'ajoute au codage du temps**. Chaque bloc résiduel reçoit alors, en plus de « à quel point l'image
# est bruitée », un « de quoi parle le prompt », le même pour tous les pixels. Stable Diffusion 1.x n'a que
# la cross-attention ; ici, ce petit ajout (33 000 paramètres) a fait gagner 5 points de forme juste
# (68 → 74 %) et 7 points de prompts entièrement respectés, mesuré sur 3 entraînements courts de chaque
# variante (`benchmarks/ldm_recipes.py`, leçon 05). Avec le masque, on sait où est `<eos>` : c'est le
# dernier vrai token de chaque prompt.

# %% [markdown] lang="en"
# ### A second path for the text: the prompt's summary
#
# Cross-attention lets each pixel fetch its words. Our U-Net adds a more direct path, borrowed from SDXL
# (Podell et al. 2023, §2.1): the state of the prompt's **last token**, `<eos>` — the one CLIP's contrastive
# loss trained to summarise the whole sentence (lesson 03) — goes through a linear layer and **is added to
# the time encoding**. Every residual block then receives, besides "how noisy the image is", a "what the
# prompt is about", the same for every pixel. Stable Diffusion 1.x has only cross-attention; here this small
# addition (33,000 parameters) bought 5 points of correct shapes (68 → 74 %) and 7 points of fully
# respected prompts, measured over 3 short trainings of each variant (`benchmarks/ldm_recipes.py`, lesson
# 05). With the mask we know where `<eos>` is: each prompt's last real token.

# %%
# NBVAL_CHECK_OUTPUT
from course.tokenizer import encode, load_tokenizer
from course.unet import pooled_state

ids, ids_mask = encode(["a red star", "un petit carré vert en bas"], pad_to_longest=True)
positions = torch.arange(ids.shape[1]).float()[None, :, None].expand(len(ids), -1, 1)  # states = their own index
for row, position in zip(ids, pooled_state(positions, ids_mask.bool()).flatten().long().tolist()):
    tokens = load_tokenizer().convert_ids_to_tokens(row.tolist())
    print(f"{' '.join(tokens):<58} → pooled state: token {position} ({tokens[position]})")
print(f"pooled path: {sum(p.numel() for p in unet.pooled_proj.parameters()):,} parameters")

# %% [markdown] lang="fr"
# ## 5. Où regarde le mot « rouge » ?
#
# Une fois le modèle entraîné (c'est l'objet de la leçon 05 ; on charge ici le modèle livré), on peut
# enregistrer les poids de cross-attention pendant une génération et, pour chaque mot du prompt, afficher
# **quels pixels l'ont consulté** — moyenne sur les têtes, les blocs à la résolution 8 × 8 et les étapes de
# débruitage. Si tout va bien, « rouge » et « étoile » s'allument là où l'objet apparaît.

# %% [markdown] lang="en"
# ## 5. Where does the word "red" look?
#
# Once the model is trained (that is lesson 05's job; here we load the shipped model) we can record the
# cross-attention weights during a generation and, for each word of the prompt, show **which pixels
# consulted it** — averaged over heads, over the blocks at 8 × 8 resolution and over the denoising steps.
# If all goes well, "red" and "star" light up where the object appears.

# %%
from course.ldm import generate, load_unet
from course.plotting import show_grid
from course.tokenizer import encode, load_tokenizer

model = load_unet()
blocks = [m for m in model.modules() if isinstance(m, AttentionBlock) and m.cross_attn is not None]
maps = []


def collect(t, z, z0_hat):
    for b in blocks:
        w = b.cross_attn.weights  # (2B, heads, H·W, L): the unconditional half first, then the prompts
        if w is not None and w.shape[2] == 64:  # the 8 × 8 blocks
            maps.append(w[w.shape[0] // 2 :].mean(1))  # (B, 64, L), heads averaged


for b in blocks:
    b.cross_attn.record = True
prompts = ["une grande étoile rouge en bas à gauche", "a large blue heart at the top right"]
images = generate(prompts, model, steps=20, guidance=4.0, seed=1, callback=collect)
for b in blocks:
    b.cross_attn.record, b.cross_attn.weights = False, None

tokenizer = load_tokenizer()
attn = torch.stack(maps).mean(0)  # (B, 64, L)
for i, prompt in enumerate(prompts):
    ids, mask = encode(prompt)
    n = int(mask.sum())
    tokens = tokenizer.convert_ids_to_tokens(ids[0, :n].tolist())
    words = [(j, tok) for j, tok in enumerate(tokens) if tok not in ("<bos>", "<eos>", "'", "d", "à", "en", "a", "at", "the", "une")]
    panels = [images[i]] + [attn[i, :, j].view(1, 8, 8).repeat(3, 1, 1) for j, _ in words]
    scaled = [panels[0]] + [2 * (p - p.min()) / (p.max() - p.min() + 1e-8) - 1 for p in panels[1:]]
    show_grid(scaled, ["generated"] + [f"« {tok} »" for _, tok in words], ncols=len(scaled), size=1.5, suptitle=prompt)

# %% [markdown] lang="fr"
# Ce que l'on voit : les mots de forme et de couleur s'allument aux cases où l'objet apparaît, et presque
# pas ailleurs. Les mots de taille et de position s'y allument aussi, mais débordent bien plus sur le reste
# de l'image : « bas », « gauche » ou « grande » parlent de toute la scène, pas seulement de l'objet (sur
# le cœur, « large » s'étale partout). Sur une scène à un seul objet, le modèle ne sépare pas « rouge » de
# « étoile » : il se sert de la cross-attention pour amener toute la description là où il dessine.
# Regardez aussi les images : la taille demandée est-elle respectée ? (Dans le profil `cpu`, le juge de la
# leçon 05 lit bien deux grands objets ; c'est lui qui mesurera ces erreurs à grande échelle.)

# %% [markdown] lang="en"
# What we see: the shape and colour words light up in the cells where the object appears, and hardly
# anywhere else. The size and position words light up there too, but spill much more over the rest of the
# image: "top", "right" or "large" are about the whole scene, not just the object (on the heart, "large"
# spreads everywhere). On a one-object scene the model does not separate "red" from "star": it uses
# cross-attention to bring the whole description to where it draws. Look at the images too: is the
# requested size respected? (In the `cpu` profile, lesson 05's judge does read two large objects; it is the
# judge that will measure such errors at scale.)

# %% [markdown] lang="fr"
# ## 6. Le même U-Net, à la manière de Stable Diffusion (`course.sd_unet`)
#
# Notre U-Net livré a la topologie simple des sections précédentes. Stable Diffusion assemble les mêmes
# briques un peu autrement, et `course.sd_unet` les assemble exactement comme lui, en PyTorch simple, avec
# les noms de paramètres du `UNet2DConditionModel` de diffusers : les tests
# (`tests/test_diffusers_parity.py`) vérifient, sur des poids aléatoires, qu'il calcule la même chose que
# diffusers. C'est dans cette topologie que se chargent les vrais poids de Stable Diffusion (leçon 07), et
# c'est vers elle que notre modèle passera quand un réentraînement atteindra ses objectifs. Rien n'est
# entraîné ici : des poids aléatoires suffisent pour voir la forme du réseau.
#
# Les pièces, dans l'ordre où les données les traversent, avec leur classe diffusers et, entre
# parenthèses, leur équivalent dans notre U-Net :
# - `time_embedding`, un `TimestepEmbedding` : linéaire, SiLU, linéaire (notre `time_mlp`). Un détail de
#   numérotation : les diapositives comptent les étapes de 1 à $T$ (Ho et al. 2020), diffusers de 0 à
#   $T - 1$ ; ce réseau lit donc $t - 1$, pour que les mêmes poids tournent tels quels dans diffusers ;
# - `conv_in` (notre `stem`) ;
# - `down_blocks[i]`, un niveau de la descente : `layers_per_block` blocs résiduels (`ResnetBlock2D`, notre
#   `ResBlock` ; `emb` y devient `time_emb_proj`, `skip` `conv_shortcut`), chacun suivi d'un bloc
#   d'attention (`Transformer2DModel`, notre `AttentionBlock`), puis, sauf au dernier niveau, un
#   *downsampler* (`Downsample2D`). Avec attention, diffusers appelle ce niveau `CrossAttnDownBlock2D` ;
#   sans, `DownBlock2D` ;
# - `mid_block`, au fond du « U » : bloc résiduel, attention, **bloc résiduel** (`UNetMidBlock2DCrossAttn` ;
#   notre `mid` s'arrête après l'attention) ;
# - `up_blocks[i]`, la remontée (`CrossAttnUpBlock2D` ou `UpBlock2D`) : **un bloc résiduel de plus** par
#   niveau qu'à la descente, chacun précédé d'une concaténation, puis un *upsampler* (`Upsample2D`) ;
# - `conv_norm_out`, SiLU et `conv_out` (notre `out`).
#
# Prenons une taille voisine de celle du modèle livré, des largeurs (48, 96, 128) : la cellule affiche
# chaque bloc, sa classe diffusers (lue dans la configuration qu'écrit `course.diffusers_format`), la forme
# de sa sortie et son nombre de paramètres. Le prompt est un lot de 2 phrases complétées à la longueur
# pleine du tokenizer, 32 tokens, comme Stable Diffusion les complète à 77.

# %% [markdown] lang="en"
# ## 6. The same U-Net, the Stable Diffusion way (`course.sd_unet`)
#
# Our shipped U-Net has the simple topology of the sections above. Stable Diffusion assembles the same
# bricks a little differently, and `course.sd_unet` assembles them exactly as it does, in plain PyTorch,
# with the parameter names of diffusers' `UNet2DConditionModel`: the tests (`tests/test_diffusers_parity.py`)
# check, on random weights, that it computes the same as diffusers. The real Stable Diffusion weights load
# into this topology (lesson 07), and our model will move to it once a retrain meets its targets. Nothing is
# trained here: random weights are enough to see the network's shape.
#
# The pieces, in the order data flows through them, with their diffusers class and, in brackets, their
# counterpart in our U-Net:
# - `time_embedding`, a `TimestepEmbedding`: linear, SiLU, linear (our `time_mlp`). A numbering detail: the
#   slides count the steps from 1 to $T$ (Ho et al. 2020), diffusers from 0 to $T - 1$; so this network reads
#   $t - 1$, for the same weights to run unchanged in diffusers;
# - `conv_in` (our `stem`);
# - `down_blocks[i]`, one level of the way down: `layers_per_block` residual blocks (`ResnetBlock2D`, our
#   `ResBlock`; `emb` becomes `time_emb_proj`, `skip` `conv_shortcut`), each followed by an attention block
#   (`Transformer2DModel`, our `AttentionBlock`), then, except at the last level, a downsampler
#   (`Downsample2D`). With attention, diffusers calls such a level `CrossAttnDownBlock2D`; without,
#   `DownBlock2D`;
# - `mid_block`, at the bottom of the "U": residual block, attention, **residual block**
#   (`UNetMidBlock2DCrossAttn`; our `mid` stops after the attention);
# - `up_blocks[i]`, the way up (`CrossAttnUpBlock2D` or `UpBlock2D`): **one more residual block** per level
#   than on the way down, each after a concatenation, then an upsampler (`Upsample2D`);
# - `conv_norm_out`, SiLU and `conv_out` (our `out`).
#
# Let us take a size close to the shipped model's, widths (48, 96, 128): the cell shows each block, its
# diffusers class (read from the config `course.diffusers_format` writes), its output shape and its
# parameter count. The prompt is a batch of 2 sentences padded to the tokenizer's full length, 32 tokens, as
# Stable Diffusion pads them to 77.

# %%
# NBVAL_CHECK_OUTPUT
from course.diffusers_format import unet_to_diffusers
from course.embeddings import timestep_embedding
from course.sd_unet import UNet as SDUNet
from course.sd_unet import UNetConfig as SDUNetConfig
from course.tokenizer import MAX_LENGTH

SD_SMALL = SDUNetConfig(in_channels=4, out_channels=4, channels=(48, 96, 128), attention=(True, True, True), heads=4, context_dim=128, pooled=True)
torch.manual_seed(0)
sd_unet = SDUNet(SD_SMALL)
x = torch.randn(2, 4, 8, 8)
t = torch.tensor([10, 900])
context = torch.randn(2, MAX_LENGTH, 128)  # 2 prompts at the tokenizer's full length, states of width 128
config = unet_to_diffusers(SD_SMALL, sample_size=8)  # the UNet2DConditionModel config of this network
classes = {"conv_in": "Conv2d", "mid_block": config["mid_block_type"], "conv_out": "Conv2d"}
classes |= {f"down_blocks[{i}]": name for i, name in enumerate(config["down_block_types"])}
classes |= {f"up_blocks[{i}]": name for i, name in enumerate(config["up_block_types"])}
rows = sd_unet.describe(x, t, context)
sd_total = sum(p.numel() for p in sd_unet.parameters())
print(f"{'block':<15} {'diffusers class':<25} {'output shape':<16} {'parameters':>10}")
for name, shape, params in rows:
    print(f"{name:<15} {classes[name]:<25} {str(shape):<16} {params:>10,}")
print(f"{'time_embedding, add_embedding, conv_norm_out':<57} {sd_total - sum(r[2] for r in rows):>10,}")
print(f"{'total':<57} {sd_total:>10,}  (our shipped U-Net: {sum(p.numel() for p in unet.parameters()):,})")

# %% [markdown] lang="fr"
# ### La pile des connexions de saut
#
# Pourquoi un bloc résiduel de plus à la remontée ? Notre U-Net ne mettait de côté qu'un tenseur par niveau,
# la sortie du niveau. Celui de Stable Diffusion en met de côté davantage : la sortie de `conv_in`, celle de
# chaque bloc résiduel (suivi de son attention), et celle de chaque *downsampler*. À chaque résolution, cela
# fait `layers_per_block + 1` tenseurs : celui qui y arrive (la sortie de `conv_in` tout en haut, celle du
# *downsampler* plus bas), puis un par bloc résiduel. Tout ce qui a été calculé à une résolution repasse
# ainsi à la remontée, y compris l'entrée à peine transformée. À la remontée, chaque bloc résiduel reprend
# le dernier tenseur posé sur la pile et le concatène à son entrée : il en faut `layers_per_block + 1` par
# niveau pour vider la pile, et le dernier repris à chaque niveau est celui qui y était arrivé — en haut, la
# sortie de `conv_in`.
#
# La cellule refait ce trajet à la main avec les blocs du réseau, affiche la pile et ce que chaque bloc de
# la remontée y reprend, et vérifie que l'on retrouve ce que calcule `sd_unet` (juste avant
# `conv_norm_out` : `conv_out` part de zéro, le réseau non entraîné prédit $\hat\varepsilon = 0$).

# %% [markdown] lang="en"
# ### The stack of skip connections
#
# Why one more residual block on the way up? Our U-Net set aside only one tensor per level, the level's
# output. Stable Diffusion's sets aside more: the output of `conv_in`, that of every residual block (followed
# by its attention), and that of every downsampler. At each resolution that makes `layers_per_block + 1`
# tensors: the one that arrives there (`conv_in`'s output at the top, a downsampler's lower down), then one
# per residual block. So everything computed at a resolution comes back on the way up, the barely
# transformed input included. On the way up, each residual block takes the last tensor put on the stack and
# concatenates it to its input: it takes `layers_per_block + 1` of them per level to empty the stack, and
# the last one taken at each level is the one that arrived there — at the top, `conv_in`'s output.
#
# The cell walks that path by hand with the network's blocks, prints the stack and what each block of the
# way up takes from it, and checks that we get what `sd_unet` computes (just before `conv_norm_out`:
# `conv_out` starts at zero, the untrained network predicts $\hat\varepsilon = 0$).

# %%
# NBVAL_CHECK_OUTPUT
seen = []
hook = sd_unet.conv_norm_out.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
with torch.no_grad():
    sd_unet(x, t, context)
    hook.remove()
    emb = sd_unet.time_embedding(timestep_embedding(t - 1, sd_unet.time_dim)) + sd_unet.add_embedding(context)  # (B, 4·C0)
    h = sd_unet.conv_in(x)
    stack = [("conv_in", h)]
    for i, block in enumerate(sd_unet.down_blocks):
        h, pushed = block(h, emb, context, None)
        names = [f"down_blocks[{i}].resnets[{j}]" + (" + attentions" if block.attentions is not None else "") for j in range(len(block.resnets))]
        names += [f"down_blocks[{i}].downsamplers[0]"] if block.downsamplers is not None else []
        stack += list(zip(names, pushed))
    print("set aside on the way down:")
    for name, s in stack:
        print(f"  {name:<38} {tuple(s.shape[1:])}")
    h = sd_unet.mid_block(h, emb, context, None)
    print("taken back on the way up (the most recent first):")
    for i, block in enumerate(sd_unet.up_blocks):
        for j, resnet in enumerate(block.resnets):
            name, skip = stack.pop()
            print(f"  up_blocks[{i}].resnets[{j}]: h {tuple(h.shape[1:])} + {name} {tuple(skip.shape[1:])}")
            h = resnet(torch.cat([h, skip], dim=1), emb)
            h = block.attentions[j](h, context) if block.attentions is not None else h
        h = block.upsamplers[0](h) if block.upsamplers is not None else h
gap = (h - seen[0]).abs().max().item()
print(f"left on the stack: {len(stack)}; by hand vs sd_unet: max |difference| {'< 1e-5' if gap < 1e-5 else f'= {gap:.1e}'}")

# %% [markdown] lang="fr"
# ### Le bloc d'attention, nom pour nom
#
# Le `Transformer2DModel` de diffusers (le *SpatialTransformer* de Rombach et al. 2022) est notre
# `AttentionBlock`, rangé un cran plus profond : une normalisation de groupe (`norm`) et une convolution
# 1 × 1 (`proj_in`), l'image mise à plat en $H \cdot W$ tokens, puis un `BasicTransformerBlock`
# (`transformer_blocks[0]`) en trois étapes, chacune précédée d'une normalisation et ajoutée à son entrée :
# `attn1`, la self-attention (notre `self_attn`) ; `attn2`, la cross-attention (notre `cross_attn`) ; `ff`,
# le *feed-forward*. Enfin `proj_out` (1 × 1) remet l'image en forme, et l'on ajoute l'entrée du bloc. Deux
# différences de détail : les projections `to_q`, `to_k`, `to_v` n'ont pas de biais, et le *feed-forward*
# est à porte, GEGLU (Shazeer 2020) — une couche linéaire produit deux moitiés $a$ et $g$ de largeur $4C$,
# on garde $a \odot \mathrm{GELU}(g)$, et une seconde couche ramène à $C$.
#
# Où sont les paramètres ? Regroupons-les d'après leurs noms : les blocs résiduels (`resnets`), la
# self-attention (`attn1`), la cross-attention (`attn2`), le *feed-forward* GEGLU (`ff`), les projections
# et normalisations des blocs d'attention, les *downsamplers* et *upsamplers*, et le reste.

# %% [markdown] lang="en"
# ### The attention block, name for name
#
# Diffusers' `Transformer2DModel` (Rombach et al. 2022's *SpatialTransformer*) is our `AttentionBlock`,
# stored one level deeper: a group normalisation (`norm`) and a 1 × 1 convolution (`proj_in`), the image
# flattened into $H \cdot W$ tokens, then a `BasicTransformerBlock` (`transformer_blocks[0]`) in three steps,
# each after a normalisation and added to its input: `attn1`, self-attention (our `self_attn`); `attn2`,
# cross-attention (our `cross_attn`); `ff`, the feed-forward. Finally `proj_out` (1 × 1) puts the image back
# in shape, and the block's input is added. Two differences of detail: the `to_q`, `to_k`, `to_v`
# projections have no bias, and the feed-forward is gated, GEGLU (Shazeer 2020) — a linear layer makes two
# halves $a$ and $g$ of width $4C$, we keep $a \odot \mathrm{GELU}(g)$, and a second layer brings it back to
# $C$.
#
# Where are the parameters? Let us group them by their names: the residual blocks (`resnets`),
# self-attention (`attn1`), cross-attention (`attn2`), the GEGLU feed-forward (`ff`), the attention blocks'
# projections and normalisations, the downsamplers and upsamplers, and the rest.

# %%
# NBVAL_CHECK_OUTPUT
def part(name: str) -> str:
    for key, label in ((".resnets.", "resnets (ResnetBlock2D)"), (".attn1.", "attn1: self-attention"), (".attn2.", "attn2: cross-attention"),
                       (".ff.", "ff: GEGLU feed-forward"), (".attentions.", "proj_in, proj_out, norms"), ("samplers.", "downsamplers, upsamplers")):
        if key in name:
            return label
    top = name.split(".")[0]  # time_embedding, add_embedding, conv_in, conv_norm_out, conv_out
    return top if top in ("time_embedding", "add_embedding") else "conv_in, conv_norm_out, conv_out"


sd_parts = {}
for name, p in sd_unet.named_parameters():
    sd_parts[part(name)] = sd_parts.get(part(name), 0) + p.numel()
for label, n in sd_parts.items():
    print(f"{label:<32} {n:>10,}  {n / sd_total:>4.0%}")

# %%
fig, ax = figure(figsize=(7, 3))
ax.barh(list(sd_parts), [v / 1e6 for v in sd_parts.values()])
ax.invert_yaxis()
ax.set(xlabel="millions of parameters", title="where the parameters of the SD-topology U-Net are")
fig.tight_layout()

# %% [markdown] lang="fr"
# Le module d'attention, `course.sd_unet.Attention` (l'`Attention` de diffusers : `to_q`, `to_k`, `to_v`,
# puis `to_out[0]`), appelle d'ordinaire `F.scaled_dot_product_attention`, qui ne garde pas les poids. Avec
# `record = True`, il prend la forme écrite, celle de `course.attention` — la vôtre —, et garde les poids
# $(B, \text{têtes}, L_q, L_k)$ dans `.weights`, de quoi dessiner des cartes comme à la section 5. Les deux
# chemins donnent la même sortie :

# %% [markdown] lang="en"
# The attention module, `course.sd_unet.Attention` (diffusers' `Attention`: `to_q`, `to_k`, `to_v`, then
# `to_out[0]`), usually calls `F.scaled_dot_product_attention`, which does not keep the weights. With
# `record = True` it takes the written-out form, `course.attention`'s — yours —, and keeps the weights
# $(B, \text{heads}, L_q, L_k)$ in `.weights`, enough to draw maps as in section 5. Both paths give the same
# output:

# %%
# NBVAL_CHECK_OUTPUT
from course.sd_unet import Attention, TransformerBlock

g = torch.Generator().manual_seed(0)
cross = Attention(32, heads=4, context_dim=16)  # queries from 32-channel pixels, keys and values from 16-wide states
pixels, words = torch.randn(2, 64, 32, generator=g), torch.randn(2, 12, 16, generator=g)
with torch.no_grad():
    fast = cross(pixels, words)  # F.scaled_dot_product_attention, no weights kept
    cross.record = True
    written_out = cross(pixels, words)  # course.attention's form, weights kept
gap = (fast - written_out).abs().max().item()
print(f"Attention, record=False vs record=True: max |difference| {'< 1e-5' if gap < 1e-5 else f'= {gap:.1e}'}; "
      f"weights {tuple(cross.weights.shape)} (B, heads, pixels, tokens), each row sums to {cross.weights.sum(-1).mean().item():.1f}")
cross_blocks = [m for m in sd_unet.modules() if isinstance(m, TransformerBlock) and m.attn2 is not None]
print(f"cross-attentions in sd_unet: {len(cross_blocks)} (every TransformerBlock with an attn2)")

# %% [markdown] lang="fr"
# ### Le remplissage, vu, et le résumé du prompt
#
# Notre U-Net masque les `<pad>` et prend pour résumé du prompt l'état de `<eos>`. Stable Diffusion fait
# autrement : chaque prompt est complété jusqu'à la longueur pleine du tokenizer (77 tokens ; 32 ici), et il
# n'y a **aucun masque**, ni dans CLIP ni dans le U-Net, qui voit toutes les positions. Ces positions ne
# sont pas vides : l'attention causale de CLIP laisse chaque `<pad>`, placé après toute la phrase, la lire
# en entier ; leurs états portent donc le prompt, eux aussi. `course.export.text_states` calcule les états
# de cette façon.
#
# Sans masque, le U-Net ne sait plus où est `<eos>` : notre résumé n'y a plus sa place. `course.sd_unet`
# emploie celui que diffusers sait faire sans autre entrée que les états, le `TextTimeEmbedding`
# (`add_embedding`, option `addition_embed_type="text"`, repris de DeepFloyd IF) : une *attention de
# regroupement*, où une seule requête — la moyenne des états, plus un vecteur appris — consulte tous les
# états, et elle-même ; une couche linéaire porte ensuite la réponse à la taille du codage du temps, entre
# deux normalisations. Stable Diffusion 1.x n'a aucun résumé ; SDXL ajoute au temps l'état final de son CLIP
# (Podell et al. 2023, §2.1), mais il faut alors le passer au U-Net à part, ce que le `StableDiffusionPipeline`
# de diffusers ne fait pas.
#
# Refaisons ce calcul pas à pas, avec les couches de `sd_unet` et les états du CLIP livré, sur deux vrais
# prompts. Les poids de `add_embedding` sont aléatoires : on vérifie le calcul, pas ce qu'il a appris.

# %% [markdown] lang="en"
# ### Padding, seen, and the prompt's summary
#
# Our U-Net masks the `<pad>` positions and takes `<eos>`'s state as the prompt's summary. Stable Diffusion
# does otherwise: each prompt is padded to the tokenizer's full length (77 tokens; 32 here), and there is
# **no mask**, neither in CLIP nor in the U-Net, which sees every position. Those positions are not empty:
# CLIP's causal attention lets each `<pad>`, placed after the whole sentence, read all of it; so their
# states carry the prompt too. `course.export.text_states` computes the states that way.
#
# Without a mask, the U-Net no longer knows where `<eos>` is: our summary has no place there any more.
# `course.sd_unet` uses the one diffusers can compute from the states alone, `TextTimeEmbedding`
# (`add_embedding`, option `addition_embed_type="text"`, taken from DeepFloyd IF): *attention pooling*, where
# a single query — the mean of the states, plus a learned vector — consults every state, and itself; a
# linear layer then brings the answer to the size of the time encoding, between two normalisations. Stable
# Diffusion 1.x has no summary at all; SDXL adds its CLIP's final state to the time (Podell et al. 2023,
# §2.1), but then it must be passed to the U-Net separately, which diffusers' `StableDiffusionPipeline` does
# not do.
#
# Let us redo that computation step by step, with `sd_unet`'s layers and the shipped CLIP's states, on two
# real prompts. The weights of `add_embedding` are random: we check the computation, not what it learned.

# %%
# NBVAL_CHECK_OUTPUT
from course.attention import attention_weights
from course.export import text_states as sd_text_states
from course.shipped import load_clip

pooling = sd_unet.add_embedding  # TextPooling: norm1 → pool (AttentionPooling) → proj → norm2
pool_prompts = ["a red star", "un petit carré vert en bas"]
states, _ = sd_text_states(load_clip().text, pool_prompts)  # (2, 32, 128): every position, padding included, no mask
B, L, D = states.shape


def heads(y):
    return y.view(B, -1, pooling.pool.heads, D // pooling.pool.heads).transpose(1, 2)  # (B, heads, ·, d)


with torch.no_grad():
    s = pooling.norm1(states)
    query = s.mean(dim=1, keepdim=True) + pooling.pool.positional_embedding  # (B, 1, D): the mean plus a learned vector
    consulted = torch.cat([query, s], dim=1)  # (B, 1 + L, D): the query itself, then every position
    pool_weights = attention_weights(heads(pooling.pool.q_proj(query)), heads(pooling.pool.k_proj(consulted)))  # (B, heads, 1, 1 + L)
    summary = (pool_weights @ heads(pooling.pool.v_proj(consulted))).transpose(1, 2).reshape(B, D)  # (B, D)
    added = pooling.norm2(pooling.proj(summary))  # (B, 4·C0): added to the time embedding
    gap = (added - pooling(states)).abs().max().item()
print(f"states {tuple(states.shape)}; step by step vs add_embedding: max |difference| {'< 1e-5' if gap < 1e-5 else f'= {gap:.1e}'}")
print(f"one summary {tuple(added.shape[1:])} per prompt, the size of the time embedding; add_embedding "
      f"{sum(p.numel() for p in pooling.parameters()):,} parameters, our U-Net's pooled_proj {sum(p.numel() for p in unet.pooled_proj.parameters()):,}")

# %% [markdown] lang="fr"
# ## À retenir
#
# - Le U-Net descend (downsamplers), remonte (upsamplers) et se souvient (connexions de saut) ; le temps
#   entre dans chaque bloc résiduel par un décalage appris.
# - La self-attention relie les pixels entre eux ; la cross-attention relie les pixels aux mots, avec un
#   masque qui ignore le remplissage.
# - Notre attention est exactement celle de PyTorch ; les cartes d'attention montrent les mots se poser
#   sur l'image.
# - Stable Diffusion range les mêmes briques un peu autrement (`course.sd_unet`, nom pour nom avec
#   diffusers) : des sauts depuis `conv_in` et chaque downsampler, un bloc résiduel de plus à la remontée,
#   le remplissage vu sans masque, et un résumé du prompt par attention de regroupement.
#
# **Et ensuite ?** Leçon 05 : l'espace latent, le décodeur, et l'entraînement texte → image.

# %% [markdown] lang="en"
# ## Key points
#
# - The U-Net goes down (downsamplers), comes up (upsamplers) and remembers (skip connections); time enters
#   each residual block as a learned shift.
# - Self-attention links pixels together; cross-attention links pixels to words, with a mask that ignores
#   padding.
# - Our attention is exactly PyTorch's; attention maps show words settling on the image.
# - Stable Diffusion arranges the same bricks a little differently (`course.sd_unet`, name for name with
#   diffusers): skips from `conv_in` and every downsampler, one more residual block on the way up, padding
#   seen without a mask, and a summary of the prompt by attention pooling.
#
# **Next.** Lesson 05: the latent space, the decoder, and text-to-image training.
