"""`make bench`'s rewrite of docs/benchmarks.md (bench/publish.py): a marked block is replaced
and nothing outside it changes, a missing one goes at the end of its section, output becomes
Markdown, and every script in bench/ must be registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.publish import BENCHES, DOC, Bench, render, replace_block, unregistered

CODEC = Bench("codec", "bench_codec", "## Codec", ())
DOC_TEXT = """# Benchmarks

## Codec (smpp.codec)

Prose and the figures of 2026-11-24.

<!-- bench:codec -->
old table
<!-- /bench:codec -->

More prose after the block.

## Routing

Routing prose.
"""


def test_a_marked_block_is_replaced_and_nothing_else():
    new = "<!-- bench:codec -->\nfresh\n<!-- /bench:codec -->"
    got = replace_block(DOC_TEXT, CODEC, new)
    assert got == DOC_TEXT.replace("old table", "fresh")
    assert replace_block(got, CODEC, new) == got  # idempotent


def test_a_missing_block_goes_at_the_end_of_its_section():
    routing = Bench("routing", "routing", "## Routing", ())
    new = "<!-- bench:routing -->\nrouted\n<!-- /bench:routing -->"
    got = replace_block(DOC_TEXT, routing, new)
    assert got == DOC_TEXT + "\n" + new + "\n"
    first = replace_block(DOC_TEXT, Bench("x", "x", "## Codec", ()), "<!-- bench:x -->")
    assert "More prose after the block.\n\n<!-- bench:x -->\n\n## Routing" in first
    with pytest.raises(ValueError, match="no section starting '## Nowhere'"):
        replace_block(DOC_TEXT, Bench("y", "y", "## Nowhere", ()), "")


def test_output_becomes_markdown():
    output = (
        "nproc=2 runs=1\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
        "\n"
        "| bare | row |\n"  # a row without a header is not a table: text
        "done\n"
    )
    assert render(output) == (
        "```text\nnproc=2 runs=1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "```text\n| bare | row |\ndone\n```"
    )


def test_every_section_exists_and_unregistered_scripts_are_found(tmp_path: Path):
    doc = DOC.read_text()
    for bench in BENCHES:
        assert any(line.startswith(bench.section) for line in doc.splitlines()), bench
    for name in ("accept", "webhook_sink", "new_bench"):
        (tmp_path / f"{name}.py").write_text("")
    assert unregistered(tmp_path) == ["new_bench"]
