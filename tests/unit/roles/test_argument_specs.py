"""Every role variable with a default is declared in the role's argument spec, and the reverse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
# Inventory group names every role reads under one name.
SHARED = {"emqx_cluster_group", "emqx_lb_group"}


@pytest.mark.parametrize("role", sorted(p.name for p in ROLES.iterdir() if (p / "defaults/main.yml").exists()))
def test_defaults_match_argument_spec(role):
    defaults = yaml.safe_load((ROLES / role / "defaults/main.yml").read_text()) or {}
    spec = yaml.safe_load((ROLES / role / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]
    options = spec["options"]
    required = {name for name, option in options.items() if option.get("required")}
    assert set(defaults) - set(options) == set(), "defaults missing from the argument spec"
    assert set(options) - set(defaults) - required == set(), "spec options without a default in defaults/main.yml"
    assert all(name.startswith(role) or name in SHARED for name in options), \
        "every variable carries the role's prefix"
    for name, value in defaults.items():
        if "default" in options[name] and not (isinstance(value, str) and "{{" in value):
            assert options[name]["default"] == value, f"{name}: spec default differs from defaults/main.yml"
