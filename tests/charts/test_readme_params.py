"""Each chart's values are documented: every value in values.yaml falls under
a `## @param` line, and the README's parameters table is exactly the one
readme_params.py makes from those lines (regenerate: python3 readme_params.py --write)."""

import unittest

import yaml

from charts_lib import ALL_CHARTS, REPO
from readme_params import params, readme_table, table


def leaves(node, prefix=""):
    """Dotted paths of the values; an empty map or list is a leaf too."""
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaves(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip(".")


class ReadmeParams(unittest.TestCase):
    def test_every_param_appears_in_the_readme_table(self):
        for chart in ALL_CHARTS:
            with self.subTest(chart=chart):
                text = readme_table(chart)
                for _, key, _ in params(chart):
                    self.assertIn(f"| `{key}` |", text)

    def test_the_readme_table_is_the_one_the_params_make(self):
        for chart in ALL_CHARTS:
            with self.subTest(chart=chart):
                self.assertEqual(readme_table(chart), table(chart),
                                 "run: python3 tests/charts/readme_params.py --write")

    def test_every_value_is_documented_by_a_param(self):
        for chart in ALL_CHARTS:
            with self.subTest(chart=chart):
                values = yaml.safe_load((REPO / "charts" / chart / "values.yaml").read_text())
                keys = {key for _, key, _ in params(chart)}
                undocumented = [leaf for leaf in leaves(values)
                                if not any(leaf == k or leaf.startswith(k + ".") for k in keys)]
                self.assertEqual(undocumented, [])

    def test_every_param_names_a_value(self):
        for chart in ALL_CHARTS:
            values = yaml.safe_load((REPO / "charts" / chart / "values.yaml").read_text())
            for _, key, _ in params(chart):
                with self.subTest(chart=chart, param=key):
                    node = values
                    for part in key.split("."):
                        self.assertIn(part, node)
                        node = node[part]

    def test_every_top_level_value_is_in_the_schema(self):
        import json
        for chart in ALL_CHARTS:
            with self.subTest(chart=chart):
                schema = json.loads((REPO / "charts" / chart / "values.schema.json").read_text())
                values = yaml.safe_load((REPO / "charts" / chart / "values.yaml").read_text())
                self.assertFalse(schema["additionalProperties"])
                self.assertLessEqual(set(values), set(schema["properties"]))


if __name__ == "__main__":
    unittest.main()
