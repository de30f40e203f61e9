# mqttaction.emqx: developer and CI entry points.
#
#   make test        everything CI runs: lint, sanity, unit, build, molecule
#   make lint        yamllint + ansible-lint (profile production)
#   make sanity      ansible-test sanity on a copy under ansible_collections/
#   make unit        pytest unit tests
#   make build       build the collection and install it into a scratch path
#   make molecule    every molecule scenario (brings the lab up, tears it down)
#   make molecule-<scenario>   one scenario, e.g. make molecule-lab
#   make bench-record  the load test record: the seed's eaddrinuse wall, then 45,000
#                    subscribers with publishers on three nodes, then through HAProxy,
#                    with emqtt-bench (molecule/bench_record; not part of make test)
#   make perf        deploy, no-change, scale-out and rolling-restart timings on six lab
#                    hosts against the targets (molecule/perf; not part of make test);
#                    PERF_BEFORE=<collections path> measures another release beside it,
#                    PERF_MITOGEN=<dir with PyPI's mitogen> the mitogen strategy
#   make lab-up / lab-down     the test lab alone
#   make demo / demo-down      the single-host cluster of inventories/local on a lab host
#
# From a fresh Debian 12 machine, as root: apt-get install -y make && make test

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
PYTHON_VENV = $(VENV)/bin/python
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
LAB := $(ROOT)/.lab
COLLECTIONS := $(LAB)/collections
# Outside the work tree: ansible-test would otherwise see the enclosing git
# checkout, in which .lab/ is ignored, and test nothing.
SANITY_ROOT := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mqttaction-emqx/sanity/ansible_collections/mqttaction/emqx
SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard $(ROOT)/molecule/*/molecule.yml))))

# The tools' directory: the venv here, another one in the controller container.
TOOLS_BIN ?= $(VENV)/bin
export PATH := $(TOOLS_BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_NOCOLOR := 1
export PY_COLORS := 0

.PHONY: demo demo-down test prereqs venv collection lint sanity sanity-run unit unit-run matrix matrix-leg dist build \
  molecule perf bench-record lab-up lab-down lab-status clean

# The static checks side by side (ansible-test sanity keeps one core busy, the
# others the second: about a minute less than one after another), the other
# ansible-core releases, then the lab.
test: venv
	$(MAKE) --no-print-directory --output-sync=target -j2 lint sanity unit build
	$(MAKE) --no-print-directory matrix
	$(MAKE) --no-print-directory molecule
	@echo "make test: all checks passed"

# ansible-core 2.20 and 2.21 need Python 3.12 or later; a fresh Debian 12 has
# 3.11, on which the main venv runs 2.19. Their sanity and unit tests run in the
# lab's controller container (Debian 13, Python 3.13, one venv per release),
# and molecule scenarios listed in CONTROLLER_SCENARIOS run there on 2.21. The
# repository is mounted at its own path, so paths handed to the Docker engine
# (the lab's SSH key that lab hosts mount) are the machine's.
MATRIX := 2.20 2.21
CONTROLLER_SCENARIOS := debian13
SHARED := $(abspath $(or $(MQTTACTION_LAB_SHARED),$(ROOT)/../shared))
CONTROLLER := docker run --rm --network mqttaction-lab -v /var/run/docker.sock:/var/run/docker.sock \
  -v $(ROOT):$(ROOT) -v $(SHARED):$(SHARED):ro -e MQTTACTION_LAB_SHARED=$(SHARED) -w $(ROOT) -e ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) -e ANSIBLE_NOCOLOR=1 -e PY_COLORS=0 \
  mqttaction-lab/controller:trixie
export MQTTACTION_CONTROLLER := $(CONTROLLER) env PATH=/opt/ansible-2.21/bin:/usr/local/bin:/usr/bin:/bin
matrix: lab-up
	@for core in $(MATRIX); do \
	  echo "=== ansible-core $$core on Python 3.13 (controller container): sanity and unit tests"; \
	  $(CONTROLLER) make --no-print-directory CORE=$$core matrix-leg || exit 1; \
	done

# Inside the controller container only.
matrix-leg:
	$(MAKE) --no-print-directory TOOLS_BIN=/opt/ansible-$(CORE)/bin SANITY_PYTHON=3.13 sanity-run unit-run

# Debian packages the tool chain itself needs; the lab installs docker.io and
# debootstrap on its own when they are missing.
prereqs:
	@missing=""; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	for tool in ssh-keygen:openssh-client curl:curl rsync:rsync git:git; do \
	  command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: prereqs $(VENV)/.installed collection

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	@# --no-compile: byte-compiling every file of the ansible package took about
	@# 45 s; Python compiles the few modules a run imports on first use.
	$(VENV)/bin/pip install --quiet --no-compile -r requirements.txt
	touch $@

# The working tree, seen by Ansible as the collection mqttaction.emqx.
collection:
	@mkdir -p $(COLLECTIONS)/ansible_collections/mqttaction
	@ln -sfn $(ROOT) $(COLLECTIONS)/ansible_collections/mqttaction/emqx

lint: venv
	yamllint --strict .
	ansible-lint

# ansible-test wants the collection at .../ansible_collections/<ns>/<name>;
# it gets a copy of the files git would ship (tracked or not ignored).
SANITY_PYTHON ?= 3.11
sanity: venv
	$(MAKE) --no-print-directory sanity-run
sanity-run:
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_ROOT)
	cd $(ROOT) && git ls-files --cached --others --exclude-standard -z | grep -zv '^collections/' \
	  | rsync -a --from0 --files-from=- ./ $(SANITY_ROOT)/
	pip_version=$$(python -c 'import inspect, re; from ansible_test._internal import python_requirements as r; \
	  print(re.search(r"pip=.([0-9.]+).", inspect.getsource(r.get_venv_packages)).group(1))'); \
	  install -D -m 0644 tests/lab/ansible_test_get_pip.py \
	    $(HOME)/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	cd $(SANITY_ROOT) && ansible-test sanity --venv --python $(SANITY_PYTHON) --color no

unit: venv
	$(MAKE) --no-print-directory unit-run
unit-run:
	pytest -q -p no:cacheprovider tests/unit

# The collection as users get it: the tarball installed into a scratch path
# with the collections it declares (taken from PyPI's ansible package) and
# nothing else; the default scenario runs from there. Rebuilt when a file of
# the repository changes.
DIST := $(LAB)/dist
DIST_INPUTS := $(wildcard $(shell cd $(ROOT) && git ls-files --cached --others --exclude-standard 2>/dev/null))
dist: venv $(DIST)/installed/.complete
$(DIST)/installed/.complete: $(DIST_INPUTS)
	rm -rf $(DIST) && mkdir -p $(DIST)
	ansible-galaxy collection build --force --output-path $(DIST) $(ROOT)
	ansible-galaxy collection install --force --no-deps -p $(DIST)/installed $(DIST)/mqttaction-emqx-*.tar.gz
	$(PYTHON_VENV) tests/lab/dist_collections.py $(DIST)/installed
	touch $@

build: dist
	test -f $(DIST)/installed/ansible_collections/mqttaction/emqx/MANIFEST.json
	@# Every module of the installed artifact must render with ansible-doc.
	@for module in $(notdir $(basename $(wildcard $(ROOT)/plugins/modules/*.py))); do \
	  echo "ansible-doc mqttaction.emqx.$$module"; \
	  ANSIBLE_COLLECTIONS_PATH=$(DIST)/installed ansible-doc mqttaction.emqx.$$module > /dev/null; \
	done
	@if tar -tzf $(DIST)/mqttaction-emqx-*.tar.gz | grep -E '^(tests|molecule|tools|\.lab|\.venv)/'; then \
	  echo "build_ignore leaks test or lab material into the artifact"; exit 1; fi
	@# The execution environment definition makes a build context (nothing is pulled).
	rm -rf $(LAB)/ee && ansible-builder create -f execution-environment.yml -c $(LAB)/ee
	test -f $(LAB)/ee/_build/requirements.yml && grep -q community.docker $(LAB)/ee/_build/requirements.yml

lab-up: venv
	$(PYTHON) tests/lab/labctl.py up

lab-down:
	$(PYTHON) tests/lab/labctl.py down

lab-status:
	$(PYTHON) tests/lab/labctl.py status

# Every scenario runs against a freshly started lab, two at a time, longest
# first (MOLECULE_JOBS=1 runs them one by one); each logs to .lab/logs/. The
# load test (bench) runs alone afterwards: it measures what the machine holds.
# The lab is torn down afterwards whether the scenarios passed or not.
SCENARIO_ORDER := operations security debian13 default failures single_host membership lab
SOLO_SCENARIOS := bench
# Measurements, run on their own by make perf and make bench-record.
PERF_SCENARIOS := perf bench_record
export CONTROLLER_SCENARIOS
molecule: lab-up dist
	@status=0; \
	tests/lab/run_scenarios.sh $(filter $(SCENARIOS),$(SCENARIO_ORDER)) \
	  $(filter-out $(SCENARIO_ORDER) $(SOLO_SCENARIOS) $(PERF_SCENARIOS),$(SCENARIOS)) || status=1; \
	MOLECULE_JOBS=1 tests/lab/run_scenarios.sh $(filter $(SCENARIOS),$(SOLO_SCENARIOS)) || status=1; \
	$(PYTHON) tests/lab/labctl.py down; \
	exit $$status

molecule-%: lab-up dist
	molecule test -s $*

perf: lab-up dist
	MQTTACTION_PERF_BEFORE=$(PERF_BEFORE) MQTTACTION_PERF_MITOGEN=$(PERF_MITOGEN) molecule test -s perf
	@cat $(LAB)/perf/report.json

# The load test record on this machine (molecule/bench_record): reports in .lab/bench-record/.
bench-record: lab-up
	molecule test -s bench_record
	@cat $(LAB)/bench-record/compare.md

# The main job: deploy inventories/local (three nodes behind HAProxy) with
# site.yml. This machine cannot pull emqx/emqx:4.4.4, so the demo runs on a lab
# host with the lab's EMQX 4.4.4 built from source (../shared/emqx), and says so.
LAB_EMQX_IMAGE = 172.28.42.2:5000/$(or $(MQTTACTION_LAB_EMQX_IMAGE),mqttaction-lab/emqx-built-from-source):4.4.4
demo: lab-up
	@what="$$($(PYTHON) tests/lab/labctl.py what)"; \
	  printf '\n%s\n%s\n%s\n\n' \
	  '=======================================================================================' \
	  "== DEMO on lab host 172.28.42.51: $$what (emqx/emqx:4.4.4 cannot be pulled here)" \
	  '======================================================================================='
	molecule create -s single_host
	molecule prepare -s single_host
	ansible-playbook -i inventories/local -i tests/lab/demo-inventory.yml --private-key $(LAB)/ssh/id_ed25519 \
	  -e emqx_image=$(LAB_EMQX_IMAGE) site.yml
	@echo "make demo: cluster up on 172.28.42.51 ($$($(PYTHON) tests/lab/labctl.py what)); remove with make demo-down"
	@echo "Connect as the demo user (inventories/local), who may publish and subscribe under demo/:"
	@echo "  mosquitto_sub -h 172.28.42.51 -p 1883 -u demo -P local-demo-mqtt-password -t 'demo/#' -v"
	@echo "  mosquitto_pub -h 172.28.42.51 -p 1883 -u demo -P local-demo-mqtt-password -t demo/hello -m hi"

demo-down:
	molecule destroy -s single_host
	$(PYTHON) tests/lab/labctl.py down

clean: lab-down
	rm -rf $(LAB) $(ROOT)/.ansible
