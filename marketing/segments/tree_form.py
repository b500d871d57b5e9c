"""The builder's form encoding of a rule tree, both ways.

Each node has a path: "r" is the root group, "r.0" its first child, "r.0.2" the third
child of that. The form posts one `node` entry per node, in document order
("r.0:rule"), and the node's inputs prefixed with its path ("r.0-field"). Edits from the
builder's buttons ("add-rule:r.0", "add-group:r", "remove:r.0.1") rewrite the tree here,
on the server, so the page holds no tree logic of its own.
"""

from django.http import QueryDict

from marketing.segments.compiler import RULE_KEYS

ROOT = "r"


def empty_rule() -> dict:
    return {"type": "rule", "field": "email", "operator": "contains", "value": ""}


def tree_from_form(data: QueryDict) -> dict:
    nodes: dict[str, dict] = {}
    for entry in data.getlist("node"):
        path, _, kind = entry.partition(":")
        if not path.startswith(ROOT) or path in nodes:
            continue
        if kind == "group":
            node = {"type": "group", "op": data.get(f"{path}-op", "and"), "rules": []}
        else:
            node = {"type": "rule", **{name: data.get(f"{path}-{name}", "") for name in RULE_KEYS}}
            node = {key: value for key, value in node.items() if value != "" or key in ("field", "operator", "value")}
        nodes[path] = node
        parent = nodes.get(path.rpartition(".")[0])
        if path != ROOT and parent is not None and parent["type"] == "group":
            parent["rules"].append(node)
    root = nodes.get(ROOT)
    return root if root and root["type"] == "group" else {"type": "group", "op": "and", "rules": []}


def _find(tree: dict, path: str) -> tuple[dict | None, dict | None, int]:
    """(node, parent, index in parent) for a path, or (None, None, -1)."""
    if path == ROOT:
        return tree, None, -1
    parent, node = None, tree
    index = -1
    for part in path.split(".")[1:]:
        if node.get("type") != "group" or not part.isdigit() or int(part) >= len(node["rules"]):
            return None, None, -1
        parent, index, node = node, int(part), node["rules"][int(part)]
    return node, parent, index


def apply_edit(tree: dict, edit: str) -> dict:
    verb, _, path = edit.partition(":")
    node, parent, index = _find(tree, path)
    if node is None:
        return tree
    if verb == "add-rule" and node.get("type") == "group":
        node["rules"].append(empty_rule())
    elif verb == "add-group" and node.get("type") == "group":
        node["rules"].append({"type": "group", "op": "or", "rules": [empty_rule()]})
    elif verb == "remove" and parent is not None:
        del parent["rules"][index]
    return tree


def with_paths(tree: dict, path: str = ROOT, depth: int = 0) -> dict:
    """A copy of the tree where each node knows its path and depth, for the template."""
    node = {**tree, "path": path, "depth": depth}
    if tree.get("type") == "group":
        node["rules"] = [with_paths(child, f"{path}.{i}", depth + 1) for i, child in enumerate(tree.get("rules", []))]
    return node
