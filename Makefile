# The two commands of the README's quick start: `make demo` and `make test`; `make docs` builds the site.
# All create .venv with pip on first use (torch from the CPU wheel on this disk). A constraints file
# pins torch to TORCH_SPEC for every later install: an unpinned dependency (torchvision, required by
# timm in the integrations extra) would otherwise pull a newer torch and its CUDA packages.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
FUZZ_CASES ?= 10000
FUZZ_SEED ?= 0
FUZZ_ARGS ?=

.PHONY: demo test venv bench gpu-check fuzz docs clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(wildcard setup.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	echo "$(TORCH_SPEC)" > $(VENV)/constraints.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt "$(TORCH_SPEC)"
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e ".[all,dev,integrations,docs]"
	touch $@

demo: venv
	$(VENV)/bin/focalkit compare

test: venv
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

bench: venv
	$(PY) benchmarks/bench.py

# On a CUDA machine: Triton tests on the device, fp32/bf16/fp16 benchmark, bandwidth floor -> gpu-check/
gpu-check: venv
	$(PY) benchmarks/gpu_check.py

# The standing fuzz campaign of the losses (docs/fuzz.md): FUZZ_CASES random cases on every backend
# against the float64 reference; e.g. `make fuzz FUZZ_CASES=500 FUZZ_SEED=3 FUZZ_ARGS="--jobs 2"`.
fuzz: venv
	$(PY) -m focalkit.testing.fuzz --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) $(FUZZ_ARGS)

# The documentation site (MkDocs, strict): site/index.html
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	@echo "open site/index.html"

clean:
	rm -rf $(VENV) build site src/*.egg-info
