"""An interactive playground for the text-to-image pipeline (lesson 07), with a static fallback."""

from __future__ import annotations

from course.language import tr
from course.samplers import SAMPLERS
from course.widgets import widgets_live


def _show(result, prompt: str) -> None:
    from course.plotting import show_grid, show_strip

    show_grid(result.tensors, [prompt], ncols=1, size=3.0, wrap=40)
    if result.x0_hats:
        picks = [result.x0_hats[i] for i in sorted({round(k * (len(result.x0_hats) - 1) / 5) for k in range(6)})]
        show_strip([x[1][0] for x in picks], [f"t={t}" for t, _ in picks], suptitle=tr(en="x̂_0 along the steps", fr="x̂_0 au fil des étapes"))


def playground(pipe, live: bool | None = None):
    """Prompt, sampler, steps, guidance and seed controls that generate an image and its denoising strip.

    Without a live kernel (CI, static viewers), one fixed example is drawn instead. Returns the widget when live.
    """
    default = "un grand cœur rose en bas à gauche"
    if live is None:
        live = widgets_live()
    if not live:
        print(tr(en="(static example: the playground needs a live Jupyter kernel with ipywidgets)",
                 fr="(exemple fixe : le terrain de jeu demande un noyau Jupyter actif, avec ipywidgets)"))
        _show(pipe(default, num_inference_steps=20, guidance_scale=3.0, generator=0, keep_x0_hat=True), default)
        return None
    import ipywidgets as w
    import matplotlib.pyplot as plt

    style = {"description_width": "initial"}  # « échantillonneur » is longer than the default width
    controls = {
        "prompt": w.Text(value=default, description="prompt", layout=w.Layout(width="420px"), style=style),
        "sampler": w.Dropdown(options=list(SAMPLERS), value="dpmpp", description=tr(en="sampler", fr="échantillonneur"), style=style),
        "steps": w.IntSlider(value=20, min=1, max=100, description=tr(en="steps", fr="étapes"), style=style),
        "guidance": w.FloatSlider(value=3.0, min=0.0, max=10.0, step=0.5, description="guidance", style=style),
        "seed": w.IntText(value=0, description=tr(en="seed", fr="graine"), style=style),
    }
    button, output = w.Button(description=tr(en="generate", fr="générer")), w.Output()

    def run(_):
        with output:
            output.clear_output(wait=True)
            try:
                result = pipe(controls["prompt"].value, num_inference_steps=controls["steps"].value,
                              guidance_scale=controls["guidance"].value, generator=controls["seed"].value,
                              sampler=controls["sampler"].value, keep_x0_hat=True)
            except ValueError as err:
                print(f"⚠️ {err}")
                return
            _show(result, controls["prompt"].value)
            plt.show()

    button.on_click(run)
    return w.VBox([*controls.values(), button, output])
