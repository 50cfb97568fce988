"""YAML read strictly: a duplicate key is an error, aliases cannot blow a small file up, and a
file has a size limit. Every user YAML (scenarios, blocs, a ``data/`` folder) is read here."""

from __future__ import annotations

import yaml

from .errors import ChokepointError

#: Largest YAML file read, in bytes (the paper scenario is 1 kB; data tables well under this);
#: files are read with this bound (:func:`chokepoint.errors.read_text`), never whole first.
MAX_BYTES = 10_000_000
#: Most values a document may hold once its aliases are expanded.
MAX_VALUES = 1_000_000


def load(text: str, where: str, error: type[ChokepointError] = ChokepointError,
         max_values: int = MAX_VALUES):
    """The document in ``text`` (``where`` names it in errors): its data and its composed
    node tree (for line numbers)."""
    if len(text) > MAX_BYTES:
        raise error(f"{where}: {len(text):,} bytes, more than the {MAX_BYTES:,} a YAML file "
                    "may have")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"{where}{at}: malformed YAML: {problem}") from None
    if root is None:
        return None, None
    _check(root, where, error, max_values)
    try:
        return yaml.constructor.SafeConstructor().construct_document(root), root
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        raise error(f"{where}{at}: malformed YAML: {getattr(e, 'problem', e)}") from None


def _check(root, where: str, error, max_values: int) -> None:
    """Duplicate keys, and the number of values the document expands to (aliases repeat a
    node: counted once per use, computed once per node)."""
    size: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        children = [c for pair in node.value for c in pair] \
            if isinstance(node, yaml.MappingNode) else \
            list(node.value) if isinstance(node, yaml.SequenceNode) else []
        if not done:
            if isinstance(node, yaml.MappingNode):
                seen: dict = {}
                for key, _ in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                        if key.value in seen:
                            raise error(f"{where}:{key.start_mark.line + 1}: duplicate key "
                                        f"{key.value!r} (first on line {seen[key.value]})")
                        seen[key.value] = key.start_mark.line + 1
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        total = 1 + sum(size.get(id(c), 1) for c in children)
        if total > max_values:
            raise error(f"{where}: the document expands to more than {max_values:,} values "
                        "(YAML aliases repeating large parts?)")
        size[id(node)] = total
