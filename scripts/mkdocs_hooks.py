"""MkDocs build hook: the generated reference pages of the documentation site.

``reference/options.md`` comes from the one options table and ``reference/plugins.md`` from the
plugin registry (:mod:`defacebench.cli.reference`: the same text as ``defacebench reference
options|plugins``). They are added to the build as generated pages (nothing is written into
``docs/``), so ``mkdocs build --strict`` checks their links like any other page's.
"""

from __future__ import annotations


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    from defacebench.cli.reference import PAGES, reference

    for page in PAGES:
        files.append(File.generated(config, f"reference/{page}.md", content=reference(page)))
    return files
