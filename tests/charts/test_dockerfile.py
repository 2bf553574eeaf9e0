"""What can be checked of the Dockerfile without a Docker engine: the paths it
copies exist in the build context (every workspace member among them), it
builds and installs both binaries (fiscus, fiscus-operator), it exposes the
ports the services and the operator listen on, its user and labels, that
every subcommand and flag the charts run the image with is defined by the
binary's clap code in services/fiscus/src, and that the operator chart's
command, subcommand and environment are those of operator/src/main.rs."""

import fnmatch
import json
import re
import shlex
import tomllib
import unittest

from charts_lib import OPERATOR, REPO, containers, render, values_matrix, workloads
from test_config_keys import COMMENTED_KEY

DOCKERFILE = (REPO / "Dockerfile").read_text()
FISCUS_SRC = REPO / "services/fiscus/src"
OPERATOR_MAIN = REPO / "operator/src/main.rs"


def instructions():
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    return [(m.group(1).upper(), m.group(2).strip()) for line in text.splitlines()
            if (m := re.match(r"^\s*([A-Za-z]+)\s+(.*)$", line)) and not line.lstrip().startswith("#")]


def kebab(name):
    return re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()


def block(text, start):
    """The brace-delimited body that follows `start` in text."""
    i = text.index(start)
    i = text.index("{", i)
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j]
    raise AssertionError(f"unbalanced braces after {start}")


def clap_args(body):
    """Long flags a clap struct body defines: fields (kebab-cased) and explicit long names."""
    flags = {f.replace("_", "-") for f in re.findall(r"^\s*(?:pub(?:\(crate\))?\s+)?(\w+):", body, re.M)}
    return flags | set(re.findall(r'long\s*=\s*"([\w-]+)"', body))


def subcommands():
    """{"ledger-store": {flags}, "identity-ca init": {flags}, ...} from main.rs and the structs it names."""
    main = (FISCUS_SRC / "main.rs").read_text()
    # A module is a file (`cli.rs`) or a directory (`cli/mod.rs`, `cli/submit.rs`, …).
    all_src = {}
    for p in sorted(FISCUS_SRC.rglob("*.rs")):
        module = p.relative_to(FISCUS_SRC).parts[0].removesuffix(".rs")
        all_src[module] = all_src.get(module, "") + p.read_text()
    out = {}
    body = block(main, "enum Command")
    for m in re.finditer(r"^    (\w+)(?:\(([\w:]+)\)|\s*(\{))?,?\s*$", body, re.M):
        name, typ = kebab(m.group(1)), m.group(2)
        if typ:
            module, _, struct = typ.rpartition("::")
            src = all_src[module] if module else main
            kind = "struct" if f"struct {struct} " in src else "enum"   # an enum: nested subcommands
            out[name] = clap_args(block(src, f"{kind} {struct} "))
        elif m.group(3):
            out[name] = clap_args(block(body, f"{m.group(1)} {{"))
        else:
            out[name] = set()
    identity = all_src["identity"]
    out["identity-ca init"] = out["identity-ca"] | clap_args(block(identity, "    Init {"))
    return out


def invocations():
    """(values file, container, subcommand, [flags]) of every container the charts run."""
    subs = subcommands()
    found = []
    for chart, values in values_matrix():
        for w in workloads(render(chart, (values,))):
            for c in containers(w):
                command, args = c.get("command"), c.get("args", [])
                if command is None:                      # ENTRYPOINT ["fiscus"] + args
                    argv = args
                else:                                    # sh -c SCRIPT [$0] with args as "$@"
                    assert command[:2] == ["/bin/sh", "-c"], command
                    script, rest = (command[2], args) if len(command) > 2 else (args[0], args[1:])
                    words = shlex.split(re.search(r"exec fiscus ([^;\n]*)", script).group(1))
                    argv = [x for word in words for x in (rest if word == "$@" else [word])]
                sub = " ".join(argv[:2]) if " ".join(argv[:2]) in subs else argv[0]
                flags = [a.split("=", 1)[0][2:] for a in argv if a.startswith("--")]
                found.append((values, c["name"], sub, flags))
    return found


class Dockerfile(unittest.TestCase):
    def test_every_copied_path_exists_in_the_build_context_and_is_not_ignored(self):
        ignored = [l.strip().rstrip("/") for l in (REPO / ".dockerignore").read_text().splitlines()
                   if l.strip() and not l.startswith("#")]
        copies = [args for ins, args in instructions() if ins == "COPY" and "--from=" not in args]
        self.assertGreaterEqual(len(copies), 4)
        for args in copies:
            for src in shlex.split(args)[:-1]:
                with self.subTest(src=src):
                    matches = list(REPO.glob(src))
                    self.assertTrue(matches, f"{src} is not in the build context")
                    for m in matches:
                        rel = str(m.relative_to(REPO))
                        self.assertFalse([p for p in ignored if fnmatch.fnmatch(rel, p) or rel == p],
                                         f"{rel} is excluded by .dockerignore")

    def test_every_workspace_member_is_copied_into_the_build(self):
        # cargo needs every member's manifest to resolve the workspace.
        members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
        dests = [shlex.split(a)[-1].removeprefix("./").rstrip("/") for i, a in instructions()
                 if i == "COPY" and "--from=" not in a]
        for m in members:
            with self.subTest(member=m):
                self.assertTrue(any(m == d or m.startswith(d + "/") for d in dests), f"{m} is not copied")

    def test_the_build_compiles_both_binaries_with_protoc_and_the_locked_lockfile(self):
        runs = " ".join(a for i, a in instructions() if i == "RUN")
        self.assertIn("protobuf-compiler", runs)
        self.assertIn("cargo build --release --locked -p fiscus -p fiscus-operator", runs)
        self.assertRegex(runs, r"cp target/release/fiscus target/release/fiscus-operator /usr/local/bin/")
        (copied,) = [shlex.split(a) for i, a in instructions() if i == "COPY" and "--from=build" in a]
        self.assertEqual(copied[1:], ["/usr/local/bin/fiscus", "/usr/local/bin/fiscus-operator", "/usr/local/bin/"])
        want = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
        have = re.search(r"ARG RUST_VERSION=([\d.]+)", DOCKERFILE).group(1)
        self.assertGreaterEqual(tuple(map(int, have.split("."))), tuple(map(int, want.split("."))))

    def test_the_runtime_is_debian_slim_with_ca_certificates_a_non_root_user_and_fiscus_as_entrypoint(self):
        froms = [a for i, a in instructions() if i == "FROM"]
        self.assertEqual(len(froms), 2)
        self.assertRegex(froms[-1], r"^debian:\$\{DEBIAN_RELEASE\}-slim$")
        runtime = DOCKERFILE.split(froms[-1], 1)[1]
        self.assertEqual([p.strip() for p in re.findall(r"apt-get install -y --no-install-recommends ([^\n\\]+)", runtime)],
                         ["ca-certificates"])
        (user,) = [a for i, a in instructions() if i == "USER"]
        self.assertEqual(user, "10001:10001")
        for chart in ("fiscus-member", "fiscus-orderer", "fiscus-ca", OPERATOR):
            for w in workloads(render(chart)):
                self.assertEqual(w["spec"]["template"]["spec"]["securityContext"]["runAsUser"], 10001)
        (entry,) = [a for i, a in instructions() if i == "ENTRYPOINT"]
        self.assertEqual(json.loads(entry), ["fiscus"])

    def test_it_carries_the_oci_labels(self):
        labels = " ".join(a for i, a in instructions() if i == "LABEL")
        for key in ("title", "description", "version", "revision", "licenses", "source"):
            self.assertIn(f"org.opencontainers.image.{key}=", labels)

    def test_it_exposes_exactly_the_ports_of_the_example_configs_and_the_operator(self):
        ports = {operator_ops_port()}
        for f in (REPO / "config").glob("*.example.toml"):
            text = "\n".join(m.group(1) if (m := COMMENTED_KEY.match(l)) else l for l in f.read_text().splitlines())
            cfg = tomllib.loads(text)
            ports |= {int(cfg[k].rsplit(":", 1)[1]) for k in ("listen", "http_listen", "raft_listen", "grpc_listen") if k in cfg}
        (expose,) = [a for i, a in instructions() if i == "EXPOSE"]
        self.assertEqual({int(p) for p in expose.split()}, ports)


def operator_run_args():
    """{flag: its #[arg(...)] text} of `fiscus-operator run` (operator/src/main.rs);
    rustfmt may spread an attribute over several lines."""
    run = block(block(OPERATOR_MAIN.read_text(), "enum Command "), "Run {")
    out, attrs = {}, ""
    for line in run.splitlines():
        if m := re.match(r"^\s*(\w+):\s*[\w<>:]+,?\s*$", line):
            out[m.group(1).replace("_", "-")] = attrs
            attrs = ""
        elif not line.strip().startswith("///"):
            attrs += line
    return out


def operator_envs():
    return {m.group(1) for attrs in operator_run_args().values() if (m := re.search(r'env\s*=\s*"(\w+)"', attrs))}


def operator_ops_port():
    """The port of the default --http-listen of `fiscus-operator run`."""
    attrs = operator_run_args()["http-listen"]
    assert "FISCUS_OPERATOR_HTTP_LISTEN" in attrs, attrs
    return int(re.search(r'default_value\s*=\s*"[\d.]+:(\d+)"', attrs).group(1))


class OperatorInvocation(unittest.TestCase):
    def test_the_chart_runs_a_binary_the_image_installs(self):
        (dep,) = [w for w in workloads(render(OPERATOR))]
        (c,) = containers(dep)
        (binary,) = c["command"]
        self.assertRegex(DOCKERFILE, rf"COPY --from=build [^\n]*/usr/local/bin/{binary}\b")
        self.assertEqual(binary, "fiscus-operator")
        self.assertIn('name = "fiscus-operator"', (REPO / "operator/Cargo.toml").read_text())

    def test_the_subcommand_and_environment_are_those_of_operator_main(self):
        main = OPERATOR_MAIN.read_text()
        commands = block(main, "enum Command ")
        self.assertIn("    Run {", commands)
        (c,) = containers(workloads(render(OPERATOR))[0])
        self.assertEqual(c["args"], ["run"])
        envs = operator_envs()
        self.assertEqual(envs, {"FISCUS_OPERATOR_HTTP_LISTEN", "POD_NAMESPACE", "POD_NAME", "FISCUS_OPERATOR_JSON_LOGS"})
        self.assertLessEqual({e["name"] for e in c["env"]}, envs)
        self.assertEqual(operator_ops_port(), [p["containerPort"] for p in c["ports"] if p["name"] == "ops"][0])


class ChartInvocations(unittest.TestCase):
    def test_the_clap_definitions_are_found(self):
        subs = subcommands()
        for s in ("identity-ca", "orderer", "ledger-store", "contract-executor", "gossip-gateway", "exchange-adapter"):
            self.assertIn("config", subs[s], s)
        self.assertIn("consortium-id", subs["identity-ca init"])
        self.assertIn("san", subs["identity-ca init"])

    def test_every_subcommand_and_flag_the_charts_use_exists_in_the_binary(self):
        subs = subcommands()
        seen = set()
        for values, container, sub, flags in invocations():
            seen.add(sub)
            with self.subTest(values=values, container=container):
                self.assertIn(sub, subs)
                self.assertLessEqual(set(flags), subs[sub])
        self.assertEqual(seen, {"identity-ca", "identity-ca init", "orderer", "ledger-store",
                                "contract-executor", "gossip-gateway", "exchange-adapter"})


if __name__ == "__main__":
    unittest.main()
