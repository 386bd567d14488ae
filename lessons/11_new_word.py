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
# # 11 — Apprendre un mot nouveau au modèle
#
# > « Des méthodes comme Textual Inversion permettent d'encoder des concepts visuels spécifiques dans l'espace
# > d'embedding textuel, facilitant la génération d'images personnalisées. » — diapositive *Inversion et Édition*
#
# Notre modèle connaît huit formes. Vous possédez une neuvième : le **croissant de lune**, que rien dans ses
# données d'entraînement n'a jamais montré. Vous en avez **8 images**. Peut-on lui apprendre à le dessiner, sur
# commande, dans n'importe quelle couleur et à n'importe quelle place, avec un mot nouveau, `<lune>` ?
#
# 1. **Textual Inversion** (Gal et al. 2023) : on ajoute une ligne à la table des mots de CLIP et on n'entraîne
#    qu'elle, 128 nombres — *exercice 1* : remettre les autres lignes en place après chaque pas ;
# 2. **LoRA** (Hu et al. 2022) : on ajoute aux projections d'attention du U-Net des mises à jour de petit rang —
#    *exercice 2* : leur passe avant ;
# 3. la **comparaison mesurée** : fidélité au concept, liberté de le placer et de le colorer, ce que le modèle
#    oublie, temps et taille des fichiers, jusqu'au réentraînement complet du U-Net.

# %% [markdown] lang="en"
# # 11 — Teaching the model a new word
#
# > "Methods such as Textual Inversion encode specific visual concepts in the text embedding space, making
# > personalised image generation easier." — slide *Inversion et Édition*
#
# Our model knows eight shapes. You own a ninth: the **crescent moon**, which nothing in its training data ever
# showed. You have **8 pictures** of it. Can we teach the model to draw it on command, in any colour and at any place,
# with a new word, `<lune>`?
#
# 1. **Textual inversion** (Gal et al. 2023): add one row to CLIP's word table and train only that row, 128 numbers —
#    *exercise 1*: putting the other rows back after each step;
# 2. **LoRA** (Hu et al. 2022): add low-rank updates to the U-Net's attention projections — *exercise 2*: their forward
#    pass;
# 3. the **measured comparison**: fidelity to the concept, freedom to colour and place it, what the model forgets,
#    time and file size, up to retraining the whole U-Net.

# %%
import copy
import json
import warnings

import torch

from course import checkpoints, current_profile, lora
from course.checks.concept import check_lora_forward, check_restore_rows
from course.captions import FR_SHAPES
from course.concept import INIT_WORD, TOKEN, example_images, example_scenes, heldout, prompt
from course.concept_eval import generate, judge, read
from course.concept_train import ConceptModel, batch_getter, build, concept_loss, example_latents, recipe_for, trainable
from course.ddpm import training_loss
from course.hints import hint  # noqa: F401 (for the exercises: hint("restore_rows"), …)
from course.language import current, num, tr
from course.paths import data_dir
from course.pipeline import TextToImagePipeline
from course.plotting import figure, show_grid
from course.schedules import alphas_cumprod
from course.shipped import betas, load_unet
from course.textual_inversion import TextualInversion, load_textual_inversion, nearest_words, restore_rows, tokenizer_with
from course.tokenizer import backend, encode
from course.train import train
from course.yours import choose, use

P = current_profile()
torch.manual_seed(0)
pipe = TextToImagePipeline(device="cpu")
N = max(8, P.latent_samples // 4)  # held-out prompts per live measurement (the recorded table uses 128 and 256)
STEPS = min(25, P.sample_steps)
W = 2.5  # the guidance of the recorded table
LIVE_STEPS = P.ldm_steps if not P.train_latent else recipe_for("ti").steps  # training steps of the live runs
abar = alphas_cumprod(betas())
lang = current()
print(tr(en=f"profile: {P.name} · {N} prompts per live measurement, {STEPS} sampling steps, live training runs of {LIVE_STEPS} steps",
         fr=f"profil : {P.name} · {N} prompts par mesure, {STEPS} pas d'échantillonnage, entraînements en direct de {LIVE_STEPS} pas"))

# %% [markdown] lang="fr"
# ## 1. Le concept, et ce que le modèle en fait
#
# Les 8 exemples : 4 couleurs, les deux tailles, 8 des 9 cases (jamais à droite au milieu), toujours sur fond blanc.
# Chacun vient avec sa légende, où `<lune>` prend la place du nom — c'est un mot féminin, comme « étoile ».

# %% [markdown] lang="en"
# The 8 examples: 4 colours, both sizes, 8 of the 9 cells (never on the middle right), always on white. Each comes
# with its caption, where `<lune>` takes the noun's place — a feminine word in French, like « étoile ».

# %% tags=["key-figure"]
examples = example_images()
show_grid(list(examples), [prompt(s, lang) for s in example_scenes()], ncols=8, size=1.5,
          suptitle=tr(en="the 8 examples of the new concept", fr="les 8 exemples du nouveau concept"))

# %% [markdown] lang="fr"
# Le tokenizer du modèle ne connaît pas ce mot : il le découpe en `<`, `lune`, `>`, trois inconnus, lus comme
# `<unk>`. Le modèle dessine alors ce que le reste du prompt lui dit, une forme quelconque :

# %% [markdown] lang="en"
# The model's tokenizer does not know the word: it cuts it into `<`, `lune`, `>`, three unknowns read as `<unk>`. The
# model then draws what the rest of the prompt tells it, some shape:

# %%
probe_scenes, probe_prompts = heldout(8, 5)
probe_prompts = [prompt(s, lang) for s in probe_scenes]
print(backend().encode(probe_prompts[0]).tokens)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    base_images = pipe(probe_prompts, num_inference_steps=STEPS, guidance_scale=W, generator=0, sampler="ddim").tensors
print(caught[0].message if caught else "")
show_grid(list(base_images), [f"{p}\n→ {r['shape']}" for p, r in zip(probe_prompts, read(base_images))], ncols=8, size=1.5,
          suptitle=tr(en="the base model, the word unknown (what the reader sees under each image)",
                      fr="le modèle de base, le mot inconnu (sous chaque image, ce que lit le juge)"))

# %% [markdown] lang="fr"
# Sous chaque image, ce que lit le **juge** de cette leçon : l'évaluateur des leçons précédentes n'a jamais vu de
# croissant (il le prend pour un triangle ou un cercle) ; on lui a ajouté une tête qui reconnaît les neuf formes,
# validée sur des rendus neufs, sur leurs allers-retours par l'autoencodeur, et sur les images du modèle de base
# (qui ne contiennent jamais de croissant) :

# %% [markdown] lang="en"
# Under each image, what this lesson's **judge** reads: the evaluator of the previous lessons never saw a crescent
# (it takes it for a triangle or a circle); a head that knows the nine shapes was added to it, validated on fresh
# renders, on their round trips through the autoencoder, and on the base model's images (which never hold a
# crescent):

# %%
reader_metrics = checkpoints.read_manifest(data_dir() / "concept_reader.safetensors")["metrics"]["validation"]
VIEW_NAMES = {"renders": tr(en="renders", fr="rendus"), "round_trips": tr(en="round trips", fr="allers-retours"),
              "noisy_round_trips": tr(en="noisy round trips", fr="allers-retours bruités")}
for view in VIEW_NAMES:
    print(tr(en=f"{VIEW_NAMES[view]:18s} crescents recognised {reader_metrics[view + '_shape_crescents']:.1%} · other shapes taken for one "
                f"{reader_metrics[view + '_crescent_false_alarms']:.1%}",
             fr=f"{VIEW_NAMES[view]:22s} croissants reconnus {num(100 * reader_metrics[view + '_shape_crescents'], '.1f')} % · autres formes prises pour un "
                f"croissant {num(100 * reader_metrics[view + '_crescent_false_alarms'], '.1f')} %"))
print(tr(en=f"base model's images read as a crescent: {reader_metrics['base_model_false_alarms']:.1%}",
         fr=f"images du modèle de base lues comme un croissant : {num(100 * reader_metrics['base_model_false_alarms'], '.1f')} %"))

# %% [markdown] lang="fr"
# ## 2. Textual Inversion : un mot, une ligne
#
# Le texte entre dans le modèle par la table des mots de CLIP, $W \in \mathbb{R}^{V \times D}$ ($V$ mots, $D = 128$).
# L'idée de Gal et al. : ajouter au tokenizer le mot `<lune>`, qui reçoit l'identifiant $V$, et à la table une
# ligne $v$. **Tout le reste est gelé** — CLIP, le U-Net, l'autoencodeur — et l'on cherche la ligne qui explique
# le mieux les exemples, avec la perte de la leçon 02 (éq. 2 de l'article) :
#
# $$v^* = \arg\min_v \; \mathbb{E}_{z_0, y, \varepsilon, t}\, \big\lVert \varepsilon - \varepsilon_\theta\big(z_t, t, c_\theta(y; v)\big) \big\rVert^2,$$
#
# où $z_0$ est le latent d'un exemple et $y$ l'une de ses légendes. On part d'un mot proche,
# « circle » : la ligne commence égale à la sienne.

# %% [markdown] lang="en"
# ## 2. Textual inversion: one word, one row
#
# Text enters the model through CLIP's word table $W \in \mathbb{R}^{V \times D}$ ($V$ words, $D = 128$). Gal et
# al.'s idea: add the word `<lune>` to the tokenizer, with the id $V$, and a row $v$ to the table. **Everything else is
# frozen** — CLIP, the U-Net, the autoencoder — and we look for the row that best explains the examples, with lesson
# 02's loss (the paper's eq. 2):
#
# $$v^* = \arg\min_v \; \mathbb{E}_{z_0, y, \varepsilon, t}\, \big\lVert \varepsilon - \varepsilon_\theta\big(z_t, t, c_\theta(y; v)\big) \big\rVert^2,$$
#
# where $z_0$ is an example's latent and $y$ one of its captions. We start from a related word, "circle": the row
# starts equal to its row.

# %%
tok = tokenizer_with(TOKEN)
print(tok.encode(probe_prompts[0]).tokens, "→", tok.encode(probe_prompts[0]).ids)
table = pipe.clip.text.embeddings.token_embedding.weight
print(tr(en=f"table: {table.shape[0]} words × {table.shape[1]}; the new word gets id {tok.token_to_id(TOKEN)}, its row starts as « {INIT_WORD} »'s",
         fr=f"table : {table.shape[0]} mots × {table.shape[1]} ; le mot nouveau reçoit l'identifiant {tok.token_to_id(TOKEN)}, sa ligne part de celle "
            f"de « {INIT_WORD} »"))

# %% [markdown] lang="fr"
# Dans le cours, la ligne $v$ est un paramètre à part : la table d'origine n'est même pas entraînable, aucun pas ne
# peut la toucher. Le script de diffusers (`textual_inversion.py`) fait autrement : il rend **toute** la table
# entraînable, et après chaque pas de l'optimiseur il **remet les autres lignes** à leur valeur d'origine. Pourquoi
# faut-il les remettre, si seul le mot nouveau apparaît dans le gradient ? Parce qu'AdamW applique sa pénalité sur
# les poids (*weight decay*) à toutes les lignes, et que les lignes des mots des légendes reçoivent, elles, un
# gradient.
#
# ### ✏️ Exercice 1 — remettre les lignes en place
#
# Écrivez `my_restore_rows(table, original, trained_ids)` : la table avec chaque ligne **sauf** celles de
# `trained_ids` remise à sa valeur dans `original`. Ne modifiez pas `original`.
#
# Bloqué ? `hint("restore_rows")`, puis `hint("restore_rows", 2)` et `hint("restore_rows", 3)`.

# %% [markdown] lang="en"
# In the course, the row $v$ is a parameter of its own: the original table is not even trainable, no step can touch
# it. diffusers' script (`textual_inversion.py`) does otherwise: it makes the **whole** table trainable, and after
# each optimiser step it **puts the other rows back** to their original values. Why put them back, if only the new
# word appears in the gradient? Because AdamW applies its weight decay to every row, and the rows of the captions'
# words do receive a gradient.
#
# ### ✏️ Exercise 1 — putting the rows back
#
# Write `my_restore_rows(table, original, trained_ids)`: the table with every row **except** those of `trained_ids`
# back to its value in `original`. Do not modify `original`.
#
# Stuck? `hint("restore_rows")`, then `hint("restore_rows", 2)` and `hint("restore_rows", 3)`.

# %%
# NBVAL_CHECK_OUTPUT
def my_restore_rows(table, original, trained_ids):
    """Every row of table but trained_ids back to original's (diffusers' textual_inversion.py, after each step)."""
    # BEGIN SOLUTION
    # HINT[en]: start from a copy of original, then copy in the rows of trained_ids from table
    # HINT[fr]: partez d'une copie de original, puis recopiez-y les lignes de trained_ids prises dans table
    out = original.clone()
    out[trained_ids] = table[trained_ids]
    return out
    # END SOLUTION


check_restore_rows(my_restore_rows)

# %% [markdown] lang="fr"
# Faisons-le pour de vrai : la table entière entraînable, AdamW avec une pénalité de $10^{-2}$, quelques pas sur les
# exemples, avec et sans votre fonction. On regarde combien a bougé la ligne de « cercle », un mot des légendes
# ordinaires — et donc ce que devient un prompt ordinaire.

# %% [markdown] lang="en"
# Let us do it for real: the whole table trainable, AdamW with a weight decay of $10^{-2}$, a few steps on the
# examples, with and without your function. We look at how far the row of "circle" moved, a word of ordinary
# captions — and so what becomes of an ordinary prompt.

# %%
restore = choose("restore_rows", my_restore_rows, check_restore_rows, restore_rows)
unet = load_unet().requires_grad_(False)
latents = example_latents()
get_batch = batch_getter(recipe_for("ti"), latents, None)
circle_id = backend().token_to_id("circle")


def whole_table_run(put_back: bool, steps: int = max(5, LIVE_STEPS // 4)):
    text = copy.deepcopy(pipe.clip.text).requires_grad_(False)
    original = torch.cat([text.embeddings.token_embedding.weight, text.embeddings.token_embedding.weight[circle_id:circle_id + 1]]).detach()
    full = torch.nn.Parameter(original.clone())
    opt = torch.optim.AdamW([full], lr=5e-3, weight_decay=1e-2)
    torch.manual_seed(0)
    for step in range(steps):
        z0, texts = get_batch(step)
        ids, _ = encode(texts, allow_empty=True, tokenizer=tok)
        context = text(ids, token_weight=full)[0]
        loss = training_loss(lambda x, t, c: unet(x, t, context, None), z0, abar, snr_gamma=5.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if put_back:
            with torch.no_grad():
                full.copy_(restore(full.detach(), original, [original.shape[0] - 1]))
    return (full[circle_id] - original[circle_id]).abs().max().item(), (full[-1] - original[-1]).abs().max().item()


for put_back in (False, True):
    moved_circle, moved_new = whole_table_run(put_back)
    print(tr(en=f"{'with' if put_back else 'without'} putting back: the row of « circle » moved by {moved_circle:.2e}, the new word's by {moved_new:.2e}",
             fr=f"{'avec' if put_back else 'sans'} remise en place : la ligne de « circle » a bougé de {num(moved_circle, '.2e')}, celle du mot "
                f"nouveau de {num(moved_new, '.2e')}"))

# %% [markdown] lang="fr"
# Sans remise en place, « cercle » ne veut déjà plus tout à fait dire la même chose : chaque prompt qui le contient
# changerait d'image. Avec, seule la ligne nouvelle bouge — exactement ce que la version du cours obtient par
# construction.
#
# Entraînons maintenant la ligne seule, comme le cours le fait (`python -m course.concept_train train --method ti`),
# quelques pas (le nombre dépend du profil), en regardant de quels mots connus elle se rapproche en chemin :

# %% [markdown] lang="en"
# Without putting back, "circle" already no longer quite means the same: every prompt that holds it would change
# image. With it, only the new row moves — exactly what the course's version gets by construction.
#
# Now let us train the row alone, as the course does (`python -m course.concept_train train --method ti`), for a
# few steps (how many depends on the profile), watching which known words it comes near on the way:

# %%
ti_recipe = recipe_for("ti").scaled(LIVE_STEPS)
live_ti = build(ti_recipe)
trace = []


def watch(history):
    trace.append((history.steps[-1], history.losses[-1], nearest_words(live_ti.words.vector.detach(), table, 3)))


def words(near):  # vocabulary words, quoted: they are the model's tokens, in either language
    return ", ".join(f"'{w}' ({num(s, '.2f')})" for w, s in near)


result = train(live_ti, concept_loss(abar, ti_recipe.snr_gamma), batch_getter(ti_recipe, latents, None),
               ti_recipe.train_config(log_every=max(1, LIVE_STEPS // 5)), on_log=watch, desc="textual inversion", progress=False)
for step, loss, near in trace:
    print(tr(en=f"step {step:5d} · loss {loss:.4f} · nearest words: ", fr=f"pas {step:5d} · perte {num(loss, '.4f')} · mots les plus proches : ")
          + words(near))
print(tr(en=f"{trainable(live_ti)} numbers trained", fr=f"{trainable(live_ti)} nombres entraînés"))

# %% [markdown] lang="fr"
# Dans les profils `smoke` et `cpu`, ces quelques pas ne suffisent pas : la ligne est encore presque celle de
# « circle » (dans le profil `gpu`, la course ci-dessus est la recette complète). Le fichier livré a été entraîné par la
# même commande, {{concept_eval.json:rows.0.training_minutes|num1}} minutes sur 2 cœurs : lui s'est éloigné de
# « circle » sans tomber sur aucun autre mot (ses voisins sont imprimés ci-dessous), dans un endroit de l'espace des
# mots que les légendes n'occupent pas. Voici ce qu'il dessine pour des prompts de test — des couleurs et des cases que les
# exemples ne montrent pas :

# %% [markdown] lang="en"
# In the `smoke` and `cpu` profiles these few steps are not enough: the row is still almost "circle"'s (in the `gpu`
# profile, the run above is the full recipe). The shipped file was trained by the same command,
# {{concept_eval.json:rows.0.training_minutes|num1}} minutes on 2 cores: it moved away from "circle" without landing on
# any other word (its neighbours are printed below), in a place of word space that the captions do not hold. Here is
# what it draws for test prompts — colours and cells the examples do not show:

# %%
ti_model = ConceptModel(unet, live_ti.words if P.train_latent else load_textual_inversion(text=pipe.clip.text))
print(tr(en="the shipped word's nearest words: ", fr="mots les plus proches du mot livré : ")
      + words(nearest_words(ti_model.words.vector.detach(), table, 3)))
ti_images = generate(ti_model, probe_prompts, STEPS, W)
show_grid(list(ti_images), [f"{p}\n→ {r['shape']}" for p, r in zip(probe_prompts, read(ti_images))], ncols=8, size=1.5,
          suptitle=tr(en="textual inversion: the shipped <lune>", fr="Textual Inversion : le <lune> livré"))
test_scenes, test_prompts = heldout(N, 777)
live = judge(generate(ti_model, test_prompts, STEPS, W), test_scenes)
print(tr(en=f"{N} held-out prompts: crescent drawn {live['fidelity']:.0%}, colour, size and cell as asked {live['editability']:.0%}, "
            f"all four {live['success']:.0%}",
         fr=f"{N} prompts de test : croissant dessiné {num(100 * live['fidelity'], '.0f')} %, couleur, taille et case demandées "
            f"{num(100 * live['editability'], '.0f')} %, les quatre {num(100 * live['success'], '.0f')} %"))

# %% [markdown] lang="fr"
# Sur {{concept_eval.json:rows.0.concept.n|int}} prompts de test, le mot livré fait dessiner un croissant dans
# {{concept_eval.json:rows.0.concept.fidelity|pct0}} des images, et tout ce qui est demandé dans
# {{concept_eval.json:rows.0.concept.success|pct0}}. C'est la limite qu'annoncent Gal et al. : une ligne de la table
# ne peut que **désigner** quelque chose que le générateur sait déjà dessiner. Notre U-Net n'a jamais appris de
# forme concave en arc : le meilleur mot possible le mène vers ce qui y ressemble le plus (le juge dit ce qu'il
# dessine à la place dans la table du §4). En échange, le modèle n'a rien perdu : les prompts sans `<lune>` donnent
# **exactement** les mêmes images qu'avant, au bit près (un test le vérifie) — le U-Net et la table n'ont pas changé.
#
# ### La panne que rapportent les utilisateurs
#
# « Mon embedding est chargé, mais le mot n'a aucun effet : j'obtiens l'image du mot de départ. » On la reproduit :
# au pas 0, la ligne vaut celle de « circle », et le modèle dessine des cercles. C'est aussi ce qu'on obtient avec un
# taux d'apprentissage trop faible ou trop peu de pas (la ligne n'a pas bougé), ou quand le prompt n'écrit pas
# exactement le mot appris (`<Lune >`, `lune`) : il est alors découpé en mots connus ou inconnus.

# %% [markdown] lang="en"
# On {{concept_eval.json:rows.0.concept.n|int}} test prompts, the shipped word makes the model draw a crescent in
# {{concept_eval.json:rows.0.concept.fidelity|pct0}} of the images, and everything asked in
# {{concept_eval.json:rows.0.concept.success|pct0}}. It is the limit Gal et al. state: a row of the table can only
# **point at** something the generator can already draw. Our U-Net never learned a concave, arc-like shape: the best
# possible word leads it to what looks most like one (the judge says what it draws instead in §4's table). In return,
# the model lost nothing: prompts without `<lune>` give **exactly** the same images as before, bit for bit (a test
# checks it) — neither the U-Net nor the table changed.
#
# ### The failure users report
#
# "My embedding is loaded, but the word has no effect: I get the image of the starting word." Let us reproduce it: at
# step 0 the row equals "circle"'s, and the model draws circles. It is also what too low a learning rate or too few
# steps give (the row did not move), or a prompt that does not write the learned word exactly (`<Lune >`, `lune`): it
# is then cut into known or unknown words.

# %%
untrained = ConceptModel(unet, TextualInversion(pipe.clip.text, TOKEN, INIT_WORD))
step0 = generate(untrained, probe_prompts, STEPS, W)
show_grid(list(step0), [f"{p}\n→ {r['shape']}" for p, r in zip(probe_prompts, read(step0))], ncols=8, size=1.5,
          suptitle=tr(en=f"the word at step 0: the images of « {INIT_WORD} »", fr=f"le mot au pas 0 : les images de « {INIT_WORD} »"))

# %% [markdown] lang="fr"
# ## 3. LoRA : changer un peu le générateur
#
# Pour dessiner une forme nouvelle, il faut toucher au U-Net. Le réentraîner en entier, c'est 5,6 millions de
# nombres par concept, et le risque d'oublier le reste. LoRA (Hu et al. 2022, éq. 3) garde chaque couche linéaire
# $W$ gelée et lui ajoute une mise à jour de **rang** $r$ :
#
# $$h = W x + b + \frac{\alpha}{r}\, B A x, \qquad A \in \mathbb{R}^{r \times d_{in}},\; B \in \mathbb{R}^{d_{out} \times r}.$$
#
# $A$ part au hasard, $B$ à zéro : le modèle commence **exactement** tel qu'il était. On le pose sur les projections
# `to_q`, `to_k`, `to_v`, `to_out` de chaque attention du U-Net, comme diffusers et peft ; le mot `<lune>` y est une
# ligne fixe, tirée au hasard (le mot ne veut rien dire : c'est le U-Net qui apprend à y répondre). La moitié de
# chaque lot est faite de scènes ordinaires avec leurs légendes (la *prior preservation* de DreamBooth) : le modèle
# révise ce qu'il savait pendant qu'il apprend le mot.
#
# ### ✏️ Exercice 2 — la passe avant de LoRA
#
# Écrivez `my_lora_forward(x, W, b, A, B, scale)` : $x W^\top + b + \text{scale}\cdot (x A^\top) B^\top$ pour
# `x` de forme `(…, d_in)` ; les poids sont rangés comme ceux de `nn.Linear`, `(sortie, entrée)`.
#
# Bloqué ? `hint("lora_forward")`, puis `hint("lora_forward", 2)` et `hint("lora_forward", 3)`.

# %% [markdown] lang="en"
# ## 3. LoRA: changing the generator a little
#
# To draw a new shape, the U-Net must change. Retraining it all is 5.6 million numbers per concept, and the risk of
# forgetting the rest. LoRA (Hu et al. 2022, eq. 3) keeps each linear layer $W$ frozen and adds an update of **rank**
# $r$:
#
# $$h = W x + b + \frac{\alpha}{r}\, B A x, \qquad A \in \mathbb{R}^{r \times d_{in}},\; B \in \mathbb{R}^{d_{out} \times r}.$$
#
# $A$ starts random, $B$ at zero: the model starts **exactly** as it was. We put it on the `to_q`, `to_k`, `to_v`,
# `to_out` projections of every attention of the U-Net, as diffusers and peft do; the word `<lune>` is a fixed random
# row there (the word means nothing: the U-Net learns to answer it). Half of each batch is ordinary scenes with their
# captions (DreamBooth's *prior preservation*): the model rehearses what it knew while it learns the word.
#
# ### ✏️ Exercise 2 — LoRA's forward pass
#
# Write `my_lora_forward(x, W, b, A, B, scale)`: $x W^\top + b + \text{scale}\cdot (x A^\top) B^\top$ for `x` of shape
# `(…, d_in)`; the weights are stored as `nn.Linear`'s, `(out, in)`.
#
# Stuck? `hint("lora_forward")`, then `hint("lora_forward", 2)` and `hint("lora_forward", 3)`.

# %%
# NBVAL_CHECK_OUTPUT
def my_lora_forward(x, W, b, A, B, scale):
    """W x + b + (α/r)·B A x for x (…, d_in): a frozen layer plus its rank-r update (Hu et al. 2022, eq. 3)."""
    # BEGIN SOLUTION
    # HINT[en]: the base layer's output, plus x through A then B, times scale
    # HINT[fr]: la sortie de la couche de base, plus x passé par A puis par B, fois scale
    return x @ W.T + b + scale * (x @ A.T) @ B.T
    # END SOLUTION


check_lora_forward(my_lora_forward)

# %% [markdown] lang="fr"
# Votre passe avant tourne désormais dans **chaque couche LoRA** du U-Net. D'abord la propriété qui rend LoRA sûr :
# à l'initialisation, le modèle adapté donne le même $\varepsilon$ que le modèle de base.

# %% [markdown] lang="en"
# Your forward pass now runs in **every LoRA layer** of the U-Net. First the property that makes LoRA safe: at
# initialisation, the adapted model gives the same $\varepsilon$ as the base model.

# %%
use(lora_forward=my_lora_forward)
fresh = copy.deepcopy(unet)
names = lora.add_lora(fresh, recipe_for("lora").rank)
g = torch.Generator().manual_seed(0)
x, t = torch.randn(2, 4, 8, 8, generator=g), torch.tensor([100, 700])
context = pipe.encode_text(probe_prompts[:2])[0]
with torch.no_grad():
    gap = (fresh(x, t, context, None) - unet(x, t, context, None)).abs().max().item()
n_lora = sum(p.numel() for n, p in fresh.named_parameters() if p.requires_grad)
n_unet = sum(p.numel() for p in unet.parameters())
print(tr(en=f"{len(names)} adapted layers, rank {recipe_for('lora').rank}: {n_lora:,} numbers to train ({n_lora / n_unet:.1%} of the U-Net's {n_unet:,}); "
            f"at initialisation the largest gap in ε is {gap:.1e}",
         fr=f"{len(names)} couches adaptées, rang {recipe_for('lora').rank} : {n_lora:,} nombres à entraîner ({num(100 * n_lora / n_unet, '.1f')} % des "
            f"{n_unet:,} du U-Net) ; à l'initialisation, le plus grand écart de ε vaut {num(gap, '.1e')}".replace(f"{n_lora:,}", f"{n_lora:,}".replace(",", " "))
            .replace(f"{n_unet:,}", f"{n_unet:,}".replace(",", " "))))

# %% [markdown] lang="fr"
# Le LoRA livré (`python -m course.concept_train train --method lora`, {{concept_eval.json:rows.2.training_minutes|num1}}
# minutes sur 2 cœurs) se charge dans le pipeline du cours par la méthode qui porte le nom de celle de diffusers,
# `load_lora_weights`. Les mêmes prompts de test :

# %% [markdown] lang="en"
# The shipped LoRA (`python -m course.concept_train train --method lora`, {{concept_eval.json:rows.2.training_minutes|num1}}
# minutes on 2 cores) loads into the course's pipeline by the method named after diffusers', `load_lora_weights`. The
# same test prompts:

# %%
lora_pipe = TextToImagePipeline(device="cpu")
lora_pipe.load_lora_weights()
lora_model = ConceptModel(lora_pipe.unet, lora_pipe.words)
lora_images = generate(lora_model, probe_prompts, STEPS, W)
show_grid(list(lora_images), [f"{p}\n→ {r['shape']}" for p, r in zip(probe_prompts, read(lora_images))], ncols=8, size=1.5,
          suptitle=tr(en="LoRA: the shipped <lune>", fr="LoRA : le <lune> livré"))
live = judge(generate(lora_model, test_prompts, STEPS, W), test_scenes)
print(tr(en=f"{N} held-out prompts: crescent drawn {live['fidelity']:.0%}, colour, size and cell as asked {live['editability']:.0%}, "
            f"all four {live['success']:.0%}",
         fr=f"{N} prompts de test : croissant dessiné {num(100 * live['fidelity'], '.0f')} %, couleur, taille et case demandées "
            f"{num(100 * live['editability'], '.0f')} %, les quatre {num(100 * live['success'], '.0f')} %"))

# %% [markdown] lang="fr"
# Fusionner ($W \leftarrow W + \tfrac{\alpha}{r} BA$) supprime le coût de LoRA à l'inférence, et donne le même
# $\varepsilon$ ; défusionner remet les poids d'origine au bit près (le cours les a gardés de côté : soustraire
# $\tfrac{\alpha}{r} BA$ laisserait des erreurs d'arrondi).

# %% [markdown] lang="en"
# Merging ($W \leftarrow W + \tfrac{\alpha}{r} BA$) removes LoRA's cost at inference, and gives the same
# $\varepsilon$; unmerging puts the original weights back bit for bit (the course kept them aside: subtracting
# $\tfrac{\alpha}{r} BA$ would leave rounding errors).

# %%
with torch.no_grad():
    before = lora_pipe.unet(x, t, context, None)
    lora.merge(lora_pipe.unet)
    merged = lora_pipe.unet(x, t, context, None)
    lora.unmerge(lora_pipe.unet)
print(tr(en=f"merged vs unmerged: largest gap in ε {(merged - before).abs().max().item():.1e}",
         fr=f"fusionné / non fusionné : plus grand écart de ε {num((merged - before).abs().max().item(), '.1e')}"))
use()

# %% [markdown] lang="fr"
# ## 4. La comparaison : fidélité, liberté, oubli
#
# L'article de Gal et al. mesure deux axes : la **fidélité** au concept et l'**éditabilité** (le concept suit-il
# le reste du prompt ?). Sur notre monde, le juge les lit directement : le croissant est-il dessiné, et la couleur,
# la taille et la case sont-elles celles demandées ? On y ajoute l'**oubli** : l'adhérence aux prompts ordinaires de
# test, avant et après. Tableau enregistré (`python -m course.concept_train compare`,
# {{concept_eval.json:rows.0.concept.n|int}} prompts avec le mot nouveau, {{concept_eval.json:base.n|int}} prompts
# ordinaires, DDIM 25 pas, $w = 2{,}5$) :

# %% [markdown] lang="en"
# ## 4. The comparison: fidelity, freedom, forgetting
#
# Gal et al.'s paper measures two axes: **fidelity** to the concept and **editability** (does the concept follow the
# rest of the prompt?). On our world the judge reads both directly: is the crescent drawn, and are the colour, size
# and cell those asked? We add **forgetting**: adherence to ordinary test prompts, before and after. Recorded table
# (`python -m course.concept_train compare`, {{concept_eval.json:rows.0.concept.n|int}} prompts with the new word,
# {{concept_eval.json:base.n|int}} ordinary prompts, DDIM 25 steps, $w = 2.5$):

# %% tags=["key-figure"]
record = json.loads((data_dir() / "concept_eval.json").read_text())
base_adherence = record["base"]["all_correct"]


def label(row):
    return {"ti": "Textual Inversion", "full": tr(en="full fine-tuning", fr="U-Net entier")}.get(row["method"], f"LoRA r = {row['rank']}")


def shape_name(shape):
    return FR_SHAPES[shape][0] if lang == "fr" else shape


def pct(x, digits=0):
    return tr(en=f"{100 * x:.{digits}f}%", fr=f"{num(100 * x, f'.{digits}f')} %")


print(tr(en=f"{'method':18s} {'crescent':>9s} {'asked':>7s} {'all four':>16s}   {'ordinary prompts':>16s} {'minutes':>8s} {'file':>9s}",
         fr=f"{'méthode':18s} {'croissant':>9s} {'demandé':>7s} {'les quatre':>18s}  {'prompts ordinaires':>18s} {'minutes':>8s} {'fichier':>9s}"))
for row in record["rows"]:
    c = row["concept"]
    kept = row.get("preservation", record["base"])["all_correct"]
    lo, hi = c["success_interval"]
    print(f"{label(row):18s} {pct(c['fidelity']):>9s} {pct(c['editability']):>7s} {pct(c['success']):>5s} [{pct(lo)}–{pct(hi)}]  "
          f"{pct(kept, 1):>7s} ({num(100 * (kept - base_adherence), '+.1f')}) {num(row['training_minutes'], '.1f'):>8s} {row['file_bytes'] / 1024:7.0f} KiB")
    instead = ", ".join(f"{shape_name(k)} {v}" for k, v in sorted(c["drawn_instead"].items(), key=lambda kv: -kv[1])[:3])
    print(" " * 18 + tr(en=f" drawn instead of the crescent: {instead}", fr=f" dessiné à la place du croissant : {instead}"))
print(tr(en=f"base model on ordinary prompts: {base_adherence:.1%}", fr=f"modèle de base sur les prompts ordinaires : {num(100 * base_adherence, '.1f')} %"))
fig, ax = figure(1, 1, figsize=(6, 4))
for row in record["rows"]:
    ax.scatter(row["concept"]["fidelity"], row["concept"]["editability"], s=20 + row["file_bytes"] ** 0.5 / 4)
    ax.annotate(label(row), (row["concept"]["fidelity"], row["concept"]["editability"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=tr(en="fidelity: the crescent is drawn", fr="fidélité : le croissant est dessiné"),
       ylabel=tr(en="editability: colour, size and cell as asked", fr="éditabilité : couleur, taille et case demandées"))
ax.set_title(tr(en="the trade-off of Gal et al. on our world (disc area ∝ file size)", fr="le compromis de Gal et al. sur notre monde (aire ∝ taille du fichier)"),
             fontsize=9)
fig.tight_layout()

# %% [markdown] lang="fr"
# Ce que dit ce tableau, sur ce modèle et ce concept :
#
# - **Textual Inversion** ne coûte rien et n'oublie rien, mais ne peut pas apprendre une forme que le U-Net ne
#   sait pas dessiner : croissant dans {{concept_eval.json:rows.0.concept.fidelity|pct0}} des images, alors que
#   couleur, taille et case restent obéies ({{concept_eval.json:rows.0.concept.editability|pct0}}) ;
# - **LoRA** change le générateur : au rang 4, le croissant apparaît dans
#   {{concept_eval.json:rows.2.concept.fidelity|pct0}} des images, mais il emporte avec lui les couleurs et les
#   tailles des 8 exemples (éditabilité {{concept_eval.json:rows.2.concept.editability|pct0}} : c'est le compromis
#   fidélité / éditabilité de l'article), et le modèle oublie un peu le reste malgré la révision des scènes
#   ordinaires ({{concept_eval.json:rows.2.preservation.all_correct|pct1}} au lieu de
#   {{concept_eval.json:base.all_correct|pct1}}). Au rang 16, au même taux d'apprentissage, il casse le modèle
#   ({{concept_eval.json:rows.3.preservation.all_correct|pct0}}) : plus de directions, le même pas, c'est trop ;
# - le **U-Net entier**, avec un taux d'apprentissage 50 fois plus petit, est ici le meilleur compromis
#   ({{concept_eval.json:rows.4.concept.success|pct0}} de réussite complète, presque rien d'oublié), mais au prix d'un
#   fichier de {{concept_eval.json:rows.4.file_bytes|int}} octets par mot, contre
#   {{concept_eval.json:rows.0.file_bytes|int}} pour Textual Inversion.
#
# Aucune méthode n'atteint ici les 80 % de réussite complète visés : le croissant est à peine plus grand qu'une case du
# latent $8 \times 8$, et 8 exemples en 4 couleurs ne suffisent pas à le séparer de sa couleur.

# %% [markdown] lang="en"
# What this table says, for this model and this concept:
#
# - **Textual inversion** costs nothing and forgets nothing, but cannot learn a shape the U-Net cannot draw: a crescent
#   in {{concept_eval.json:rows.0.concept.fidelity|pct0}} of the images, while colour, size and cell are still obeyed
#   ({{concept_eval.json:rows.0.concept.editability|pct0}});
# - **LoRA** changes the generator: at rank 4 the crescent appears in {{concept_eval.json:rows.2.concept.fidelity|pct0}}
#   of the images, but it carries along the colours and sizes of the 8 examples (editability
#   {{concept_eval.json:rows.2.concept.editability|pct0}}: the paper's fidelity / editability trade-off), and the model
#   forgets a little of the rest despite rehearsing ordinary scenes ({{concept_eval.json:rows.2.preservation.all_correct|pct1}}
#   instead of {{concept_eval.json:base.all_correct|pct1}}). At rank 16, with the same learning rate, it breaks the model
#   ({{concept_eval.json:rows.3.preservation.all_correct|pct0}}): more directions, the same step, is too much;
# - the **whole U-Net**, with a learning rate 50 times smaller, is the best compromise here
#   ({{concept_eval.json:rows.4.concept.success|pct0}} complete success, next to nothing forgotten), at the price of a
#   file of {{concept_eval.json:rows.4.file_bytes|int}} bytes per word, against {{concept_eval.json:rows.0.file_bytes|int}}
#   for textual inversion.
#
# No method reaches the targeted 80 % of complete success here: the crescent is hardly bigger than one cell of the
# $8 \times 8$ latent, and 8 examples in 4 colours are not enough to tell it apart from its colour.

# %% [markdown] lang="fr"
# ## 5. Dans diffusers
#
# Les deux fichiers livrés sont au format de diffusers : le mot, `{"<lune>": v}` ; le LoRA, les clés de peft
# (`unet.….to_q.lora_A.weight`) avec $r$ et $\alpha$ dans l'en-tête. Le pipeline exporté
# (`python -m course export-diffusers mini-sd/`, leçon 05) les charge sans code à nous :
#
# ```python
# pipe = StableDiffusionPipeline.from_pretrained("mini-sd", local_files_only=True)
# pipe.load_textual_inversion("data/concept_ti.safetensors")
# image = pipe("une grande <lune> orange en haut à droite", guidance_scale=2.5).images[0]
# ```
#
# et donne les images du cours à $10^{-3}$ près (`tests/test_concept.py` le vérifie, comme pour `load_lora_weights`).

# %% [markdown] lang="en"
# ## 5. In diffusers
#
# Both shipped files are in diffusers' format: the word, `{"<lune>": v}`; the LoRA, peft's keys
# (`unet.….to_q.lora_A.weight`) with $r$ and $\alpha$ in the header. The exported pipeline
# (`python -m course export-diffusers mini-sd/`, lesson 05) loads them with no code of ours:
#
# ```python
# pipe = StableDiffusionPipeline.from_pretrained("mini-sd", local_files_only=True)
# pipe.load_textual_inversion("data/concept_ti.safetensors")
# image = pipe("a large orange <lune> at the top right", guidance_scale=2.5).images[0]
# ```
#
# and gives the course's images within $10^{-3}$ (`tests/test_concept.py` checks it, as for `load_lora_weights`).
