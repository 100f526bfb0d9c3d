"""The pages a session writes beside its JSON report: the HTML page, the Markdown summary,
and the same summary appended to GitHub's job page (``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .output_files import write_text_atomically


def pages(
    data: dict[str, Any], html: Path | None, markdown: Path | None, step_summary: str | None
) -> Iterator[tuple[str, Path, Callable[[Path], None]]]:
    """Each page to write, as (what, path, write): rendered from the report ``data`` only
    when written, the Markdown once for both of its places."""
    from .report_html import render_html
    from .report_md import render_markdown

    if html is not None:
        yield "HTML report", html, lambda path: write_text_atomically(path, render_html(data))
    summary = render_markdown(data) if markdown is not None or step_summary else ""
    if markdown is not None:
        yield "Markdown summary", markdown, lambda path: write_text_atomically(path, summary)
    if step_summary:
        yield "GitHub step summary", Path(step_summary), lambda path: _append(path, summary)


def _append(path: Path, text: str) -> None:
    """Append ``text`` to ``path``, as GitHub's step summary file expects."""
    with path.open("a", encoding="utf-8") as page:
        page.write(text)
