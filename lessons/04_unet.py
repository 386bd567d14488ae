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
# pièce par pièce dans `course.unet`, en PyTorch simple, avec exactement l'architecture et les noms de
# paramètres du `UNet2DConditionModel` de diffusers, celui de Stable Diffusion, en plus petit. Chaque pièce
# porte donc le nom de sa classe diffusers, et nos poids se chargent tels quels dans la bibliothèque
# (leçon 05, dernière section). La bibliothèque sert d'arbitre : sur des poids aléatoires, les tests
# (`tests/test_diffusers_parity.py`) vérifient que notre réseau calcule la même chose que le sien. Et ce sont
# ces mêmes modules qui reçoivent les vrais poids de Stable Diffusion v1.5, dans la dernière section, en
# ligne et facultative, de la leçon 07.
#
# **Au programme**
# 1. le codage du temps $t$ ;
# 2. le bloc résiduel — *exercice 1* ;
# 3. les *downsamplers*, les *upsamplers* et les connexions de saut : le « U », bloc par bloc, puis un
#    niveau de la descente assemblé par vos soins — *exercice 2* —, que le modèle livré fait tourner ;
# 4. l'attention : self-attention sur les pixels, cross-attention vers les mots — *exercice 3*, qui tourne
#    ensuite dans toutes les couches d'attention du U-Net —, le remplissage que Stable Diffusion laisse voir,
#    et le résumé du prompt ajouté au temps ;
# 5. après entraînement : où regarde le mot « rouge » ?

# %% [markdown] lang="en"
# # 04 — The U-Net with attention
#
# > "The heart of the diffusion model is usually a modified U-Net with attention mechanisms. […] The
# > attention blocks integrate the text conditioning at several resolutions." — slide *U-Net avec Attention*
#
# This is the "image generator" of the three elements: the network $\varepsilon_\theta(x_t, t, c)$ that, at
# each step, looks at the noisy image, the time $t$ and the text $c$, and predicts the noise. We build it
# piece by piece in `course.unet`, in plain PyTorch, with exactly the architecture and the parameter names
# of diffusers' `UNet2DConditionModel`, Stable Diffusion's, only smaller. So every piece bears the name of
# its diffusers class, and our weights load as they are into the library (lesson 05, last section). The
# library is the referee: on random weights, the tests (`tests/test_diffusers_parity.py`) check that our
# network computes the same as its own. And these same modules are the ones that receive the real Stable
# Diffusion v1.5 weights, in lesson 07's last section, online and optional.
#
# **Plan**
# 1. encoding the time $t$;
# 2. the residual block — *exercise 1*;
# 3. downsamplers, upsamplers and skip connections: the "U", block by block, then one level of the way
#    down assembled by you — *exercise 2* —, which the shipped model runs;
# 4. attention: self-attention over pixels, cross-attention to words — *exercise 3*, which then runs in
#    every attention layer of the U-Net —, the padding that Stable Diffusion lets the network see, and the
#    prompt's summary added to the time;
# 5. after training: where does the word "red" look?

# %%
import math

import torch
import torch.nn.functional as F

from course import current_profile
from course.attention import attention, attention_weights
from course.checks.unet import check_cross_attention, check_down_level, check_resblock
from course.embeddings import timestep_embedding
from course.hints import hint
from course.language import tr
from course.plotting import figure
from course.shipped import UNET, load_unet, text_states
from course.tokenizer import MAX_LENGTH, encode, load_tokenizer
from course.unet import Attention, TransformerBlock, UNet
from course.yours import choose, use

P = current_profile()
torch.manual_seed(0)
print(tr(en=f"profile: {P.name}", fr=f"profil : {P.name}"))


def thousands(n):
    """A count as the edition writes it: 1,234 in English, 1 234 in French."""
    return tr(en=f"{n:,}", fr=f"{n:,}".replace(",", " "))


def percent(x):
    """A share as the edition writes it: 12% in English, 12 % in French."""
    return tr(en=f"{x:.0%}", fr=f"{x * 100:.0f} %")

# %% [markdown] lang="fr"
# ## 1. Dire l'heure au réseau
#
# Le même réseau sert pour tous les $t$ : il doit savoir à quel point l'image est bruitée. On code l'entier
# $t$ par des sinusoïdes de fréquences géométriques, comme les positions d'un transformer
# (Vaswani et al. 2017) : $\big[\cos(t\,\omega_k), \sin(t\,\omega_k)\big]$ avec
# $\omega_k = 10000^{-k/(d/2)}$. Les premières composantes tournent vite (elles distinguent $t$ et $t+1$),
# les dernières lentement (elles disent « début » ou « fin »). Un petit MLP transforme ensuite ce vecteur :
# linéaire, SiLU, linéaire, de $C_0$ à $4\,C_0$ composantes (le `TimestepEmbedding` de diffusers,
# `unet.time_embedding`, avec ses couches `linear_1` et `linear_2`).
#
# Un détail de numérotation : les diapositives comptent les étapes de 1 à $T$ (Ho et al. 2020), diffusers
# de 0 à $T - 1$. Notre réseau lit donc $t - 1$ : les mêmes poids tournent tels quels dans diffusers.

# %% [markdown] lang="en"
# ## 1. Telling the network the time
#
# One network serves every $t$: it must know how noisy the image is. We encode the integer $t$ with sinusoids
# of geometric frequencies, like a transformer's positions (Vaswani et al. 2017):
# $\big[\cos(t\,\omega_k), \sin(t\,\omega_k)\big]$ with $\omega_k = 10000^{-k/(d/2)}$. The first components
# spin fast (they tell $t$ from $t+1$), the last ones slowly (they say "early" or "late"). A small MLP then
# transforms this vector: linear, SiLU, linear, from $C_0$ to $4\,C_0$ components (diffusers'
# `TimestepEmbedding`, `unet.time_embedding`, with its layers `linear_1` and `linear_2`).
#
# A numbering detail: the slides count the steps from 1 to $T$ (Ho et al. 2020), diffusers from 0 to
# $T - 1$. So our network reads $t - 1$: the same weights run unchanged in diffusers.

# %% tags=["key-figure"]
emb = timestep_embedding(torch.arange(0, 1001), 64)  # (1001, 64)
fig, ax = figure(figsize=(9, 3))
ax.imshow(emb.T, aspect="auto", cmap="RdBu", interpolation="nearest")
ax.set(xlabel="t", ylabel=tr(en="component", fr="composante"),
       title=tr(en="sinusoidal embedding of t (64 components)", fr="codage sinusoïdal de t (64 composantes)"))
fig.tight_layout()

# %% [markdown] lang="fr"
# ## 2. Le bloc résiduel
#
# La brique de base du U-Net (Ho et al. 2020, annexe B ; le `ResnetBlock2D` de diffusers, dont il reprend
# les noms de couches) : normalisation de groupe, activation SiLU, convolution ; on **ajoute le codage du
# temps** (le même décalage pour tous les pixels d'un canal) ; encore normalisation, SiLU, convolution ; et
# l'on ajoute l'entrée, passée par une convolution 1 × 1 si le nombre de canaux change (la connexion
# résiduelle, qui laisse passer le signal et le gradient).
#
# ### ✏️ Exercice 1 — le passage avant d'un `ResBlock`
#
# Écrivez `my_resblock(block, x, emb)` avec les couches du bloc, qui portent les noms de diffusers :
# `block.norm1`, `block.conv1`, `block.time_emb_proj` (une couche linéaire), `block.norm2`, `block.conv2` et
# `block.conv_shortcut` (la convolution 1 × 1 du raccourci, ou l'identité quand le nombre de canaux ne
# change pas : appelez-la dans tous les cas).
#
# <details><summary>Indice</summary>
#
# `F.silu` est l'activation. Le codage `(B, C)` doit devenir `(B, C, 1, 1)` pour s'ajouter à chaque pixel :
# `[:, :, None, None]`.
# </details>
#
# Bloqué ? `hint("resblock")` donne l'idée ; `hint("resblock", 2)`, la formule ; `hint("resblock", 3)`, le code.

# %% [markdown] lang="en"
# ## 2. The residual block
#
# The U-Net's basic brick (Ho et al. 2020, Appendix B; diffusers' `ResnetBlock2D`, whose layer names it
# keeps): group normalisation, SiLU activation, convolution; **add the time encoding** (the same shift for
# every pixel of a channel); again normalisation, SiLU, convolution; and add the input, through a 1 × 1
# convolution if the number of channels changes (the residual connection, which lets signal and gradient
# through).
#
# ### ✏️ Exercise 1 — a `ResBlock`'s forward pass
#
# Write `my_resblock(block, x, emb)` with the block's layers, which bear diffusers' names: `block.norm1`,
# `block.conv1`, `block.time_emb_proj` (a linear layer), `block.norm2`, `block.conv2` and `block.conv_shortcut`
# (the shortcut's 1 × 1 convolution, or the identity when the number of channels does not change: call it
# in every case).
#
# <details><summary>Hint</summary>
#
# `F.silu` is the activation. The encoding `(B, C)` must become `(B, C, 1, 1)` to be added to every pixel:
# `[:, :, None, None]`.
# </details>
#
# Stuck? `hint("resblock")` gives the idea; `hint("resblock", 2)` the formula; `hint("resblock", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_resblock(block, x, emb):
    """conv1(silu(norm1(x))) + time_emb_proj(silu(emb)), then conv2(silu(norm2(h))), plus conv_shortcut(x) (Ho et al. 2020, App. B)."""
    # BEGIN SOLUTION
    # HINT[en]: two norm → silu → conv stages, the time shift in between, the skip at the end
    # HINT[fr]: deux étages norm → silu → conv, le décalage du temps entre les deux, le saut à la fin
    h = block.conv1(F.silu(block.norm1(x)))  # (B, C_out, H, W)
    h = h + block.time_emb_proj(F.silu(emb))[:, :, None, None]  # one shift per channel
    h = block.conv2(F.silu(block.norm2(h)))
    return h + block.conv_shortcut(x)
    # END SOLUTION


check_resblock(my_resblock)

# %% [markdown] lang="fr"
# ## 3. Le « U » : descendre, remonter, se souvenir
#
# Les *downsamplers* (« un entonnoir », disent les diapositives) divisent la résolution par deux à chaque
# niveau : le réseau voit de plus en plus large et de moins en moins fin. Les *upsamplers* font le chemin
# inverse. Tout cela se passe **à l'intérieur d'un seul appel** du U-Net : chaque étape de débruitage refait
# toute la descente et toute la remontée. La diapositive *Downsamplers* dit qu'ils réduisent la résolution
# « tout au long du processus de génération » : ce n'est pas le cas, la résolution ne baisse pas d'une étape
# à l'autre (voir `ERRATA.md`). Pour ne pas perdre les détails en route, ce que la descente a calculé est **mis de côté**, puis
# concaténé à la remontée au niveau de même résolution : ce sont les connexions de saut, les barres
# horizontales du « U ».
#
# Dans l'ordre où les données les traversent, les pièces et leurs classes diffusers :
# - `conv_in` : une convolution 3 × 3, des 4 canaux du latent aux $C_0$ canaux du premier niveau ;
# - `down_blocks[i]`, un niveau de la descente : `layers_per_block` blocs résiduels (`ResnetBlock2D`),
#   chacun suivi d'un bloc d'attention (`Transformer2DModel`, section 4), puis, sauf au dernier niveau, un
#   *downsampler* (`Downsample2D`, une convolution de pas 2). Avec attention, diffusers appelle ce niveau
#   `CrossAttnDownBlock2D` ; sans, `DownBlock2D` ;
# - `mid_block`, au fond du « U » : bloc résiduel, attention, bloc résiduel (`UNetMidBlock2DCrossAttn`) ;
# - `up_blocks[i]`, la remontée (`CrossAttnUpBlock2D` ou `UpBlock2D`) : **un bloc résiduel de plus** par
#   niveau qu'à la descente, chacun précédé d'une concaténation, puis un *upsampler* (`Upsample2D` :
#   agrandissement au plus proche voisin, puis convolution), sauf au dernier niveau ;
# - `conv_norm_out`, SiLU et `conv_out`, qui reviennent aux 4 canaux du bruit prédit.
#
# Chaque bloc résiduel reçoit en plus le vecteur de conditionnement : le codage du temps
# (`time_embedding`, section 1), auquel s'ajoute un résumé du prompt (`add_embedding`, section 4).
#
# Voici le U-Net du cours (`course.shipped.UNET`, celui que la leçon 05 entraîne sur des latents
# 8 × 8 × 4), parcouru bloc par bloc : la classe diffusers de chaque bloc (lue dans la configuration
# qu'écrit l'export de la leçon 05), la forme de sa sortie et son nombre de paramètres. Le prompt est un lot
# de 2 phrases complétées à la longueur pleine du tokenizer, 32 tokens, d'états de largeur 128 (la sortie
# du CLIP de la leçon 03). Rien n'est entraîné ici : des poids et des états aléatoires suffisent pour voir la
# forme du réseau.

# %% [markdown] lang="en"
# ## 3. The "U": going down, coming up, remembering
#
# Downsamplers ("a funnel", the slides say) halve the resolution at each level: the network sees wider and
# coarser. Upsamplers go the other way. All of this happens **inside a single call** of the U-Net: every
# denoising step runs the whole way down and the whole way up again. The slide *Downsamplers* says they reduce
# the resolution "throughout the generation process" (« tout au long du processus de génération »): they do
# not, the resolution does not fall from one step to the next (see `ERRATA.md`). Not to lose details on the way, what the way down computed is **set
# aside**, then concatenated on the way up at the level of the same resolution: the skip connections, the
# horizontal bars of the "U".
#
# In the order data flows through them, the pieces and their diffusers classes:
# - `conv_in`: a 3 × 3 convolution, from the latent's 4 channels to the first level's $C_0$;
# - `down_blocks[i]`, one level of the way down: `layers_per_block` residual blocks (`ResnetBlock2D`), each
#   followed by an attention block (`Transformer2DModel`, section 4), then, except at the last level, a
#   downsampler (`Downsample2D`, a stride-2 convolution). With attention, diffusers calls such a level
#   `CrossAttnDownBlock2D`; without, `DownBlock2D`;
# - `mid_block`, at the bottom of the "U": residual block, attention, residual block (`UNetMidBlock2DCrossAttn`);
# - `up_blocks[i]`, the way up (`CrossAttnUpBlock2D` or `UpBlock2D`): **one more residual block** per level
#   than on the way down, each after a concatenation, then an upsampler (`Upsample2D`: nearest-neighbour
#   enlargement, then a convolution), except at the last level;
# - `conv_norm_out`, SiLU and `conv_out`, back to the 4 channels of the predicted noise.
#
# Every residual block also receives the conditioning vector: the time encoding (`time_embedding`,
# section 1), to which a summary of the prompt is added (`add_embedding`, section 4).
#
# Here is the course's U-Net (`course.shipped.UNET`, the one lesson 05 trains on 8 × 8 × 4 latents),
# walked through block by block: each block's diffusers class (read from the config that lesson 05's export
# writes), its output shape and its parameter count. The prompt is a batch of 2 sentences padded to the
# tokenizer's full length, 32 tokens, with states of width 128 (the output of lesson 03's CLIP). Nothing is
# trained here: random weights and states are enough to see the network's shape.

# %%
# NBVAL_CHECK_OUTPUT
from course.diffusers_format import unet_to_diffusers

unet = UNet(UNET)
x = torch.randn(2, 4, 8, 8)
t = torch.tensor([10, 900])
context = torch.randn(2, MAX_LENGTH, 128)  # 2 prompts at the tokenizer's full length, states of width 128
config = unet_to_diffusers(UNET, sample_size=8)  # the UNet2DConditionModel config the export writes (lesson 05)
classes = {"conv_in": "Conv2d", "mid_block": config["mid_block_type"], "conv_out": "Conv2d"}
classes |= {f"down_blocks[{i}]": name for i, name in enumerate(config["down_block_types"])}
classes |= {f"up_blocks[{i}]": name for i, name in enumerate(config["up_block_types"])}
rows = unet.describe(x, t, context)
total = sum(p.numel() for p in unet.parameters())
header = (tr(en="block", fr="bloc"), tr(en="diffusers class", fr="classe diffusers"), tr(en="output shape", fr="forme de sortie"), tr(en="parameters", fr="paramètres"))
print(f"{header[0]:<15} {header[1]:<25} {header[2]:<16} {header[3]:>10}")
for name, shape, params in rows:
    print(f"{name:<15} {classes[name]:<25} {str(shape):<16} {thousands(params):>10}")
print(f"{'time_embedding, add_embedding, conv_norm_out':<57} {thousands(total - sum(r[2] for r in rows)):>10}")
print(f"{'total':<57} {thousands(total):>10}")

# %% [markdown] lang="fr"
# ### La pile des connexions de saut
#
# Pourquoi un bloc résiduel de plus à la remontée ? Parce que la descente met de côté plus de tenseurs
# qu'elle n'a de blocs résiduels : la sortie de `conv_in`, celle de chaque bloc résiduel (suivi de son
# attention), et celle de chaque *downsampler*. À chaque résolution, cela fait `layers_per_block + 1`
# tenseurs : celui qui y arrive (la sortie de `conv_in` tout en haut, celle du *downsampler* plus bas), puis
# un par bloc résiduel. Tout ce qui a été calculé à une résolution repasse ainsi à la remontée, y compris
# l'entrée à peine transformée. À la remontée, chaque bloc résiduel reprend le dernier tenseur posé sur la
# pile et le concatène à son entrée : il en faut `layers_per_block + 1` par niveau pour vider la pile, et le
# dernier repris à chaque niveau est celui qui y était arrivé — en haut, la sortie de `conv_in`.
#
# La cellule refait ce trajet à la main avec les blocs du U-Net, affiche la pile et ce que chaque bloc de
# la remontée y reprend, et vérifie que l'on retrouve ce que calcule `unet` (juste avant `conv_norm_out` :
# `conv_out` part de zéro, le réseau non entraîné prédit $\hat\varepsilon = 0$).

# %% [markdown] lang="en"
# ### The stack of skip connections
#
# Why one more residual block on the way up? Because the way down sets aside more tensors than it has
# residual blocks: the output of `conv_in`, that of every residual block (followed by its attention), and
# that of every downsampler. At each resolution that makes `layers_per_block + 1` tensors: the one that
# arrives there (`conv_in`'s output at the top, a downsampler's lower down), then one per residual block.
# So everything computed at a resolution comes back on the way up, the barely transformed input included.
# On the way up, each residual block takes the last tensor put on the stack and concatenates it to its
# input: it takes `layers_per_block + 1` of them per level to empty the stack, and the last one taken at
# each level is the one that arrived there — at the top, `conv_in`'s output.
#
# The cell walks that path by hand with the U-Net's blocks, prints the stack and what each block of the way
# up takes from it, and checks that we get what `unet` computes (just before `conv_norm_out`: `conv_out`
# starts at zero, the untrained network predicts $\hat\varepsilon = 0$).

# %%
# NBVAL_CHECK_OUTPUT
seen = []
hook = unet.conv_norm_out.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
with torch.no_grad():
    unet(x, t, context)
    hook.remove()
    emb = unet.time_embedding(timestep_embedding(t - 1, unet.time_dim)) + unet.add_embedding(context)  # (B, 4·C0)
    h = unet.conv_in(x)
    stack = [("conv_in", h)]
    for i, block in enumerate(unet.down_blocks):
        h, pushed = block(h, emb, context, None)
        with_attention = tr(en=" + attentions", fr=" + attention") if block.attentions is not None else ""
        names = [f"down_blocks[{i}].resnets[{j}]{with_attention}" for j in range(len(block.resnets))]
        names += [f"down_blocks[{i}].downsamplers[0]"] if block.downsamplers is not None else []
        stack += list(zip(names, pushed))
    print(tr(en="set aside on the way down:", fr="mis de côté à la descente :"))
    width = max(len(name) for name, _ in stack)
    for name, s in stack:
        print(f"  {name:<{width}} {tuple(s.shape[1:])}")
    h = unet.mid_block(h, emb, context, None)
    print(tr(en="taken back on the way up (the most recent first):", fr="repris à la remontée (le plus récent d'abord) :"))
    for i, block in enumerate(unet.up_blocks):
        for j, resnet in enumerate(block.resnets):
            name, skip = stack.pop()
            print(f"  up_blocks[{i}].resnets[{j}]" + tr(en=": ", fr=" : ") + f"h {tuple(h.shape[1:])} + {name} {tuple(skip.shape[1:])}")
            h = resnet(torch.cat([h, skip], dim=1), emb)
            h = block.attentions[j](h, context) if block.attentions is not None else h
        h = block.upsamplers[0](h) if block.upsamplers is not None else h
gap = (h - seen[0]).abs().max().item()
within = "< 1e-5" if gap < 1e-5 else f"= {gap:.1e}"
print(tr(en=f"left on the stack: {len(stack)}; by hand vs unet: max |difference| {within}",
         fr=f"restés sur la pile : {len(stack)} ; à la main / unet : max |écart| {within}"))

# %% [markdown] lang="fr"
# Et où sont les paramètres ? Regroupons-les d'après leurs noms, ceux de diffusers : les blocs résiduels
# (`resnets`), la self-attention (`attn1`), la cross-attention (`attn2`), le *feed-forward* GEGLU (`ff`),
# les projections et normalisations des blocs d'attention, les *downsamplers* et *upsamplers*, et le
# reste.

# %% [markdown] lang="en"
# And where are the parameters? Let us group them by their names, diffusers' names: the residual blocks
# (`resnets`), self-attention (`attn1`), cross-attention (`attn2`), the GEGLU feed-forward (`ff`), the
# attention blocks' projections and normalisations, the downsamplers and upsamplers, and the rest.

# %%
# NBVAL_CHECK_OUTPUT
def part(name: str) -> str:
    for key, label in ((".resnets.", "resnets (ResnetBlock2D)"), (".attn1.", tr(en="attn1: self-attention", fr="attn1 : self-attention")),
                       (".attn2.", tr(en="attn2: cross-attention", fr="attn2 : cross-attention")), (".ff.", tr(en="ff: GEGLU feed-forward", fr="ff : feed-forward GEGLU")),
                       (".attentions.", tr(en="proj_in, proj_out, norms", fr="proj_in, proj_out, normalisations")), ("samplers.", "downsamplers, upsamplers")):
        if key in name:
            return label
    top = name.split(".")[0]  # time_embedding, add_embedding, conv_in, conv_norm_out, conv_out
    return top if top in ("time_embedding", "add_embedding") else "conv_in, conv_norm_out, conv_out"


parts = {}
for name, p in unet.named_parameters():
    parts[part(name)] = parts.get(part(name), 0) + p.numel()
width = max(len(label) for label in parts)
for label, n in parts.items():
    print(f"{label:<{width}} {thousands(n):>10}  {percent(n / total):>4}")

# %%
fig, ax = figure(figsize=(7, 3))
ax.barh(list(parts), [v / 1e6 for v in parts.values()])
ax.invert_yaxis()
ax.set(xlabel=tr(en="millions of parameters", fr="millions de paramètres"), title=tr(en="where the U-Net's parameters are", fr="où sont les paramètres du U-Net"))
fig.tight_layout()

# %% [markdown] lang="fr"
# ### ✏️ Exercice 2 — assembler un niveau de la descente
#
# La cellule de la pile appelait chaque niveau d'un seul coup : `block(h, emb, context, None)`. À vous d'en écrire
# l'intérieur. `my_down_level(level, h, emb, context, mask)` reçoit un niveau, `level = unet.down_blocks[i]`, et
# renvoie `(h, skips)` : la sortie du niveau, et la liste de ce qu'il met de côté pour la remontée, dans
# l'ordre. Ses pièces :
# - `level.resnets`, ses blocs résiduels, qui s'appellent `resnet(h, emb)` ;
# - `level.attentions`, un bloc d'attention par bloc résiduel (section 4), qui s'appelle
#   `attention(h, context, mask)` ; `None` pour un niveau sans attention ;
# - `level.downsamplers`, une liste qui contient le *downsampler*, ou `None` au dernier niveau.
#
# La pile ci-dessus dit ce qui est mis de côté, et à quel moment. Bloqué ? `hint("down_level")` donne
# l'idée ; `hint("down_level", 2)`, la formule ; `hint("down_level", 3)`, le code.

# %% [markdown] lang="en"
# ### ✏️ Exercise 2 — assembling one level of the way down
#
# The stack's cell called each level as one block: `block(h, emb, context, None)`. Now write what is inside.
# `my_down_level(level, h, emb, context, mask)` receives a level, `level = unet.down_blocks[i]`, and returns
# `(h, skips)`: the level's output, and the list of what it sets aside for the way up, in order. Its pieces:
# - `level.resnets`, its residual blocks, called as `resnet(h, emb)`;
# - `level.attentions`, one attention block per residual block (section 4), called as
#   `attention(h, context, mask)`; `None` for a level without attention;
# - `level.downsamplers`, a list holding the downsampler, or `None` at the last level.
#
# The stack above tells what is set aside, and when. Stuck? `hint("down_level")` gives the idea;
# `hint("down_level", 2)` the formula; `hint("down_level", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_down_level(level, h, emb, context, mask):
    """One level of the way down → (h, skips): each resnet, then its attention if any, leaves a skip; then the downsampler, if any, leaves one too."""
    # BEGIN SOLUTION
    # HINT[en]: a loop over the level's resnets that fills a list, then the downsampler; mind the levels whose parts are None
    # HINT[fr]: une boucle sur les resnets du niveau qui remplit une liste, puis le downsampler ; attention aux niveaux dont des pièces valent None
    skips = []
    for i, resnet in enumerate(level.resnets):
        h = resnet(h, emb)
        if level.attentions is not None:
            h = level.attentions[i](h, context, mask)
        skips.append(h)  # after the attention: what the way up will concatenate
    if level.downsamplers is not None:
        h = level.downsamplers[0](h)
        skips.append(h)
    return h, skips
    # END SOLUTION


check_down_level(my_down_level)

# %% [markdown] lang="fr"
# Faisons tourner tout le U-Net avec vos niveaux. La cellule réécrit en entier `UNet.forward`
# (le codage du temps et le résumé du prompt, `conv_in`, la descente, `mid_block`, la remontée, la sortie), en
# appelant votre `my_down_level` à la place de chaque `down_blocks[i]`. Elle le fait sur le modèle livré, que
# la leçon 05 a entraîné et qui ne prédit donc plus $\hat\varepsilon = 0$, puis compare son $\hat\varepsilon$ à
# celui du modèle. Si votre niveau n'est pas prêt, une ligne le dit, et c'est celui du cours qui tourne.

# %% [markdown] lang="en"
# Let us run the whole U-Net with your levels. The cell writes out `UNet.forward` in full (the time encoding
# and the prompt's summary, `conv_in`, the way down, `mid_block`, the way up, the output), calling your
# `my_down_level` in place of every `down_blocks[i]`. It does so on the shipped model, which lesson 05 trained
# and which therefore no longer predicts $\hat\varepsilon = 0$, then compares its $\hat\varepsilon$ with the
# model's. If your level is not ready, one line says so, and the course's runs instead.

# %%
down_level = choose("down_level", my_down_level, check_down_level, lambda level, h, emb, context, mask: level(h, emb, context, mask))
model = load_unet()  # the shipped U-Net (trained in lesson 05); sections 4 and 5 use it too


def forward(unet, x, t, context, level_fn):
    """UNet.forward written out, with level_fn(level, h, emb, context, mask) for every level of the way down."""
    emb = unet.time_embedding(timestep_embedding(t - 1, unet.time_dim)) + unet.add_embedding(context)  # (B, 4·C0)
    h = unet.conv_in(x)
    skips = [h]
    for level in unet.down_blocks:
        h, new = level_fn(level, h, emb, context, None)
        skips += new
    h = unet.mid_block(h, emb, context, None)
    for level in unet.up_blocks:
        h = level(h, skips, emb, context, None)  # takes its skips back from the end of the list
    return unet.conv_out(F.silu(unet.conv_norm_out(h)))


with torch.no_grad():
    eps_yours, eps_model = forward(model, x, t, context, down_level), model(x, t, context)
gap, size = (eps_yours - eps_model).abs().max().item(), eps_model.abs().mean().item()
within = "< 1e-5" if gap < 1e-5 else f"= {gap:.1e}"
levels = tr(en="your levels", fr="vos niveaux") if down_level is my_down_level else tr(en="the course's levels", fr="les niveaux du cours")
print(tr(en=f"ε̂ {tuple(eps_yours.shape)} through {levels} vs model(x, t, context): max |difference| {within} (mean |ε̂| = {size:.2f}: not zero)",
         fr=f"ε̂ {tuple(eps_yours.shape)} par {levels} / model(x, t, context) : max |écart| {within} (moyenne de |ε̂| = {size:.2f} : pas zéro)"))

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
# Dans le U-Net, les deux vivent dans un petit transformer posé sur l'image, le `Transformer2DModel` de
# diffusers (le *SpatialTransformer* de Rombach et al. 2022) : une normalisation de groupe (`norm`) et une
# convolution 1 × 1 (`proj_in`), l'image mise à plat en $H \cdot W$ tokens, puis un `BasicTransformerBlock`
# (`transformer_blocks[0]`) en trois étapes, chacune précédée d'une normalisation et ajoutée à son entrée :
# `attn1`, la self-attention ; `attn2`, la cross-attention ; `ff`, un *feed-forward* à porte, GEGLU
# (Shazeer 2020) — une couche linéaire produit deux moitiés $a$ et $g$ de largeur $4C$, on garde
# $a \odot \mathrm{GELU}(g)$, et une seconde couche ramène à $C$. Enfin `proj_out` (1 × 1) remet l'image en
# forme, et l'on ajoute l'entrée du bloc.
#
# ### Et le remplissage ?
#
# Chaque prompt est complété par des `<pad>` jusqu'à la longueur pleine du tokenizer : 32 tokens ici, 77
# dans Stable Diffusion. Faut-il empêcher les pixels de les regarder ? Stable Diffusion ne le fait pas :
# aucun masque, le U-Net voit toutes les positions, et nous faisons comme lui. Ces positions ne sont
# d'ailleurs pas vides : l'attention causale de CLIP (leçon 03) laisse chaque `<pad>`, placé après toute la
# phrase, la lire en entier ; leurs états portent donc le prompt, eux aussi.
#
# Le masque reste l'outil général pour écarter des clés : c'est lui qui rend l'attention de CLIP causale,
# et `UNet.forward` en accepte un (`context_mask`), même si notre pipeline, comme celui de Stable Diffusion,
# ne masque rien. Il met le score des clés écartées à $-\infty$ avant le softmax, donc leur poids à 0.
# C'est lui que vous écrivez.
#
# ### ✏️ Exercice 3 — la cross-attention masquée
#
# Écrivez `my_cross_attention(q, k, v, key_mask)` : `q` `(B, N, d)` vient des pixels, `k` et `v`
# `(B, L, d)` des mots, `key_mask` `(B, L)` vaut `True` pour les tokens que l'on garde.
#
# <details><summary>Indice</summary>
#
# Les scores `(B, N, L)` ont un axe de plus que le masque `(B, L)`, qui porte sur les clés, le dernier axe :
# donnez-lui un axe pour les requêtes avant de l'appliquer (`masked_fill`), là où il vaut `False`. Le softmax
# se prend sur ce même dernier axe.
# </details>
#
# Bloqué ? `hint("cross_attention")` donne l'idée ; `hint("cross_attention", 2)`, la formule ;
# `hint("cross_attention", 3)`, le code.

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
# In the U-Net both live in a small transformer laid over the image, diffusers' `Transformer2DModel`
# (Rombach et al. 2022's *SpatialTransformer*): a group normalisation (`norm`) and a 1 × 1 convolution
# (`proj_in`), the image flattened into $H \cdot W$ tokens, then a `BasicTransformerBlock`
# (`transformer_blocks[0]`) in three steps, each after a normalisation and added to its input: `attn1`,
# self-attention; `attn2`, cross-attention; `ff`, a gated feed-forward, GEGLU (Shazeer 2020) — a linear
# layer makes two halves $a$ and $g$ of width $4C$, we keep $a \odot \mathrm{GELU}(g)$, and a second layer
# brings it back to $C$. Finally `proj_out` (1 × 1) puts the image back in shape, and the block's input is
# added.
#
# ### What about padding?
#
# Each prompt is padded with `<pad>` up to the tokenizer's full length: 32 tokens here, 77 in Stable
# Diffusion. Should pixels be kept from looking at them? Stable Diffusion does not do it: no mask, the U-Net
# sees every position, and we do as it does. Those positions are not empty either: CLIP's causal attention
# (lesson 03) lets each `<pad>`, placed after the whole sentence, read all of it; so their states carry the
# prompt too.
#
# The mask is still the general tool to set keys aside: it is what makes CLIP's attention causal, and
# `UNet.forward` accepts one (`context_mask`), even though our pipeline, like Stable Diffusion's, sets nothing
# aside with it. It sets the scores of the keys set aside to $-\infty$ before the softmax, hence their weight
# to 0. That is what you write.
#
# ### ✏️ Exercise 3 — masked cross-attention
#
# Write `my_cross_attention(q, k, v, key_mask)`: `q` `(B, N, d)` comes from the pixels, `k` and `v`
# `(B, L, d)` from the words, `key_mask` `(B, L)` is `True` for the tokens kept.
#
# <details><summary>Hint</summary>
#
# The scores `(B, N, L)` have one axis more than the mask `(B, L)`, which is about the keys, the last axis:
# give it an axis for the queries before applying it (`masked_fill`), where it is `False`. The softmax is
# taken over that same last axis.
# </details>
#
# Stuck? `hint("cross_attention")` gives the idea; `hint("cross_attention", 2)` the formula;
# `hint("cross_attention", 3)` the code.

# %%
# NBVAL_CHECK_OUTPUT
def my_cross_attention(q, k, v, key_mask):
    """softmax(q·kᵀ/√d, masked keys → −∞)·v with q (B, N, d), k and v (B, L, d), key_mask (B, L)."""
    # BEGIN SOLUTION
    # HINT[en]: scores (B, N, L), masked, softmax over the keys, times the values
    # HINT[fr]: les scores (B, N, L), masqués, un softmax sur les clés, multiplié par les valeurs
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, N, L)
    scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
    return scores.softmax(dim=-1) @ v  # (B, N, d)
    # END SOLUTION


check_cross_attention(my_cross_attention)

# %% [markdown] lang="fr"
# ### Votre attention dans le U-Net
#
# Votre fonction passe le test : confions-lui le modèle. `use(cross_attention=…)` la vérifie une dernière
# fois (ici enveloppée dans `counted`, qui compte ses appels), puis chaque couche d'attention du U-Net
# l'appelle, en self-attention comme en cross-attention, toutes les têtes d'un coup : chaque paire
# (image, tête) devient une ligne de son lot. La cellule fait tourner le modèle livré sur deux vrais prompts,
# le remplissage écarté par `context_mask` pour que votre masque serve, et compare $\hat\varepsilon$ à celui
# qu'on obtient avec l'attention du cours. Le `use()` final rend partout sa place à l'attention du cours : la suite de la leçon
# enregistre des poids d'attention, ce que fait la forme écrite du cours. Si votre fonction n'est pas prête,
# `use` le dit en une ligne et le modèle garde l'attention du cours.

# %% [markdown] lang="en"
# ### Your attention inside the U-Net
#
# Your function passes the test: let us hand it the model. `use(cross_attention=…)` checks it one last time
# (wrapped here in `counted`, which counts its calls), then every attention layer of the U-Net calls it,
# self-attention as well as cross-attention, all heads at once: each (image, head) pair becomes one row of
# its batch. The cell runs the shipped model on two real prompts, the padding set aside by `context_mask` so
# that your mask is used, and compares $\hat\varepsilon$ with what the course's attention gives. The final `use()` puts the course's
# attention back everywhere: the rest of the lesson records attention weights, which the course's written-out
# form does. If your function is not ready, `use` says so in one line and the model keeps the course's
# attention.

# %%
# NBVAL_CHECK_OUTPUT
calls = []


def counted(q, k, v, key_mask):
    """Your attention, noting how many (image, head) pairs each call receives."""
    calls.append(q.shape[0])
    return my_cross_attention(q, k, v, key_mask)


use_prompts = ["a red star", "un petit carré vert en bas"]
use_states, _ = text_states(use_prompts)  # (2, 32, 128)
words_only = encode(use_prompts)[1]  # (2, 32): True at <bos>, the words and <eos>; the padding set aside
with torch.no_grad():
    eps_course = model(x, t, use_states, words_only)
    use(cross_attention=counted)
    calls.clear()  # use's own check called it once
    eps_yours = model(x, t, use_states, words_only)
    use()  # the course's attention again, everywhere
layers = sum(1 for m in model.modules() if isinstance(m, Attention))
gap = (eps_yours - eps_course).abs().max().item()
within = "< 1e-5" if gap < 1e-5 else f"= {gap:.1e}"
if calls:
    print(tr(en=f"your attention ran {len(calls)} times (the model's {layers} attention layers, self and cross), on {calls[0]} (image, head) pairs each; "
             f"ε̂ with yours vs with the course's: max |difference| {within}",
             fr=f"votre attention a tourné {len(calls)} fois (les {layers} couches d'attention du modèle, self-attention et cross-attention), "
             f"sur {calls[0]} paires (image, tête) à chaque fois ; ε̂ avec la vôtre / avec celle du cours : max |écart| {within}"))
else:
    print(tr(en="the course's attention ran: yours is not ready yet", fr="c'est l'attention du cours qui a tourné : la vôtre n'est pas encore prête"))

# %% [markdown] lang="fr"
# Notre `course.attention.attention` fait la même chose que votre fonction, avec des têtes multiples ;
# c'est exactement ce que calcule la fonction optimisée de PyTorch, `F.scaled_dot_product_attention`. Le module d'attention du
# U-Net, `course.unet.Attention` (l'`Attention` de diffusers : `to_q`, `to_k`, `to_v` sans biais, puis
# `to_out[0]`), appelle d'ordinaire la fonction de PyTorch, qui ne garde pas les poids. Avec
# `record = True`, il prend la forme écrite, la nôtre, et garde les poids $(B, \text{têtes}, L_q, L_k)$ dans
# `.weights` : c'est ainsi que la section 5 dessinera ses cartes. Les deux chemins donnent la même sortie ;
# la cellule compte aussi les cross-attentions de notre U-Net, celles dont la section 5 enregistrera les
# poids :

# %% [markdown] lang="en"
# Our `course.attention.attention` does the same as your function, with multiple heads; it is exactly
# what PyTorch's optimised `F.scaled_dot_product_attention` computes. The U-Net's attention module, `course.unet.Attention`
# (diffusers' `Attention`: bias-free `to_q`, `to_k`, `to_v`, then `to_out[0]`), usually calls PyTorch's
# function, which does not keep the weights. With `record = True` it takes the written-out form, ours, and
# keeps the weights $(B, \text{heads}, L_q, L_k)$ in `.weights`: that is how section 5 will draw its maps.
# Both paths give the same output; the cell also counts our U-Net's cross-attentions, those whose weights
# section 5 will record:

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
q, k, v = torch.randn(2, 4, 64, 32, generator=g), torch.randn(2, 4, 12, 32, generator=g), torch.randn(2, 4, 12, 32, generator=g)
mask = torch.ones(2, 1, 1, 12, dtype=torch.bool)
mask[0, ..., 7:] = False  # the first prompt's last 5 keys set aside
gap = (attention(q, k, v, mask) - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max().item()
print(f"max |course.attention − F.scaled_dot_product_attention| {'< 1e-5' if gap < 1e-5 else f'= {gap:.1e}'}")

cross = Attention(32, heads=4, context_dim=16)  # queries from 32-channel pixels, keys and values from 16-wide states
pixels, words = torch.randn(2, 64, 32, generator=g), torch.randn(2, 12, 16, generator=g)
with torch.no_grad():
    fast = cross(pixels, words)  # F.scaled_dot_product_attention, no weights kept
    cross.record = True
    written_out = cross(pixels, words)  # course.attention's form, weights kept
gap = (fast - written_out).abs().max().item()
within, weights, row_sum = "< 1e-5" if gap < 1e-5 else f"= {gap:.1e}", tuple(cross.weights.shape), cross.weights.sum(-1).mean().item()
print(tr(en=f"Attention, record=False vs record=True: max |difference| {within}; weights {weights} (B, heads, pixels, tokens), each row sums to {row_sum:.1f}",
         fr=f"Attention, record=False / record=True : max |écart| {within} ; poids {weights} (B, têtes, pixels, tokens), "
         f"chaque ligne a pour somme {row_sum:.1f}"))
cross_blocks = [m for m in unet.modules() if isinstance(m, TransformerBlock) and m.attn2 is not None]
widths = sorted({b.attn2.to_q.in_features for b in cross_blocks})
print(tr(en=f"cross-attentions in the U-Net: {len(cross_blocks)} (every TransformerBlock with an attn2), at {widths} channels",
         fr=f"cross-attentions du U-Net : {len(cross_blocks)} (chaque TransformerBlock doté d'un attn2), à {widths} canaux"))

# %% [markdown] lang="fr"
# ### Un second chemin pour le texte : le résumé du prompt
#
# La cross-attention laisse chaque pixel aller chercher ses mots. Notre U-Net ajoute un chemin plus direct :
# un **résumé** du prompt, un seul vecteur par phrase, qui **s'ajoute au codage du temps**. Chaque bloc
# résiduel reçoit alors, en plus de « à quel point l'image est bruitée », un « de quoi parle le prompt »,
# le même pour tous les pixels.
#
# Ce résumé se calcule par une *attention de regroupement* (*attention pooling*, reprise de DeepFloyd IF) :
# une seule requête — la moyenne des états du prompt, plus un vecteur appris — consulte tous les états,
# et elle-même ; une couche linéaire porte ensuite la réponse à la taille du codage du temps, entre deux
# normalisations. C'est le `TextTimeEmbedding` de diffusers (`unet.add_embedding`, option
# `addition_embed_type="text"`). Stable Diffusion 1.x n'a que la cross-attention. SDXL ajoute bien au temps
# un résumé, l'état final de son CLIP (Podell et al. 2023, §2.1), mais il faut alors le passer au U-Net à
# part, ce que le `StableDiffusionPipeline` de diffusers ne fait pas. Notre résumé, lui, ne demande que les
# états que reçoit déjà la cross-attention : le pipeline standard fait tourner notre modèle tel quel
# (leçon 05).
#
# Pourquoi pas, tout simplement, l'état de `<eos>`, celui que la perte contrastive de CLIP a entraîné à
# résumer la phrase (leçon 03) ? Un U-Net précédent du cours le prenait, et la leçon 05 raconte ce que ce
# résumé-là avait apporté. Mais il faut savoir où est `<eos>`, et le U-Net, qui ne reçoit ni masque ni
# identifiants de tokens, ne le sait pas : le résumé par attention, lui, se calcule à partir des seuls états.
#
# Refaisons ce calcul pas à pas, avec les couches du modèle livré (entraîné à la leçon 05) et les états
# du CLIP livré, sur deux vrais prompts : la cellule vérifie qu'elle retrouve `add_embedding`, puis montre
# sur quelles positions se porte la requête, moyenne sur les têtes.

# %% [markdown] lang="en"
# ### A second path for the text: the prompt's summary
#
# Cross-attention lets each pixel fetch its words. Our U-Net adds a more direct path: a **summary** of the
# prompt, one vector per sentence, **added to the time encoding**. Every residual block then receives,
# besides "how noisy the image is", a "what the prompt is about", the same for every pixel.
#
# The summary is computed by *attention pooling* (taken from DeepFloyd IF): a single query — the mean of
# the prompt's states, plus a learned vector — consults every state, and itself; a linear layer then brings
# the answer to the size of the time encoding, between two normalisations. It is diffusers'
# `TextTimeEmbedding` (`unet.add_embedding`, option `addition_embed_type="text"`). Stable Diffusion 1.x has
# only cross-attention. SDXL does add a summary to the time, its CLIP's final state (Podell et al. 2023,
# §2.1), but then it must be passed to the U-Net separately, which diffusers' `StableDiffusionPipeline` does
# not do. Our summary only needs the states cross-attention already receives: the stock pipeline runs our
# model as it is (lesson 05).
#
# Why not simply the state of `<eos>`, the one CLIP's contrastive loss trained to summarise the sentence
# (lesson 03)? A previous U-Net of the course took it, and lesson 05 tells what that summary had bought. But
# one must know where `<eos>` is, and the U-Net, which receives neither a mask nor token ids, does not: the
# summary by attention is computed from the states alone.
#
# Let us redo the computation step by step, with the layers of the shipped model (trained in lesson 05) and
# the states of the shipped CLIP, on two real prompts: the cell checks that it gets `add_embedding` back,
# then shows which positions the query goes to, averaged over heads.

# %%
pooling = model.add_embedding  # TextPooling: norm1 → pool (AttentionPooling) → proj → norm2
pool_prompts = ["a red star", "un petit carré vert en bas"]
states, _ = text_states(pool_prompts)  # (2, 32, 128): the shipped CLIP's states at every position, padding included
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
within, summary_shape, time_shape = "< 1e-5" if gap < 1e-5 else f"= {gap:.1e}", tuple(added.shape[1:]), tuple(model.time_embedding.linear_2.weight.shape[:1])
n_params = thousands(sum(p.numel() for p in pooling.parameters()))
print(tr(en=f"step by step vs model.add_embedding: max |difference| {within}; one summary {summary_shape} per prompt, "
         f"like the time embedding {time_shape}; {n_params} parameters",
         fr=f"pas à pas / model.add_embedding : max |écart| {within} ; un résumé {summary_shape} par prompt, "
         f"comme le codage du temps {time_shape} ; {n_params} paramètres"))
tokenizer = load_tokenizer()
for i, prompt in enumerate(pool_prompts):
    ids, real = encode(prompt)  # (1, 32): the prompt as the U-Net sees it, padding included
    n = int(real.sum())  # <bos>, the words, <eos>
    tokens = tokenizer.convert_ids_to_tokens(ids[0, :n].tolist())
    share = pool_weights[i, :, 0].mean(0)  # (1 + L,): [the query itself, position 0, …, position L − 1]
    print(tr(en=f"{prompt!r}: itself ", fr=f"{prompt!r} : elle-même ") + f"{percent(share[0])} | "
          + " ".join(f"{tr(en=tok, fr=f'« {tok} »')} {percent(share[1 + j])}" for j, tok in enumerate(tokens)) + f" | {L - n} × <pad> {percent(share[1 + n :].sum())}")

# %% [markdown] lang="fr"
# Rien n'oblige la requête à choisir `<eos>`, ni à ignorer le remplissage : elle répartit son poids comme
# l'entraînement le lui a appris. Si les `<pad>` prennent une bonne part, ce n'est pas du gaspillage :
# chacun a lu toute la phrase. Comparez les deux prompts : la répartition change-t-elle avec la langue, ou
# avec le nombre de mots ?

# %% [markdown] lang="en"
# Nothing forces the query to pick `<eos>`, or to ignore the padding: it shares its weight out as training
# taught it to. If the `<pad>` positions take a good part, that is not waste: each of them has read the
# whole sentence. Compare the two prompts: does the share change with the language, or with the number of
# words?

# %% [markdown] lang="fr"
# ## 5. Où regarde le mot « rouge » ?
#
# Une fois le modèle entraîné (c'est l'objet de la leçon 05 ; on utilise ici le modèle livré), on peut
# enregistrer les poids de cross-attention pendant une génération et, pour chaque mot du prompt, afficher
# **quels pixels l'ont consulté** — moyenne sur les têtes, sur les blocs à la résolution 8 × 8 et sur les
# étapes de débruitage. On trouve les cross-attentions en cherchant les `TransformerBlock` qui ont un
# `attn2`, et `record = True` leur fait garder leurs poids.

# %% [markdown] lang="en"
# ## 5. Where does the word "red" look?
#
# Once the model is trained (that is lesson 05's job; here we use the shipped model) we can record the
# cross-attention weights during a generation and, for each word of the prompt, show **which pixels
# consulted it** — averaged over heads, over the blocks at 8 × 8 resolution and over the denoising steps.
# We find the cross-attentions by looking for the `TransformerBlock`s that have an `attn2`, and
# `record = True` makes them keep their weights.

# %%
from course.evaluation import generate
from course.plotting import show_grid

blocks = [m for m in model.modules() if isinstance(m, TransformerBlock) and m.attn2 is not None]
maps = []


def collect(t, z, z0_hat):
    for b in blocks:
        w = b.attn2.weights  # (2B, heads, H·W, L): the unconditional half first, then the prompts
        if w is not None and w.shape[2] == 64:  # the 8 × 8 blocks
            maps.append(w[w.shape[0] // 2 :].mean(1))  # (B, 64, L), heads averaged


for b in blocks:
    b.attn2.record = True
prompts = ["une grande étoile rouge en bas à gauche", "a large blue heart at the top right"]
images = generate(prompts, model, steps=20, guidance=4.0, seed=1, callback=collect)
for b in blocks:
    b.attn2.record, b.attn2.weights = False, None

attn = torch.stack(maps).mean(0)  # (B, 64, L): every position of the prompt, padding included
rows = []
for i, prompt in enumerate(prompts):
    ids, real = encode(prompt)
    n = int(real.sum())  # <bos>, the words, <eos>; the rest is padding
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    words = [(j, tok) for j, tok in enumerate(tokens[:n]) if tok not in ("<bos>", "<eos>", "'", "d", "à", "en", "a", "at", "the", "une")]
    panels = [images[i]] + [attn[i, :, j].view(1, 8, 8).repeat(3, 1, 1) for j, _ in words]
    scaled = [panels[0]] + [2 * (p - p.min()) / (p.max() - p.min() + 1e-8) - 1 for p in panels[1:]]
    show_grid(scaled, [tr(en="generated", fr="image générée")] + [f"« {tok} »" for _, tok in words], ncols=len(scaled), size=1.5, suptitle=prompt)
    share = attn[i].mean(0)  # (L,): the weight each position receives, averaged over the pixels
    rows.append((prompt, tokens, n, share))
    print(tr(en=f"{prompt!r}: <bos> ", fr=f"{prompt!r} : <bos> ") + f"{percent(share[0])}, " + tr(en="words", fr="mots")
          + f" {percent(share[1 : n - 1].sum())}, <eos> {percent(share[n - 1])}, {len(tokens) - n} × <pad> {percent(share[n:].sum())}")
fig, axes = figure(len(rows), 1, figsize=(10, 2.3 * len(rows)), squeeze=False)
for ax, (prompt, tokens, n, share) in zip(axes[:, 0], rows):
    ax.bar(range(len(tokens)), share, color=["C0" if j < n else "C7" for j in range(len(tokens))])  # grey: padding
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
    ax.set(ylabel=tr(en="mean weight", fr="poids moyen"), title=tr(en=f"cross-attention at 8 × 8, per position: {prompt}", fr=f"cross-attention à 8 × 8, par position : {prompt}"))
fig.tight_layout()

# %% [markdown] lang="fr"
# Que regarder ? Sur le U-Net précédent du cours, qui masquait le remplissage et prenait `<eos>` pour
# résumé, les mots de forme et de couleur s'allumaient aux cases où l'objet apparaît, et presque pas
# ailleurs ; les mots de taille et de position s'y allumaient aussi, mais débordaient bien plus sur le reste
# de l'image : « bas », « gauche » ou « grande » parlent de toute la scène, pas seulement de l'objet. Sur
# une scène à un seul objet, ce modèle ne séparait pas « rouge » de « étoile » : il se servait de la
# cross-attention pour amener toute la description là où il dessine. Voyez si le modèle livré fait de même.
#
# Les barres disent où va l'attention quand on ne masque plus rien : quelle part prennent `<bos>`, les mots,
# `<eos>` et, en gris, les `<pad>`. Ces colonnes grises ne sont pas des cases vides : chacune porte un état
# qui a lu toute la phrase, par l'attention causale de CLIP. Que les pixels s'y servent n'aurait donc rien
# d'anormal ; Stable Diffusion, lui aussi, voit toujours ses 77 positions. Regardez aussi les images : la
# taille demandée est-elle respectée ? (C'est le juge de la leçon 05 qui mesurera ces erreurs à grande
# échelle.)

# %% [markdown] lang="en"
# What to look at? On the course's previous U-Net, which masked the padding and took `<eos>` as its
# summary, the shape and colour words lit up in the cells where the object appears, and hardly anywhere
# else; the size and position words lit up there too, but spilled much more over the rest of the image:
# "top", "right" or "large" are about the whole scene, not just the object. On a one-object scene that model
# did not separate "red" from "star": it used cross-attention to bring the whole description to where it
# draws. See whether the shipped model does the same.
#
# The bars tell where attention goes when nothing is masked any more: what share `<bos>`, the words,
# `<eos>` and, in grey, the `<pad>` positions take. Those grey columns are not empty cells: each holds a
# state that has read the whole sentence, through CLIP's causal attention. So pixels drawing on them would
# be nothing abnormal; Stable Diffusion, too, always sees its 77 positions. Look at the images too: is the
# requested size respected? (Lesson 05's judge is the one that will measure such errors at scale.)

# %% [markdown] lang="fr"
# ## À retenir
#
# - Le U-Net descend (downsamplers), remonte (upsamplers) et se souvient (connexions de saut) ; la descente
#   met de côté la sortie de `conv_in`, de chaque bloc et de chaque downsampler, d'où un bloc résiduel de
#   plus par niveau à la remontée. Le temps, et le résumé du prompt, entrent dans chaque bloc résiduel par
#   un décalage appris.
# - La self-attention relie les pixels entre eux ; la cross-attention relie les pixels aux mots. Comme
#   dans Stable Diffusion, elle voit toutes les positions du prompt, remplissage compris.
# - Chaque pièce est celle du `UNet2DConditionModel` de diffusers, nom pour nom ; notre attention écrite est
#   exactement celle de PyTorch, et les cartes d'attention montrent les mots se poser sur l'image.
#
# **Et ensuite ?** Leçon 05 : l'espace latent, le décodeur, et l'entraînement texte → image.

# %% [markdown] lang="en"
# ## Key points
#
# - The U-Net goes down (downsamplers), comes up (upsamplers) and remembers (skip connections); the way down
#   sets aside the output of `conv_in`, of every block and of every downsampler, hence one more residual
#   block per level on the way up. Time, and the prompt's summary, enter each residual block as a learned
#   shift.
# - Self-attention links pixels together; cross-attention links pixels to words. As in Stable Diffusion, it
#   sees every position of the prompt, padding included.
# - Every piece is that of diffusers' `UNet2DConditionModel`, name for name; our written-out attention is
#   exactly PyTorch's, and attention maps show words settling on the image.
#
# **Next.** Lesson 05: the latent space, the decoder, and text-to-image training.
