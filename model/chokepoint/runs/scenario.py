"""Scenario files: YAML, validated with pydantic; every error names the file, line and key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, \
    model_validator

from ..cases import Case
from ..statistics.counterfactual import EDIT_KINDS, Edit
from ..chemistry import DEFAULT_PAIRS, MATERIALS, Pair, parse_pair
from ..errors import ChokepointError, ScenarioError, did_you_mean, read_text
from ..lp import DEFAULT_SOLVER
from ..lp.yaml_families import PARAMETER_TAGS, ConstraintSpec


class NetworkSpec(BaseModel):
    """Where the flow networks come from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    flows: str | None = Field(
        None,
        description="Folder of `<material>_<year>.csv` files in the published flows format "
        "(Source,Target,Value); relative to the scenario file. Without it the networks are "
        "built from the statistics under data/.",
    )
    year: int = Field(2020, description="Year of the networks.", ge=1900, le=2100)
    profile: str = Field(
        "paper", description="Building from data/: `paper` (what the published flows read) "
        "or `complete` (every listed HS code, export-side files where import-side are missing).")
    close_imbalances: bool = Field(
        False, description="Reading flows: balance unbalanced nodes by the material-flow "
        "rules (uncertain source for a shortfall, other sink for a surplus) instead of failing.")


class UncertainFraction(BaseModel):
    """One uncertain fraction of the sensitivity analysis, as a factor range on its value."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    code: str | None = Field(None, description="HS code: its contained fraction.")
    parameter: str | None = Field(
        None, description="A constraint family's parameter (`family.parameter`); its range is "
        "[low, high] in the parameter's own values, not factors.")
    material: str | None = Field(
        None, description="With chemistry: that mass fraction. Alone: every HS code of the "
        "material, each its own parameter.")
    chemistry: str | None = Field(None, description="Cathode chemistry (with material).")
    range: tuple[float, float] = Field(
        description="[low, high] factors on the central value, e.g. [0.5, 1.5] for +-50% "
        "(a parameter: [low, high] values).")
    distribution: Literal["uniform", "triangular"] = Field(
        "uniform", description="Shape over the range (triangular peaks at factor 1, or at a "
        "parameter's central value).")

    @model_validator(mode="after")
    def _target(self):
        if self.parameter is not None:
            if any(x is not None for x in (self.code, self.material, self.chemistry)):
                raise ValueError("a parameter entry takes parameter and range only")
            if not self.range[0] <= self.range[1]:
                raise ValueError("range is [low, high] with low <= high")
            return self
        if not 0 < self.range[0] <= 1 <= self.range[1]:
            raise ValueError("range is [low, high] factors with 0 < low <= 1 <= high")
        if self.code is None and self.material is None:
            raise ValueError("give code, material, chemistry and material, or parameter")
        if self.chemistry is not None and (self.material is None or self.code is not None):
            raise ValueError("a mass fraction is chemistry and material (no code)")
        return self


class SensitivitySpec(BaseModel):
    """Sampling of uncertain fractions; results get a ``sample`` dimension."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    samples: int = Field(100, ge=1, le=1_000_000,
                         description="Samples (grid: points per parameter).")
    method: Literal["lhs", "mc", "grid"] = Field(
        "lhs", description="Latin hypercube, Monte Carlo, or a full grid.")
    seed: int = Field(0, ge=0, description="Seed: the same seed gives the same samples, bit "
                      "for bit.")
    parameters: list[UncertainFraction] = Field(min_length=1)
    quantiles: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        [0.05, 0.5, 0.95], description="Summary quantiles, each in [0, 1].")


class ScenarioSpec(BaseModel):
    """A scenario: which networks, which focal sets, pairs and cases, which solver."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(
        description="Scenario name; outputs go to results/<name>/ by default.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    )
    description: str = Field("", description="Free text, copied into the results' attrs.")
    network: NetworkSpec = Field(description="Where the networks come from.")
    pairs: list[str] = Field(
        list(DEFAULT_PAIRS), description="Chemistry-material pairs, e.g. LFP-lithium.",
        min_length=1)
    cases: list[str] = Field(
        [c.value for c in Case], description="Cases to compute.", min_length=1)
    focal: dict[str, Any] = Field(
        description="Focal sets: label -> list of countries (or {countries, stages}).",
        min_length=1)
    solver: str = Field(
        DEFAULT_SOLVER, description="`highspy` (HiGHS fed the matrix once), `network` (exact "
        "max-flow engine for the core families), or any Pyomo solver name.")
    solver_options: dict[str, Any] = Field(
        {}, description="Options for the solver (highspy: HiGHS options, e.g. solver: ipm).")
    extensions: list[str] = Field(
        [], description="Python files (relative to the scenario) or importable modules that "
        "define constraint families with @chokepoint.constraint_family; every family they "
        "define is active unless switched off in `families`.")
    constraints: dict[str, ConstraintSpec] = Field(
        {}, description="Declarative constraint families: name -> {title, cases, foreach, "
        "group_by, where, equation | equations, expressions, parameters, allow_empty} (the "
        "language: Extending the LP).")
    parameters: dict[str, float] = Field(
        {}, description="Values of the families' declared parameters, `family.parameter: "
        "value`.")
    families: dict[str, bool] = Field(
        {}, description="Switch user families by name (default: every family of `extensions` "
        "and `constraints` is on).")
    stage_contributions: bool = Field(
        True, description="Also compute the stage decomposition (stage_contributions.csv).")
    blocs_file: str | None = Field(
        None, description="YAML of named blocs (focal `{bloc: NAME}`), relative to the scenario; "
        "default: blocs.yaml beside the scenario, else the project's scenarios/blocs.yaml.")
    edits: list[Edit] = Field(
        [], description="Counterfactual edits of the statistics, applied in order before the "
        f"material-flow step: {', '.join(EDIT_KINDS)}.")
    sweep: dict[str, list[Any]] = Field(
        {}, description="Dotted scenario key -> list of values (e.g. network.year: [2019, "
        "2020], solver: [highspy, glpk], parameters.FAMILY.PARAM: [0.25, 0.5], families.NAME: "
        "[true, false]); the run is their cartesian "
        "product, each result labelled by its values.")
    variants: list[dict[str, Any]] = Field(
        [], description="Explicit variants instead of a product: each a mapping of dotted key "
        "-> value, with an optional `label`.")
    sensitivity: SensitivitySpec | None = Field(
        None, description="Sample uncertain contained and mass fractions.")

    @field_validator("sweep")
    @classmethod
    def _values_to_sweep(cls, v: dict) -> dict:
        for key, values in v.items():
            if not values:
                raise ValueError(f"sweep.{key} is an empty list: give at least one value")
        return v

    @field_validator("solver_options")
    @classmethod
    def _finite_options(cls, v: dict) -> dict:
        import math

        for key, value in v.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{key} is {value}, not a finite number")
        return v

    @field_validator("focal")
    @classmethod
    def _labels_are_text(cls, v: dict) -> dict:
        for label in v:
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"focal set label {label!r} must be non-empty text")
        return v


#: Most values a scenario may expand to (its aliases counted once per use).
MAX_SCENARIO_VALUES = 100_000


def _line_map(root) -> dict[tuple, int]:
    """YAML path (tuple of keys / indices) -> 1-based line where its value starts."""
    lines: dict[tuple, int] = {}

    def walk(node, path):
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                lines[path + (k.value,)] = k.start_mark.line + 1
                walk(v, path + (k.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))

    if root is not None:
        walk(root, ())
    return lines


def _format_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class Scenario:
    """A validated scenario file, with the pairs and cases parsed and paths resolved."""

    def __init__(self, spec: ScenarioSpec, path: Path | None, lines: dict[tuple, int]):
        self.spec = spec
        self.path = path
        self._lines = lines
        self.pairs: list[Pair] = [
            parse_pair(p, self.where(("pairs", i))) for i, p in enumerate(spec.pairs)
        ]
        self.cases: list[Case] = [
            Case.parse(c, self.where(("cases", i))) for i, c in enumerate(spec.cases)
        ]
        for what, items in (("pairs", self.pairs), ("cases", self.cases)):
            seen = set()
            for i, item in enumerate(items):
                if item in seen:
                    raise ScenarioError(f"{self.where((what, i))}: {item} is listed twice")
                seen.add(item)
        from ..statistics.inputs import PROFILES

        if spec.network.profile not in PROFILES:
            raise ScenarioError(
                f"{self.where(('network', 'profile'))}: unknown profile "
                f"{spec.network.profile!r}{did_you_mean(spec.network.profile, PROFILES)}; "
                f"choose from {', '.join(PROFILES)}")
        from ..lp import DEFAULT_SOLVER, NETWORK_SOLVER, known_solvers

        if spec.solver not in (DEFAULT_SOLVER, NETWORK_SOLVER) and \
                spec.solver not in known_solvers():
            raise ScenarioError(f"{self.where(('solver',))}: unknown solver {spec.solver!r}"
                                f"{did_you_mean(spec.solver, known_solvers())}")
        labels = [label.strip().lower() for label in spec.focal]
        if len(set(labels)) != len(labels):
            raise ScenarioError(f"{self.where(('focal',))}: two focal sets share a label")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def user_families(self):
        """The scenario's active user families, their parameter values and the loaded
        extensions: ``(families, parameters, extensions)``."""
        if getattr(self, "_families", None) is None:
            self._families = self._load_families()
        return self._families

    def _load_families(self):
        from ..lp import family_parameters
        from ..lp.extensions import scenario_families

        spec = self.spec
        loaded, fams = scenario_families(spec.extensions, spec.constraints, self.base_dir,
                                         self.where, self.path.name if self.path else
                                         "<scenario>", blocs=self.blocs())
        names = [f.name for f in fams]
        for name in spec.families:
            if name not in names:
                raise ScenarioError(f"{self.where(('families', name))}: no constraint family "
                                    f"{name!r}{did_you_mean(name, names)}; defined: "
                                    f"{', '.join(names) or 'none'}")
        active = [f for f in fams if spec.families.get(f.name, True)]
        on = {f.name for f in active}
        values = {}
        for key, value in spec.parameters.items():
            family = key.split(".", 1)[0]
            if family in names and family not in on:
                continue  # a parameter of a family switched off
            values[key] = value
        try:
            params = family_parameters(active, values)
        except ChokepointError as e:
            key = next((k for k in values if f"{k!r}" in str(e)), None)
            where = self.where(("parameters", key) if key else ("parameters",))
            raise ScenarioError(f"{where}: {str(e).split(': ', 1)[1]}") from None
        return active, params, loaded

    @property
    def materials(self) -> list[str]:
        return [m for m in MATERIALS if any(p.material == m for p in self.pairs)]

    def where(self, loc: tuple) -> str:
        """``file:line: key.path`` for error messages."""
        line = None
        for n in range(len(loc), 0, -1):  # the root's line would point at an unrelated key
            if loc[:n] in self._lines:
                line = self._lines[loc[:n]]
                break
        file = str(self.path) if self.path else "<scenario>"
        return f"{file}:{line}: {_format_path(loc)}" if line else f"{file}: {_format_path(loc)}"

    def blocs(self) -> dict[str, dict]:
        """Named blocs: ``blocs_file``, else blocs.yaml beside the scenario, else the project's
        scenarios/blocs.yaml; {} when there is none."""
        from ..focal import load_blocs
        from ..shipped import scenarios_dir

        if getattr(self, "preset_blocs", None) is not None:  # a task's: sent, not read
            return self.preset_blocs
        base = self.path.parent if self.path else Path.cwd()
        if self.spec.blocs_file:
            path = (base / self.spec.blocs_file).resolve()
            if not path.exists():
                raise ScenarioError(f"{self.where(('blocs_file',))}: blocs file "
                                    f"{str(path)!r} does not exist")
            try:
                return load_blocs(path)
            except ScenarioError as e:
                raise ScenarioError(f"{self.where(('blocs_file',))}: {e}") from None
        for path in (base / "blocs.yaml",
                     scenarios_dir() / "blocs.yaml"):
            if path.is_file():
                return load_blocs(path)
        return {}

    def flows_dir(self) -> Path | None:
        """The flows folder, or None when the networks are to be built from data/."""
        flows = self.spec.network.flows
        if flows is None:
            return None
        for key in ("edits", "sensitivity"):
            if getattr(self.spec, key):
                raise ScenarioError(f"{self.where((key,))}: {key} change the statistics: they "
                                    "need networks built from data/ (remove network.flows)")
        base = self.path.parent if self.path else Path.cwd()
        folder = (base / flows).resolve()
        if not folder.is_dir():
            raise ScenarioError(
                f"{self.where(('network', 'flows'))}: flows folder {str(folder)!r} does not exist"
            )
        return folder


#: Mapping keys whose own keys are data, not schema (``parameters: {capped_arcs.share: 0.5}``):
#: a dotted key ``parameters.capped_arcs.share`` sets the entry ``capped_arcs.share``.
MAPPING_KEYS = ("parameters", "families", "solver_options", "constraints")


def set_dotted(data: dict, key: str, value) -> None:
    """Set ``data`` at a dotted scenario key (``network.year``, ``parameters.f.p``)."""
    head, _, rest = key.partition(".")
    if head in MAPPING_KEYS and rest:
        data.setdefault(head, {})[rest] = value
        return
    *path, last = key.split(".")
    for k in path:
        data = data.setdefault(k, {})
    data[last] = value


def load_scenario(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Read and validate a scenario file, or a shipped scenario by name (``paper_2020``);
    raises :class:`ScenarioError` with file:line: key. ``overrides`` set dotted keys before
    validation (the CLI's ``--set KEY=VALUE``)."""
    from ..shipped import scenario_path

    path = scenario_path(path)
    return parse_scenario(read_text(path, "scenario file", ScenarioError), path, overrides)


def parse_scenario(text: str, path: Path | None = None,
                   overrides: Mapping[str, Any] | None = None) -> Scenario:
    from .. import yamlio

    file = str(path) if path else "<scenario>"
    data, root = yamlio.load(text, file, ScenarioError, max_values=MAX_SCENARIO_VALUES)
    if not isinstance(data, dict):
        raise ScenarioError(f"{file}: a scenario is a YAML mapping (name:, network:, focal:, ...)")
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    lines = _line_map(root)
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(_explain(e, file, lines, list(overrides or {}))) from None
    return Scenario(spec, path, lines)


def _model_at(loc: tuple):
    """The pydantic model that owns the last key of ``loc`` (for unknown-key suggestions)."""
    from ..statistics import counterfactual

    models = {"network": NetworkSpec, "sensitivity": SensitivitySpec}
    if len(loc) == 1:
        return ScenarioSpec
    if loc[0] == "edits" and len(loc) >= 3:
        kinds = {"scale_production": counterfactual.ScaleProduction,
                 "move_production": counterfactual.MoveProduction,
                 "recycling": counterfactual.Recycling, "scale_trade": counterfactual.ScaleTrade,
                 "set_fraction": counterfactual.SetFraction}
        return kinds.get(loc[2])
    if loc[0] == "sensitivity" and len(loc) >= 3 and loc[1] == "parameters":
        return UncertainFraction
    if loc[0] == "constraints" and len(loc) >= 3:
        return ConstraintSpec
    return models.get(loc[0])


def _explain(error: ValidationError, file: str, lines: dict[tuple, int],
             overridden: list[str] = ()) -> str:
    """All pydantic errors in one line: ``file:line: key: message; ...``; an error in a key
    set from the command line names ``--set KEY`` instead of the file."""
    parts = []
    for err in error.errors():
        loc = tuple(x for x in err["loc"] if x not in PARAMETER_TAGS)
        line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
        where = f"{file}:{line}" if line else file
        for key in overridden:
            path = tuple(key.split("."))
            if loc and (loc[:len(path)] == path or path[:len(loc)] == loc):
                where = f"--set {key}"
        if err["type"] == "extra_forbidden":
            model = _model_at(loc)
            fields = [f.alias or k for k, f in model.model_fields.items()] if model else []
            msg = (f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), fields)}; "
                   f"valid keys: {', '.join(fields)}")
        elif err["type"] == "union_tag_invalid":
            tag = str(err["ctx"]["tag"])
            msg = f"unknown edit kind {tag!r}{did_you_mean(tag, EDIT_KINDS)}; " \
                  f"choose from {', '.join(EDIT_KINDS)}"
        elif err["type"] == "union_tag_not_found":
            msg = f"an edit needs a kind: one of {', '.join(EDIT_KINDS)}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "value_error":  # our validators' own words
            msg = str(err["ctx"]["error"]) if "error" in err.get("ctx", {}) else err["msg"]
        else:
            msg = err["msg"]
        # the discriminator tag is not a key of the file: drop it from the path shown
        shown = tuple(x for i, x in enumerate(loc)
                      if not (i == 2 and loc[0] == "edits" and x in EDIT_KINDS))
        parts.append(f"{where}: {_format_path(shown)}: {msg}")
    return "; ".join(parts)
