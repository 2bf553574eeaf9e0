# Fiscus: the two commands are `make run` and `make test`. Both install what
# they need on a Debian machine.
SHELL := /bin/bash
CARGO ?= cargo
CARGO_FLAGS ?= --locked

.PHONY: deps build run test bench lint fmt clean

## deps: install missing system packages (protoc for the build, nats-server for the tests)
deps:
	@missing=""; \
	command -v protoc >/dev/null 2>&1 || missing="$$missing protobuf-compiler"; \
	{ command -v nats-server || test -x /usr/sbin/nats-server; } >/dev/null 2>&1 || missing="$$missing nats-server"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "make deps: installing$$missing"; \
	if command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO=none; fi; \
	  if [ "$$SUDO" != none ]; then \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing && exit 0; \
	  fi; \
	fi; \
	echo "make deps: could not install$$missing. Install them yourself, e.g. 'apt-get install -y$$missing'" >&2; \
	exit 1

## build: compile every crate
build: deps
	$(CARGO) build $(CARGO_FLAGS) --workspace

## run: the main job (not built yet: says so and shows what the binary can do)
run: build
	@echo
	@echo "make run: the main job, 'fiscus devnet' (a whole consortium on this machine), is not built yet."
	@echo "          It arrives with the devnet issue. What exists today is the foundation:"
	@echo "          wire types, crypto core, storage and bus. The binary's current commands:"
	@echo
	@$(CARGO) run $(CARGO_FLAGS) -q -p fiscus -- --help

## test: every test in the workspace; starts its own nats-server per test
test: deps
	$(CARGO) test $(CARGO_FLAGS) --workspace

## bench: criterion benchmarks (crypto, Merkle, redb commit); medians land in target/criterion
bench: deps
	$(CARGO) bench $(CARGO_FLAGS) --workspace

## lint: formatting and clippy with warnings as errors
lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
