"""The fashion taxonomy: attributes, values, prompts, and names in Fashionpedia and StreetStyle.

Why a YAML file: trend analysts extend the vocabulary (a new silhouette, a house colour) without code,
and the same file tells the zero-shot tagger what to ask and the data readers how to translate the
public data sets' labels into ours.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from visionlake.errors import BadInput

DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.yaml")
REGIONS = ("any", "upper", "lower")


@dataclass
class Value:
    """One value of an attribute, with the phrases used to describe it."""

    name: str
    prompts: list[str]
    fashionpedia: list[str] = field(default_factory=list)
    streetstyle: list[str] = field(default_factory=list)


@dataclass
class Attribute:
    """An attribute (category, pattern...) with its values and prompt templates."""

    name: str
    values: dict[str, Value]
    templates: list[str]
    region: str = "any"
    description: str = ""

    def prompts_for(self, value: str) -> list[str]:
        """Every template filled with every phrase of ``value``: the prompt ensemble."""
        v = self.values[value]
        return [t.format(p) for p in v.prompts for t in self.templates]


@dataclass
class Taxonomy:
    """All attributes plus the tables that read the public data sets' annotations."""

    attributes: dict[str, Attribute]
    streetstyle_columns: dict[str, str] = field(default_factory=dict)
    streetstyle_flags: dict[str, dict[str, str]] = field(default_factory=dict)

    def attribute(self, name: str) -> Attribute:
        """Look up an attribute; :class:`BadInput` listing the known names otherwise."""
        try:
            return self.attributes[name]
        except KeyError:
            raise BadInput(f"unknown attribute {name!r}; taxonomy has {', '.join(self.attributes)}") from None

    def from_fashionpedia(self, name: str) -> list[tuple[str, str]]:
        """(attribute, value) pairs of ours for a Fashionpedia category or attribute name."""
        key = name.strip().lower()
        return [(a.name, v.name) for a in self.attributes.values() for v in a.values.values()
                if key in (s.lower() for s in v.fashionpedia)]

    def from_streetstyle(self, column: str, label: str) -> tuple[str, str] | None:
        """Translate one StreetStyle-27K annotation (column, label) into (attribute, value) or None."""
        if column in self.streetstyle_flags:
            if str(label).strip().lower() in ("yes", "1", "true"):
                flag = self.streetstyle_flags[column]
                return flag["attribute"], flag["value"]
            return None
        attr_name = self.streetstyle_columns.get(column)
        if attr_name is None or attr_name not in self.attributes:
            return None
        want = str(label).strip().lower()
        for v in self.attributes[attr_name].values.values():
            if want in (s.lower() for s in v.streetstyle):
                return attr_name, v.name
        return None

    def streetstyle_row(self, row: Mapping[str, Any]) -> list[tuple[str, str]]:
        """All (attribute, value) facts of one StreetStyle row (empty cells are not annotated)."""
        out = []
        for column, label in row.items():
            if label is None or (isinstance(label, float) and label != label) or label == "":
                continue
            fact = self.from_streetstyle(str(column), str(label))
            if fact:
                out.append(fact)
        return out


def _as_list(x: Any, what: str) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    if isinstance(x, list) and all(isinstance(i, str) for i in x):
        return list(x)
    raise BadInput(f"{what} must be a string or a list of strings, got {x!r}")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """User YAML on top of the default: attributes/values merged, lists replaced, ``drop`` removes."""
    out = dict(base)
    for key, val in extra.items():
        if key == "attributes" and isinstance(val, dict):
            attrs = {k: dict(v) for k, v in (base.get("attributes") or {}).items()}
            for aname, adef in val.items():
                if not isinstance(adef, dict):
                    raise BadInput(f"attribute {aname!r} must be a mapping")
                if adef.get("drop"):
                    attrs.pop(aname, None)
                    continue
                cur = attrs.get(aname, {})
                merged = {**cur, **{k: v for k, v in adef.items() if k != "values"}}
                values = dict(cur.get("values") or {})
                for vname, vdef in (adef.get("values") or {}).items():
                    if isinstance(vdef, dict) and vdef.get("drop"):
                        values.pop(vname, None)
                    else:
                        values[vname] = vdef
                merged["values"] = values
                attrs[aname] = merged
            out["attributes"] = attrs
        elif isinstance(val, dict) and isinstance(base.get(key), dict):
            out[key] = {**base[key], **val}
        else:
            out[key] = val
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise BadInput(f"taxonomy file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BadInput(f"taxonomy file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"taxonomy file {path} must hold a mapping at the top level")
    return data


def parse_taxonomy(data: dict[str, Any]) -> Taxonomy:
    """Validate a taxonomy mapping (as read from YAML) and build the objects."""
    default_templates = _as_list(data.get("default_templates"), "default_templates") or ["a photo of {}."]
    attrs: dict[str, Attribute] = {}
    raw_attrs = data.get("attributes") or {}
    if not isinstance(raw_attrs, dict):
        raise BadInput("taxonomy 'attributes' must be a mapping of attribute name -> definition")
    for aname, adef in raw_attrs.items():
        if not isinstance(adef, dict):
            raise BadInput(f"attribute {aname!r} must be a mapping")
        templates = _as_list(adef.get("templates"), f"{aname}.templates") or default_templates
        for t in templates:
            if t.count("{}") != 1:
                raise BadInput(f"template {t!r} of {aname!r} must contain exactly one '{{}}'")
        region = adef.get("region", "any")
        if region not in REGIONS:
            raise BadInput(f"attribute {aname!r}: region must be one of {REGIONS}, got {region!r}")
        values: dict[str, Value] = {}
        for vname, vdef in (adef.get("values") or {}).items():
            vdef = vdef or {}
            if isinstance(vdef, list | str):
                vdef = {"prompts": vdef}
            if not isinstance(vdef, dict):
                raise BadInput(f"value {aname}.{vname} must be a mapping or a list of prompts")
            prompts = _as_list(vdef.get("prompts"), f"{aname}.{vname}.prompts") or [str(vname)]
            values[str(vname)] = Value(
                name=str(vname),
                prompts=prompts,
                fashionpedia=_as_list(vdef.get("fashionpedia"), f"{aname}.{vname}.fashionpedia"),
                streetstyle=_as_list(vdef.get("streetstyle"), f"{aname}.{vname}.streetstyle"),
            )
        if len(values) < 2:
            raise BadInput(f"attribute {aname!r} needs at least two values to choose between")
        attrs[str(aname)] = Attribute(str(aname), values, templates, region, str(adef.get("description", "")))
    if not attrs:
        raise BadInput("taxonomy has no attributes")
    return Taxonomy(
        attributes=attrs,
        streetstyle_columns=dict(data.get("streetstyle_columns") or {}),
        streetstyle_flags=dict(data.get("streetstyle_flags") or {}),
    )


def load_taxonomy(path: str | os.PathLike[str] | None = None, extend: bool = True) -> Taxonomy:
    """The default taxonomy, extended by (or, with ``extend=False``, replaced by) a user YAML file.

    ``VISIONLAKE_TAXONOMY`` names a user file when ``path`` is not given.
    """
    base = _read_yaml(DEFAULT_TAXONOMY)
    user = path or os.environ.get("VISIONLAKE_TAXONOMY")
    if user:
        extra = _read_yaml(Path(user))
        base = _merge(base, extra) if extend else extra
    return parse_taxonomy(base)
