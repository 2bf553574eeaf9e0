"""The parameters table of each chart's README, made from the `## @param`
lines of its values.yaml (bitnami style). `python3 readme_params.py --write`
rewrites the tables; test_readme_params.py fails when they drift."""

import json
import re
import sys

import yaml

from charts_lib import ALL_CHARTS, REPO

BEGIN, END = "<!-- params:begin -->", "<!-- params:end -->"
PARAM = re.compile(r"^## @param (\S+) (.+)$")
SECTION = re.compile(r"^## @section (.+)$")


def params(chart):
    """[(section, key, description)] in file order."""
    out, section = [], ""
    for line in (REPO / "charts" / chart / "values.yaml").read_text().splitlines():
        if m := SECTION.match(line):
            section = m.group(1)
        elif m := PARAM.match(line):
            out.append((section, m.group(1), m.group(2)))
    return out


def lookup(values, key):
    node = values
    for part in key.split("."):
        node = node[part]
    return node


def shown(value):
    if isinstance(value, (dict, list)) and value:
        return "see values.yaml"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def escape(text):
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def table(chart):
    values = yaml.safe_load((REPO / "charts" / chart / "values.yaml").read_text())
    lines, section = [], None
    for sec, key, desc in params(chart):
        if sec != section:
            section = sec
            lines += ["", f"### {sec}", "", "| Name | Description | Value |", "| --- | --- | --- |"]
        lines.append(f"| `{key}` | {escape(desc)} | {shown(lookup(values, key))} |")
    return "\n".join(lines[1:])


def readme_table(chart):
    text = (REPO / "charts" / chart / "README.md").read_text()
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def write(chart):
    path = REPO / "charts" / chart / "README.md"
    head, rest = path.read_text().split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n{table(chart)}\n{END}{tail}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        for c in ALL_CHARTS:
            write(c)
    else:
        print(__doc__)
