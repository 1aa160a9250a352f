# hmrkit: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
BASE   := $(VENV)/.installed-base
STAMP  := $(VENV)/.installed
OUT    ?= demo_out
# Parallel workers for pytest (2 cores on CI machines).
JOBS   ?= 2

.PHONY: venv install test test-fast test-all demo bench bench-smoke browser clean

# Two stages: the package (what `make demo` needs) and the test extras on top (`make test`).
# --no-compile: pip would byte-compile every module of torch and its CUDA wheels (~45 s here);
# the demo's few processes compile what they import instead (test stage: compileall below).
$(BASE): pyproject.toml .ci/tested-versions.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	# torch/torchvision first, pinned to the releases on this machine's disk.
	$(PY) -m pip install -q --no-compile "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -q --no-compile -c .ci/tested-versions.txt -e .
	@touch $(BASE)

$(STAMP): $(BASE)
	$(PY) -m pip install -q --no-compile -c .ci/tested-versions.txt -e ".[test]"
	# The suite starts hundreds of Python processes: compile the venv once (~30 s on 2 cores).
	# Where PYTHONDONTWRITEBYTECODE is set (CI machines) nothing else would, and every process
	# would compile torch again (+3 min of make test). A few files of torch's own tests do not
	# compile under 3.11: its status is ignored.
	$(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	@touch $(STAMP)

venv install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q -m "not long"

test-fast: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q -m "not slow and not long"

# Everything, with the tests marked long (a model trained for minutes to an accuracy figure).
test-all: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q

demo: $(BASE)
	$(VENV)/bin/hmr demo --out $(OUT)

# Every benchmark prints its figures. The Balanced MSE reproduction takes ~30 min of one core
# at the paper's protocol: it runs in --quick mode unless FULL=1. demo_learning and loader_cache
# measure a folder you give them (see their --help); here they run on their own --smoke data.
bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; \
	  extra=""; case "$$b" in *balanced_mse_synthetic.py) [ -n "$(FULL)" ] || extra="--quick";; \
	  *demo_learning.py|*loader_cache.py) extra="--smoke";; esac; \
	  $(PY) $$b $$extra || exit 1; done

# Every benchmark end to end at toy sizes (seconds each; make test runs the same).
bench-smoke: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b --smoke || exit 1; done

# Debian's Chromium + ChromeDriver for the review page's browser test (skipped without them).
browser:
	apt-get install -y chromium chromium-driver

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build *.egg-info
