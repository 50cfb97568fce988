"""MkDocs hook: the pages' generated parts come from the model itself, so they never drift.

``<!-- generated: math -->`` is the LP's mathematics (``chokepoint math``),
``<!-- generated: scenario-reference -->`` every scenario key from the pydantic schema,
``<!-- generated: cli -->`` every command from the argument parser,
``<!-- generated: families NAME -->`` the user families of the shipped scenario NAME.
"""

from __future__ import annotations


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
