"""The documentation cannot drift from the code where it lists the code: the layout names
every library module, and the README stays a front door."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_layout_names_every_library_module():
    layout = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    library = ROOT / "src" / "honing"
    modules = [p.name for p in library.rglob("*.py") if p.name != "__init__.py"]
    modules += [f"{p.name}/" for p in library.iterdir() if (p / "__init__.py").exists()]
    missing = [m for m in sorted(modules) if m not in layout]
    assert not missing, f"docs/development.md's layout does not name {missing}"


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    # every page it sends a reader to exists, and is in the site's navigation
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for target in [part.split(")")[0] for part in readme.split("](docs/")[1:]]:
        page = target.split("#")[0]
        assert (ROOT / "docs" / page).is_file(), page
        assert page in nav, f"{page} is not in mkdocs.yml's nav"
