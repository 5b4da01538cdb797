"""The documentation: README's size, links and headline tables, the site's pages, and the generated reference.

``make docs`` builds the site with ``mkdocs build --strict`` (broken links and anchors inside the site fail it);
these tests check what mkdocs does not: README, the generated pages' coverage of the code, and that README's
numbers are the study pages' numbers.
"""

import argparse
import importlib.util
import re
import subprocess

import pytest
import yaml
from harness import ROOT

DOCS = ROOT / "docs"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return load_generator()


@pytest.fixture(scope="module")
def generated(gen) -> dict[str, str]:
    return gen.pages()


def nav_pages() -> list[str]:
    def walk(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return list(walk(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]))


def hand_written_pages(gen) -> list:
    """The Markdown pages kept in git (not generated, not the interface template)."""
    return sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).as_posix() not in gen.GENERATED
                  and not p.name.endswith(".template.md"))


def tables(text: str) -> list[tuple[tuple[str, ...], list[tuple[str, ...]]]]:
    """Every Markdown table of a text: (header cells, body rows), cells with their blanks normalised."""
    found, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append(tuple(" ".join(cell.split()) for cell in line.strip().strip("|").split("|")))
        elif block:
            if len(block) > 2:
                found.append((block[0], block[2:]))
            block = []
    return found


def test_readme_is_at_most_12_kb():
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024


def test_every_page_of_the_nav_exists_and_every_page_is_in_the_nav(gen):
    nav = nav_pages()
    assert len(nav) == len(set(nav))
    for page in nav:
        assert (DOCS / page).is_file() or page in gen.GENERATED, page
    hand = {p.relative_to(DOCS).as_posix() for p in hand_written_pages(gen)}
    assert hand | set(gen.GENERATED) == set(nav), "pages not in mkdocs.yml's nav, or nav entries without a page"


def test_generated_pages_are_git_ignored_and_not_committed(gen):
    paths = [f"docs/{page}" for page in gen.GENERATED]
    ignored = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True)
    assert set(ignored.stdout.split()) == set(paths)
    tracked = subprocess.run(["git", "ls-files", *paths], cwd=ROOT, capture_output=True, text=True)
    assert tracked.stdout == ""


def test_every_relative_link_of_readme_and_the_pages_resolves(gen):
    """README's links must reach files in the repository (it is read on GitHub too, where the generated pages
    do not exist); a page's links may also reach the generated pages. Anchors inside the site are mkdocs's."""
    for source in [ROOT / "README.md", *hand_written_pages(gen), DOCS / gen.INTERFACE_TEMPLATE]:
        for link in LINK.findall(source.read_text()):
            if re.match(r"[a-z]+:", link) or link.startswith("#"):
                continue
            target = (source.parent / link.split("#")[0]).resolve()
            generated_target = target.is_relative_to(DOCS) and target.relative_to(DOCS).as_posix() in gen.GENERATED
            if source.name == "README.md":
                assert target.exists() and not generated_target, f"README links to {link}"
            else:
                assert target.exists() or generated_target, f"{source.relative_to(ROOT)} links to {link}"


def test_readme_s_headline_tables_are_rows_of_the_study_pages():
    """README's numbers are copies of the study pages' tables: every row of a README table is a row of a
    page's table with the same header."""
    pages = [tables(p.read_text()) for p in sorted((DOCS / "studies").glob("*.md"))]
    page_tables = [t for page in pages for t in page]
    readme_tables = tables((ROOT / "README.md").read_text())
    assert len(readme_tables) == 4
    for header, rows in readme_tables:
        same = [page_rows for page_header, page_rows in page_tables if page_header == header]
        assert same, f"no study page has a table headed {header}"
        for row in rows:
            assert any(row in page_rows for page_rows in same), f"README's row {row} is no study page's row"


def test_the_cli_reference_lists_every_subcommand_and_option(generated):
    from lec_cosim.cli import build_parser

    page = generated["reference/cli.md"]
    sections = {part.split("`", 1)[0]: part for part in page.split("\n## `")[1:]}
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sections) == list(subparsers.choices)
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            names = action.option_strings or [action.metavar or action.dest]
            assert all(f"`{n}`" in sections[name] for n in names), (name, names)
            if action.help:
                assert " ".join(action.help.split()).replace("|", "\\|") in sections[name], (name, names)
    assert "`--debug`" in page.split("\n## `")[0]


def test_the_schema_reference_lists_every_field_with_its_description_and_default(gen, generated):
    import lec_cosim.scenario as scenario

    page = generated["reference/scenario-schema.md"]
    studies = page.split("\n## ")[1:]
    assert len(studies) == len(gen.STUDIES) == 3
    for (kind, _, model_name), study in zip(gen.STUDIES, studies):
        model = getattr(scenario, model_name)
        assert study.startswith(f"{gen.STUDIES[[s[0] for s in gen.STUDIES].index(kind)][1]}: `{model_name}`")
        sections = {"": study.split("\n### ")[0]}
        sections.update({part.split("`", 1)[0]: part for part in study.split("\n### `")[1:]})
        paths = gen.schema_fields(model)
        assert len(paths) > 20
        for dotted, field, schema, required, nested in paths:
            parent, _, key = dotted.rpartition(".")
            rows = [line for line in sections[parent].splitlines() if line.startswith(f"| `{key}` |")]
            assert len(rows) == 1, (model_name, dotted)
            if field.description:
                assert " ".join(field.description.split()).replace("|", "\\|") in rows[0], dotted
            if required:
                assert "| required |" in rows[0], dotted
            elif nested is None:
                assert gen._json(schema["default"]) in rows[0], dotted
            if nested is not None:
                assert dotted in sections, f"no section for {dotted}"
        assert "source_file" not in study  # internal, not a field of the file


def test_the_scenario_files_tutorial_s_example_is_a_valid_scenario(tmp_path):
    """The annotated example of docs/tutorials/scenario-files.md validates like the shipped scenario it shows."""
    from lec_cosim.scenario import load_scenario

    text = (DOCS / "tutorials" / "scenario-files.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", text, flags=re.S).group(1)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "data").symlink_to(ROOT / "data")
    path = tmp_path / "scenarios" / "example.yaml"
    path.write_text(example)
    shipped = load_scenario(ROOT / "scenarios" / "trondelag_arbitrage.yaml")
    loaded = load_scenario(path)
    assert loaded.model_dump(exclude={"description"}) == shipped.model_dump(exclude={"description"})
