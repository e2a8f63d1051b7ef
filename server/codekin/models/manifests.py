"""A version manifest (`.codekin/models/vN/manifest.json`) is read with its field types checked:
a manifest of the right JSON shape with a field of the wrong type (`"metrics": []`, a string
where a number belongs) is as damaged as a truncated one, and the faces (`models list`, the
dashboard) list it as such instead of failing on the field later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codekin.models.checkpoints import read_manifest

# The type of each field a version manifest may hold (read_version_manifest checks them).
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("version", "base_model", "parent", "status", "reason", "checkpoint"), (str,)),
    **dict.fromkeys(("created_at", "promoted_at"), (int, float)),
    **dict.fromkeys(("triplets", "eval_triplets", "dim"), (int,)),
    **dict.fromkeys(("metrics", "weights", "args", "train"), (dict,)),
}
_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", dict: "an object"}


def read_version_manifest(directory: Path) -> dict[str, Any]:
    """A version's manifest; ValueError when it cannot be read or a field has the wrong type
    (`"metrics": []`, a string where a number belongs), naming the field."""
    manifest = read_manifest(directory)
    fields = [(key, manifest[key], types) for key, types in _MANIFEST_TYPES.items() if key in manifest]
    metrics = manifest.get("metrics")
    if isinstance(metrics, dict):
        fields += [(f"metrics.{key}", metrics[key], (dict,)) for key in ("active", "candidate") if key in metrics]
    for key, value, types in fields:
        if isinstance(value, bool) or not isinstance(value, types):
            found = "null" if value is None else _TYPE_NAMES.get(type(value), f"a JSON {type(value).__name__}")
            raise ValueError(f"its field {key!r} is {found} where {_TYPE_NAMES[types[-1]]} belongs")
    return manifest
