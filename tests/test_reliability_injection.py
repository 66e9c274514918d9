"""Nothing injected: names from the user (law, inputs, columns, command) reach reports and figures as plain text.

The HTML report is parsed (standard library `html.parser`) and must hold no
element or attribute a name could have smuggled in; the Markdown report is
rendered by an independent CommonMark implementation (markdown-it-py) and
must show each name exactly, with no raw HTML, markup or math; figure
labels must never start matplotlib's mathtext. Each case is counted in the
hostile-input tally (tests/hostile.py) under "injection".
"""

from __future__ import annotations

import html
import io
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from hostile import handled
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib import cbook

import scalejax as sj
from scalejax.report import _document as document

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py renders the Markdown report (test extra)")

SCRIPT = "<script>alert(1)</script>"
LAW_NAME = f'{SCRIPT}<img src=x onerror="alert(2)">'
INPUT = "<i>n</i> $\\undefinedcmd$"
X_COLUMN = "params <b onmouseover=alert(3)>&amp; | `tick` *bold* [link](http://evil.example)"
Y_COLUMN = "cost_$_per_$_token <!-- comment --> &lt;script&gt;"
X = np.geomspace(1e3, 1e9, 8)
HTML_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "nav", "a", "section", "h2", "p", "code", "img", "div",
    "table", "caption", "thead", "tr", "th", "tbody", "td",
}  # fmt: skip
MARKDOWN_TAGS = {"h1", "h2", "p", "code", "strong", "table", "thead", "tbody", "tr", "th", "td", "img"}


class Elements(HTMLParser):
    """Every element, attribute and text run of an HTML document."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.text, self.comments = [], [], [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(name.lower(), value or "") for name, value in attrs]

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.comments.append(data)


def markdown_html(text: str) -> str:
    return markdown_it.MarkdownIt("commonmark").enable("table").render(text)


@pytest.fixture(scope="module")
def hostile_fit():
    @sj.law(params=[sj.Param("E", lower=0), sj.Param("A", lower=0), "alpha"], inputs=[INPUT], name=LAW_NAME,
            equation=f"y = E + A {INPUT}^-alpha {SCRIPT}", reference="<a href=javascript:alert(4)>ref</a>")  # fmt: skip
    def law(p, x):
        return p["E"] + p["A"] * x[INPUT] ** -p["alpha"]

    frame = pd.DataFrame({X_COLUMN: X, Y_COLUMN: 1.7 + 400.0 * X**-0.3})
    starts = {"E": [1.0, 2.0], "A": [100.0, 1000.0], "alpha": [0.2, 0.4]}
    return sj.fit(law, frame, x={INPUT: X_COLUMN}, y=Y_COLUMN, starts=starts)


@pytest.fixture(scope="module")
def reports(hostile_fit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("injection")
    command = f"scalejax report runs.csv --y '{Y_COLUMN}' {SCRIPT}"
    html_path = sj.write_report(hostile_fit, out=folder / "r.html", command=command)
    md_path = sj.write_report(hostile_fit, out=folder / "r.md", command=command)
    return html_path.read_text(), md_path.read_text()


def test_a_law_name_cannot_inject_markup_into_either_report(tmp_path):
    """A custom law's name reached the HTML (the skipped-frontier paragraph) and the Markdown raw."""

    @sj.law(params=[sj.Param("E", lower=0), sj.Param("A", lower=0), "alpha"], inputs=["N"], name=LAW_NAME)
    def law(p, x):
        return p["E"] + p["A"] * x["N"] ** -p["alpha"]

    draws = sj.Draws(law, law.pack([[1.7, 400.0, 0.3], [1.8, 420.0, 0.31]]))
    page = Elements(sj.write_report(draws, out=tmp_path / "r.html").read_text())
    assert set(page.tags) <= HTML_TAGS and not [name for name, _ in page.attributes if name.startswith("on")]
    assert f"and law {LAW_NAME!r} is not of that form" in "".join(page.text)
    page = Elements(markdown_html(sj.write_report(draws, out=tmp_path / "r.md").read_text()))
    assert set(page.tags) <= MARKDOWN_TAGS and not [name for name, _ in page.attributes if name.startswith("on")]
    assert f"and law {LAW_NAME!r} is not of that form" in "".join(page.text)
    handled("injection: law name in HTML and Markdown", 2)


def test_the_html_report_carries_no_element_or_attribute_from_a_name(reports):
    page = Elements(reports[0])
    assert set(page.tags) <= HTML_TAGS, set(page.tags) - HTML_TAGS
    assert not page.comments and not [name for name, _ in page.attributes if name.startswith("on")]
    assert all(value.startswith("#") for name, value in page.attributes if name == "href")  # the section links only
    assert all(value.startswith("data:image/png;base64,") for name, value in page.attributes if name == "src")
    text = "".join(page.text)
    for name in (LAW_NAME, X_COLUMN, Y_COLUMN, SCRIPT):
        assert name in text, name  # shown exactly, as text
    # The frontier is skipped for this law, and its paragraph names the law (it was unescaped before).
    assert f"and law {LAW_NAME!r} is not of that form" in text
    handled("injection: HTML report (law, input, columns, command)", 4)


def test_the_markdown_report_renders_each_name_as_plain_text(reports):
    rendered = markdown_html(reports[1])
    page = Elements(rendered)
    assert set(page.tags) <= MARKDOWN_TAGS, set(page.tags) - MARKDOWN_TAGS
    assert not page.comments and not [name for name, _ in page.attributes if name.startswith("on")]
    assert all(value.startswith("r_files/") for name, value in page.attributes if name == "src")
    text = "".join(page.text)
    for name in (LAW_NAME, X_COLUMN, Y_COLUMN):
        assert name in text, name
    assert "$" in text and "\\$" not in text  # dollars shown as dollars, not math and not backslashed
    handled("injection: Markdown report (law, input, columns, command)", 4)


def test_names_with_mathtext_do_not_break_the_figures(hostile_fit):
    ours = []
    for plot in (sj.report.plot_fit, sj.report.plot_residuals, sj.report.plot_pairs, sj.report.plot_diagnostics):
        fig = plot(hostile_fit)
        fig.savefig(io.BytesIO(), format="png")  # drawing parses the labels; mathtext would fail here
        labels = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
        ours += [label for label in labels if "undefinedcmd" in label or "_per_" in label or "script" in label]
    assert len(ours) >= 4 and not [label for label in ours if cbook.is_math_text(label)]
    handled("injection: mathtext in figure labels", 4)


@pytest.mark.parametrize("column", ["loss $\\undefinedcmd$", "cost_$_per_$_token", "$x^2$", "a $$ b", "\\$ $"])
def test_figure_labels_show_each_name_as_written(column):
    from scalejax.report._figures import _plain

    label = _plain(column)
    assert not cbook.is_math_text(label)
    from matplotlib.text import Text

    shown, is_math = Text(0, 0, label)._preprocess_math(label)
    assert (shown, is_math) == (column, False)
    handled("injection: mathtext label")


# ------------------------------------------------------------------- escaping, as properties of any text

TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: s.strip() == s and s.strip()
)


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_any_text_renders_as_itself_in_markdown(text):
    rendered = markdown_html(document._md_escape(text))
    assert rendered.startswith("<p>") and rendered.endswith("</p>\n"), rendered
    assert html.unescape(rendered[3:-5]) == text
    handled("injection: Markdown text (generated)")


@settings(max_examples=100, deadline=None)
@given(text=TEXT)
def test_any_text_is_a_code_span_of_itself(text):
    rendered = markdown_html("x " + document._md_code(text))
    assert rendered.startswith("<p>x <code>") and rendered.endswith("</code></p>\n"), rendered
    assert html.unescape(rendered[len("<p>x <code>") : -len("</code></p>\n")]) == text
    handled("injection: Markdown code (generated)")


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(TEXT, min_size=2, max_size=4))
def test_any_text_fills_exactly_one_markdown_table_cell(cells):
    frame = pd.DataFrame({cells[0]: [c for c in cells[1:]]}, index=pd.Index(cells[1:], name="name"))
    page = Elements(markdown_html(document._md_table("caption", frame)))
    assert page.tags.count("tr") == len(cells)  # the header row and one row per value: no cell split or lost
    assert page.tags.count("td") == 2 * (len(cells) - 1)
    assert [t for t in page.text if t.strip()] == ["caption", "name", cells[0], *[c for c in cells[1:] for _ in (0, 1)]]
    handled("injection: Markdown table cell (generated)")


@settings(max_examples=200, deadline=None)
@given(text=TEXT, code=TEXT)
def test_any_text_is_one_html_paragraph_of_itself(text, code):
    page = Elements(f"<p>{document._html_inline((text, document.Code(code)))}</p>")
    assert page.tags == ["p", "code"] and "".join(page.text) == text + code
    handled("injection: HTML paragraph (generated)")
