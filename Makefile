# All set-up happens here, from PyPI, into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: venv bytecode demo test docs bench clean chromium compose-demo container-runtime

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The project's modules compiled to bytecode once, not by every process that imports them: an editable install
# writes none, and where PYTHONDONTWRITEBYTECODE is set (these machines) no process ever does, so each federate
# compiled some 30 modules from source at its start (0.1-0.2 s of CPU each, 4 at once; 2026-12-07). Quick when
# nothing changed (the sources' times are checked).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 lec_cosim federates

demo: $(STAMP) bytecode
	$(BIN)/lec-cosim run scenarios/trondelag_arbitrage.yaml --out results/trondelag_arbitrage --force
	@echo "Results written to $(CURDIR)/results/trondelag_arbitrage"

# Two test processes (pytest-xdist), a test file each at a time (module fixtures stay in one process): most
# tests wait on federations starting up, so one process left a core idle (1,065 tests: 12 min 53 s in one
# process, 10 min 11 s in two, on 2 cores, 2026-12-06). Runs share the machine safely: broker ports are
# reserved across processes (lec_cosim/ports.py) and every test has its own folder. The slowest files go first
# (tests/conftest.py: SLOWEST_FIRST), so that both processes end together. The 25 slowest tests are listed at the
# end: where to look when the suite nears its 12-minute budget (and where SLOWEST_FIRST may need an update).
# The containers' runtime image (container-runtime below: minutes on a new machine, a second when cached) is
# built beside the tests rather than before them; tests/test_containers.py waits for it (a lock) and, should the
# build fail, builds it again itself and fails with its error (the background build's log: .venv/container-runtime.log).
test: $(STAMP) bytecode chromium docs
	$(BIN)/python -m lec_cosim.container_image runtime > $(VENV)/container-runtime.log 2>&1 & build=$$!; \
	trap 'kill $$build 2>/dev/null' INT TERM; \
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=25 tests; status=$$?; wait $$build; exit $$status

# The documentation site (mkdocs.yml, pages in docs/) into site/, warnings as errors. The reference pages
# (CLI, scenario schema, published interface) are generated first by docs/gen_reference.py (a mkdocs hook).
docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --quiet

$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

# tests/test_report_html.py renders the HTML report in headless Chromium: Debian's package, through
# sudo unless we are root.
chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The containers' image below the compose projects' (lec_cosim/container_image.py): installs Debian's docker.io,
# debootstrap and docker-compose if missing, starts dockerd if no engine answers, and builds the runtime image
# (Debian python3 + the dependencies from wheels built here) once per machine: about 3 minutes the first time,
# a second when cached (tests/test_containers.py runs in it). Needs root.
container-runtime: $(STAMP)
	$(BIN)/python -m lec_cosim.container_image runtime

# The top-level docker-compose.yml and broker_config/compose_demo/ are generated: regenerate, never edit.
# Then the demo runs for real: the image built, a container per process on an internal network, the results
# in broker_config/compose_demo/results/; the containers and the network are removed afterwards.
compose-demo: $(STAMP)
	$(BIN)/lec-cosim compose scenarios/trondelag_arbitrage.yaml -o broker_config/compose_demo \
	  --compose-file docker-compose.yml --force
	$(BIN)/python -m lec_cosim.container_image run docker-compose.yml

# Each benchmark is one command (see README, "Speed and scale"); all of them take about 30 minutes.
# The bench extra adds numba: pandapower's baselines run as its users run them.
bench: $(BENCH_STAMP) bytecode
	$(BIN)/python benchmarks/federation_vs_opendss.py --pandapower
	$(BIN)/python benchmarks/federation_vs_pandapower.py
	$(BIN)/python benchmarks/federation_vs_monolithic.py --days 366
	$(BIN)/python benchmarks/scaling.py
	$(BIN)/python benchmarks/aco_training.py
	$(BIN)/python benchmarks/backend_agreement.py
	$(BIN)/python benchmarks/year_run.py
	$(BIN)/python benchmarks/env_throughput.py
	$(BIN)/python benchmarks/parallel_runs.py
	$(BIN)/python benchmarks/feeder_year.py

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

clean:
	rm -rf $(VENV) results .pytest_cache site
