# The two commands of the README's quick start: `make demo` and `make test`.
# Both create .venv with pip on first use (torch from the CPU wheel on this disk).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test venv bench gpu-check clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(wildcard setup.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[all,dev]"
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

clean:
	rm -rf $(VENV) build src/*.egg-info
