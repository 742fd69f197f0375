# The two commands of the README: `make demo` and `make test`. Both create the
# virtual environment on first use, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TEST ?=
# Test processes: pytest-xdist spreads the tests over them (`JOBS=0`: none).
JOBS ?= auto
QUICK := not (slow or server or local_model or notebooks or postgres)
QUESTION ?= Why is the sky blue?
STAMP := $(VENV)/.installed
LOCAL_STAMP := $(VENV)/.local-runtime

.PHONY: help install demo test test-fast lint format docs notebooks snapshots dev bench bench-quality clean

help:
	@echo "make demo       run the ensemble on a sample question (local models, offline)"
	@echo "make test       run the test suite (offline; every tier, notebooks included)"
	@echo "make test-fast  the quick tier: no subprocess runs, servers, local model,"
	@echo "                notebooks or PostgreSQL"
	@echo "make lint       ruff and mypy --strict"
	@echo "make format     ruff format and fix"
	@echo "make docs       regenerate the README's configuration table"
	@echo "make notebooks  run the offline notebooks and save their outputs"
	@echo "make snapshots  refresh the graph-drawing snapshots"
	@echo "make dev        serve the graph to LangGraph Studio (langgraph dev)"
	@echo "make bench      run the benchmarks; figures go to benchmarks/RESULTS.md"
	@echo "make bench-quality  quality per cost on the local model (ARGS=--quick: 12"
	@echo "                questions, minutes; without: about an hour and a half)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]' --group dev
	@touch $(STAMP)

# The local model runtime (a llama.cpp server and SmolLM2-135M). Where it cannot
# be installed, the demo says why and uses the scripted demo models instead.
$(LOCAL_STAMP): $(STAMP)
	@$(BIN)/attention-moa local install && touch $@ \
		|| echo "The local model runtime is not available; see the line above."

install: $(STAMP) $(LOCAL_STAMP)

demo: $(STAMP) $(LOCAL_STAMP)
	$(BIN)/attention-moa ask --no-db "$(QUESTION)"

# The local model's tests run after the others, alone: llama.cpp's threads
# wait for each other at every step, so a server sharing its cores with
# another busy process runs many times slower (see docs/local.md).
test: $(STAMP) $(LOCAL_STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -m "not local_model" $(TEST)
	$(BIN)/python -m pytest -m local_model $(TEST) || [ $$? -eq 5 ]

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m "$(QUICK)" $(TEST)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: $(STAMP)
	$(BIN)/python -m scripts.readme_table

notebooks: $(STAMP)
	$(BIN)/python -m scripts.notebooks

snapshots: $(STAMP)
	$(BIN)/python -m pytest tests/unit_tests/test_graph_structure.py --snapshot-update

dev: $(STAMP)
	LANGGRAPH_CLI_NO_ANALYTICS=1 $(BIN)/langgraph dev --no-browser

bench: $(STAMP) $(LOCAL_STAMP)
	$(BIN)/python -m benchmarks.critical_path
	$(BIN)/python -m benchmarks.overhead
	$(BIN)/python -m benchmarks.growth
	$(BIN)/python -m benchmarks.tail_latency
	$(BIN)/python -m benchmarks.throughput
	$(BIN)/python -m benchmarks.throughput --workers 2
	$(BIN)/python -m benchmarks.first_token
	$(BIN)/python -m benchmarks.cost
	$(BIN)/python -m benchmarks.stop_decision
	$(BIN)/python -m benchmarks.serve_load
	$(BIN)/python -m benchmarks.footprint
	$(BIN)/python -m benchmarks.local_runtime
	$(BIN)/python -m benchmarks.quality_cost --quick

bench-quality: $(STAMP) $(LOCAL_STAMP)
	$(BIN)/python -m benchmarks.quality_cost $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
