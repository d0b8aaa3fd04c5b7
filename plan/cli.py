"""Command line: `python -m plan STACK`, `python -m plan diff ...`,
`python -m plan import-dns STACK` and `python -m plan adopt STACK` (plan/adopt_cli.py).

Exit codes of `diff`: 0 nothing changes, 1 something does, 2 the comparison
could not be made (a bad stack file, an unknown git ref). CI relies on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from config.errors import StackConfigError
from config.loading import PROJECT_DIR, StackFile
from core.edge import load_plan
from core.import_file import dns_import_file

from .adopt_cli import adopt_command
from .diff import StackDiff, diff_documents
from .diff_render import diffs_json, diffs_markdown, diffs_text
from .document import plan_document, secret_versions, to_json
from .gitref import GitRefError, exported_project, plan_document_in
from .render import plan_markdown

NO_CHANGES, CHANGES, ERROR = 0, 1, 2
WORKING_TREE = "working tree"


def working_tree_document(stack: str) -> dict[str, Any]:
    config, plan = load_plan(stack, PROJECT_DIR)
    return plan_document(config, plan, secret_versions(StackFile(stack, PROJECT_DIR)))


def _plan_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plan",
        description="What a stack deploys, from its stack file alone (no Pulumi, no network). "
                    "See also: python -m plan diff --help")
    parser.add_argument("stack", help="the stack, as in Pulumi.<stack>.yaml")
    parser.add_argument("--format", choices=("md", "json"), default="md")
    return parser


def _diff_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plan diff",
        description="Compare plans: each STACK with itself at a git ref (--base), or two stacks "
                    "of the working tree. Exit 0: no changes, 1: changes, 2: error.")
    parser.add_argument("stacks", nargs="+", metavar="STACK")
    parser.add_argument("--base", metavar="GITREF",
                        help="compare each STACK with its plan at this ref")
    parser.add_argument("--format", choices=("text", "md", "json"), default="text")
    return parser


def _diffs_against_ref(stacks: Sequence[str], ref: str) -> list[StackDiff]:
    heads = {stack: working_tree_document(stack) for stack in stacks}
    with exported_project(ref, PROJECT_DIR) as tree:
        bases = {stack: plan_document_in(tree, stack) for stack in stacks}
    return [diff_documents(bases[s], heads[s], s, ref, WORKING_TREE) for s in stacks]


def _diff_command(args: Sequence[str]) -> int:
    parser = _diff_parser()
    options = parser.parse_args(args)
    if options.base is None and len(options.stacks) != 2:
        parser.error("give two stacks to compare, or --base GITREF")
    try:
        if options.base is not None:
            diffs = _diffs_against_ref(options.stacks, options.base)
        else:
            first, second = options.stacks
            diffs = [diff_documents(working_tree_document(first), working_tree_document(second),
                                    "stacks", first, second, same_stack=False)]
    except (StackConfigError, GitRefError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    render = {"text": diffs_text, "md": diffs_markdown, "json": diffs_json}[options.format]
    sys.stdout.write(render(diffs))
    return NO_CHANGES if all(d.is_empty for d in diffs) else CHANGES


def _plan_command(args: Sequence[str]) -> int:
    options = _plan_parser().parse_args(args)
    try:
        document = working_tree_document(options.stack)
    except StackConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    sys.stdout.write(to_json(document) if options.format == "json" else plan_markdown(document))
    return 0


def _import_dns_command(args: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plan import-dns",
        description="A file for `pulumi import --file FILE -s STACK` that adopts the existing "
                    "Cloudflare records of the stack's hostnames under the program's own names "
                    "and parent. Fill in each id as <zone id>/<record id>.")
    parser.add_argument("stack")
    options = parser.parse_args(args)
    try:
        _, plan = load_plan(options.stack, PROJECT_DIR)
    except StackConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    if not plan.dns_records:
        print(f"error: stack {options.stack} declares no DNS records", file=sys.stderr)
        return ERROR
    sys.stdout.write(json.dumps(dns_import_file(plan), indent=2) + "\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "diff":
        return _diff_command(args[1:])
    if args and args[0] == "import-dns":
        return _import_dns_command(args[1:])
    if args and args[0] == "adopt":
        return adopt_command(args[1:])
    return _plan_command(args)
