"""Sphinx extension for the book: hide nbdev's `#| ...` directive lines from rendered code cells."""
from docutils import nodes


def strip_nbdev_directives(app, doctree):
    for node in list(doctree.findall(nodes.literal_block)):
        text = node.astext()
        if not any(line.startswith("#|") for line in text.splitlines()):
            continue
        kept = "\n".join(l for l in text.splitlines() if not l.startswith("#|")).strip("\n")
        if not kept:  # a cell with only directives (e.g. `#| default_exp`): drop its input
            parent = node.parent
            parent.remove(node)
            continue
        node.children = [nodes.Text(kept)]
        node.rawsource = kept


def setup(app):
    app.connect("doctree-read", strip_nbdev_directives)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
