"""The offline plan: what a stack deploys, and what a change would do, computed
from the stack files alone (no Pulumi import, no network), so that it answers
in well under a second and can run on every pull request.

    python -m plan prod                     # Markdown: routes, DNS, containers, volumes
    python -m plan prod --format json       # stable JSON, for tools and tests
    python -m plan diff prod --base origin/main
    python -m plan diff prod dev
"""

from .diff import StackDiff, diff_documents
from .document import plan_document, to_json

__all__ = ["StackDiff", "diff_documents", "plan_document", "to_json"]
