"""Generate the CustomResourceDefinitions from the pydantic models.

Pydantic emits JSON Schema 2020-12 with $refs and anyOf-null for optionals; Kubernetes wants a
structural OpenAPI v3 schema with everything inlined. This module does that translation and adds
what only a CRD has: printer columns, subresources, short names, categories, CEL rules.
Run `make crds` (or `agentfleet-crdgen --out crds`) after changing a model; a test fails when the
committed files differ from what this produces.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from .api.base import GROUP, VERSION
from .api.kinds import ALL_KINDS, CATEGORY, KindInfo, crd_name, schema_extra

# Keys of JSON Schema that a structural CRD schema accepts as they are.
_PASSTHROUGH = {
    "type",
    "description",
    "default",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "nullable",
}


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline a $ref and fold optional anyOf-null into the single real alternative."""
    schema = dict(schema)
    if "$ref" in schema:
        target = copy.deepcopy(defs[schema.pop("$ref").rsplit("/", 1)[-1]])
        target.update(schema)  # the field's own description/default win over the model's
        schema = target
    if "anyOf" in schema and not schema.get("x-kubernetes-int-or-string"):
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions other than Optional are not structural: {schema}")
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        inner = _resolve(options[0], defs)
        inner.update(rest)
        schema = inner
    return schema


def structural(schema: dict[str, Any], defs: dict[str, Any], *, keep_defaults: bool = True) -> dict[str, Any]:
    """Translate one (sub)schema to the structural form Kubernetes requires."""
    schema = _resolve(schema, defs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _PASSTHROUGH:
            if key == "default" and (value is None or not keep_defaults):
                continue
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key.startswith("x-kubernetes-") or key == "anyOf":
            out[key] = value
        elif key == "properties":
            out["properties"] = {
                name: structural(sub, defs, keep_defaults=keep_defaults) for name, sub in value.items()
            }
        elif key == "items":
            out["items"] = structural(value, defs, keep_defaults=keep_defaults)
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = structural(value, defs, keep_defaults=keep_defaults)
        # title, $defs, examples and the like are documentation pydantic adds; CRDs do not need them.
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("type", "object")
        out.pop("additionalProperties", None)
    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _model_schema(model: type, *, keep_defaults: bool) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return structural(raw, defs, keep_defaults=keep_defaults)


def build_crd(info: KindInfo) -> dict[str, Any]:
    spec_schema = _model_schema(info.spec_model, keep_defaults=True)
    # Status is written only by the operator; defaults there would invent values it never reported.
    status_schema = _model_schema(info.status_model, keep_defaults=False)
    root: dict[str, Any] = {
        "type": "object",
        "description": info.description,
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            # name declared (the only metadata field a CRD may constrain) so that a root rule's
            # fieldPath can point at it and the refusal names metadata.name.
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": spec_schema,
            "status": status_schema,
        },
        "required": ["spec"],
    }
    root.update(schema_extra(info))
    subresources: dict[str, Any] = {"status": {}}
    if info.scale:
        subresources["scale"] = dict(info.scale)
    columns = []
    for column in info.columns:
        entry: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "jsonPath": column.json_path,
            "description": column.description,
        }
        if column.priority:
            entry["priority"] = column.priority
        columns.append(entry)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": crd_name(info, GROUP),
            "labels": {"app.kubernetes.io/name": "agentfleet", "app.kubernetes.io/component": "crd"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def file_name(info: KindInfo) -> str:
    return f"{GROUP}_{info.plural}.yaml"


HEADER = "# Generated by agentfleet-crdgen from the pydantic models. Do not edit; run `make crds`.\n"


def render_all() -> dict[str, str]:
    """File name → YAML text of every generated file (CRDs plus their kustomization)."""
    files = {
        file_name(info): HEADER + yaml.safe_dump(build_crd(info), sort_keys=False, width=120) for info in ALL_KINDS
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [file_name(info) for info in ALL_KINDS],
    }
    files["kustomization.yaml"] = HEADER + yaml.safe_dump(kustomization, sort_keys=False)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate agentfleet CRDs from the API models.")
    parser.add_argument("--out", default="crds", help="folder to write into (default: crds)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the folder is not up to date")
    args = parser.parse_args(argv)
    out = Path(args.out)
    stale = []
    for name, text in render_all().items():
        path = out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        out.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    if stale:
        print("out of date, run `make crds`: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
