"""A local stand-in for Meta: the webhook sender and the Graph API, plus a WhatsApp-like chat page.

`api/` and `workers/` never import this package (pyproject.toml, [tool.importlinter]); it imports only `shared/`.
"""
