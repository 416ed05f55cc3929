"""The Cypher library: one statement per file, ``<area>/<verb>_<noun>.cypher``.

Load statements with :func:`graphstore.queries.load`; see ``docs/cypher.md``.
"""
