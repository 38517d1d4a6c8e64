# Two commands on a fresh machine:  `make demo`  and  `make test`.
# They install into the active virtual/conda environment if there is one (an existing CUDA torch
# there is left alone), otherwise into ./.venv, created here.
ifneq ($(VIRTUAL_ENV)$(CONDA_PREFIX),)
PYTHON := python
else
PYTHON := .venv/bin/python
endif
TORCH_VERSION ?= 2.13.0
DEMO_IMAGE := DiffuGTSSlicer/diffugts/demo/lung1_crop_ct.nii.gz
PYTEST_ARGS ?=

.PHONY: install demo test clean

install:
	@[ "$(PYTHON)" = python ] || [ -x .venv/bin/python ] || python3 -m venv .venv
	@$(PYTHON) -c "import torch" 2>/dev/null \
		&& echo "torch $$($(PYTHON) -c 'import torch; print(torch.__version__)') already installed: leaving it as it is" \
		|| $(PYTHON) -m pip install "torch==$(TORCH_VERSION)"
	$(PYTHON) -m pip install -e ".[dev]"

demo: install
	$(PYTHON) -m diffugts info $(DEMO_IMAGE)
	$(PYTHON) -m diffugts segment $(DEMO_IMAGE) --prompt "lung tumor" --out demo-output
	$(PYTHON) -m diffugts.demo.score demo-output
	@echo "Results on the input's grid in demo-output/: segmentation.seg.nrrd, probability_1.nii.gz, pseudo_healthy.nii.gz, ... (open them over $(DEMO_IMAGE) in 3D Slicer); quick look: demo-output/quicklook.png"

# pytest exits 5 when it collects no test: that is a broken suite, said plainly.
test: install
	@$(PYTHON) -m pytest $(PYTEST_ARGS); rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; fi; exit $$rc

clean:
	rm -rf .venv build *.egg-info DiffuGTSSlicer/*.egg-info .pytest_cache demo-output
