# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GEN := gen/python
STAMP := $(VENV)/.installed-stamp
SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PROTOS := $(shell find proto -name '*.proto' 2>/dev/null)

.PHONY: venv gen lint fmt test test-fast test-node coverage run run-split bench bench-smoke demo clean promtool

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Python code for the protos is generated, never committed or hand-edited;
# a .pth file puts it on the venv's path as the `jericommerce` package.
gen: $(GEN)/.stamp

$(GEN)/.stamp: $(STAMP) $(PROTOS) scripts/gen_proto.sh
	rm -rf $(GEN) && mkdir -p $(GEN)
	PYTHON=$(PY) bash scripts/gen_proto.sh $(GEN)
	echo "$(CURDIR)/$(GEN)" > "$(SITE)/jericommerce-gen.pth"
	touch $@

# mypy reads the generated modules' stubs, so it needs `gen`.
lint: gen
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/buf lint
	@# Breaking-change check against main, once main has protos to compare with.
	@if git ls-tree -r --name-only main -- proto 2>/dev/null | grep -q '\.proto$$'; then \
		$(VENV)/bin/buf breaking --against '.git#branch=main'; \
	else echo "buf breaking: no protos on main yet, nothing to compare"; fi

fmt: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Two workers (pytest-xdist), each running whole files, so a module's shared
# service stays in one process; TEST_WORKERS=0 runs the suite in this one.
TEST_WORKERS ?= 2
PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: gen lint promtool
	$(PY) -m pytest -q $(PARALLEL)

# The alert rules' checks and unit tests (deploy/prometheus) need promtool,
# from Debian's prometheus package: installed here when missing (as root;
# otherwise the line to run is printed and the tests say what is missing).
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends prometheus; \
		else echo "promtool missing: sudo apt-get install prometheus"; fi; }

test-fast: gen promtool
	$(PY) -m pytest -q -m "not slow" $(PARALLEL)

# Line coverage of service/ and projections/ over the whole suite, the
# service processes the end-to-end tests start included. COV_ARGS narrows
# the run: COV_ARGS='-m "not slow"' measures the fast suite alone.
COV_ARGS ?=
coverage: gen
	rm -f .coverage .coverage.*
	$(PY) -m pytest -q --cov --cov-report=term $(COV_ARGS)

test-node: gen
	$(PY) -m pytest -q tests/e2e/test_node_client.py

run: gen
	$(PY) -m service run

# Opt-in: a supervisor, a front (ingress + API) and a projector process,
# the shape that uses more cores (docs/performance.md, "Process shapes").
run-split: gen
	$(PY) -m service run --split

# Benchmarks (docs/performance.md): a table of figures, each with
# the bare framework measured in the same run. Installs wrk and h2load with
# apt-get when run as root (otherwise prints the line) and py-spy.
BENCH_ARGS ?=
bench: gen
	$(PY) -m bench $(BENCH_ARGS)

bench-smoke: gen
	$(PY) -m bench --smoke

# A newcomer's tour: starts the service if needed, sends realistic traffic for
# all 18 events (retries, late deliveries, invalid bodies), prints a customer.
DEMO_ARGS ?=
demo: gen
	$(PY) scripts/demo.py $(DEMO_ARGS)

clean:
	rm -rf $(VENV) $(GEN) .pytest_cache .ruff_cache .mypy_cache .coverage .coverage.* htmlcov

# --- clients -------------------------------------------------------------------
# Typed gRPC clients generated from proto/ by buf.gen.yaml, and an example
# program built in each language: TypeScript, Go, C++, Java (docs/clients.md).
# Everything built stays under clients/*/build; a language is rebuilt only
# when its inputs change. Installs missing tool chains (apt-get as root,
# npm ci) or says what to install.
.PHONY: clients clients-clean

clients: venv
	bash scripts/build_clients.sh

clients-clean:
	rm -rf clients/ts/build clients/ts/node_modules clients/go/build clients/cpp/build clients/java/build
