"""Every service TOML a chart renders uses only keys of
config/<service>.example.toml, with the same nesting (the examples and the
charts stay in step). The binary's own check of the same files,
`fiscus <service> --check-config --skip-files`, is check_configs.py, which
`make test` runs after the build.

Keys the examples show commented out (`# nats_url = ...`, `# [[peers]]`) are
documented optional keys and count as known."""

import re
import tomllib
import unittest

from charts_lib import CHARTS, REPO, of_kind, render, service_configs, values_matrix

# A commented-out key line or table header in an example file.
COMMENTED_KEY = re.compile(r"^#\s?((\[\[?[a-z_.]+\]\]?)|([a-z_]+\s*=.*))$")


def example_keys(service):
    lines = []
    for line in (REPO / "config" / f"{service}.example.toml").read_text().splitlines():
        m = COMMENTED_KEY.match(line)
        lines.append(m.group(1) if m else line)
    return key_paths(tomllib.loads("\n".join(lines)))


def key_paths(table, prefix=""):
    """Dotted key paths; an array of tables contributes `name[].key`."""
    out = set()
    for k, v in table.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= key_paths(v, f"{path}.")
        elif isinstance(v, list) and v and all(isinstance(e, dict) for e in v):
            for e in v:
                out |= key_paths(e, f"{path}[].")
        else:
            out.add(path)
    return out


class ConfigKeys(unittest.TestCase):
    def test_example_files_parse_with_their_commented_keys(self):
        for service in ("identity-ca", "orderer", "ledger-store", "contract-executor",
                        "gossip-gateway", "exchange-adapter"):
            with self.subTest(service=service):
                keys = example_keys(service)
                self.assertIn("http_listen", keys)
        self.assertIn("nats_url", example_keys("gossip-gateway"))
        self.assertIn("peers[].member", example_keys("gossip-gateway"))
        self.assertIn("grpc_listen", example_keys("exchange-adapter"))

    def test_every_rendered_config_uses_only_keys_of_its_example_file(self):
        seen = set()
        for chart, values in values_matrix():
            for name, cfg in service_configs(render(chart, (values,))).items():
                service = name.removesuffix(".toml")
                seen.add(service)
                with self.subTest(values=values, config=name):
                    unknown = key_paths(cfg) - example_keys(service)
                    self.assertEqual(unknown, set(), f"keys not in config/{service}.example.toml")
        self.assertEqual(seen, {"identity-ca", "orderer", "ledger-store", "contract-executor",
                                "gossip-gateway", "exchange-adapter"})

    def test_the_orderers_per_pod_overrides_name_keys_of_its_example_file(self):
        (sts,) = of_kind(render("fiscus-orderer"), "StatefulSet")
        script = sts["spec"]["template"]["spec"]["containers"][0]["args"][0]
        overridden = {v.removeprefix("FISCUS_ORDERER__").lower().replace("__", ".")
                      for v in re.findall(r"FISCUS_ORDERER__[A-Z_]+", script)}
        self.assertEqual(overridden, {"node_id", "tls.cert_file", "tls.key_file", "tls.ca_file"})
        self.assertLessEqual(overridden, example_keys("orderer"))

    def test_the_toml_helper_is_the_same_in_every_chart(self):
        copies = {(REPO / "charts" / c / "templates/_toml.tpl").read_text() for c in CHARTS}
        self.assertEqual(len(copies), 1)

    def test_integers_render_as_toml_integers_and_strings_are_escaped(self):
        # Helm's own toToml would write 2.68435456e+08; the services want integers.
        cfg = service_configs(render("fiscus-member", (), ("ledgerStore.config.max_message_bytes=268435456",)))
        self.assertIs(type(cfg["ledger-store.toml"]["max_message_bytes"]), int)
        self.assertIs(type(cfg["gossip-gateway.toml"]["ban_score"]), int)
        self.assertEqual(cfg["gossip-gateway.toml"]["ban_score"], -30)
        quoted = service_configs(render("fiscus-orderer", (), ('consortiumId=fiscus "河北" <2026>',)))
        self.assertEqual(quoted["orderer.toml"]["consortium_id"], 'fiscus "河北" <2026>')


if __name__ == "__main__":
    unittest.main()
