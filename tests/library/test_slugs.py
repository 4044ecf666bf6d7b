"""parameterize: the slug Panoptes (Rails) makes of a display name, which zooflow and its sandbox share."""

from __future__ import annotations

import pytest

from zooflow import projects
from zooflow.sandbox import projects as sandbox_projects
from zooflow.slugs import parameterize


@pytest.mark.parametrize(("name", "slug"), [
    ("Glitch demo", "glitch-demo"),
    ("Éclipse – Café Ñandú", "eclipse-cafe-nandu"),
    ("Straße & Œuvre", "strasse-oeuvre"),
    ("  --Penguin Watch!! 2  ", "penguin-watch-2"),
    ("Ødegaard 漢字 Łódź", "odegaard-lodz"),
])
def test_parameterize_as_rails_does(name: str, slug: str) -> None:
    assert parameterize(name) == slug


def test_zooflow_and_its_sandbox_slug_with_the_same_function() -> None:
    assert projects.parameterize is sandbox_projects.parameterize is parameterize
