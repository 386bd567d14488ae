"""The lesson registry: number, titles, what each lesson builds and which slide section it follows.

The build (``python -m course.build``), the README's lesson table and ``python -m course`` all
read this list, so adding a lesson means one entry here and one source file in ``lessons/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from course import language
from course.paths import repo_root

LANGUAGES: tuple[str, ...] = ("fr", "en")


@dataclass(frozen=True)
class Lesson:
    number: int
    slug: str
    title: dict[str, str]
    builds: dict[str, str]
    slides: str

    @property
    def stem(self) -> str:
        """File stem shared by the source and the four editions, e.g. ``01_forward_process``."""
        return f"{self.number:02d}_{self.slug}"

    def display_title(self, lang: str | None = None) -> str:
        """The title in ``lang``, by default the edition's language (:func:`course.language.current`)."""
        return self.title[lang or language.current()]

    @property
    def source(self) -> Path:
        return repo_root() / "lessons" / f"{self.stem}.py"

    @property
    def available(self) -> bool:
        return self.source.exists()

    def notebook(self, edition: str, lang: str) -> Path:
        """Path of a generated edition: ``edition`` is ``"notebooks"`` (exercises) or ``"solutions"``."""
        if edition not in ("notebooks", "solutions"):
            raise ValueError(f"unknown edition {edition!r}: choose 'notebooks' or 'solutions'")
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}: choose one of {', '.join(LANGUAGES)}")
        return repo_root() / edition / lang / f"{self.stem}.ipynb"


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        0,
        "tour",
        {"fr": "Visite guidée", "en": "Tour"},
        {
            "fr": "vérification de l'environnement et du profil, les 3 éléments, un coup d'œil aux données",
            "en": "environment and profile check, the 3 elements, a glance at the data",
        },
        "Introduction ; 3 éléments majeurs",
    ),
    Lesson(
        1,
        "forward_process",
        {"fr": "Le processus forward", "en": "The forward process"},
        {
            "fr": "q(x_t | x_{t−1}), forme close q(x_t | x_0), plannings β (linéaire, cosinus, "
            "scaled-linear), ᾱ_t, SNR, un chat bruité",
            "en": "q(x_t | x_{t−1}), closed form q(x_t | x_0), β schedules (linear, cosine, "
            "scaled-linear), ᾱ_t, SNR, a noised cat",
        },
        "Processus Forward ; Rôle du Scheduler",
    ),
    Lesson(
        2,
        "ddpm",
        {"fr": "Prédire le bruit : DDPM", "en": "Predicting the noise: DDPM"},
        {
            "fr": "la perte ε, moyenne et variance inverses, échantillonnage ancestral",
            "en": "the ε loss, reverse mean and variance, ancestral sampling",
        },
        "Processus Reverse ; Objectif d'Entraînement",
    ),
    Lesson(
        3,
        "clip",
        {"fr": "CLIP, le pont texte-image", "en": "CLIP, the text-image bridge"},
        {
            "fr": "tokenizer, transformer de texte, encodeur d'images, perte contrastive",
            "en": "tokenizer, text transformer, image encoder, contrastive loss",
        },
        "Architecture CLIP ; paires image/légende",
    ),
    Lesson(
        4,
        "unet",
        {"fr": "Le U-Net avec attention", "en": "The U-Net with attention"},
        {
            "fr": "ResBlocks, plongement du temps, self- et cross-attention",
            "en": "ResBlocks, time embedding, self- and cross-attention",
        },
        "Architecture Détaillée ; U-Net avec Attention ; Downsamplers",
    ),
    Lesson(
        5,
        "latent_diffusion",
        {"fr": "Espace latent et décodeur", "en": "Latent space and decoder"},
        {
            "fr": "autoencodeur, diffusion latente texte → image",
            "en": "autoencoder, text-to-image latent diffusion",
        },
        "Décodeur ; espace latent",
    ),
    Lesson(
        6,
        "schedulers",
        {"fr": "Les schedulers", "en": "The schedulers"},
        {
            "fr": "DDPM, DDIM, PNDM, Euler a, DPM-Solver++ (2M, 3M), Heun ; grilles et point de vue σ ; la course contre diffusers et le tableau comparatif, mesurés",
            "en": "DDPM, DDIM, PNDM, Euler a, DPM-Solver++ (2M, 3M), Heun; grids and the σ view; the race against diffusers and the comparison table, measured",
        },
        "Types de Schedulers ; Comparaison",
    ),
    Lesson(
        7,
        "guidance_pipeline",
        {"fr": "Guidance et pipeline complet", "en": "Guidance and the full pipeline"},
        {
            "fr": "classifier-free guidance, du prompt à l'image",
            "en": "classifier-free guidance, from prompt to image",
        },
        "Classifier-Free Guidance ; Intégration ; Exemple de Génération",
    ),
    Lesson(
        8,
        "controlnet",
        {"fr": "ControlNet : imposer la forme", "en": "ControlNet: imposing the shape"},
        {
            "fr": "contours de Canny, gribouillis, masques ; copie entraînable, encodeur de condition, convolutions zéro ; = ControlNetModel de diffusers ; fidélité aux contours, échelle, conflit, mesurés",
            "en": "Canny edges, scribbles, masks; trainable copy, condition encoder, zero convolutions; = diffusers' ControlNetModel; edge adherence, scale, conflict, measured",
        },
        "Conditionnement Spatial ; Control Net",
    ),
    Lesson(
        9,
        "editing",
        {"fr": "Éditer une image existante", "en": "Editing an existing image"},
        {
            "fr": "img2img (SDEdit) et les pas qui tournent ; inpainting sans entraînement, la couture et sa correction ; InstructPix2Pix entraîné sur des triplets exacts, deux guidances ; = les pipelines de diffusers ; mesurés",
            "en": "img2img (SDEdit) and which steps run; training-free inpainting, the seam and its fix; InstructPix2Pix trained on exact triplets, two guidances; = diffusers' pipelines; measured",
        },
        "Inversion et Édition ; la série « Give him a cowboy hat » (sous Control Net)",
    ),
    Lesson(
        10,
        "composition",
        {"fr": "Ce que la diffusion rate", "en": "What diffusion gets wrong"},
        {
            "fr": "un juge de scènes et un banc d'essai à la GenEval, intervalles de Wilson ; deux objets, nombres, liaisons, paraphrases ; cartes d'attention, le test du sac de mots ; Attend-and-Excite ; corrections mesurées",
            "en": "a scene judge and a GenEval-style benchmark, Wilson intervals; two objects, counts, bindings, paraphrases; attention maps, the bag-of-words test; Attend-and-Excite; fixes measured",
        },
        "Défis Spécifiques : Génération de Mains ; Contrôle par le Prompt ; Variations Stylistiques et Sémantiques",
    ),
    Lesson(
        11,
        "new_word",
        {"fr": "Apprendre un mot nouveau au modèle", "en": "Teaching the model a new word"},
        {
            "fr": "Textual Inversion (une ligne de la table des mots) et LoRA (des mises à jour de petit rang), de zéro ; = load_textual_inversion et load_lora_weights de diffusers ; fidélité, éditabilité et oubli, mesurés jusqu'au U-Net entier",
            "en": "textual inversion (one row of the word table) and LoRA (low-rank updates), from scratch; = diffusers' load_textual_inversion and load_lora_weights; fidelity, editability and forgetting, measured up to the whole U-Net",
        },
        "Inversion et Édition",
    ),
)


def get_lesson(number: int) -> Lesson:
    """The lesson with this number; a ``ValueError`` lists the valid numbers otherwise."""
    for lesson in LESSONS:
        if lesson.number == number:
            return lesson
    valid = ", ".join(str(lesson.number) for lesson in LESSONS)
    raise ValueError(f"no lesson {number}: valid numbers are {valid}")


def available_lessons() -> list[Lesson]:
    """Lessons whose source exists in ``lessons/``."""
    return [lesson for lesson in LESSONS if lesson.available]
