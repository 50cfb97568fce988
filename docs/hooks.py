"""MkDocs hook: the pages' generated parts come from the model itself, so they never drift,
and the site carries the MathJax that typesets them, so it reads offline.

``<!-- generated: math -->`` is the LP's mathematics (``chokepoint math``),
``<!-- generated: scenario-reference -->`` every scenario key from the pydantic schema,
``<!-- generated: cli -->`` every command from the argument parser,
``<!-- generated: families NAME -->`` the user families of the shipped scenario NAME.

MathJax 3 comes from the ``django-static-mathjax`` package of the ``docs`` extra (MathJax's own
release files; the package needs no Django to be read): its browser build, fonts and the
extensions it loads on demand are added to the site under ``assets/mathjax/``. Nothing is
fetched from the network by the build or by a reader's browser.
"""

from __future__ import annotations

from pathlib import Path

#: What of MathJax's ``es5`` folder the site needs: the TeX-to-HTML build the pages load, and
#: what it loads on demand (TeX extensions, fonts, the menu and accessibility parts). Not the
#: other builds, nor the speech rule engine (``sre/``, only for reading formulas aloud).
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output/chtml", "ui", "a11y", "adaptors")
MATHJAX_SITE = "assets/mathjax"


def mathjax_dir() -> Path:
    import importlib.resources

    try:
        root = importlib.resources.files("mathjax") / "static" / "mathjax" / "es5"
    except ModuleNotFoundError:
        root = None
    if root is None or not (root / "tex-mml-chtml.js").is_file():
        raise SystemExit("docs: MathJax is not installed; install the docs extra: "
                         "pip install -e '.[docs]'")
    return Path(str(root))


def on_files(files, config):
    from mkdocs.structure.files import File

    root = mathjax_dir()
    for part in MATHJAX_PARTS:
        path = root / part
        for src in ([path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                         if p.is_file())):
            rel = src.relative_to(root).as_posix()
            files.append(File.generated(config, f"{MATHJAX_SITE}/{rel}",
                                        abs_src_path=str(src)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    from chokepoint.cli import reference as cli_reference
    from chokepoint.outputs.docs import math_markdown, scenario_reference

    parts = {"math": math_markdown, "scenario-reference": scenario_reference,
             "cli": cli_reference}
    for key, make in parts.items():
        marker = f"<!-- generated: {key} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    from chokepoint.api import prepare
    from chokepoint.outputs.docs import families_markdown

    while "<!-- generated: families " in markdown:  # a shipped scenario's user families
        start = markdown.index("<!-- generated: families ")
        end = markdown.index("-->", start)
        scenario, _, _ = prepare(markdown[start:end].split("families ", 1)[1].strip())
        families, parameters, _ = scenario.user_families()
        made = families_markdown(families, parameters, scenario.family_rows)
        markdown = markdown[:start] + made + markdown[end + 3:]
    return markdown
