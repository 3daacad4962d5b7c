"""The lab's report: one self-contained HTML page, ``index.html``, over the experiments' folders.

An experiment that was skipped (its data is not installed) or failed appears as a section with the reason -
the install command, or the error and where its traceback is - instead of figures.

Inline CSS, no scripts, no network; figures are referenced by relative path (``NAME/figure.png``), not
embedded, so the report folder can be moved or zipped as a whole. Every piece of text is HTML-escaped;
the summaries' Markdown is turned into minimal HTML (paragraphs, bullet lists, **bold**, `code`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from dlbasics.io import atomic_write_text
from dlbasics.lab.base import Finding, Outcome, format_number

CSS = """
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; margin: 0;
       background: #fafafa; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { margin-bottom: .2rem; }
h2 { border-top: 1px solid #ddd; padding-top: 1.5rem; margin-top: 2.5rem; }
.lead { color: #555; margin-top: 0; }
nav ol { padding-left: 1.4rem; }
nav li { margin: .2rem 0; }
.claim { border-left: 4px solid #3367d6; background: #eef3fd; padding: .6rem 1rem; margin: 1rem 0; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: .25rem .7rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e5e5; background: white; }
figcaption { color: #666; font-size: 13px; }
code { background: #f0f0f0; padding: 0 .25rem; border-radius: 3px; font-size: 90%; }
pre { background: #1e1e1e; color: #eee; padding: .7rem 1rem; border-radius: 4px; overflow-x: auto; }
pre code { background: none; color: inherit; padding: 0; }
.meta { color: #666; font-size: 14px; }
.skipped, .failed { padding: .6rem 1rem; margin: 1rem 0; }
.skipped { border-left: 4px solid #b8860b; background: #fdf6e3; }
.failed { border-left: 4px solid #c62828; background: #fdecea; }
"""

_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BULLET = re.compile(r"^\s*[-*]\s+")


def inline_markdown(text: str) -> str:
    """`code` and **bold** as HTML; everything else escaped (code spans are not formatted further)."""
    out = []
    for i, part in enumerate(_CODE.split(text)):  # odd parts are the insides of code spans
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            out.append(_BOLD.sub(r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


def markdown_to_html(text: str) -> str:
    """Blank-line separated paragraphs (``- `` lines make a bullet list) with inline ``code`` and bold."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        if all(_BULLET.match(line) for line in lines):
            items = "".join(f"<li>{inline_markdown(_BULLET.sub('', line))}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        else:
            blocks.append(f"<p>{inline_markdown(' '.join(line.strip() for line in lines))}</p>")
    return "\n".join(blocks)


def _numbers_table(finding: Finding) -> str:
    if not finding.numbers:
        return ""
    rows = "".join(f"<tr><td><code>{html.escape(str(k))}</code></td>"
                   f"<td class=\"num\">{html.escape(format_number(v))}</td></tr>"
                   for k, v in finding.numbers.items())
    return f"<table><thead><tr><th>number</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>"


def figure_src(finding: Finding, figure: str) -> str:
    """The figure's path relative to the report folder, URL-quoted: ``NAME/figure.png``."""
    return quote(f"{finding.name}/{figure}", safe="/")


def _figures(finding: Finding) -> str:
    out = []
    for fig in finding.figures:
        caption = Path(fig).stem.replace("_", " ")
        out.append(f"<figure><img src=\"{html.escape(figure_src(finding, fig), quote=True)}\" "
                   f"alt=\"{html.escape(f'{finding.title}: {caption}', quote=True)}\" loading=\"lazy\">"
                   f"<figcaption>{html.escape(fig)}</figcaption></figure>")
    return "\n".join(out)


def _section(finding: Finding) -> str:
    anchor = html.escape(finding.name, quote=True)
    parts = [
        f"<section id=\"{anchor}\">",
        f"<h2>{html.escape(finding.title)}</h2>",
        f"<p class=\"claim\"><strong>Claim.</strong> {html.escape(finding.claim)}</p>",
        markdown_to_html(finding.summary),
        _numbers_table(finding),
        _figures(finding),
    ]
    if finding.command:
        parts += ["<p>Reproduce:</p>", f"<pre><code>{html.escape(finding.command)}</code></pre>"]
    parts += [f"<p class=\"meta\">{html.escape(finding.name)}: {finding.seconds:.1f} s</p>", "</section>"]
    return "\n".join(p for p in parts if p)


def _unfinished_section(outcome: Outcome) -> str:
    """A skipped or failed experiment: its claim and why there is nothing to show."""
    anchor = html.escape(outcome.name, quote=True)
    parts = [f"<section id=\"{anchor}\">", f"<h2>{html.escape(outcome.title or outcome.name)}</h2>"]
    if outcome.claim:
        parts.append(f"<p class=\"claim\"><strong>Claim.</strong> {html.escape(outcome.claim)}</p>")
    parts.append(f"<p class=\"{outcome.status}\"><strong>{outcome.status.capitalize()}.</strong> "
                 f"{html.escape(outcome.reason)}</p>")
    if outcome.status == "failed":
        src = html.escape(quote(f"{outcome.name}/error.txt", safe="/"), quote=True)
        parts.append(f"<p class=\"meta\">The traceback is in <a href=\"{src}\">{html.escape(outcome.name)}"
                     "/error.txt</a>.</p>")
    parts += [f"<p class=\"meta\">{html.escape(outcome.name)}: {outcome.status}</p>", "</section>"]
    return "\n".join(parts)


def _as_outcome(item: Finding | Outcome) -> Outcome:
    if isinstance(item, Outcome):
        return item
    return Outcome(item.name, "ok", item, seconds=item.seconds, title=item.title, claim=item.claim)


def render_index(items: Sequence[Finding | Outcome], title: str = "dlbasics lab") -> str:
    """The report page as a string (see ``write_index``)."""
    outcomes = [_as_outcome(item) for item in items]
    items_html = []
    for o in outcomes:
        heading, claim = (o.finding.title, o.finding.claim) if o.finding else (o.title or o.name, o.claim)
        status = "" if o.status == "ok" else f" <strong>({o.status})</strong>"
        items_html.append(f"<li><a href=\"#{html.escape(o.name, quote=True)}\">{html.escape(heading)}</a>{status} "
                          f"<span class=\"meta\">- {html.escape(claim)}</span></li>")
    toc = "".join(items_html)
    total = sum(o.seconds for o in outcomes)
    n_ok = sum(o.status == "ok" for o in outcomes)
    not_ok = ", ".join(f"{n} {status}" for status in ("skipped", "failed")
                       if (n := sum(o.status == status for o in outcomes)))
    lead = (f"{n_ok} claim{'s' if n_ok != 1 else ''} of the lecture, each reproduced by an experiment that trains "
            f"and measures ({total:.0f} s in all){f'; {not_ok}' if not_ok else ''}. Each section names the "
            "command that reproduces it.")
    body = "\n".join(_section(o.finding) if o.finding else _unfinished_section(o) for o in outcomes)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>{html.escape(title)}</h1>
<p class="lead">{html.escape(lead)}</p>
<nav><h3>Contents</h3><ol>{toc}</ol></nav>
{body}
</main>
</body>
</html>
"""


def write_index(out_dir: str | Path, items: Sequence[Finding | Outcome]) -> Path:
    """Write ``out_dir/index.html``: a table of contents, then one section per finding (claim, summary,
    numbers, figures from ``NAME/...``, the command that reproduces it) or per skipped or failed ``Outcome``
    (claim and reason). Returns the page's path."""
    path = Path(out_dir) / "index.html"
    atomic_write_text(path, render_index(items))
    return path
