"""The tables of a Markdown report as GitHub-flavoured Markdown renders them: parsed by
markdown-it-py (CommonMark with GitHub's tables, raw HTML on), an independent parser of the
report's output.
"""


def render_markdown_tables(markdown):
    """``{heading: [{header: cell text}]}`` of the tables under each heading, the cells' text
    as rendered; asserts that no cell but the report's own verdicts (``**FAIL**`` in the
    ``result`` column) holds any markup (emphasis, links, code, HTML, entities): plain text only.
    """
    import markdown_it  # in the test extra

    parser = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    tables, heading, header, row = {}, None, None, None
    tokens = parser.parse(markdown)
    for previous, token in zip([None] + tokens, tokens):
        if token.type == "inline" and previous.type == "heading_open":
            heading = token.content
        elif token.type == "thead_open":
            header = None
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and previous.type in ("th_open", "td_open"):
            kinds = {child.type for child in token.children}
            ours = header is not None and header[len(row)] == "result"
            assert kinds <= {"text"} or ours, (token.content, kinds)
            row.append("".join(child.content for child in token.children))
        elif token.type == "tr_close" and header is None:
            header = row
        elif token.type == "tr_close":
            assert len(row) == len(header), (header, row)
            tables.setdefault(heading, []).append(dict(zip(header, row)))
    return tables


def render_html(markdown):
    """``markdown`` rendered to HTML as above."""
    import markdown_it  # in the test extra

    parser = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return parser.render(markdown)
